//! The two tenant switches (M3, M4), shaped like the vendor's cmdlet output.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tenant_settings;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::json::JsonBody;
use crate::ApiState;

/// `Get-CsTenantMigrationConfiguration` (M3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MigrationConfiguration {
    pub tenant: String,
    /// Off: no automatic trigger queues anything; manual starts still run (an explicit override).
    pub meeting_migration_enabled: bool,
}

/// `Set-CsTenantMigrationConfiguration -MeetingMigrationEnabled`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetMigrationConfiguration {
    pub meeting_migration_enabled: bool,
}

/// `Get-CsOnlineDialInConferencingTenantSettings` (M4), the one setting MMS uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DialInConfiguration {
    pub tenant: String,
    /// Off: audio-conferencing changes (T2) queue nothing; T1 and T3 keep running.
    pub automatically_migrate_user_meetings: bool,
}

/// `Set-CsOnlineDialInConferencingTenantSettings -AutomaticallyMigrateUserMeetings`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetDialInConfiguration {
    pub automatically_migrate_user_meetings: bool,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/configuration/migration", tag = "configuration",
    params(("tenant" = String, Path)),
    responses((status = 200, body = MigrationConfiguration), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_migration(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<MigrationConfiguration>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    Ok(Json(MigrationConfiguration {
        tenant: settings.tenant,
        meeting_migration_enabled: settings.meeting_migration_enabled,
    }))
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/configuration/migration", tag = "configuration",
    params(("tenant" = String, Path)), request_body = SetMigrationConfiguration,
    responses((status = 200, body = MigrationConfiguration), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_migration(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<SetMigrationConfiguration>,
) -> ApiResult<Json<MigrationConfiguration>> {
    let mut settings = tenant_settings(&state, &caller, &tenant).await?;
    settings.meeting_migration_enabled = body.meeting_migration_enabled;
    state.store.put_tenant_settings(&settings).await?;
    Ok(Json(MigrationConfiguration {
        tenant: settings.tenant,
        meeting_migration_enabled: settings.meeting_migration_enabled,
    }))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/configuration/dialin", tag = "configuration",
    params(("tenant" = String, Path)),
    responses((status = 200, body = DialInConfiguration), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_dialin(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<DialInConfiguration>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    Ok(Json(DialInConfiguration {
        tenant: settings.tenant,
        automatically_migrate_user_meetings: settings.automatically_migrate_user_meetings,
    }))
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/configuration/dialin", tag = "configuration",
    params(("tenant" = String, Path)), request_body = SetDialInConfiguration,
    responses((status = 200, body = DialInConfiguration), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_dialin(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<SetDialInConfiguration>,
) -> ApiResult<Json<DialInConfiguration>> {
    let mut settings = tenant_settings(&state, &caller, &tenant).await?;
    settings.automatically_migrate_user_meetings = body.automatically_migrate_user_meetings;
    state.store.put_tenant_settings(&settings).await?;
    Ok(Json(DialInConfiguration {
        tenant: settings.tenant,
        automatically_migrate_user_meetings: settings.automatically_migrate_user_meetings,
    }))
}
