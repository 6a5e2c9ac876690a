//! The per-user transaction history (`Get-CsMeetingMigrationTransactionHistory`): every step of a
//! user's migrations with its time, kept as a capped Redis list of JSON events, oldest first.
//!
//! The queue scripts append their own events (Queued, Merged) in the same atomic step as the queue
//! change, through `history_append(key, json, cap)` of `lua/lib/history.lua`; everything else
//! (Started, Retry, Succeeded...) is appended by the worker and the control plane with
//! [`Store::append_history`]. The number of events kept per user is
//! `retention.history_events` ([`mms_core::config::RetentionConfig`]): enough for every step of
//! dozens of migrations, bounded so that a user triggered in a loop cannot grow Redis without limit.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
pub use mms_core::history::HistoryEventKind;
use redis::{AsyncCommands, Script, ScriptInvocation};
use serde::{Deserialize, Serialize};

use crate::script::{invoke, lua_script, LuaCall};
use crate::{Keys, Store, StoreError};

/// Lua fragment `history_append(key, json, cap)` (`lua/lib/history.lua`), for scripts that record
/// history in the same atomic step as their change. A caller that passes no cap gets the default
/// of `retention.history_events`.
pub(crate) static HISTORY_APPEND_LUA: LazyLock<String> =
    LazyLock::new(|| include_str!("../lua/lib/history.lua").to_string());

static APPEND: LazyLock<Script> = lua_script!("lib/history.lua", "history/append.lua");

/// `lua/history/append.lua`: one event appended, the list capped.
struct Append<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    user: &'a str,
    event_json: &'a str,
    cap: u32,
}

impl LuaCall for Append<'_> {
    type Reply = i64;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = APPEND.prepare_invoke();
        call.key(self.keys.history(self.tenant, self.user))
            .arg(self.event_json)
            .arg(self.cap);
        call
    }
}

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
        serde_json::to_string(self).map_err(|e| StoreError::encode("history event", e))
    }
}

impl Store {
    /// Append one event to the user's history, dropping the oldest beyond
    /// `retention.history_events`.
    pub async fn append_history(
        &self,
        tenant: &str,
        user: &str,
        event: &HistoryEvent,
    ) -> Result<(), StoreError> {
        let call = Append {
            keys: &self.keys,
            tenant,
            user,
            event_json: &event.to_json()?,
            cap: self.retention.history_events,
        };
        invoke(&call, &mut self.conn.clone()).await?;
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

#[cfg(test)]
mod tests {
    use mms_core::config::RetentionConfig;

    /// `lua/lib/history.lua` caps a list at its own default when a script passes no cap: the
    /// queue's scripts and the configuration must agree on it.
    #[test]
    fn the_lua_default_cap_is_the_configured_default() {
        let lua = include_str!("../lua/lib/history.lua");
        let default = lua
            .lines()
            .find_map(|line| line.strip_prefix("local HISTORY_CAP_DEFAULT = "))
            .expect("lib/history.lua defines HISTORY_CAP_DEFAULT");
        assert_eq!(
            default.trim().parse::<u32>().unwrap(),
            RetentionConfig::default().history_events
        );
    }
}
