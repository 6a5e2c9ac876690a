//! Migrations: start one (M5, T4) or preview it (what-if), undo one (issue 9.2, with its what-if), their status and
//! summary (M1, M2), a user's transaction history.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use mms_core::{
    HistoryEventKind, MigrationRequest, MigrationState, MigrationStatus, MigrationType,
    SourceMeetingType, TargetMeetingType, Trigger,
};
use mms_store::StatusFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{page_reply, resolve_identity, tenant_settings, PageQuery};
use crate::auth::Caller;
use crate::error::{codes, ApiError, ApiResult, ErrorBody};
use crate::json::{JsonBody, QueryNames, QueryParams};
use crate::preview::{Preview, PreviewError, PreviewItem, PreviewOutcome};
use crate::rules::VerdictKind;
use crate::trigger::{carry_out, TriggerResult};
use crate::{rules, validate, ApiState};

/// `Start-CsExMeetingMigration`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StartMigration {
    /// UPN or SIP address (`sip:` optional).
    pub identity: String,
    /// `All` (default), `SfB` or `Teams`.
    #[serde(default)]
    pub source_meeting_type: Option<String>,
    /// `Current` (default) or `Teams`.
    #[serde(default)]
    pub target_meeting_type: Option<String>,
}

/// The migration a start placed (new, or the user's queued one it was merged into).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StartedMigration {
    pub correlation_id: String,
    pub user: String,
    pub merged: bool,
    pub message: String,
}

/// The answer of a what-if: counts, a one-line summary and every meeting listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct MigrationPreview {
    pub user: String,
    pub source_meeting_type: SourceMeetingType,
    pub target_meeting_type: TargetMeetingType,
    pub would_update: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    /// True when the mailbox holds more meetings than the listed ones.
    pub capped: bool,
    pub message: String,
    pub items: Vec<PreviewItem>,
}

impl MigrationPreview {
    fn new(
        user: String,
        source: SourceMeetingType,
        target: TargetMeetingType,
        found: Preview,
    ) -> Self {
        let count = |outcome| found.items.iter().filter(|i| i.outcome == outcome).count();
        let (would_update, unchanged, skipped, failed) = (
            count(PreviewOutcome::WouldUpdate),
            count(PreviewOutcome::Unchanged),
            count(PreviewOutcome::Skipped),
            count(PreviewOutcome::Failed),
        );
        let mut message = format!(
            "What-if for {user}: {would_update} meeting(s) would be updated and their attendees sent \
             an update, {unchanged} unchanged, {skipped} skipped, {failed} failed; nothing was saved or sent"
        );
        if found.capped {
            message.push_str(&format!(
                "; only the first {} meetings are listed: the mailbox holds more",
                found.items.len()
            ));
        }
        MigrationPreview {
            user,
            source_meeting_type: source,
            target_meeting_type: target,
            would_update,
            unchanged,
            skipped,
            failed,
            capped: found.capped,
            message,
            items: found.items,
        }
    }
}

/// Filters of `Get-CsMeetingMigrationStatus`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// UPN or SIP address: that user's migrations only.
    pub identity: Option<String>,
    /// Pending, InProgress, Failed or Succeeded.
    pub state: Option<String>,
    /// SfbToTeams, TeamsToTeams, AllToTeams, ToSameType or Undo.
    pub migration_type: Option<String>,
    /// Created at or after (RFC 3339).
    pub start_time: Option<String>,
    /// Created at or before (RFC 3339).
    pub end_time: Option<String>,
}

/// `-SummaryOnly`: users per state, as the vendor prints it, and split by migration type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StatusSummary {
    pub states: Vec<StateCount>,
    pub by_migration_type: Vec<StateTypeCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StateCount {
    pub state: MigrationState,
    /// Users whose newest (matching) migration is in this state: each user counts once.
    pub user_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct StateTypeCount {
    pub state: MigrationState,
    pub migration_type: MigrationType,
    pub user_count: usize,
}

/// One line of `Get-CsMeetingMigrationTransactionHistory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryLine {
    pub at: DateTime<Utc>,
    /// Empty for lines that belong to no migration (a trigger refused or not triggered).
    pub correlation_id: String,
    /// Which step: Triggered, Refused, NotTriggered, Queued, Merged, Held, Started, Resumed,
    /// RetryScheduled, Succeeded, Failed, ActorFailed or Corrupt (see the schema).
    pub event: HistoryEventKind,
    pub message: String,
}

