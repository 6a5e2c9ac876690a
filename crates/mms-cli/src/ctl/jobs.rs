//! Job commands: `get-job --id [--watch]` and `list-jobs`, over the API's own [`JobView`], for
//! the tenant-wide fan-outs and bulk starts run as background jobs; and how a command that
//! started a job shows it ([`job_reply`]).

use std::time::Duration;

use mms_control::routes::jobs::JobView;
use mms_control::routes::{PageQuery, NEXT_OFFSET_HEADER};

use super::client::{encode, params, Failure};
use super::render::{render, View};
use super::{Ctx, Shown};

/// How often `get-job --watch` asks again.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// `get-job --id ID [--watch]`: the job's progress; with `--watch`, a line per change until it
/// is final (exit 0 when it succeeded, [`super::EXIT_MIGRATION_FAILED`] when it failed).
pub async fn get_job(ctx: &Ctx, id: &str, watch: bool) -> Result<Shown, Failure> {
    let path = ctx.tenant_path(&format!("/jobs/{}", encode(id)))?;
    if !watch {
        return Shown::reply(ctx.client.get(&path).await?, View::Fields);
    }
    let mut last_shown: Option<JobView> = None;
    loop {
        let value = ctx.client.get(&path).await?;
        let job: JobView = serde_json::from_value(value.clone()).map_err(|e| {
            Failure::local(
                "unexpected_reply",
                format!("the job reply does not decode: {e}"),
            )
        })?;
        if last_shown.as_ref() != Some(&job) {
            print!("{}", render(&value, View::Jobs, ctx.output));
            last_shown = Some(job.clone());
        }
        if job.is_final() {
            let failed = job.state == mms_control::routes::jobs::JobStatus::Failed;
            return Ok(Shown::Exit(if failed {
                super::EXIT_MIGRATION_FAILED
            } else {
                0
            }));
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// A reply that is a job, shown as one: the job's row, and on stderr how to follow it when it
/// has not ended yet. `None` for any other reply.
pub fn job_reply(value: &serde_json::Value) -> Option<Shown> {
    let job: JobView = serde_json::from_value(value.clone()).ok()?;
    let note = (!job.is_final()).then(|| {
        format!(
            "job {} is still running in the background: follow it with `mmsctl get-job --id {} --watch`",
            job.id, job.id
        )
    });
    Some(Shown::Reply {
        value: value.clone(),
        view: View::Jobs,
        note,
    })
}

/// `list-jobs [--limit N] [--offset N]`: the tenant's jobs, newest first.
pub async fn list_jobs(
    ctx: &Ctx,
    limit: Option<usize>,
    offset: Option<usize>,
) -> Result<Shown, Failure> {
    let query = params(&PageQuery { limit, offset })?;
    let reply = ctx
        .client
        .get_query(&ctx.tenant_path("/jobs")?, &query)
        .await?;
    let note = reply
        .headers
        .get(NEXT_OFFSET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|next| format!("more jobs: list the next page with --offset {next}"));
    Ok(Shown::Reply {
        value: reply.value,
        view: View::Jobs,
        note,
    })
}
