//! The HTTP handlers, one module per group of cmdlets, and the helpers they share.

pub mod admin;
pub mod bulk;
pub mod config;
pub mod directory;
pub mod domains;
pub mod events;
pub mod health;
pub mod jobs;
pub mod migrations;

use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use mms_core::{TenantSettings, UserProfile};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::validate::{self, Identity};
use crate::ApiState;

/// Check the tenant id, the caller's right to it (before existence, so that a tenant admin cannot
/// probe which other tenants exist), and load its settings.
pub(crate) async fn tenant_settings(
    state: &ApiState,
    caller: &Caller,
    tenant: &str,
) -> ApiResult<TenantSettings> {
    let tenant = validate::tenant_id(tenant)?;
    caller.require_tenant(&tenant)?;
    state
        .store
        .tenant_settings(&tenant)
        .await?
        .ok_or_else(|| ApiError::unknown_tenant(&tenant))
}

/// The user an `Identity` names (UPN, or SIP address with or without `sip:`), or a 400 naming it.
pub(crate) async fn resolve_identity(
    state: &ApiState,
    tenant: &str,
    raw: &str,
) -> ApiResult<UserProfile> {
    let store = &state.store;
    let upn = match validate::identity(raw)? {
        Identity::Address(address) => match store.user(tenant, &address).await? {
            Some(user) => return Ok(user),
            None => store.upn_by_sip(tenant, &address).await?,
        },
        Identity::Sip(sip) => store.upn_by_sip(tenant, &sip).await?,
    };
    match upn {
        Some(upn) => store
            .user(tenant, &upn)
            .await?
            .ok_or_else(|| ApiError::unknown_user(tenant, raw)),
        None => Err(ApiError::unknown_user(tenant, raw)),
    }
}

/// Most rows one list reply carries; a page size above it is refused, and a list without `limit`
/// stops there too (the reply then says where to continue).
pub const MAX_PAGE: usize = 10_000;

/// Response header of a list that has more rows: the `offset` to ask for next. Absent on the
/// last page.
pub const NEXT_OFFSET_HEADER: &str = "x-next-offset";

/// `limit` and `offset` of a list.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows to return, 1 to 10,000 (default and most: 10,000). When more rows match, the
    /// `X-Next-Offset` header gives the offset of the next page.
    pub limit: Option<usize>,
    /// Matching rows to skip first (default 0).
    pub offset: Option<usize>,
}

impl PageQuery {
    /// The query parameter names, as a request spells them.
    pub const NAMES: &'static [&'static str] = &["limit", "offset"];

    /// The page size asked for, or a 400 when it is out of range.
    pub(crate) fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(MAX_PAGE),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(limit) => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit {limit} is out of range: ask for 1 to {MAX_PAGE} rows and page on with offset"),
            )),
        }
    }

    pub(crate) fn offset(&self) -> usize {
        self.offset.unwrap_or(0)
    }
}

/// One page of `rows` (which may hold one row more than `limit`, the sign that another page
/// follows) as a JSON array, with [`NEXT_OFFSET_HEADER`] when it is not the last.
pub(crate) fn page_reply<T>(
    mut rows: Vec<T>,
    page: &PageQuery,
    limit: usize,
) -> (HeaderMap, Json<Vec<T>>) {
    let mut headers = HeaderMap::new();
    if rows.len() > limit {
        rows.truncate(limit);
        headers.insert(NEXT_OFFSET_HEADER, HeaderValue::from(page.offset() + limit));
    }
    (headers, Json(rows))
}
