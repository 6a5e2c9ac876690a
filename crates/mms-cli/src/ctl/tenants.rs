//! Tenant cmdlets: create and list tenants, their two switches (M3, M4), and tokens.

use mms_control::routes::admin::{CreateTenant, CreateToken};
use mms_control::routes::config::{SetDialInConfiguration, SetMigrationConfiguration};
use reqwest::Method;

use super::client::{encode, Failure};
use super::render::View;
use super::{Ctx, Shown};

/// `get-tenant-migration-configuration` (M3).
pub async fn get_migration(ctx: &Ctx) -> Result<Shown, Failure> {
    let path = ctx.tenant_path("/configuration/migration")?;
    Shown::reply(ctx.client.get(&path).await?, View::Fields)
}

/// `set-tenant-migration-configuration --meeting-migration-enabled`.
pub async fn set_migration(ctx: &Ctx, meeting_migration_enabled: bool) -> Result<Shown, Failure> {
    let path = ctx.tenant_path("/configuration/migration")?;
    let body = SetMigrationConfiguration {
        meeting_migration_enabled,
    };
    Shown::reply(
        ctx.client.send_json(Method::PUT, &path, &body).await?,
        View::Fields,
    )
}

/// `get-dialin-conferencing-tenant-settings` (M4).
pub async fn get_dialin(ctx: &Ctx) -> Result<Shown, Failure> {
    let path = ctx.tenant_path("/configuration/dialin")?;
    Shown::reply(ctx.client.get(&path).await?, View::Fields)
}

/// `set-dialin-conferencing-tenant-settings --automatically-migrate-user-meetings`.
pub async fn set_dialin(
    ctx: &Ctx,
    automatically_migrate_user_meetings: bool,
) -> Result<Shown, Failure> {
    let path = ctx.tenant_path("/configuration/dialin")?;
    let body = SetDialInConfiguration {
        automatically_migrate_user_meetings,
    };
    Shown::reply(
        ctx.client.send_json(Method::PUT, &path, &body).await?,
        View::Fields,
    )
}

/// `create-tenant [--meeting-migration-enabled B] [--automatically-migrate-user-meetings B]`.
pub async fn create(
    ctx: &Ctx,
    meeting_migration_enabled: Option<bool>,
    automatically_migrate_user_meetings: Option<bool>,
    domains: Vec<String>,
) -> Result<Shown, Failure> {
    let body = CreateTenant {
        tenant: ctx.tenant()?.to_string(),
        meeting_migration_enabled,
        automatically_migrate_user_meetings,
        domains,
    };
    Shown::reply(
        ctx.client
            .send_json(Method::POST, "/v1/tenants", &body)
            .await?,
        View::Fields,
    )
}

/// `set-tenant-domains` (operator): give the tenant more verified mail domains.
pub async fn set_domains(ctx: &Ctx, domains: Vec<String>) -> Result<Shown, Failure> {
    let path = ctx.tenant_path("/domains")?;
    let body = mms_control::routes::domains::AssignDomains { domains };
    Shown::reply(
        ctx.client.send_json(Method::PUT, &path, &body).await?,
        View::Fields,
    )
}

/// `list-tenants`.
pub async fn list(ctx: &Ctx) -> Result<Shown, Failure> {
    Shown::reply(ctx.client.get("/v1/tenants").await?, View::Tenants)
}

/// `create-token`: a tenant-admin token for `--tenant`, shown once.
pub async fn create_token(ctx: &Ctx) -> Result<Shown, Failure> {
    let body = CreateToken {
        tenant: ctx.tenant()?.to_string(),
    };
    Shown::reply(
        ctx.client
            .send_json(Method::POST, "/v1/tokens", &body)
            .await?,
        View::Fields,
    )
}

/// `list-tokens`.
pub async fn list_tokens(ctx: &Ctx) -> Result<Shown, Failure> {
    Shown::reply(ctx.client.get("/v1/tokens").await?, View::Tokens)
}

/// `revoke-token --id`.
pub async fn revoke_token(ctx: &Ctx, id: &str) -> Result<Shown, Failure> {
    let path = format!("/v1/tokens/{}", encode(id));
    Shown::reply(
        ctx.client.send(Method::DELETE, &path, None).await?,
        View::Fields,
    )
}