impl StatusQuery {
    /// The query parameter names, as a request spells them.
    pub const NAMES: &'static [&'static str] =
        &["identity", "state", "migrationType", "startTime", "endTime"];
}

fn parse_time(field: &str, raw: &Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    raw.as_deref()
        .map(|text| {
            DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                ApiError::bad_request("malformed_time", format!("{field} {text:?} is not an RFC 3339 time ({e}), e.g. 2025-01-31T08:00:00Z"))
            })
        })
        .transpose()
}

fn status_filter(query: &StatusQuery) -> ApiResult<StatusFilter> {
    let state = query
        .state
        .as_deref()
        .map(|s| {
            s.parse::<MigrationState>()
                .map_err(|e| ApiError::bad_request("unknown_state", e.to_string()))
        })
        .transpose()?;
    let migration_type = query
        .migration_type
        .as_deref()
        .map(|s| {
            s.parse::<MigrationType>()
                .map_err(|e| ApiError::bad_request("unknown_migration_type", e.to_string()))
        })
        .transpose()?;
    Ok(StatusFilter {
        state,
        migration_type,
        start: parse_time("startTime", &query.start_time)?,
        end: parse_time("endTime", &query.end_time)?,
        ..StatusFilter::default()
    })
}

fn matches(filter: &StatusFilter, status: &MigrationStatus) -> bool {
    filter.state.is_none_or(|s| s == status.state)
        && filter
            .migration_type
            .is_none_or(|t| t == status.migration_type)
        && filter.start.is_none_or(|start| status.create_date >= start)
        && filter.end.is_none_or(|end| status.create_date <= end)
}

/// The migrations matching `query`, newest first: after skipping `offset`, at most `limit` rows
/// (`limit` 0: all).
async fn statuses(
    state: &ApiState,
    tenant: &str,
    query: &StatusQuery,
    offset: usize,
    limit: usize,
) -> ApiResult<Vec<MigrationStatus>> {
    let filter = StatusFilter {
        offset,
        limit,
        ..status_filter(query)?
    };
    match &query.identity {
        Some(identity) => {
            let user = resolve_identity(state, tenant, identity).await?;
            let rows = state.store.user_statuses(tenant, &user.upn).await?;
            let matching = rows
                .into_iter()
                .filter(|s| matches(&filter, s))
                .skip(offset);
            Ok(match limit {
                0 => matching.collect(),
                limit => matching.take(limit).collect(),
            })
        }
        None => Ok(state.store.list_statuses(tenant, &filter).await?),
    }
}

/// The body's meeting types, defaulted as the vendor's cmdlet does (`All`, `Current`).
fn meeting_types(body: &StartMigration) -> ApiResult<(SourceMeetingType, TargetMeetingType)> {
    parse_meeting_types(
        body.source_meeting_type.as_deref(),
        body.target_meeting_type.as_deref(),
    )
}

/// `SourceMeetingType` and `TargetMeetingType` as a request spells them, defaulted as the
/// vendor's cmdlet does (`All`, `Current`).
pub(crate) fn parse_meeting_types(
    source: Option<&str>,
    target: Option<&str>,
) -> ApiResult<(SourceMeetingType, TargetMeetingType)> {
    let meeting_type = |e: mms_core::model::ParseEnumError| {
        ApiError::bad_request("unknown_meeting_type", e.to_string())
    };
    let source = match source {
        Some(text) => text.parse::<SourceMeetingType>().map_err(meeting_type)?,
        None => SourceMeetingType::All,
    };
    let target = match target {
        Some(text) => text.parse::<TargetMeetingType>().map_err(meeting_type)?,
        None => TargetMeetingType::Current,
    };
    Ok((source, target))
}

