//! The vocabulary of the transaction history (`Get-CsMeetingMigrationTransactionHistory`, M2):
//! what kind of step each line of a user's history records.
//!
//! Five places write history lines (the control plane's trigger handling, the queue's Lua
//! scripts, the migration actor, the tenant supervisor, and the store when it reads back a line
//! that no longer decodes). They all name the step with [`HistoryEventKind`], so that a new kind
//! is added here once, documented in the OpenAPI schema, and cannot be misspelled by a writer.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One step of a user's migrations, serialized with the vendor-style PascalCase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HistoryEventKind {
    /// A rule (T1–T4) decided that the user migrates; the `Queued` or `Merged` line follows.
    Triggered,
    /// An exclusion (X1, X2) refused the trigger: nothing queued.
    Refused,
    /// The rule or a tenant switch says nothing migrates (T2-no, a switch off, a mode that keeps
    /// meetings where they are): recorded so the admin sees that the change arrived.
    NotTriggered,
    /// A new migration request was queued (with its coalescing hold, if any).
    Queued,
    /// The trigger joined the user's request that was already queued.
    Merged,
    /// The tenant's `MeetingMigrationEnabled` is off: the request waits (status `Pending` with a
    /// `HeldReason`).
    Held,
    /// A worker took the mailbox lease and began the migration.
    Started,
    /// A migration interrupted mid-way (worker died, lease lost, retry) continues from its journal.
    Resumed,
    /// A transient error: the migration runs again at the time the message says.
    RetryScheduled,
    /// Every meeting was handled; the message counts them.
    Succeeded,
    /// The migration ended without success (a permanent error, or the last retry failed).
    Failed,
    /// The migration actor crashed; the supervisor's message says why, and the retry policy applies.
    ActorFailed,
    /// A stored history line that no longer decodes, shown with its raw text instead of being
    /// dropped (written by no one: the store makes it up when it reads such a line).
    Corrupt,
}

impl HistoryEventKind {
    /// Every kind, in the order a migration usually goes through them.
    pub const ALL: [HistoryEventKind; 13] = [
        HistoryEventKind::Triggered,
        HistoryEventKind::Refused,
        HistoryEventKind::NotTriggered,
        HistoryEventKind::Queued,
        HistoryEventKind::Merged,
        HistoryEventKind::Held,
        HistoryEventKind::Started,
        HistoryEventKind::Resumed,
        HistoryEventKind::RetryScheduled,
        HistoryEventKind::Succeeded,
        HistoryEventKind::Failed,
        HistoryEventKind::ActorFailed,
        HistoryEventKind::Corrupt,
    ];

    /// The name as it is stored and shown (`RetryScheduled`, `NotTriggered`...).
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEventKind::Triggered => "Triggered",
            HistoryEventKind::Refused => "Refused",
            HistoryEventKind::NotTriggered => "NotTriggered",
            HistoryEventKind::Queued => "Queued",
            HistoryEventKind::Merged => "Merged",
            HistoryEventKind::Held => "Held",
            HistoryEventKind::Started => "Started",
            HistoryEventKind::Resumed => "Resumed",
            HistoryEventKind::RetryScheduled => "RetryScheduled",
            HistoryEventKind::Succeeded => "Succeeded",
            HistoryEventKind::Failed => "Failed",
            HistoryEventKind::ActorFailed => "ActorFailed",
            HistoryEventKind::Corrupt => "Corrupt",
        }
    }
}

impl fmt::Display for HistoryEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets a test or a log filter write `event == "Resumed"`; the spelling is still checked by the
/// comparison failing for a name that no kind has.
impl PartialEq<&str> for HistoryEventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serialized name is the displayed one, for every kind: what Redis holds, what the API
    /// returns and what the docs list are one spelling.
    #[test]
    fn every_kind_serializes_as_its_display_name() {
        for kind in HistoryEventKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::from(kind.as_str()));
            let back: HistoryEventKind = serde_json::from_value(json).unwrap();
            assert_eq!(back, kind);
        }
        assert!(serde_json::from_str::<HistoryEventKind>("\"Retry\"").is_err());
    }
}
