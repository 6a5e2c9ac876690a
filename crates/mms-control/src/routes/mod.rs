//! The HTTP handlers, one module per group of cmdlets, and the helpers they share.

pub mod admin;
pub mod config;
pub mod directory;
pub mod events;
pub mod migrations;

use mms_core::{TenantSettings, UserProfile};

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