/// Start a migration for one user (M5, T4). Runs at once (no coalescing hold). On a tenant whose
/// `MeetingMigrationEnabled` is false it is still accepted and runs: an explicit admin command
/// overrides the switch, as the vendor's cmdlet does, and the history records the override.
/// Refused with 409 when the user's mailbox is in Exchange on-premises (X1).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/migrations", tag = "migrations", params(("tenant" = String, Path)),
    request_body = StartMigration,
    responses((status = 202, body = StartedMigration), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<StartMigration>,
) -> ApiResult<(StatusCode, Json<StartedMigration>)> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let (source, target) = meeting_types(&body)?;
    let user = resolve_identity(&state, &settings.tenant, &body.identity).await?;
    crate::routes::domains::require_owned(&state, &settings.tenant, &user.upn).await?;
    let verdict = rules::decide_manual(&user, &settings, source, target);
    let outcome = carry_out(
        &state.store,
        &settings.tenant,
        "Start-CsExMeetingMigration",
        &verdict,
        0,
    )
    .await?;
    match (outcome.result, outcome.correlation_id) {
        (TriggerResult::Queued | TriggerResult::Merged, Some(correlation_id)) => Ok((
            StatusCode::ACCEPTED,
            Json(StartedMigration {
                correlation_id,
                user: outcome.user,
                merged: outcome.result == TriggerResult::Merged,
                message: outcome.message,
            }),
        )),
        _ => Err(ApiError::conflict("migration_refused", outcome.message)),
    }
}

/// What-if: the meetings a start with this body would touch and their new online-meeting blocks.
/// Nothing is saved, sent, queued or written to the history. Validated and refused (X1) exactly
/// as a start is; at most 1,000 meetings are listed (`PREVIEW_ITEM_CAP`; `Capped` says when more exist).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/migrations:preview", tag = "migrations", params(("tenant" = String, Path)),
    request_body = StartMigration,
    responses((status = 200, body = MigrationPreview), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn preview(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<StartMigration>,
) -> ApiResult<Json<MigrationPreview>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let (source, target) = meeting_types(&body)?;
    let user = resolve_identity(&state, &settings.tenant, &body.identity).await?;
    crate::routes::domains::require_owned(&state, &settings.tenant, &user.upn).await?;
    if let VerdictKind::Refused { exclusion, message } =
        rules::decide_manual(&user, &settings, source, target).kind
    {
        return Err(ApiError::conflict(
            "migration_refused",
            format!(
                "{exclusion}: a migration of {} would be refused: {message}",
                user.upn
            ),
        ));
    }
    let previewer = state.previewer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "preview_unavailable",
            "this API process has no mailbox connector to preview with: run the API as `mms api` or `mms all` \
             with a [mailbox] configuration",
        )
    })?;
    let found = previewer
        .preview(&user, source, target)
        .await
        .map_err(|e| match e {
            PreviewError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mailbox_unavailable",
                e.to_string(),
            ),
            PreviewError::Mailbox(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "mailbox_refused", e.to_string())
            }
        })?;
    Ok(Json(MigrationPreview::new(user.upn, source, target, found)))
}

/// `Get-CsMeetingMigrationStatus` (M2): migrations newest first, filtered, one page. Without
/// `limit` a reply holds every matching migration up to 10,000; when more match, the
/// `X-Next-Offset` header gives the `offset` of the next page (absent on the last page).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/migrations", tag = "migrations",
    params(("tenant" = String, Path), StatusQuery, PageQuery),
    responses((status = 200, body = Vec<MigrationStatus>,
               headers(("x-next-offset" = usize, description = "offset of the next page; absent on the last page"))),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    names: QueryNames,
    QueryParams(query): QueryParams<StatusQuery>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<MigrationStatus>>)> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    names.only(&[StatusQuery::NAMES, PageQuery::NAMES])?;
    let limit = page.limit()?;
    // One row more than the page: its presence says that another page follows.
    let rows = statuses(&state, &settings.tenant, &query, page.offset(), limit + 1).await?;
    Ok(page_reply(rows, &page, limit))
}

/// `Get-CsMeetingMigrationStatus -SummaryOnly` (M1): the same filters, counted.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/migrations/summary", tag = "migrations",
    params(("tenant" = String, Path), StatusQuery),
    responses((status = 200, body = StatusSummary), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn summary(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    names: QueryNames,
    QueryParams(query): QueryParams<StatusQuery>,
) -> ApiResult<Json<StatusSummary>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    names.only(&[StatusQuery::NAMES])?;
    let rows = statuses(&state, &settings.tenant, &query, 0, 0).await?;
    Ok(Json(summarize(&rows)))
}

