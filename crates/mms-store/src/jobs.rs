//! Background jobs: work too big for one HTTP request (a tenant-wide fan-out to 100,000 users)
//! kept in Redis so that it survives the process that runs it.
//!
//! A job is one hash under the tenant's hash tag (`Keys::job`): an opaque spec (the control plane
//! decides what it means), its state, a cursor (how many of its items are done, moved after each
//! batch), exact counters, times, the last error and the runner's claim. Every step is one Lua
//! script under `lua/jobs/`:
//!
//! - `claim.lua`: a runner takes a Running job until an expiry; another runner's live claim
//!   refuses it, so two API processes never run one job at once, and an expired claim (its
//!   process died) is taken over.
//! - `record.lua`: one item's result, counted once (`HSETNX` on the job's outcome hash): a batch
//!   re-run after a crash does not count a user twice.
//! - `advance.lua`: the cursor after a batch, the claim extended.
//! - `finish.lua` / `release.lua`: the end, or a pause after a transient error.
//!
//! The recording scripts are fenced by the claim's owner: a runner that lost its claim gets
//! [`StoreError::JobClaimLost`] and stops. The unfinished jobs are listed in one global set
//! (`Keys::open_jobs`) that runners poll after a restart.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use redis::{AsyncCommands, Script, ScriptInvocation};
use serde::{Deserialize, Serialize};

use crate::script::{invoke, lua_script, Fenced, LuaCall};
use crate::{Keys, Store, StoreError};

static CREATE: LazyLock<Script> = lua_script!("jobs/create.lua");
static CLAIM: LazyLock<Script> = lua_script!("jobs/claim.lua");
static RECORD: LazyLock<Script> = lua_script!("jobs/record.lua");
static ADVANCE: LazyLock<Script> = lua_script!("jobs/advance.lua");
static FINISH: LazyLock<Script> = lua_script!("jobs/finish.lua");
static RELEASE: LazyLock<Script> = lua_script!("jobs/release.lua");

/// A job's id: a UUID (v4), unique across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// A fresh random id.
    pub fn new() -> Self {
        JobId(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Not finished: being run, or waiting for a runner (after a restart or a transient error).
    Running,
    Succeeded,
    /// Stopped for good; `last_error` says why.
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "Running",
            JobState::Succeeded => "Succeeded",
            JobState::Failed => "Failed",
        }
    }

    fn parse(text: &str) -> Option<JobState> {
        match text {
            "Running" => Some(JobState::Running),
            "Succeeded" => Some(JobState::Succeeded),
            "Failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

/// The counter an item's result adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCounter {
    /// A new request was queued.
    Queued,
    /// Merged into the user's request already queued.
    Merged,
    /// Nothing to do for this item (the rules say nothing migrates).
    Skipped,
    /// An exclusion refused it.
    Refused,
}

impl JobCounter {
    fn field(self) -> &'static str {
        match self {
            JobCounter::Queued => "queued",
            JobCounter::Merged => "merged",
            JobCounter::Skipped => "skipped",
            JobCounter::Refused => "refused",
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub tenant: String,
    pub id: JobId,
    /// What to do, as the creator encoded it (the control plane's JSON).
    pub spec: String,
    pub state: JobState,
    /// Items in the job (0 until the runner has counted them).
    pub total: u64,
    /// Items done, in the runner's order: a resumed job starts here.
    pub cursor: u64,
    pub queued: u64,
    pub merged: u64,
    pub skipped: u64,
    pub refused: u64,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// What the job's rules said once for all its users (e.g. T2-no: nothing migrates).
    pub note: Option<String>,
}

/// How a job ended, as [`Store::finish_job`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd<'a> {
    /// Every item carried out; `note` is what the rules said for the job as a whole.
    Succeeded { note: Option<&'a str> },
    /// Stopped for good; the error says why and what to do.
    Failed { error: &'a str },
}

impl JobRecord {
    fn from_hash(
        key: &str,
        tenant: &str,
        mut fields: HashMap<String, String>,
    ) -> Result<JobRecord, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "job {key}: {what}; inspect it with `redis-cli HGETALL {key}` and delete it if it cannot be repaired"
            ))
        };
        let mut take = |name: &str| fields.remove(name);
        let number = |value: Option<String>, name: &str| -> Result<u64, StoreError> {
            value
                .unwrap_or_else(|| "0".into())
                .parse()
                .map_err(|_| corrupt(&format!("field {name} is not a count")))
        };
        let time =
            |value: Option<String>, name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
                match value {
                    None => Ok(None),
                    Some(text) => text
                        .parse::<i64>()
                        .ok()
                        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                        .map(Some)
                        .ok_or_else(|| corrupt(&format!("field {name} is not a time in ms"))),
                }
            };
        let id = take("id").ok_or_else(|| corrupt("no id"))?;
        let spec = take("spec").ok_or_else(|| corrupt("no spec"))?;
        let state = take("state")
            .as_deref()
            .and_then(JobState::parse)
            .ok_or_else(|| corrupt("state is not Running, Succeeded or Failed"))?;
        Ok(JobRecord {
            tenant: tenant.to_string(),
            id: JobId(id),
            spec,
            state,
            total: number(take("total"), "total")?,
            cursor: number(take("cursor"), "cursor")?,
            queued: number(take("queued"), "queued")?,
            merged: number(take("merged"), "merged")?,
            skipped: number(take("skipped"), "skipped")?,
            refused: number(take("refused"), "refused")?,
            created: time(take("created_ms"), "created_ms")?
                .ok_or_else(|| corrupt("no created_ms"))?,
            started: time(take("started_ms"), "started_ms")?,
            finished: time(take("finished_ms"), "finished_ms")?,
            last_error: take("last_error"),
            note: take("note"),
        })
    }
}

