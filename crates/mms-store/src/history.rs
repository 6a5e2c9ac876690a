//! The per-user transaction history (`Get-CsMeetingMigrationTransactionHistory`): every step of a
//! user's migrations with its time, kept as a capped Redis list of JSON events, oldest first.
//!
//! The queue scripts append their own events (Queued, Merged) in the same atomic step as the queue
//! change, through [`HISTORY_APPEND_LUA`]; everything else (Started, Retry, Succeeded...) is
//! appended by the worker and the control plane with [`Store::append_history`].

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
pub use mms_core::history::HistoryEventKind;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// Events kept per user: enough for every step of dozens of migrations, bounded so that a user
/// triggered in a loop cannot grow Redis without limit.
pub const HISTORY_CAP: isize = 1_000;

/// Lua fragment: `history_append(key, json)` pushes one event and trims the list to
/// [`HISTORY_CAP`], for scripts that record history in the same atomic step as their change.
pub(crate) static HISTORY_APPEND_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        "local function history_append(key, json)
  redis.call('RPUSH', key, json)
  redis.call('LTRIM', key, -{HISTORY_CAP}, -1)
end
"
    )
});

/// One step of a migration, as the transaction history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    pub correlation_id: String,
    /// Which step this is (one vocabulary for every writer).
    pub event: HistoryEventKind,
    pub message: String,
}

impl HistoryEvent {
    /// An event happening now.
    pub fn now(
        correlation_id: impl Into<String>,
        event: HistoryEventKind,
        message: impl Into<String>,
    ) -> Self {
        HistoryEvent {
            at: Utc::now(),
            correlation_id: correlation_id.into(),
            event,
            message: message.into(),
        }
    }

    pub(crate) fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self)
            .map_err(|e| StoreError::Invalid(format!("history event does not serialize: {e}")))
    }
}

impl Store {
    /// Append one event to the user's history, dropping the oldest beyond [`HISTORY_CAP`].
    pub async fn append_history(
        &self,
        tenant: &str,
        user: &str,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let key = self.keys.history(tenant, user);
        let json = event.to_json()?;
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .rpush(&key, json)
            .ignore()
            .ltrim(&key, -HISTORY_CAP, -1)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The user's history, oldest first. A record that no longer decodes is shown as an event
    /// `Corrupt` carrying the raw text, so the rest of the history stays readable and the bad record
    /// is visible rather than silently skipped.
    pub async fn history(&self, tenant: &str, user: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        let key = self.keys.history(tenant, user);
        let mut conn = self.conn.clone();
        let raw: Vec<String> = conn.lrange(&key, 0, -1).await?;
        Ok(raw
            .into_iter()
            .map(|text| {
                serde_json::from_str(&text).unwrap_or_else(|e| HistoryEvent {
                    at: DateTime::<Utc>::UNIX_EPOCH,
                    correlation_id: String::new(),
                    event: HistoryEventKind::Corrupt,
                    message: format!("undecodable record in {key} ({e}): {text}"),
                })
            })
            .collect())
    }
}
