//! `POST /v1/tenants/{tenant}/events`: a directory event in, the rules' verdicts out (T1–T3, X2,
//! T2-no), with the event's effect applied to the directory once every verdict is carried out.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mms_store::directory::DirectoryConflict;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::jobs::{submit_and_reply, JobView};
use super::{resolve_identity, tenant_settings};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::Event;
use crate::jobs::JobSpec;
use crate::json::JsonBody;
use crate::trigger::{carry_out, TriggerOutcome, TriggerResult};
use crate::{rules, validate, ApiState};

/// A 200 answer to an event: a per-user event's report, or a fan-out's job that ended within
/// `Prefer: wait` (documentation only: the handler answers with one or the other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventReply {
    Report(EventReport),
    Job(JobView),
}

/// What a per-user event led to (a fan-out answers with its job instead, see
/// [`super::jobs::JobView`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct EventReport {
    pub event: String,
    /// How many users ended in each result.
    pub counts: ResultCounts,
    /// The event's user's outcome.
    pub outcomes: Vec<TriggerOutcome>,
    /// What the rules said beyond the outcome, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Users per [`TriggerResult`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ResultCounts {
    pub queued: usize,
    pub merged: usize,
    pub refused: usize,
    pub not_triggered: usize,
}

impl ResultCounts {
    fn add(&mut self, result: TriggerResult) {
        let slot = match result {
            TriggerResult::Queued => &mut self.queued,
            TriggerResult::Merged => &mut self.merged,
            TriggerResult::Refused => &mut self.refused,
            TriggerResult::NotTriggered => &mut self.not_triggered,
        };
        *slot += 1;
    }
}

/// Apply a directory event and trigger what the rules say. Automatic triggers are held
/// `queue.coalesce_delay_ms` so that a burst of changes for one user becomes one migration.
///
/// The verdicts are carried out first and the event's directory changes saved last, so a
/// request that fails midway (503, Redis unreachable) changed nothing in the directory and can
/// be retried safely as is: users already queued are merged into their queued request, not
/// migrated twice (their history shows the trigger twice).
///
/// A fan-out event (no `Identity`: T2e, a tenant-wide T3, the organization URL) is checked,
/// stored as a job and answered 202 at once with the job and
/// `Location: /v1/tenants/{tenant}/jobs/{id}`, however many users the tenant has; the job runner
/// carries it out in batches, resumes it after a restart and reports its progress there (see
/// `crate::jobs`). With `Prefer: wait=N` the reply waits up to N seconds (60 at most) and is 200
/// with the ended job when it ended in time.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/events", tag = "events",
    params(("tenant" = String, Path),
           ("Prefer" = Option<String>, Header, description = "`wait=N`: for a fan-out, wait up to N seconds (at most 60) for its job to end")),
    request_body = Event,
    responses((status = 200, body = EventReply, description = "a per-user event: what it led to; a fan-out whose job ended within `Prefer: wait`: the job"),
              (status = 202, body = JobView, description = "a fan-out: stored as a job",
               headers(("Location" = String, description = "the job: /v1/tenants/{tenant}/jobs/{id}"))),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn post_event(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(mut event): JsonBody<Event>,
) -> ApiResult<Response> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let tenant = settings.tenant.clone();
    if let Event::SipAddressChanged { sip_address, .. } = &mut event {
        *sip_address = validate::sip_address(sip_address)?;
    }
    let bridge = match event.bridge() {
        Some(id) => Some(
            state
                .store
                .bridge(&tenant, id)
                .await?
                .ok_or_else(|| ApiError::unknown_bridge(&tenant, id))?,
        ),
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
    let Some(identity) = event.identity() else {
        let spec = JobSpec::Event { event };
        return submit_and_reply(&state, &tenant, &spec, &headers).await;
    };
    let users = vec![resolve_identity(&state, &tenant, identity).await?];
    if let (Event::SipAddressChanged { sip_address, .. }, [user]) = (&event, users.as_slice()) {
        // Refused before anything is recorded: the address must not name two users.
        if let Some(owner) = state.store.upn_by_sip(&tenant, sip_address).await? {
            if owner != user.upn {
                return Err(DirectoryConflict::SipInUse {
                    sip: sip_address.clone(),
                    owner,
                    upn: user.upn.clone(),
                }
                .into());
            }
        }
    }
    let decision = rules::decide(&event, &settings, &users, bridge.as_ref());
    let delay_ms = crate::events::hold_ms(&state.config);
    let mut counts = ResultCounts::default();
    let mut outcomes = Vec::with_capacity(decision.verdicts.len());
    for verdict in &decision.verdicts {
        let outcome = carry_out(&state.store, &tenant, event.kind(), verdict, delay_ms).await?;
        counts.add(outcome.result);
        outcomes.push(outcome);
    }
    state
        .store
        .put_users_exclusive(&tenant, &decision.user_updates)
        .await??;
    if let Some(bridge) = &decision.bridge_update {
        state.store.put_bridge(bridge).await?;
    }
    Ok(Json(EventReport {
        event: event.kind().to_string(),
        counts,
        outcomes,
        note: decision.note,
    })
    .into_response())
}
