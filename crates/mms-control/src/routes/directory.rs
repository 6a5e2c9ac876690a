//! The directory: users (single records and bulk import) and audio-conferencing bridges.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use mms_core::{Bridge, DialInNumber, MailboxLocation, TeamsUpgradeMode, UserHome, UserProfile};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{page_reply, tenant_settings, PageQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::import::{self, UserRecord};
use crate::json::{JsonBody, QueryNames, QueryParams};
use crate::{validate, ApiState};

/// Result of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ImportReport {
    pub tenant: String,
    /// Users created or replaced.
    pub imported: usize,
    /// Users the tenant has now.
    pub total_users: usize,
}

/// `PUT /bridges/{id}`: a bridge's name and numbers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BridgeRecord {
    pub name: String,
    pub numbers: Vec<DialInNumber>,
}

/// Filters of the user listing; each given one must match (values as in `UserProfile`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// `Cloud` or `OnPremises`.
    pub home: Option<UserHome>,
    /// `Cloud` or `ExchangeOnPremises`.
    pub mailbox: Option<MailboxLocation>,
    /// `Islands`, `SfBOnly`, `SfBWithTeamsCollab`, `SfBWithTeamsCollabAndMeetings` or `TeamsOnly`.
    pub teams_upgrade_mode: Option<TeamsUpgradeMode>,
    /// Users on this bridge.
    pub bridge: Option<String>,
    /// `true`: users with audio conferencing enabled; `false`: without.
    pub audio_enabled: Option<bool>,
}

impl UserQuery {
    /// The query parameter names, as a request spells them.
    pub const NAMES: &'static [&'static str] = &[
        "home",
        "mailbox",
        "teamsUpgradeMode",
        "bridge",
        "audioEnabled",
    ];

    fn matches(&self, user: &UserProfile) -> bool {
        self.home.is_none_or(|home| home == user.home)
            && self.mailbox.is_none_or(|mailbox| mailbox == user.mailbox)
            && self
                .teams_upgrade_mode
                .is_none_or(|mode| mode == user.teams_upgrade_mode)
            && self
                .bridge
                .as_ref()
                .is_none_or(|bridge| user.audio.bridge.as_ref() == Some(bridge))
            && self
                .audio_enabled
                .is_none_or(|enabled| enabled == user.audio.enabled)
    }
}

async fn bridge_ids(state: &ApiState, tenant: &str) -> ApiResult<HashSet<String>> {
    Ok(state
        .store
        .bridges(tenant)
        .await?
        .into_iter()
        .map(|b| b.id)
        .collect())
}

fn bridge_id(raw: &str) -> ApiResult<String> {
    validate::tenant_id(raw).map_err(|_| {
        ApiError::bad_request(
            "malformed_bridge",
            format!("bridge id {raw:?} is not valid: use 1 to 64 characters among a-z, 0-9, '-', '_' and '.'"),
        )
    })
}

/// The tenant's users by UPN, filtered, one page (`limit`, `offset`; at most 10,000 per reply,
/// the `X-Next-Offset` header says where the next page starts). An unknown parameter is refused
/// (400 `unknown_parameter`) rather than ignored.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/users", tag = "directory", params(("tenant" = String, Path), UserQuery, PageQuery),
    responses((status = 200, body = Vec<UserProfile>,
               headers(("x-next-offset" = usize, description = "offset of the next page; absent on the last page"))),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    names: QueryNames,
    QueryParams(filter): QueryParams<UserQuery>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<UserProfile>>)> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    names.only(&[UserQuery::NAMES, PageQuery::NAMES])?;
    let limit = page.limit()?;
    let mut users = state.store.users(&settings.tenant).await?;
    users.sort_by(|a, b| a.upn.cmp(&b.upn));
    let rows = users
        .into_iter()
        .filter(|user| filter.matches(user))
        .skip(page.offset())
        .take(limit + 1)
        .collect();
    Ok(page_reply(rows, &page, limit))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/users/{upn}", tag = "directory",
    params(("tenant" = String, Path), ("upn" = String, Path)),
    responses((status = 200, body = UserProfile), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, upn)): Path<(String, String)>,
) -> ApiResult<Json<UserProfile>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let upn = validate::upn(&upn)?;
    state
        .store
        .user(&settings.tenant, &upn)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "user_not_found",
                format!("no user {upn} in tenant {}", settings.tenant),
            )
        })
}