/// A runner's claim on one job: who holds it (the fencing value of the recording scripts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaim {
    pub tenant: String,
    pub job: JobId,
    pub owner: String,
}

impl JobClaim {
    fn lost(&self) -> StoreError {
        StoreError::JobClaimLost {
            tenant: self.tenant.clone(),
            job: self.job.0.clone(),
        }
    }
}

/// `lua/jobs/create.lua`.
struct Create<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    job: &'a JobId,
    spec: &'a str,
    now_ms: i64,
}

impl LuaCall for Create<'_> {
    type Reply = i64;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = CREATE.prepare_invoke();
        call.key(self.keys.job(self.tenant, &self.job.0))
            .key(self.keys.jobs(self.tenant))
            .arg(&self.job.0)
            .arg(self.spec)
            .arg(self.now_ms);
        call
    }
}

/// `lua/jobs/claim.lua`.
struct Claim<'a> {
    keys: &'a Keys,
    claim: &'a JobClaim,
    now_ms: i64,
    until_ms: i64,
}

impl LuaCall for Claim<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = CLAIM.prepare_invoke();
        call.key(self.keys.job(&self.claim.tenant, &self.claim.job.0))
            .arg(&self.claim.owner)
            .arg(self.now_ms)
            .arg(self.until_ms);
        call
    }
}

/// `lua/jobs/record.lua`.
struct Record<'a> {
    keys: &'a Keys,
    claim: &'a JobClaim,
    item: &'a str,
    counter: JobCounter,
}

impl LuaCall for Record<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let (tenant, job) = (&self.claim.tenant, &self.claim.job.0);
        let mut call = RECORD.prepare_invoke();
        call.key(self.keys.job(tenant, job))
            .key(self.keys.job_outcomes(tenant, job))
            .arg(&self.claim.owner)
            .arg(self.item)
            .arg(self.counter.field());
        call
    }
}

/// `lua/jobs/advance.lua`.
struct Advance<'a> {
    keys: &'a Keys,
    claim: &'a JobClaim,
    cursor: u64,
    total: u64,
    until_ms: i64,
}

