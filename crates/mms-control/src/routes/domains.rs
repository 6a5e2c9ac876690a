//! The tenant boundary as the API serves it (see `mms_store::domains`): the operator gives each
//! tenant its verified mail domains, and a tenant's admin may start or preview migrations only of
//! users whose UPN is in one of them. The worker checks the same again before it opens a mailbox.

use axum::extract::{Path, State};
use axum::Json;
use mms_store::domains::MailDomain;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::JsonBody;
use crate::routes::tenant_settings;
use crate::ApiState;

/// `PUT /v1/tenants/{tenant}/domains`: mail domains to give the tenant (added to those it owns).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AssignDomains {
    pub domains: Vec<String>,
}

/// The mail domains a tenant owns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TenantDomains {
    pub tenant: String,
    pub domains: Vec<String>,
}

/// Parse every domain, or name the first malformed one.
pub fn parse_domains(domains: &[String]) -> Result<Vec<MailDomain>, ApiError> {
    domains
        .iter()
        .map(|d| {
            MailDomain::parse(d)
                .map_err(|e| ApiError::bad_request("malformed_domain", e.to_string()))
        })
        .collect()
}

/// Give `tenant` the domains, all or none; 409 `domain_taken` names another tenant's domain.
pub async fn claim(state: &ApiState, tenant: &str, domains: &[MailDomain]) -> ApiResult<()> {
    match state.store.claim_domains(tenant, domains).await? {
        Ok(()) => Ok(()),
        Err(taken) => Err(ApiError::conflict(
            "domain_taken",
            format!(
                "mail domain {} belongs to another tenant; a domain has one owner: release it there first (DELETE /v1/tenants/{{tenant}}/domains/{})",
                taken.domain, taken.domain
            ),
        )),
    }
}

/// 403 `domain_not_owned` unless `tenant` owns the domain of `upn`: what start and preview check.
pub async fn require_owned(state: &ApiState, tenant: &str, upn: &str) -> ApiResult<()> {
    if state.store.owns_upn(tenant, upn).await? {
        return Ok(());
    }
    let owned = state.store.tenant_domains(tenant).await?;
    let owned: Vec<&str> = owned.iter().map(MailDomain::as_str).collect();
    Err(ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "domain_not_owned",
        format!(
            "{upn} is not in a mail domain of tenant {tenant} ({}): MMS opens only mailboxes in the tenant's own domains; the operator assigns them (mmsctl set-tenant-domains)",
            if owned.is_empty() { "it owns none yet".to_string() } else { owned.join(", ") }
        ),
    ))
}

async fn domains_of(state: &ApiState, tenant: &str) -> ApiResult<TenantDomains> {
    let domains = state.store.tenant_domains(tenant).await?;
    Ok(TenantDomains {
        tenant: tenant.to_string(),
        domains: domains.iter().map(|d| d.as_str().to_string()).collect(),
    })
}

/// The tenant's mail domains (its admin or the operator).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/domains", tag = "admin", params(("tenant" = String, Path)),
    responses((status = 200, body = TenantDomains), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_domains(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantDomains>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    Ok(Json(domains_of(&state, &settings.tenant).await?))
}

/// Give the tenant more mail domains (operator only: a tenant cannot claim a domain itself).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/domains", tag = "admin", params(("tenant" = String, Path)),
    request_body = AssignDomains,
    responses((status = 200, body = TenantDomains), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn assign_domains(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<AssignDomains>,
) -> ApiResult<Json<TenantDomains>> {
    caller.require_operator()?;
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let domains = parse_domains(&body.domains)?;
    claim(&state, &settings.tenant, &domains).await?;
    Ok(Json(domains_of(&state, &settings.tenant).await?))
}

/// Take a mail domain away from the tenant (operator only).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/domains/{domain}", tag = "admin",
    params(("tenant" = String, Path), ("domain" = String, Path)),
    responses((status = 200, body = TenantDomains), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn release_domain(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, domain)): Path<(String, String)>,
) -> ApiResult<Json<TenantDomains>> {
    caller.require_operator()?;
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let domains = parse_domains(&[domain])?;
    state
        .store
        .release_domains(&settings.tenant, &domains)
        .await?;
    Ok(Json(domains_of(&state, &settings.tenant).await?))
}
