//! The status rows admins read (M2): one JSON row per migration with the vendor's field names,
//! indexed by creation time in two sorted sets (one per tenant, one per user) for listing newest
//! first. The per-meeting journal, pending updates and sent ledger are in [`crate::journal`].
//!
//! A migration writes its row in one Lua script that first checks the writer's lease token
//! ([`crate::lease`], D4): a stale worker gets [`StoreError::LeaseLost`] and nothing is written.
//! The queue side (Pending rows, holds, cancellation) writes rows without a lease through
//! [`Store::put_status_unfenced`], which refuses to overwrite a row a live worker is running.
//! Both scripts move the tenant's summary counters ([`crate::summary`]) with the row, and a row
//! is stored without its per-meeting list, so rewriting it after every page costs the same
//! whatever the mailbox size (issue 11.4).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use mms_core::{MigrationState, MigrationStatus, MigrationType};
use redis::{AsyncCommands, Script, ScriptInvocation};

pub use crate::journal::{JournalEntry, MeetingStage};
use crate::lease::Lease;
use crate::script::{invoke, lua_script, Fenced, LuaCall};
use crate::{Keys, Store, StoreError};

/// Status rows fetched per MGET when listing a tenant's migrations.
pub(crate) const LIST_BATCH: usize = 500;

/// Which migrations [`Store::list_statuses`] returns (the filters of `Get-CsMeetingMigrationStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilter {
    pub state: Option<MigrationState>,
    pub migration_type: Option<MigrationType>,
    /// Created at or after.
    pub start: Option<DateTime<Utc>>,
    /// Created at or before.
    pub end: Option<DateTime<Utc>>,
    /// Matching rows to skip (newest first) before collecting: the page offset.
    pub offset: usize,
    /// At most this many rows; 0 means all.
    pub limit: usize,
}

impl StatusFilter {
    fn matches(&self, status: &MigrationStatus) -> bool {
        self.state.is_none_or(|state| status.state == state)
            && self
                .migration_type
                .is_none_or(|kind| status.migration_type == kind)
    }
}

/// Lua fragment `status_put(status, statuses, user_migrations, json, create_ms, correlation,
/// summary)` and `status_replace(status, json, summary)` (`lua/lib/status.lua`): store a row,
/// index it and move the tenant's summary counters with it, for scripts that create rows in the
/// same atomic step as another change (the queue's). Passing the summary key is optional only
/// for scripts written before it existed.
pub(crate) const STATUS_PUT_LUA: &str = include_str!("../lua/lib/status.lua");

static WRITE_STATUS: LazyLock<Script> = lua_script!(
    "lib/fence.lua",
    "lib/status.lua",
    "progress/write_status.lua"
);
static PUT_STATUS_UNFENCED: LazyLock<Script> =
    lua_script!("lib/status.lua", "progress/put_status_unfenced.lua");

/// A status row as stored: without the per-meeting list (the journal holds each meeting's
/// outcome, paged when read), so that rewriting the row after every page costs the same for 10
/// meetings and for 50,000 (issue 11.4).
pub(crate) struct StoredRow<'a> {
    status: &'a MigrationStatus,
    json: String,
}

impl<'a> StoredRow<'a> {
    pub(crate) fn new(status: &'a MigrationStatus) -> Result<Self, StoreError> {
        let json = if status.meetings.is_empty() {
            status_json(status)?
        } else {
            let mut row = status.clone();
            row.meetings = Vec::new();
            status_json(&row)?
        };
        Ok(StoredRow { status, json })
    }

    fn tenant(&self) -> &str {
        &self.status.tenant
    }

    fn correlation(&self) -> &str {
        &self.status.correlation_id
    }

    fn create_ms(&self) -> i64 {
        self.status.create_date.timestamp_millis()
    }
}

/// `lua/progress/write_status.lua`: the row under the lease, journal expiry once final.
struct WriteStatus<'a> {
    keys: &'a Keys,
    lease: &'a Lease,
    row: StoredRow<'a>,
    /// 0 while the migration runs: its journal is kept for a resume.
    journal_ttl_ms: u64,
}

