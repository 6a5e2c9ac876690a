//! `POST /v1/tenants/{tenant}/events`: a directory event in, the rules' verdicts out (T1–T3, X2,
//! T2-no), with the event's effect applied to the directory.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{resolve_identity, tenant_settings};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::Event;
use crate::json::JsonBody;
use crate::trigger::{carry_out, TriggerOutcome};
use crate::{rules, validate, ApiState};

/// What an event led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct EventReport {
    pub event: String,
    /// One entry per affected user (fan-out events have many).
    pub outcomes: Vec<TriggerOutcome>,
    /// Said about the tenant as a whole (e.g. why an organization-wide change triggers nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Apply a directory event and trigger what the rules say. Automatic triggers are held
/// `queue.coalesce_delay_ms` so that a burst of changes for one user becomes one migration.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/events", tag = "events", params(("tenant" = String, Path)),
    request_body = Event,
    responses((status = 200, body = EventReport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn post_event(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    JsonBody(mut event): JsonBody<Event>,
) -> ApiResult<Json<EventReport>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let tenant = settings.tenant.clone();
    if let Event::SipAddressChanged { sip_address, .. } = &mut event {
        *sip_address = validate::sip_address(sip_address)?;
    }
    let bridge = match event.bridge() {
        Some(id) => Some(state.store.bridge(&tenant, id).await?.ok_or_else(|| {
            ApiError::bad_request("unknown_bridge", format!("no bridge {id:?} in tenant {tenant}: create it with PUT /v1/tenants/{tenant}/bridges/{id}"))
        })?),
        None => None,
    };
    if let (Event::BridgeNumberUnassigned { number, .. }, Some(bridge)) = (&event, &bridge) {
        if !bridge.numbers.iter().any(|n| &n.number == number) {
            let known: Vec<&str> = bridge.numbers.iter().map(|n| n.number.as_str()).collect();
            return Err(ApiError::bad_request(
                "unknown_number",
                format!(
                    "bridge {} has no number {number:?}; its numbers are {known:?}",
                    bridge.id
                ),
            ));
        }
    }
    let users = match event.identity() {
        Some(identity) => vec![resolve_identity(&state, &tenant, identity).await?],
        None if matches!(event, Event::OrganizationMeetingUrlChanged { .. }) => Vec::new(),
        None => state.store.users(&tenant).await?,
    };
    let decision = rules::decide(&event, &settings, &users, bridge.as_ref());
    state
        .store
        .put_users(&tenant, &decision.user_updates)
        .await?;
    if let Some(bridge) = &decision.bridge_update {
        state.store.put_bridge(bridge).await?;
    }
    let delay_ms = state.config.queue.coalesce_delay_ms;
    let mut outcomes = Vec::with_capacity(decision.verdicts.len());
    for verdict in &decision.verdicts {
        outcomes.push(carry_out(&state.store, &tenant, event.kind(), verdict, delay_ms).await?);
    }
    Ok(Json(EventReport {
        event: event.kind().to_string(),
        outcomes,
        note: decision.note,
    }))
}
