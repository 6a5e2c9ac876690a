//! Tenant-wide fan-outs and bulk starts as background jobs (issue 11.6): `POST .../events` with a
//! fan-out event (T2e bridge number unassigned, T3 tenant-wide grant, the organization URL
//! change) and `POST .../migrations:bulk` (T4 for many users) store a job and answer 202 at
//! once; the [`JobRunner`] started by `mms api` / `mms all` carries it out in batches. A caller
//! that would rather have the result says `Prefer: wait=N` (RFC 7240): the reply then waits up
//! to N seconds for the job to end (see [`wait_for_end`]).
//!
//! How a job stays exact across crashes and restarts:
//! - the users are read in one fixed order (sorted by UPN, each once) and the rules decided over
//!   them once per run: the directory changes the event implies are saved only at the end, so a
//!   resumed run decides the same verdicts (for the users still in the directory) and skips
//!   those whose result is recorded;
//! - what a fan-out queues is held (`FAN_OUT_HOLD_MS`) until that directory change is saved, then
//!   released with the usual event hold: a worker never mints from the directory as it was
//!   before the event, however long the job runs or pauses;
//! - each user's result is recorded once (`lua/jobs/record.lua`): a user of a re-run batch whose
//!   result is recorded is skipped, so no counter counts a user twice;
//! - a user carried out whose result was not recorded yet when the process died is carried out
//!   again: the queue merges the trigger into the request the first run queued (P1), so the user
//!   is still queued once; this one user per crash is then counted Merged rather than Queued
//!   (Queued + Merged stays exact);
//! - a runner holds a claim on the job, renewed after every batch; a second API process cannot
//!   take the job until that claim expires (its holder died), so a job never runs twice at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mms_core::{SourceMeetingType, TargetMeetingType, UserProfile};
use mms_store::{JobClaim, JobCounter, JobEnd, JobId, JobRecord, JobState, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::events::Event;
use crate::rules::{Verdict, VerdictKind};
use crate::trigger::{carry_out, TriggerResult};
use crate::{rules, ApiState};

/// How long a fan-out job holds the requests it queues at most: it releases them once its
/// directory change is saved; a job that never gets there (its tenant deleted) lets them run
/// after this.
pub const FAN_OUT_HOLD_MS: u64 = 60 * 60 * 1000;

/// The `cause` a bulk start's users' histories name, as a single start's do.
const START_CAUSE: &str = "Start-CsExMeetingMigration";

/// What a job does, as stored in its record (JSON, tagged by `Kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Kind")]
pub enum JobSpec {
    /// Carry out a fan-out directory event for every user it concerns.
    #[serde(rename_all = "PascalCase")]
    Event { event: Event },
    /// Start a migration (T4) for each of `users`, as `POST .../migrations` does for one.
    #[serde(rename_all = "PascalCase")]
    Start {
        users: BulkUsers,
        source: SourceMeetingType,
        target: TargetMeetingType,
    },
}

/// Whom a bulk start concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BulkUsers {
    /// Every user of the tenant when the job runs.
    All,
    /// These UPNs (resolved from the request's identities when it was accepted), sorted.
    Listed(Vec<String>),
}

impl JobSpec {
    /// A short name for lists: the event's `Type`, or `BulkStart`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Event { event } => event.kind(),
            JobSpec::Start { .. } => "BulkStart",
        }
    }
}

/// How a [`JobRunner`] paces itself.
#[derive(Debug, Clone, Copy)]
pub struct JobRunnerOptions {
    /// Users carried out between two cursor updates.
    pub batch_users: usize,
    /// How long a claim holds without renewal; a runner that dies leaves its job for this long
    /// before another takes it over. Renewed after every batch, so a batch must take less.
    pub claim: Duration,
    /// How often the open jobs are looked at when no new job woke the runner.
    pub poll: Duration,
}