/// Create or replace one user (the UPN is the path's; a `Upn` in the body must match it). A SIP
/// address or user id that another user holds is refused with 409 (`sip_in_use`,
/// `user_id_in_use`) naming that user.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/users/{upn}", tag = "directory",
    params(("tenant" = String, Path), ("upn" = String, Path)), request_body = UserRecord,
    responses((status = 200, body = UserProfile), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, upn)): Path<(String, String)>,
    JsonBody(mut record): JsonBody<UserRecord>,
) -> ApiResult<Json<UserProfile>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let upn = validate::upn(&upn)?;
    if let Some(given) = &record.upn {
        if !given.trim().eq_ignore_ascii_case(&upn) {
            return Err(ApiError::bad_request("upn_mismatch", format!("the body's Upn {given:?} is not the path's {upn:?}: drop it or make them equal")));
        }
    }
    record.upn = Some(upn);
    let bridges = bridge_ids(&state, &settings.tenant).await?;
    let current = state
        .store
        .user(&settings.tenant, record.upn.as_deref().unwrap_or_default())
        .await?;
    let profile = import::to_profile(&settings.tenant, &record, &bridges, |_| current.as_ref())
        .map_err(|problems| {
            let errors = problems
                .into_iter()
                .map(|(field, problem)| import::RowError {
                    row: 1,
                    field: field.into(),
                    problem,
                })
                .collect();
            ApiError::invalid_import(errors)
        })?;
    state
        .store
        .put_users_exclusive(&settings.tenant, std::slice::from_ref(&profile))
        .await??;
    Ok(Json(profile))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/users/{upn}", tag = "directory",
    params(("tenant" = String, Path), ("upn" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, upn)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let upn = validate::upn(&upn)?;
    if state.store.delete_user(&settings.tenant, &upn).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "user_not_found",
            format!("no user {upn} in tenant {}", settings.tenant),
        ))
    }
}

/// Import users in one call: `text/csv` (header row of `UserRecord` field names) or
/// `application/json` (an array of `UserRecord`). All or nothing: one bad row rejects the file
/// with every problem listed; a SIP address or user id that a user outside the file holds
/// rejects it with 409 (`sip_in_use`, `user_id_in_use`) naming that user.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/users:import", tag = "directory",
    params(("tenant" = String, Path)),
    request_body(content((String = "text/csv"), (Vec<UserRecord> = "application/json"))),
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn import_users(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ImportReport>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let body = body?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let records = if content_type.starts_with("text/csv") {
        import::parse_csv(&body)
    } else if content_type.starts_with("application/json") {
        import::parse_json(&body)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {content_type:?} is not importable: send text/csv or application/json"),
        ));
    }
    .map_err(ApiError::invalid_import)?;
    let bridges = bridge_ids(&state, &settings.tenant).await?;
    let existing: HashMap<String, UserProfile> = state
        .store
        .users(&settings.tenant)
        .await?
        .into_iter()
        .map(|user| (user.upn.clone(), user))
        .collect();
    let profiles = import::validate_records(&settings.tenant, &records, &bridges, &existing)
        .map_err(ApiError::invalid_import)?;
    let imported = state
        .store
        .put_users_exclusive(&settings.tenant, &profiles)
        .await??;
    let total_users = state.store.user_count(&settings.tenant).await?;
    Ok(Json(ImportReport {
        tenant: settings.tenant,
        imported,
        total_users,
    }))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/bridges", tag = "directory", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<Bridge>), (status = 400, body = ErrorBody)))]
pub async fn list_bridges(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<Bridge>>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let mut bridges = state.store.bridges(&settings.tenant).await?;
    bridges.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(bridges))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/bridges/{id}", tag = "directory",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Bridge), (status = 404, body = ErrorBody)))]
pub async fn get_bridge(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Bridge>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let id = bridge_id(&id)?;
    state
        .store
        .bridge(&settings.tenant, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unknown_bridge(&settings.tenant, &id))
}

/// Create or replace a bridge. Changing numbers here only records them; to migrate the organizers
/// whose meetings carry a removed number, post a `BridgeNumberUnassigned` event instead.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/bridges/{id}", tag = "directory",
    params(("tenant" = String, Path), ("id" = String, Path)), request_body = BridgeRecord,
    responses((status = 200, body = Bridge), (status = 400, body = ErrorBody)))]
pub async fn put_bridge(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    JsonBody(record): JsonBody<BridgeRecord>,
) -> ApiResult<Json<Bridge>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let id = bridge_id(&id)?;
    if let Some(empty) = record
        .numbers
        .iter()
        .position(|n| n.number.trim().is_empty())
    {
        return Err(ApiError::bad_request("malformed_number", format!("Numbers[{empty}].Number is empty: give the number as dialled, e.g. +1 206-555-0100")));
    }
    let bridge = Bridge {
        tenant: settings.tenant,
        id,
        name: record.name,
        numbers: record.numbers,
    };
    state.store.put_bridge(&bridge).await?;
    Ok(Json(bridge))
}
