//! Retention (issue 11.9): how long the store keeps what migrations leave behind, so that Redis
//! memory per user is bounded. The values come from `[retention]` of the configuration
//! ([`RetentionConfig`]) through [`Store::with_retention`]:
//!
//! - a final migration's journal, journal counters and pre-images (what an undo needs) expire
//!   after `journal_days`;
//! - a user's sent ledger expires `sent_ledger_days` after its last entry;
//! - a user's history keeps its last `history_events` events;
//! - a user keeps at most `status_rows_per_user` status rows: when a row becomes final, the
//!   oldest final rows beyond that are removed with their journals, counters and pre-images
//!   (`lua/retention/trim_user_rows.lua`, idempotent; live rows are never removed).

use std::sync::LazyLock;

use mms_core::config::RetentionConfig;
use redis::{AsyncCommands, Script, ScriptInvocation};

use crate::script::{invoke, lua_script, LuaCall};
use crate::{Keys, Store, StoreError};

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Candidates handed to one trim call beyond the rows to remove: room to step over live
/// (Pending, InProgress) rows among the oldest without a second round trip.
const TRIM_SLACK: usize = 16;

/// The retention periods in the unit Redis takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetentionMs {
    pub(crate) journal_ms: u64,
    pub(crate) sent_ledger_ms: u64,
}

static TRIM_USER_ROWS: LazyLock<Script> =
    lua_script!("lib/status.lua", "retention/trim_user_rows.lua");

/// `lua/retention/trim_user_rows.lua`: remove up to `remove` of `candidates` (oldest first),
/// final ones only; returns how many were removed.
struct TrimUserRows<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    user: &'a str,
    remove: usize,
    candidates: &'a [String],
}

impl LuaCall for TrimUserRows<'_> {
    type Reply = usize;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let (keys, tenant) = (self.keys, self.tenant);
        let mut call = TRIM_USER_ROWS.prepare_invoke();
        call.key(keys.user_migrations(tenant, self.user))
            .key(keys.statuses(tenant))
            .key(keys.summary(tenant));
        for correlation in self.candidates {
            call.key(keys.status(tenant, correlation))
                .key(keys.journal(tenant, correlation))
                .key(keys.counts(tenant, correlation))
                .key(keys.pre_images(tenant, correlation));
        }
        call.arg(self.remove);
        for correlation in self.candidates {
            call.arg(correlation);
        }
        call
    }
}

impl Store {
    /// This store with the retention of `retention` instead of the defaults; refuses values out
    /// of range ([`RetentionConfig::validate`]) with a message naming the key.
    pub fn with_retention(mut self, retention: RetentionConfig) -> Result<Store, StoreError> {
        retention.validate().map_err(StoreError::Invalid)?;
        self.retention = retention;
        Ok(self)
    }

    /// The retention this store applies.
    pub fn retention(&self) -> &RetentionConfig {
        &self.retention
    }

    pub(crate) fn retention_durations(&self) -> RetentionMs {
        RetentionMs {
            journal_ms: u64::from(self.retention.journal_days) * DAY_MS,
            sent_ledger_ms: u64::from(self.retention.sent_ledger_days) * DAY_MS,
        }
    }

    /// Keep the user's status rows within `retention.status_rows_per_user`: remove the oldest
    /// final rows beyond it, each with its journal and counters (summary counters moved in the
    /// same script). Returns how many rows were removed. Safe to run at any time and twice.
    pub async fn trim_status_rows(&self, tenant: &str, user: &str) -> Result<usize, StoreError> {
        let keep = self.retention.status_rows_per_user as usize;
        let index = self.keys.user_migrations(tenant, user);
        let mut conn = self.conn.clone();
        let rows: usize = conn.zcard(&index).await?;
        if rows <= keep {
            return Ok(0);
        }
        let remove = rows - keep;
        let candidates: Vec<String> = conn
            .zrange(&index, 0, (remove + TRIM_SLACK) as isize - 1)
            .await?;
        let call = TrimUserRows {
            keys: &self.keys,
            tenant,
            user,
            remove,
            candidates: &candidates,
        };
        invoke(&call, &mut conn).await
    }
}