impl LuaCall for WriteStatus<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let (tenant, correlation) = (self.row.tenant(), self.row.correlation());
        let mut call = WRITE_STATUS.prepare_invoke();
        call.key(self.keys.lease(tenant, &self.lease.user))
            .key(self.keys.status(tenant, correlation))
            .key(self.keys.statuses(tenant))
            .key(self.keys.user_migrations(tenant, &self.lease.user))
            .key(self.keys.journal(tenant, correlation))
            .key(self.keys.counts(tenant, correlation))
            .key(self.keys.summary(tenant))
            .key(self.keys.pre_images(tenant, correlation))
            .arg(self.lease.value())
            .arg(&self.row.json)
            .arg(self.row.create_ms())
            .arg(correlation)
            .arg(self.journal_ttl_ms);
        call
    }
}

/// `lua/progress/put_status_unfenced.lua`: the row without a lease unless a live worker runs the
/// migration (then 0, nothing written).
struct PutStatusUnfenced<'a> {
    keys: &'a Keys,
    row: StoredRow<'a>,
    /// 0 unless the row is final.
    journal_ttl_ms: u64,
}

impl LuaCall for PutStatusUnfenced<'_> {
    type Reply = i64;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let (tenant, correlation) = (self.row.tenant(), self.row.correlation());
        let user = &self.row.status.user_principal_name;
        let mut call = PUT_STATUS_UNFENCED.prepare_invoke();
        call.key(self.keys.lease(tenant, user))
            .key(self.keys.status(tenant, correlation))
            .key(self.keys.statuses(tenant))
            .key(self.keys.user_migrations(tenant, user))
            .key(self.keys.journal(tenant, correlation))
            .key(self.keys.counts(tenant, correlation))
            .key(self.keys.summary(tenant))
            .key(self.keys.pre_images(tenant, correlation))
            .arg(&self.row.json)
            .arg(self.row.create_ms())
            .arg(correlation)
            .arg(self.journal_ttl_ms);
        call
    }
}

pub(crate) fn status_json(status: &MigrationStatus) -> Result<String, StoreError> {
    serde_json::to_string(status).map_err(|e| StoreError::encode("status row", e))
}

pub(crate) fn parse_status(key: &str, text: &str) -> Result<MigrationStatus, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::corrupt(
            key,
            format!("inspect it with `redis-cli GET '{key}'` and fix or delete it"),
            e,
        )
    })
}

impl Store {
    /// Store a status row under the lease (without its per-meeting list: see [`StoredRow`]);
    /// `Err(LeaseLost)` (and nothing written) when the token is stale. The tenant's summary
    /// counters move in the same script; a final row starts its journal's retention and may trim
    /// the user's oldest final rows (`retention.status_rows_per_user`).
    pub async fn write_status(
        &self,
        lease: &Lease,
        status: &MigrationStatus,
    ) -> Result<(), StoreError> {
        if status.tenant != lease.tenant || status.user_principal_name != lease.user {
            return Err(StoreError::Invalid(format!(
                "status {} belongs to {}/{} but the lease is on {}/{}: write a user's status under that user's lease",
                status.correlation_id, status.tenant, status.user_principal_name, lease.tenant, lease.user
            )));
        }
        let call = WriteStatus {
            keys: &self.keys,
            lease,
            row: StoredRow::new(status)?,
            journal_ttl_ms: self.journal_ttl_ms(status.state),
        };
        invoke(&call, &mut self.conn.clone())
            .await?
            .or_lease_lost(lease)?;
        self.after_row_written(status).await;
        Ok(())
    }

    /// Store a status row without a lease, for the queue side: Pending rows, holds by a disabled
    /// tenant, cancellation. Refuses `InProgress` rows (those belong to the lease holder) and
    /// refuses to overwrite a row that is InProgress while the user's lease is held. Summary
    /// counters and retention as for [`Store::write_status`].
    pub async fn put_status_unfenced(&self, status: &MigrationStatus) -> Result<(), StoreError> {
        if status.state == MigrationState::InProgress {
            return Err(StoreError::Invalid(format!(
                "status {} is InProgress: only the lease holder writes InProgress rows (use write_status)",
                status.correlation_id
            )));
        }
        let call = PutStatusUnfenced {
            keys: &self.keys,
            row: StoredRow::new(status)?,
            journal_ttl_ms: self.journal_ttl_ms(status.state),
        };
        if invoke(&call, &mut self.conn.clone()).await? != 1 {
            return Err(StoreError::InProgress {
                user: status.user_principal_name.clone(),
                correlation: status.correlation_id.clone(),
            });
        }
        self.after_row_written(status).await;
        Ok(())
    }

