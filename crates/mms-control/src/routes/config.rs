//! The two tenant switches (M3, M4), shaped like the vendor's cmdlet output. Each PUT changes its
//! own switch only, atomically, so setting both at once from two consoles keeps both changes.

use axum::extract::{Path, State};
use axum::Json;
use mms_core::TenantSettings;
use mms_store::directory::TenantSwitch;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tenant_settings;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
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
    let settings = set_switch(
        &state,
        &caller,
        &tenant,
        TenantSwitch::MeetingMigrationEnabled,
        body.meeting_migration_enabled,
    )
    .await?;
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
    let settings = set_switch(
        &state,
        &caller,
        &tenant,
        TenantSwitch::AutomaticallyMigrateUserMeetings,
        body.automatically_migrate_user_meetings,
    )
    .await?;
    Ok(Json(DialInConfiguration {
        tenant: settings.tenant,
        automatically_migrate_user_meetings: settings.automatically_migrate_user_meetings,
    }))
}

/// Change one switch alone (atomically in Redis), so that concurrent PUTs of the two
/// configurations do not overwrite each other's switch; the settings as they are afterwards.
async fn set_switch(
    state: &ApiState,
    caller: &Caller,
    tenant: &str,
    switch: TenantSwitch,
    on: bool,
) -> ApiResult<TenantSettings> {
    let tenant = tenant_settings(state, caller, tenant).await?.tenant;
    state
        .store
        .set_tenant_switch(&tenant, switch, on)
        .await?
        .ok_or_else(|| ApiError::unknown_tenant(&tenant))
}