/// Users per state (every state listed, zero included, so scripts see a fixed shape) and per
/// (state, migration type) present. Each user counts once, by their newest matching migration:
/// `rows` come newest first, so a user whose old migration failed and whose new one succeeded is
/// one Succeeded user, as the vendor's `UserCount` means.
pub fn summarize(rows: &[MigrationStatus]) -> StatusSummary {
    let all = [
        MigrationState::Pending,
        MigrationState::InProgress,
        MigrationState::Failed,
        MigrationState::Succeeded,
    ];
    let mut seen = BTreeSet::new();
    let newest: Vec<&MigrationStatus> = rows
        .iter()
        .filter(|r| seen.insert(r.user_principal_name.as_str()))
        .collect();
    let states = all
        .iter()
        .map(|&state| StateCount {
            state,
            user_count: newest.iter().filter(|r| r.state == state).count(),
        })
        .collect();
    // Keyed by the state's place in `all`, then the type's name: the vendor's order, stable.
    let mut split: BTreeMap<(usize, String), StateTypeCount> = BTreeMap::new();
    for row in newest {
        let order = all
            .iter()
            .position(|s| *s == row.state)
            .unwrap_or(all.len());
        split
            .entry((order, row.migration_type.to_string()))
            .or_insert(StateTypeCount {
                state: row.state,
                migration_type: row.migration_type,
                user_count: 0,
            })
            .user_count += 1;
    }
    StatusSummary {
        states,
        by_migration_type: split.into_values().collect(),
    }
}

/// One migration by correlation id.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/migrations/{correlation_id}", tag = "migrations",
    params(("tenant" = String, Path), ("correlation_id" = String, Path)),
    responses((status = 200, body = MigrationStatus), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, correlation_id)): Path<(String, String)>,
) -> ApiResult<Json<MigrationStatus>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let mut status = state
        .store
        .status(&settings.tenant, &correlation_id)
        .await?
        .ok_or_else(|| ApiError::unknown_migration(&settings.tenant, &correlation_id))?;
    // The row carries counters only; each meeting's outcome lives in the journal.
    if status.meetings.is_empty() {
        status.meetings = state
            .store
            .meeting_outcomes(&settings.tenant, &correlation_id)
            .await?;
    }
    Ok(Json(status))
}

/// The query of an undo.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UndoQuery {
    /// `true`: answer what the undo would do (the what-if's shape), queue nothing.
    pub what_if: Option<bool>,
}

impl UndoQuery {
    /// The query parameter names, as a request spells them.
    pub const NAMES: &'static [&'static str] = &["whatIf"];
}

/// The only operation on one migration: `{correlation_id}:undo`.
const UNDO_SUFFIX: &str = ":undo";