    /// The journal's retention for a row in `state`: none (0) while the migration runs.
    fn journal_ttl_ms(&self, state: MigrationState) -> u64 {
        if state.is_final() {
            self.retention_durations().journal_ms
        } else {
            0
        }
    }

    /// Once a row is final, keep the user's rows within `retention.status_rows_per_user`. The row
    /// is written already, so a failed trim does not fail the write (the caller would redo a
    /// finished migration): it is logged, and the user's next final row trims again.
    async fn after_row_written(&self, status: &MigrationStatus) {
        if status.state.is_final() {
            let (tenant, user) = (&status.tenant, &status.user_principal_name);
            if let Err(error) = self.trim_status_rows(tenant, user).await {
                tracing::warn!(%error, tenant, user, "trimming old status rows failed; the next final row retries");
            }
        }
    }

    /// One migration's status row.
    pub async fn status(
        &self,
        tenant: &str,
        correlation: &str,
    ) -> Result<Option<MigrationStatus>, StoreError> {
        let key = self.keys.status(tenant, correlation);
        let mut conn = self.conn.clone();
        let text: Option<String> = conn.get(&key).await?;
        text.map(|text| parse_status(&key, &text)).transpose()
    }

    /// A user's migrations, newest first.
    pub async fn user_statuses(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<Vec<MigrationStatus>, StoreError> {
        let mut conn = self.conn.clone();
        let correlations: Vec<String> = conn
            .zrevrange(self.keys.user_migrations(tenant, user), 0, -1)
            .await?;
        self.statuses_of(tenant, &correlations).await
    }

    /// Every migration of a tenant matching `filter`, newest first, one page.
    pub async fn list_statuses(
        &self,
        tenant: &str,
        filter: &StatusFilter,
    ) -> Result<Vec<MigrationStatus>, StoreError> {
        let max = filter
            .end
            .map_or("+inf".to_string(), |end| end.timestamp_millis().to_string());
        let min = filter.start.map_or("-inf".to_string(), |start| {
            start.timestamp_millis().to_string()
        });
        let index = self.keys.statuses(tenant);
        let mut conn = self.conn.clone();
        let mut page = Vec::new();
        let mut to_skip = filter.offset;
        let mut scanned = 0;
        loop {
            let correlations: Vec<String> = conn
                .zrevrangebyscore_limit(&index, &max, &min, scanned as isize, LIST_BATCH as isize)
                .await?;
            scanned += correlations.len();
            for status in self.statuses_of(tenant, &correlations).await? {
                if !filter.matches(&status) {
                    continue;
                }
                if to_skip > 0 {
                    to_skip -= 1;
                    continue;
                }
                page.push(status);
                if filter.limit != 0 && page.len() == filter.limit {
                    return Ok(page);
                }
            }
            if correlations.len() < LIST_BATCH {
                return Ok(page);
            }
        }
    }

    /// The rows of `correlations`, in that order; rows deleted since they were indexed are left out.
    pub(crate) async fn statuses_of(
        &self,
        tenant: &str,
        correlations: &[String],
    ) -> Result<Vec<MigrationStatus>, StoreError> {
        if correlations.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = correlations
            .iter()
            .map(|c| self.keys.status(tenant, c))
            .collect();
        let mut conn = self.conn.clone();
        // MGET with one key returns a bare value in redis-rs's typed API; the explicit command keeps
        // the reply an array whatever the count.
        let texts: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        keys.iter()
            .zip(texts)
            .filter_map(|(key, text)| text.map(|text| parse_status(key, &text)))
            .collect()
    }
}