impl LuaCall for Advance<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = ADVANCE.prepare_invoke();
        call.key(self.keys.job(&self.claim.tenant, &self.claim.job.0))
            .arg(&self.claim.owner)
            .arg(self.cursor)
            .arg(self.total)
            .arg(self.until_ms);
        call
    }
}

/// `lua/jobs/finish.lua`.
struct Finish<'a> {
    keys: &'a Keys,
    claim: &'a JobClaim,
    end: JobEnd<'a>,
    now_ms: i64,
    retention_ms: u64,
}

impl LuaCall for Finish<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let (state, error, note) = match self.end {
            JobEnd::Succeeded { note } => (JobState::Succeeded, "", note.unwrap_or("")),
            JobEnd::Failed { error } => (JobState::Failed, error, ""),
        };
        let (tenant, job) = (&self.claim.tenant, &self.claim.job.0);
        let mut call = FINISH.prepare_invoke();
        call.key(self.keys.job(tenant, job))
            .key(self.keys.job_outcomes(tenant, job))
            .key(self.keys.jobs(tenant))
            .arg(&self.claim.owner)
            .arg(state.as_str())
            .arg(self.now_ms)
            .arg(error)
            .arg(note)
            .arg(self.retention_ms);
        call
    }
}

/// `lua/jobs/release.lua`.
struct Release<'a> {
    keys: &'a Keys,
    claim: &'a JobClaim,
    error: &'a str,
}

impl LuaCall for Release<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = RELEASE.prepare_invoke();
        call.key(self.keys.job(&self.claim.tenant, &self.claim.job.0))
            .arg(&self.claim.owner)
            .arg(self.error);
        call
    }
}

/// Member of [`Keys::open_jobs`]: `<tenant>:<job id>` (tenant ids hold no `:`; see `validate.rs`).
fn open_member(tenant: &str, job: &JobId) -> String {
    format!("{tenant}:{job}")
}

fn or_lost(fenced: Fenced, claim: &JobClaim) -> Result<(), StoreError> {
    match fenced {
        Fenced::Written => Ok(()),
        Fenced::Refused => Err(claim.lost()),
    }
}

