//! `GET /v1/tenants/{tenant}/jobs` and `.../jobs/{id}`: the progress of background jobs (the
//! tenant-wide fan-outs posted with `Prefer: respond-async`, see [`crate::jobs`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use mms_store::{JobRecord, JobState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{page_reply, tenant_settings, PageQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::jobs::{job_id, JobSpec};
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
    /// What the job does: the event's `Type` (e.g. `BridgeNumberUnassigned`).
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