impl Default for JobRunnerOptions {
    fn default() -> Self {
        JobRunnerOptions {
            batch_users: 500,
            claim: Duration::from_secs(30),
            poll: Duration::from_secs(1),
        }
    }
}

/// Why one run of a job stopped.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// Redis failed (or the claim was lost): the job stays open and is resumed later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job cannot be done as specified (its tenant or bridge is gone, its spec unreadable):
    /// it ends Failed with this message.
    #[error("{0}")]
    Fatal(String),
}

/// Runs the open jobs of every tenant, one at a time, until its task is aborted.
#[derive(Clone)]
pub struct JobRunner {
    state: ApiState,
    /// Names this runner in the jobs' claims (unique per runner).
    owner: String,
    options: JobRunnerOptions,
}

impl JobRunner {
    pub fn new(state: ApiState, options: JobRunnerOptions) -> Self {
        JobRunner {
            state,
            owner: format!("job-runner-{}", uuid::Uuid::new_v4()),
            options,
        }
    }

    /// Run in a task: a round over the open jobs now, then on every new job
    /// ([`ApiState::job_wake`]) and every `poll`.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let wake: Arc<Notify> = self.state.job_wake.clone();
            loop {
                if let Err(error) = self.round().await {
                    tracing::warn!(%error, "job runner round failed; retrying on the next one");
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(self.options.poll) => {}
                }
            }
        })
    }

    /// Look at every open job once and run those this runner can claim.
    pub async fn round(&self) -> Result<(), StoreError> {
        let store = &self.state.store;
        for (tenant, job) in store.open_jobs().await? {
            let Some(record) = store.job(&tenant, &job).await? else {
                store.forget_open_job(&tenant, &job).await?;
                continue;
            };
            if record.state != JobState::Running {
                store.forget_open_job(&tenant, &job).await?;
                continue;
            }
            let claim_ms = self.options.claim.as_millis() as u64;
            let Some(claim) = store
                .claim_job(&tenant, &job, &self.owner, claim_ms)
                .await?
            else {
                continue; // another runner holds it
            };
            self.run_claimed(&claim, record).await?;
        }
        Ok(())
    }

    /// Run one claimed job to its end, or release it after a transient failure.
    async fn run_claimed(&self, claim: &JobClaim, record: JobRecord) -> Result<(), StoreError> {
        let store = &self.state.store;
        match self.run(claim, &record).await {
            Ok(note) => {
                let note = note.as_deref();
                store.finish_job(claim, JobEnd::Succeeded { note }).await
            }
            Err(RunError::Fatal(message)) => {
                tracing::warn!(job = %claim.job, tenant = %claim.tenant, %message, "job failed");
                let end = JobEnd::Failed { error: &message };
                store.finish_job(claim, end).await
            }
            Err(RunError::Store(StoreError::JobClaimLost { .. })) => {
                tracing::info!(job = %claim.job, "job claim lost; the other runner carries on");
                Ok(())
            }
            Err(RunError::Store(error)) => {
                let message = format!("paused, will resume: {error}");
                tracing::warn!(job = %claim.job, tenant = %claim.tenant, %error, "job paused");
                match store.release_job(claim, &message).await {
                    Ok(()) | Err(StoreError::JobClaimLost { .. }) => Ok(()),
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// Run the job; its note (what the rules said for the job as a whole) when it succeeds.
    async fn run(&self, claim: &JobClaim, record: &JobRecord) -> Result<Option<String>, RunError> {
        let spec: JobSpec = serde_json::from_str(&record.spec).map_err(|e| {
            RunError::Fatal(format!(
                "the job's spec does not decode ({e}); post the request again"
            ))
        })?;
        match spec {
            JobSpec::Event { event } => self.run_event(claim, &event).await,
            JobSpec::Start {
                users,
                source,
                target,
            } => {
                self.run_start(claim, &users, source, target).await?;
                Ok(None)
            }
        }
    }

    /// The fan-out of `event`, resumed at the record's cursor.
    async fn run_event(&self, claim: &JobClaim, event: &Event) -> Result<Option<String>, RunError> {
        let store: &Store = &self.state.store;
        let tenant = claim.tenant.as_str();
        let settings = settings_of(store, tenant).await?;
        let bridge = match event.bridge() {
            Some(id) => Some(store.bridge(tenant, id).await?.ok_or_else(|| {
                RunError::Fatal(format!("bridge {id} of tenant {tenant} no longer exists"))
            })?),
            None => None,
        };
        let mut users = match event.identity() {
            Some(identity) => {
                return Err(RunError::Fatal(format!(
                    "event for {identity} is not a fan-out and is never run as a job; post it again"
                )))
            }
            None => store.users(tenant).await?,
        };
        // One order on every run, each user once (HSCAN may return a field twice).
        users.sort_by(|a, b| a.upn.cmp(&b.upn));
        users.dedup_by(|a, b| a.upn == b.upn);
        let decision = rules::decide(event, &settings, &users, bridge.as_ref());
        // Held until the directory change below is saved: a worker must mint from the directory
        // as the event leaves it, however long the job runs (released at the end).
        self.carry_out_all(claim, &decision.verdicts, event.kind(), FAN_OUT_HOLD_MS)
            .await?;
        // Last: a run that died before this point decides the same verdicts again on resume.
        store
            .put_users_exclusive(tenant, &decision.user_updates)
            .await?
            .map_err(|conflict| RunError::Fatal(conflict.to_string()))?;
        if let Some(bridge) = &decision.bridge_update {
            store.put_bridge(bridge).await?;
        }
        let due_ms =
            Utc::now().timestamp_millis() + crate::events::hold_ms(&self.state.config) as i64;
        let users: Vec<&str> = decision.verdicts.iter().map(|v| v.user.as_str()).collect();
        for chunk in users.chunks(self.options.batch_users.max(1)) {
            store.release_held(tenant, chunk, due_ms).await?;
        }
        Ok(decision.note)
    }

    /// A bulk start: each user decided as a single start is (X1 and X2 refuse, the tenant's
    /// switch is overridden and said so), resumed at the record's cursor. A listed user removed
    /// from the directory since, or outside the tenant's mail domains, is counted Refused with
    /// the reason in their history.
    async fn run_start(
        &self,
        claim: &JobClaim,
        users: &BulkUsers,
        source: SourceMeetingType,
        target: TargetMeetingType,
    ) -> Result<(), RunError> {
        let store: &Store = &self.state.store;
        let tenant = claim.tenant.as_str();
        let settings = settings_of(store, tenant).await?;
        let profiles: Vec<Result<UserProfile, String>> = match users {
            BulkUsers::All => {
                let mut all = store.users(tenant).await?;
                all.sort_by(|a, b| a.upn.cmp(&b.upn));
                all.dedup_by(|a, b| a.upn == b.upn);
                all.into_iter().map(Ok).collect()
            }
            BulkUsers::Listed(upns) => {
                let mut found = Vec::with_capacity(upns.len());
                for upn in upns {
                    found.push(store.user(tenant, upn).await?.ok_or_else(|| upn.clone()));
                }
                found
            }
        };
        let mut verdicts = Vec::with_capacity(profiles.len());
        for profile in profiles {
            let verdict = match profile {
                Ok(user) if store.owns_upn(tenant, &user.upn).await? => {
                    rules::decide_manual(&user, &settings, source, target)
                }
                Ok(user) => refused(
                    &user.upn,
                    &user.user_id,
                    "Tenant boundary",
                    format!(
                        "{} is not in a mail domain of tenant {tenant}; the operator assigns them (mmsctl set-tenant-domains)",
                        user.upn
                    ),
                ),
                Err(upn) => refused(
                    &upn,
                    "",
                    "Directory",
                    format!(
                        "{upn} was removed from the directory after the bulk start was accepted; add the user again (mmsctl set-user) and start them"
                    ),
                ),
            };
            verdicts.push(verdict);
        }
        self.carry_out_all(claim, &verdicts, START_CAUSE, 0).await
    }

    /// Carry out `verdicts` in batches, each user's result recorded once, the cursor advanced
    /// (and the claim renewed) after every batch. A resumed run goes through the list again
    /// from the start and skips the users whose result is recorded: resuming at the cursor's
    /// position would skip a user if the directory lost one of the earlier ones in between.
    async fn carry_out_all(
        &self,
        claim: &JobClaim,
        verdicts: &[Verdict],
        cause: &str,
        delay_ms: u64,
    ) -> Result<(), RunError> {
        let store: &Store = &self.state.store;
        let tenant = claim.tenant.as_str();
        let total = verdicts.len() as u64;
        let claim_ms = self.options.claim.as_millis() as u64;
        let batch = self.options.batch_users.max(1);
        store.advance_job(claim, 0, total, claim_ms).await?;
        for (index, chunk) in verdicts.chunks(batch).enumerate() {
            let names: Vec<&str> = chunk.iter().map(|v| v.user.as_str()).collect();
            let done = store.job_items_done(claim, &names).await?;
            for (verdict, done) in chunk.iter().zip(done) {
                if done {
                    continue;
                }
                let outcome = carry_out(store, tenant, cause, verdict, delay_ms).await?;
                let counter = match outcome.result {
                    TriggerResult::Queued => JobCounter::Queued,
                    TriggerResult::Merged => JobCounter::Merged,
                    TriggerResult::Refused => JobCounter::Refused,
                    TriggerResult::NotTriggered => JobCounter::Skipped,
                };
                store.record_job_item(claim, &verdict.user, counter).await?;
            }
            let cursor = index * batch + chunk.len();
            store
                .advance_job(claim, cursor as u64, total, claim_ms)
                .await?;
        }
        Ok(())
    }
}

/// The job's tenant's settings; a job whose tenant was deleted fails.
async fn settings_of(store: &Store, tenant: &str) -> Result<mms_core::TenantSettings, RunError> {
    store
        .tenant_settings(tenant)
        .await?
        .ok_or_else(|| RunError::Fatal(format!("tenant {tenant} no longer exists")))
}

/// A bulk start's user refused before the rules (outside the tenant's domains, or gone).
fn refused(upn: &str, user_id: &str, exclusion: &'static str, message: String) -> Verdict {
    Verdict {
        user: upn.to_string(),
        user_id: user_id.to_string(),
        rule: "T4",
        kind: VerdictKind::Refused { exclusion, message },
    }
}

/// Longest `Prefer: wait` honoured, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// The job once it has ended, or as last seen after `wait` (the caller answers 202 then). A
/// Redis error while waiting ends the wait with the last record seen: the job exists, and an
/// error reply would make the caller post it a second time.
pub async fn wait_for_end(store: &Store, record: JobRecord, wait: Duration) -> JobRecord {
    let deadline = tokio::time::Instant::now() + wait;
    let mut current = record;
    let mut pause = Duration::from_millis(20);
    while current.state == JobState::Running && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
        match store.job(&current.tenant, &current.id).await {
            Ok(Some(now)) => current = now,
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(job = %current.id, %error, "cannot follow the job; answering with what was seen");
                break;
            }
        }
    }
    current
}

/// Store a job for `spec` on `tenant` and wake the runner.
pub async fn submit(
    state: &ApiState,
    tenant: &str,
    spec: &JobSpec,
) -> Result<JobRecord, StoreError> {
    let text = serde_json::to_string(spec).map_err(|source| StoreError::Encode {
        what: format!("job spec {}", spec.kind()),
        source,
    })?;
    let record = state.store.create_job(tenant, &text).await?;
    state.job_wake.notify_one();
    Ok(record)
}

/// The job's id as a typed value, from a path segment.
pub fn job_id(segment: &str) -> JobId {
    JobId(segment.to_string())
}