impl Store {
    /// Store a new Running job of `tenant` with `spec` and list it as open, so a runner (this
    /// process's or another's) picks it up.
    pub async fn create_job(&self, tenant: &str, spec: &str) -> Result<JobRecord, StoreError> {
        let job = JobId::new();
        let now_ms = Utc::now().timestamp_millis();
        let mut conn = self.conn.clone();
        let created = invoke(
            &Create {
                keys: &self.keys,
                tenant,
                job: &job,
                spec,
                now_ms,
            },
            &mut conn,
        )
        .await?;
        if created != 1 {
            return Err(StoreError::Invalid(format!(
                "job id {job} of tenant {tenant} exists already"
            )));
        }
        let _: () = conn
            .sadd(self.keys.open_jobs(), open_member(tenant, &job))
            .await?;
        self.job(tenant, &job).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("job {job} vanished right after its creation"))
        })
    }

    /// One job of `tenant`, if it exists.
    pub async fn job(&self, tenant: &str, job: &JobId) -> Result<Option<JobRecord>, StoreError> {
        let key = self.keys.job(tenant, &job.0);
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn.hgetall(&key).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        JobRecord::from_hash(&key, tenant, fields).map(Some)
    }

    /// The jobs of `tenant`, newest first: `limit` of them after skipping `offset`.
    pub async fn jobs(
        &self,
        tenant: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrevrange(
                self.keys.jobs(tenant),
                offset as isize,
                (offset + limit - 1) as isize,
            )
            .await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            // A job removed between the two reads is left out, not reported as an error.
            if let Some(job) = self.job(tenant, &JobId(id)).await? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// The unfinished jobs of every tenant, as `(tenant, job)`.
    pub async fn open_jobs(&self) -> Result<Vec<(String, JobId)>, StoreError> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn.smembers(self.keys.open_jobs()).await?;
        Ok(members
            .into_iter()
            .filter_map(|member| {
                member
                    .rsplit_once(':')
                    .map(|(tenant, job)| (tenant.to_string(), JobId(job.to_string())))
            })
            .collect())
    }

    /// Claim `job` for `owner` for `claim_ms`; `None` when it is finished or another runner's
    /// claim holds. Claiming a job one holds already renews it.
    pub async fn claim_job(
        &self,
        tenant: &str,
        job: &JobId,
        owner: &str,
        claim_ms: u64,
    ) -> Result<Option<JobClaim>, StoreError> {
        let claim = JobClaim {
            tenant: tenant.to_string(),
            job: job.clone(),
            owner: owner.to_string(),
        };
        let now_ms = Utc::now().timestamp_millis();
        let fenced = invoke(
            &Claim {
                keys: &self.keys,
                claim: &claim,
                now_ms,
                until_ms: now_ms + claim_ms as i64,
            },
            &mut self.conn.clone(),
        )
        .await?;
        Ok((fenced == Fenced::Written).then_some(claim))
    }

    /// Which of `items` the job has recorded a result for already (in the same order).
    pub async fn job_items_done(
        &self,
        claim: &JobClaim,
        items: &[&str],
    ) -> Result<Vec<bool>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let found: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.job_outcomes(&claim.tenant, &claim.job.0))
            .arg(items)
            .query_async(&mut conn)
            .await?;
        Ok(found.into_iter().map(|f| f.is_some()).collect())
    }

    /// Record `item`'s result under `counter`, once: recording an item again changes nothing.
    pub async fn record_job_item(
        &self,
        claim: &JobClaim,
        item: &str,
        counter: JobCounter,
    ) -> Result<(), StoreError> {
        let fenced = invoke(
            &Record {
                keys: &self.keys,
                claim,
                item,
                counter,
            },
            &mut self.conn.clone(),
        )
        .await?;
        or_lost(fenced, claim)
    }

    /// Move the job's cursor to `cursor` of `total` items and extend the claim by `claim_ms`.
    pub async fn advance_job(
        &self,
        claim: &JobClaim,
        cursor: u64,
        total: u64,
        claim_ms: u64,
    ) -> Result<(), StoreError> {
        let fenced = invoke(
            &Advance {
                keys: &self.keys,
                claim,
                cursor,
                total,
                until_ms: Utc::now().timestamp_millis() + claim_ms as i64,
            },
            &mut self.conn.clone(),
        )
        .await?;
        or_lost(fenced, claim)
    }

    /// End the job as `end` says (its error or its note kept on the record) and take it off the
    /// open list. The ended job is kept for `retention.journal_days`, then expires with its
    /// per-user outcomes and leaves the tenant's job list.
    pub async fn finish_job(&self, claim: &JobClaim, end: JobEnd<'_>) -> Result<(), StoreError> {
        let fenced = invoke(
            &Finish {
                keys: &self.keys,
                claim,
                end,
                now_ms: Utc::now().timestamp_millis(),
                retention_ms: self.retention_durations().journal_ms,
            },
            &mut self.conn.clone(),
        )
        .await?;
        or_lost(fenced, claim)?;
        let _: () = self
            .conn
            .clone()
            .srem(
                self.keys.open_jobs(),
                open_member(&claim.tenant, &claim.job),
            )
            .await?;
        Ok(())
    }

    /// Give the claim up after a transient failure (recorded as the job's last error); the job
    /// stays open and is resumed from its cursor by the next runner round.
    pub async fn release_job(&self, claim: &JobClaim, error: &str) -> Result<(), StoreError> {
        let fenced = invoke(
            &Release {
                keys: &self.keys,
                claim,
                error,
            },
            &mut self.conn.clone(),
        )
        .await?;
        or_lost(fenced, claim)
    }

    /// Take a job whose record is gone off the open list (nothing left to run).
    pub async fn forget_open_job(&self, tenant: &str, job: &JobId) -> Result<(), StoreError> {
        let _: () = self
            .conn
            .clone()
            .srem(self.keys.open_jobs(), open_member(tenant, job))
            .await?;
        Ok(())
    }
}
