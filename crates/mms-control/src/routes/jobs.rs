//! `GET /v1/tenants/{tenant}/jobs` and `.../jobs/{id}`: the progress of background jobs (the
//! tenant-wide fan-outs and the bulk starts, see [`crate::jobs`]), and the one way a route that
//! submits a job answers ([`submit_and_reply`]).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mms_store::{JobRecord, JobState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{page_reply, tenant_settings, PageQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::jobs::{job_id, submit, wait_for_end, JobSpec, MAX_WAIT_SECS};
use crate::json::{QueryNames, QueryParams};
use crate::ApiState;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum JobStatus {
    /// Not finished: being run, or waiting for a runner (after a restart or a Redis error; see
    /// `LastError`).
    Running,
    Succeeded,
    /// Stopped for good; `LastError` says why.
    Failed,
}

impl From<JobState> for JobStatus {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Running => JobStatus::Running,
            JobState::Succeeded => JobStatus::Succeeded,
            JobState::Failed => JobStatus::Failed,
        }
    }
}

/// A background job and its progress. Every user the job concerns ends in exactly one of
/// `Queued`, `Merged`, `Skipped` or `Refused`; their sum reaches `UsersTotal` when it succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct JobView {
    pub id: String,
    pub tenant: String,
    /// What the job does: the event's `Type` (e.g. `BridgeNumberUnassigned`), or `BulkStart`.
    pub kind: String,
    pub state: JobStatus,
    /// Users the job concerns (0 until the runner has decided them).
    pub users_total: u64,
    /// Users carried out so far, in the job's order (where a resumed job starts).
    pub users_done: u64,
    /// A new migration request was queued.
    pub queued: u64,
    /// Merged into the user's request that was already queued.
    pub merged: u64,
    /// The rules say nothing migrates for the user.
    pub skipped: u64,
    /// An exclusion (X1, X2) refused the user.
    pub refused: u64,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub started: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished: Option<DateTime<Utc>>,
    /// Why it failed, or why it paused (a Redis error; it resumes by itself).
    #[serde(default)]
    pub last_error: Option<String>,
    /// What the rules said for the job as a whole once it succeeded (e.g. `T2-no: ...` for an
    /// organization URL change, which migrates nothing).
    #[serde(default)]
    pub note: Option<String>,
}

impl From<JobRecord> for JobView {
    fn from(record: JobRecord) -> Self {
        let kind = serde_json::from_str::<JobSpec>(&record.spec)
            .map(|spec| spec.kind().to_string())
            .unwrap_or_else(|_| "Unknown".to_string());
        JobView {
            id: record.id.0,
            tenant: record.tenant,
            kind,
            state: record.state.into(),
            users_total: record.total,
            users_done: record.cursor,
            queued: record.queued,
            merged: record.merged,
            skipped: record.skipped,
            refused: record.refused,
            created: record.created,
            started: record.started,
            finished: record.finished,
            last_error: record.last_error,
            note: record.note,
        }
    }
}

impl JobView {
    /// Whether the job will change no more.
    pub fn is_final(&self) -> bool {
        self.state != JobStatus::Running
    }
}

/// One job's progress. A tenant admin sees only their tenant's jobs (403 on another tenant).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/jobs/{id}", tag = "jobs",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<JobView>> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    let record = state
        .store
        .job(&settings.tenant, &job_id(&id))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_job",
                format!(
                    "tenant {} has no job {id:?}: list its jobs with GET /v1/tenants/{}/jobs",
                    settings.tenant, settings.tenant
                ),
            )
        })?;
    Ok(Json(record.into()))
}

/// The tenant's jobs, newest first, paged (`limit`, `offset`; `X-Next-Offset` when more follow).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/jobs", tag = "jobs",
    params(("tenant" = String, Path), PageQuery),
    responses((status = 200, body = [JobView]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_jobs(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant): Path<String>,
    names: QueryNames,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<JobView>>)> {
    let settings = tenant_settings(&state, &caller, &tenant).await?;
    names.only(&[PageQuery::NAMES])?;
    let limit = page.limit()?;
    let rows = state
        .store
        .jobs(&settings.tenant, page.offset(), limit + 1)
        .await?;
    let rows: Vec<JobView> = rows.into_iter().map(JobView::from).collect();
    Ok(page_reply(rows, &page, limit))
}

/// Store a job for `spec` and answer for it: 202 with the job and `Location` at once, or, when
/// the request says `Prefer: wait=N` (RFC 7240 §4.3; N capped at [`MAX_WAIT_SECS`]), 200 with
/// the ended job if it ends within N seconds (202 as before if not). The job runs the same way
/// in both cases: the preference only decides how long the reply waits for it.
pub(crate) async fn submit_and_reply(
    state: &ApiState,
    tenant: &str,
    spec: &JobSpec,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let record = submit(state, tenant, spec).await?;
    let record = match preferred_wait(headers) {
        Some(wait) => wait_for_end(&state.store, record, wait).await,
        None => record,
    };
    let job = JobView::from(record);
    let location = format!("/v1/tenants/{tenant}/jobs/{}", job.id);
    let location = HeaderValue::from_str(&location).map_err(|_| {
        ApiError::bad_request("invalid_tenant", "the tenant id cannot be put in a header")
    })?;
    let status = if job.is_final() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, [(header::LOCATION, location)], Json(job)).into_response())
}

/// `wait=N` among the request's `Prefer` preferences (seconds, capped). Preferences are
/// separated by `,`; a preference's own parameters follow it after `;` and are not preferences.
fn preferred_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|preference| {
            let token = preference.split(';').next()?.trim();
            let (name, value) = token.split_once('=')?;
            let value = value.trim().trim_matches('"');
            let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            (name.trim().eq_ignore_ascii_case("wait") && digits)
                .then(|| value.parse::<u64>().ok())?
        })
        .next()
        .map(|secs| Duration::from_secs(secs.min(MAX_WAIT_SECS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn wait_is_read_among_other_preferences_and_capped() {
        assert_eq!(preferred_wait(&HeaderMap::new()), None);
        assert_eq!(preferred_wait(&prefer("respond-async")), None);
        assert_eq!(
            preferred_wait(&prefer("respond-async, Wait=5")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            preferred_wait(&prefer("wait=3600")),
            Some(Duration::from_secs(MAX_WAIT_SECS))
        );
        assert_eq!(preferred_wait(&prefer("wait=soon")), None);
        assert_eq!(preferred_wait(&prefer("wait=+5")), None);
        assert_eq!(
            preferred_wait(&prefer("handling=lenient; wait=5")),
            None,
            "a parameter of another preference"
        );
        assert_eq!(
            preferred_wait(&prefer("wait=7; foo=bar")),
            Some(Duration::from_secs(7))
        );
    }
}
