//! Progress of migrations in Redis: the status rows admins read (M2), the per-meeting journal that
//! makes a migration resumable (D5), and the per-user ledger of sent updates that makes sure no
//! attendee gets the same update twice.
//!
//! Every write a migration makes runs in one Lua script that first checks the writer's lease token
//! ([`crate::lease`], D4): a stale worker gets [`StoreError::LeaseLost`] and nothing is written.
//! The queue side (Pending rows, holds, cancellation) writes rows without a lease through
//! [`Store::put_status_unfenced`], which refuses to overwrite a row a live worker is running.
//!
//! Status rows are JSON with the vendor's field names; two sorted sets index them by creation
//! time, one per tenant and one per user, for listing newest first.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mms_core::{MigrationState, MigrationStatus, MigrationType};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::lease::{Lease, FENCE_CHECK_LUA};
use crate::{Store, StoreError};

/// Status rows fetched per MGET when listing a tenant's migrations.
const LIST_BATCH: usize = 500;

/// What happened to one meeting in one migration; the journal's record, keyed by meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeetingStage {
    /// Not to be migrated, by rule (not the organizer, past, no online block of the source type).
    Skipped,
    /// Already carried the target coordinates: nothing to save or send.
    Unchanged,
    /// About to be saved: journaled before the PUT, so that a resumed run that finds the meeting
    /// already rewritten knows the save was ours and the update still has to be sent.
    Saving,
    /// Rewritten and saved in the mailbox; the update is not sent yet.
    Saved,
    /// Saved and the update accepted by SMTP: done.
    Sent,
    /// Could not be migrated; `reason` says why.
    Failed,
}

/// The journal record of one meeting: on resume, a migration skips meetings already `Sent`,
/// `Skipped` or `Unchanged`, and for `Saved` ones re-sends the update with the recorded message id
/// (which the sent ledger then dedups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JournalEntry {
    pub stage: MeetingStage,
    /// SEQUENCE of the saved meeting.
    pub sequence: u32,
    /// Message-ID of the iMIP update, fixed before sending so that a resend is recognisable.
    pub message_id: Option<String>,
    /// ETag of the saved meeting (the If-Match of a later save).
    pub etag: Option<String>,
    pub reason: String,
    /// UID and SUMMARY of the meeting, for the status's per-meeting list.
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub summary: String,
    /// Attendees the update went to.
    #[serde(default)]
    pub recipients: u32,
}

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

/// Lua fragment: `status_put(status, statuses, user_migrations, json, create_ms, correlation)`
/// stores a row and indexes it by creation time (idempotent).
pub(crate) const STATUS_PUT_LUA: &str = r#"
local function status_put(status_key, statuses_key, user_key, json, create_ms, correlation)
  redis.call('SET', status_key, json)
  redis.call('ZADD', statuses_key, create_ms, correlation)
  redis.call('ZADD', user_key, create_ms, correlation)
end
"#;

/// How long a migration's journal is kept once the migration is final. The journal only matters
/// to resume a migration that is not final; afterwards it is kept a while for support.
pub const JOURNAL_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a user's sent ledger is kept after its last entry. Resends of one (UID, SEQUENCE) can
/// only happen while one migration retries (24 hours at most); months is ample.
pub const SENT_LEDGER_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// KEYS: lease, status, statuses, user migrations, journal. ARGV: lease value, json, create ms,
/// correlation, journal ttl ms (0: keep, the migration is not final).
static WRITE_STATUS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE_CHECK_LUA}{STATUS_PUT_LUA}
if not fence_ok(KEYS[1], ARGV[1]) then return 0 end
status_put(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[5], ARGV[5]) end
return 1"
    ))
});

/// KEYS: lease, status, statuses, user migrations. ARGV: json, create ms, correlation.
/// Returns 0 (and writes nothing) when the stored row is InProgress and the user's lease is held.
static PUT_STATUS_UNFENCED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{STATUS_PUT_LUA}
local old = redis.call('GET', KEYS[2])
if old and redis.call('EXISTS', KEYS[1]) == 1 then
  local ok, row = pcall(cjson.decode, old)
  if ok and type(row) == 'table' and row.State == 'InProgress' then return 0 end
end
status_put(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3])
return 1"
    ))
});

/// KEYS: lease, journal. ARGV: lease value, meeting key, json.
static RECORD_MEETING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE_CHECK_LUA}
if not fence_ok(KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1"
    ))
});

/// KEYS: lease, journal, sent ledger. ARGV: lease value, meeting key, json, message id, now ms,
/// ledger ttl ms.
static RECORD_SENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE_CHECK_LUA}
if not fence_ok(KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return 1"
    ))
});

pub(crate) fn status_json(status: &MigrationStatus) -> Result<String, StoreError> {
    serde_json::to_string(status)
        .map_err(|e| StoreError::Invalid(format!("status row does not serialize: {e}")))
}

fn parse_status(key: &str, text: &str) -> Result<MigrationStatus, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "{key}: {e}; inspect it with `redis-cli GET '{key}'` and fix or delete it"
        ))
    })
}

fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        user: lease.user.clone(),
        token: lease.token,
    }
}

impl Store {
    /// Store a status row under the lease; `Err(LeaseLost)` (and nothing written) when the token is
    /// stale.
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
        let (tenant, correlation) = (&status.tenant, &status.correlation_id);
        let mut conn = self.conn.clone();
        let written: i64 = WRITE_STATUS
            .key(self.keys.lease(tenant, &lease.user))
            .key(self.keys.status(tenant, correlation))
            .key(self.keys.statuses(tenant))
            .key(self.keys.user_migrations(tenant, &lease.user))
            .key(self.keys.journal(tenant, correlation))
            .arg(lease.value())
            .arg(status_json(status)?)
            .arg(status.create_date.timestamp_millis())
            .arg(correlation)
            .arg(if status.state.is_final() {
                JOURNAL_RETENTION.as_millis() as u64
            } else {
                0
            })
            .invoke_async(&mut conn)
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(lease_lost(lease))
        }
    }

    /// Store a status row without a lease, for the queue side: Pending rows, holds by a disabled
    /// tenant, cancellation. Refuses `InProgress` rows (those belong to the lease holder) and
    /// refuses to overwrite a row that is InProgress while the user's lease is held.
    pub async fn put_status_unfenced(&self, status: &MigrationStatus) -> Result<(), StoreError> {
        let (tenant, user, correlation) = (
            &status.tenant,
            &status.user_principal_name,
            &status.correlation_id,
        );
        if status.state == MigrationState::InProgress {
            return Err(StoreError::Invalid(format!(
                "status {correlation} is InProgress: only the lease holder writes InProgress rows (use write_status)"
            )));
        }
        let mut conn = self.conn.clone();
        let written: i64 = PUT_STATUS_UNFENCED
            .key(self.keys.lease(tenant, user))
            .key(self.keys.status(tenant, correlation))
            .key(self.keys.statuses(tenant))
            .key(self.keys.user_migrations(tenant, user))
            .arg(status_json(status)?)
            .arg(status.create_date.timestamp_millis())
            .arg(correlation)
            .invoke_async(&mut conn)
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(StoreError::InProgress {
                user: user.clone(),
                correlation: correlation.clone(),
            })
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
    async fn statuses_of(
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

    /// The journal of one migration: meeting key -> what was done to it.
    pub async fn journal(
        &self,
        tenant: &str,
        correlation: &str,
    ) -> Result<HashMap<String, JournalEntry>, StoreError> {
        let key = self.keys.journal(tenant, correlation);
        let mut conn = self.conn.clone();
        let raw: HashMap<String, String> = conn.hgetall(&key).await?;
        raw.into_iter()
            .map(|(meeting, text)| {
                serde_json::from_str(&text).map(|entry| (meeting.clone(), entry)).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "journal {key} field {meeting}: {e}; delete the field (`redis-cli HDEL`) so the meeting is redone"
                    ))
                })
            })
            .collect()
    }

    /// Record what was done to one meeting, under the lease.
    pub async fn record_meeting(
        &self,
        lease: &Lease,
        correlation: &str,
        meeting_key: &str,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let written: i64 = RECORD_MEETING
            .key(self.keys.lease(&lease.tenant, &lease.user))
            .key(self.keys.journal(&lease.tenant, correlation))
            .arg(lease.value())
            .arg(meeting_key)
            .arg(journal_json(entry)?)
            .invoke_async(&mut conn)
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(lease_lost(lease))
        }
    }

    /// Journal `Sent` for the meeting AND add its message id to the user's sent ledger, atomically,
    /// fenced. `entry` must be a `Sent` record carrying the message id.
    pub async fn record_sent(
        &self,
        lease: &Lease,
        correlation: &str,
        meeting_key: &str,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        let Some(message_id) = entry
            .message_id
            .as_deref()
            .filter(|_| entry.stage == MeetingStage::Sent)
        else {
            return Err(StoreError::Invalid(format!(
                "record_sent for meeting {meeting_key} needs a Sent entry with its message id, got {:?} with message id {:?}",
                entry.stage, entry.message_id
            )));
        };
        let mut conn = self.conn.clone();
        let written: i64 = RECORD_SENT
            .key(self.keys.lease(&lease.tenant, &lease.user))
            .key(self.keys.journal(&lease.tenant, correlation))
            .key(self.keys.sent(&lease.tenant, &lease.user))
            .arg(lease.value())
            .arg(meeting_key)
            .arg(journal_json(entry)?)
            .arg(message_id)
            .arg(Utc::now().timestamp_millis())
            .arg(SENT_LEDGER_RETENTION.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(lease_lost(lease))
        }
    }

    /// Whether an update with this Message-ID was already accepted by SMTP for the user.
    pub async fn was_sent(
        &self,
        tenant: &str,
        user: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn
            .hexists(self.keys.sent(tenant, user), message_id)
            .await?)
    }
}

fn journal_json(entry: &JournalEntry) -> Result<String, StoreError> {
    serde_json::to_string(entry)
        .map_err(|e| StoreError::Invalid(format!("journal entry does not serialize: {e}")))
}