/// Undo a migration (issue 9.2): every meeting it saved gets its previous online block back
/// (the organizer's later edits outside the block are kept; a meeting whose block the organizer
/// changed since is skipped with the reason), SEQUENCE raised and one update sent per meeting.
/// The undo is a migration of its own (MigrationType `Undo`, its own correlation id, status row
/// and history), run by the workers with the same leases and journal; it runs even when the
/// tenant's `MeetingMigrationEnabled` is false, as an admin's start does. 404
/// `migration_not_found` when the tenant has no such migration; 409 `migration_not_final` while
/// it is Pending or InProgress, `nothing_to_undo` when it saved no meeting (or is itself an
/// undo, or its pre-images expired with its journal), `request_queued` while the user has
/// another request queued. With `?whatIf=true`: what the undo would do, meeting by meeting, in
/// the what-if's shape (200), nothing queued.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/migrations/{correlation_id}:undo", tag = "migrations",
    params(("tenant" = String, Path), ("correlation_id" = String, Path), UndoQuery),
    responses((status = 202, body = StartedMigration), (status = 200, body = MigrationPreview, description = "with whatIf=true"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn undo(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, operation)): Path<(String, String)>,
    names: QueryNames,
    QueryParams(query): QueryParams<UndoQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    names.only(&[UndoQuery::NAMES])?;
    let tenant = settings.tenant.as_str();
    let correlation = operation.strip_suffix(UNDO_SUFFIX).ok_or_else(|| {
        ApiError::not_found(
            "operation_not_found",
            format!(
                "POST /v1/tenants/{tenant}/migrations/{operation} names no operation: the one operation on a migration is                  POST /v1/tenants/{tenant}/migrations/{{correlation_id}}:undo"
            ),
        )
    })?;
    let undone = state
        .store
        .status(tenant, correlation)
        .await?
        .ok_or_else(|| ApiError::unknown_migration(tenant, correlation))?;
    if !undone.state.is_final() {
        return Err(ApiError::conflict(
            "migration_not_final",
            format!(
                "migration {correlation} is {}: undo it once it has ended (mmsctl get-meeting-migration --correlation-id {correlation})",
                undone.state
            ),
        ));
    }
    if undone.migration_type == MigrationType::Undo {
        return Err(ApiError::conflict(
            "nothing_to_undo",
            format!("migration {correlation} is itself an undo, which is not undone: start a migration of {} to move its meetings again", undone.user_principal_name),
        ));
    }
    let meetings = state.store.pre_image_count(tenant, correlation).await?;
    if meetings == 0 {
        return Err(ApiError::conflict(
            "nothing_to_undo",
            format!(
                "migration {correlation} saved no meeting, or what it replaced expired with its journal (retention.journal_days): nothing to undo"
            ),
        ));
    }
    let user = resolve_identity(&state, tenant, &undone.user_principal_name).await?;
    crate::routes::domains::require_owned(&state, tenant, &user.upn).await?;
    if query.what_if == Some(true) {
        let previewer = state.previewer.as_ref().ok_or_else(preview_unavailable)?;
        let found = previewer
            .preview_undo(&user, correlation)
            .await
            .map_err(preview_failed)?;
        let mut answer = MigrationPreview::new(
            user.upn,
            undone.source_meeting_type,
            undone.target_meeting_type,
            found,
        );
        answer.message = format!("Undo of migration {correlation}: {}", answer.message);
        return Ok(Json(answer).into_response());
    }
    let request = MigrationRequest::new(
        tenant,
        user.upn.clone(),
        undone.source_meeting_type,
        undone.target_meeting_type,
        Trigger::Undo {
            of: correlation.to_string(),
        },
    );
    let queued = state.store.enqueue(&request, 0).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StartedMigration {
            correlation_id: queued.correlation_id,
            user: user.upn,
            merged: false,
            message: format!(
                "Undo of migration {correlation} queued: {meetings} meeting(s) it saved get their previous block back"
            ),
        }),
    )
        .into_response())
}

/// 503 for a preview asked of an API process without a mailbox connector.
fn preview_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "preview_unavailable",
        "this API process has no mailbox connector to preview with: run the API as `mms api` or `mms all` \
         with a [mailbox] configuration",
    )
}

/// A preview that could not be computed, as the client sees it.
fn preview_failed(e: PreviewError) -> ApiError {
    match e {
        PreviewError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "mailbox_unavailable",
            e.to_string(),
        ),
        PreviewError::Mailbox(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "mailbox_refused", e.to_string())
        }
    }
}

/// `Get-CsMeetingMigrationTransactionHistory -Identity` (M2): every trigger, request, retry and
/// outcome of the user, oldest first. A user deleted from the directory keeps their history:
/// give the UPN. 404 (`user_not_found`) when the tenant has neither the user nor their history.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/users/{identity}/history", tag = "migrations",
    params(("tenant" = String, Path), ("identity" = String, Path)),
    responses((status = 200, body = Vec<HistoryLine>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, identity)): Path<(String, String)>,
) -> ApiResult<Json<Vec<HistoryLine>>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let not_found = || {
        ApiError::not_found(
            "user_not_found",
            format!(
                "no user {identity} in tenant {} and no history under that name: give the UPN or SIP address \
                 of a user of the tenant (GET /v1/tenants/{}/users lists them)",
                settings.tenant, settings.tenant
            ),
        )
    };
    let upn = match resolve_identity(&state, &settings.tenant, &identity).await {
        Ok(user) => user.upn,
        // A deleted user keeps their history under the UPN.
        Err(e) if e.code == codes::USER_NOT_FOUND => {
            validate::upn(&identity).map_err(|_| not_found())?
        }
        Err(e) => return Err(e),
    };
    let events = state.store.history(&settings.tenant, &upn).await?;
    if events.is_empty() && state.store.user(&settings.tenant, &upn).await?.is_none() {
        return Err(not_found());
    }
    Ok(Json(
        events
            .into_iter()
            .map(|e| HistoryLine {
                at: e.at,
                correlation_id: e.correlation_id,
                event: e.event,
                message: e.message,
            })
            .collect(),
    ))
}
