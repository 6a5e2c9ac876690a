//! What a migration's journal adds up to, kept up to date page by page instead of holding the
//! whole journal in the worker (issue 11.4).
//!
//! The status row needs counters (meetings migrated, failed, updates sent) and the end of a
//! mailbox needs the meetings that still owe an update to some attendee. Both are kept here as
//! each page's entries are journaled: the counters move from a meeting's previous entry (read
//! with the page, one HMGET) to its new one, and only the meetings owing an update are kept by
//! name. Memory is therefore O(meetings owing an update) and each page costs O(page), where
//! holding the journal and rebuilding every outcome after every page cost O(mailbox) memory and
//! O(mailbox²) time (190 MiB and a rate falling with the mailbox size at 50,000 meetings).

use std::collections::{BTreeMap, HashSet};

use mms_core::MigrationStatus;
use mms_store::journal::{JournalCursor, JournalEntry, MeetingStage};
use mms_store::{Store, StoreError};

use crate::pipeline::RunError;

/// Meetings named in the message of a migration that ends owing updates.
const NAMED_OWING: usize = 3;
/// Journal entries read per round trip when a resumed attempt counts what is already journaled.
const LOAD_PAGE: usize = 1_000;

/// The journal's totals, and the meetings whose update has not reached every attendee.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalTally {
    updated: u32,
    unchanged: u32,
    failed: u32,
    skipped: u32,
    /// Updates that reached every attendee.
    invites: u32,
    /// Saved meetings whose update is still owed (deferred) or was refused for some attendee.
    owing: BTreeMap<String, JournalEntry>,
}

/// How one entry counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counted {
    Updated,
    Unchanged,
    Failed,
    Skipped,
}

fn counted(entry: &JournalEntry) -> Counted {
    match entry.stage {
        MeetingStage::Sent => Counted::Updated,
        MeetingStage::Unchanged => Counted::Unchanged,
        MeetingStage::Skipped => Counted::Skipped,
        MeetingStage::Failed | MeetingStage::Saving | MeetingStage::Saved => Counted::Failed,
    }
}

fn is_invite(entry: &JournalEntry) -> bool {
    entry.stage == MeetingStage::Sent && entry.undelivered == 0 && entry.message_id.is_some()
}

fn is_owing(entry: &JournalEntry) -> bool {
    matches!(entry.stage, MeetingStage::Saving | MeetingStage::Saved)
        || (entry.stage == MeetingStage::Failed && entry.undelivered > 0)
}

impl JournalTally {
    /// The tally of what migration `correlation` journaled so far (empty on a first attempt),
    /// read page by page; an entry HSCAN returns twice counts once.
    pub async fn load(
        store: &Store,
        tenant: &str,
        correlation: &str,
    ) -> Result<JournalTally, StoreError> {
        let mut tally = JournalTally::default();
        let mut seen = HashSet::new();
        let mut cursor = JournalCursor::START;
        loop {
            let page = store
                .journal_page(tenant, correlation, cursor, LOAD_PAGE)
                .await?;
            for (href, entry) in page.entries {
                if seen.insert(href.clone()) {
                    tally.record(&href, None, entry);
                }
            }
            match page.next {
                Some(next) => cursor = next,
                None => return Ok(tally),
            }
        }
    }

    /// `href` is now journaled as `entry`; `prior` is what the journal held for it before.
    pub fn record(&mut self, href: &str, prior: Option<&JournalEntry>, entry: JournalEntry) {
        if let Some(prior) = prior {
            self.count(prior, false);
        }
        self.count(&entry, true);
        if is_owing(&entry) {
            self.owing.insert(href.to_string(), entry);
        } else {
            self.owing.remove(href);
        }
    }

    fn count(&mut self, entry: &JournalEntry, add: bool) {
        let step = |n: &mut u32| *n = if add { *n + 1 } else { n.saturating_sub(1) };
        match counted(entry) {
            Counted::Updated => step(&mut self.updated),
            Counted::Unchanged => step(&mut self.unchanged),
            Counted::Failed => step(&mut self.failed),
            Counted::Skipped => step(&mut self.skipped),
        }
        if is_invite(entry) {
            step(&mut self.invites);
        }
    }

    /// Meetings journaled so far, skipped ones included.
    pub fn handled(&self) -> u32 {
        self.updated + self.unchanged + self.failed + self.skipped
    }

    pub fn skipped(&self) -> u32 {
        self.skipped
    }

    /// The status row's counters (M2): migrated counts updated and unchanged meetings; a saved
    /// meeting whose update is owed counts failed, never migrated.
    pub fn apply(&self, status: &mut MigrationStatus) {
        status.succeeded_meeting = self.updated + self.unchanged;
        status.failed_meeting = self.failed;
        status.total_meeting = status.succeeded_meeting + status.failed_meeting;
        status.invites_update = self.invites;
    }

    /// The mailbox is done; a meeting still owing its update to some attendee keeps the
    /// migration from counting as Succeeded: deferred ones are retried, refused ones fail it.
    pub fn owed_at_the_end(&self) -> Result<(), RunError> {
        let deferred: Vec<&JournalEntry> = self
            .owing
            .values()
            .filter(|e| matches!(e.stage, MeetingStage::Saving | MeetingStage::Saved))
            .collect();
        let refused: Vec<&JournalEntry> = self
            .owing
            .values()
            .filter(|e| e.stage == MeetingStage::Failed)
            .collect();
        let describe = |entries: &[&JournalEntry], what: &str| {
            let named: Vec<String> = entries
                .iter()
                .take(NAMED_OWING)
                .map(|e| format!("{:?}: {}", e.summary, e.reason))
                .collect();
            format!(
                "{} saved meeting(s) {what}; {}",
                entries.len(),
                named.join("; ")
            )
        };
        if !deferred.is_empty() {
            return Err(RunError::UpdatesOwed {
                summary: describe(&deferred, "still owe their update to some attendees"),
                transient: true,
            });
        }
        if !refused.is_empty() {
            return Err(RunError::UpdatesOwed {
                summary: describe(&refused, "did not reach every attendee"),
                transient: false,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::entry;

    fn journaled(stage: MeetingStage, undelivered: u32) -> JournalEntry {
        let mut e = entry(stage, "u", "s", "r");
        e.message_id = Some("m".into());
        e.undelivered = undelivered;
        e
    }

    fn status() -> MigrationStatus {
        let req = mms_core::MigrationRequest::new(
            "t",
            "o@x",
            Default::default(),
            Default::default(),
            mms_core::Trigger::Manual,
        );
        MigrationStatus::pending(&req, "", chrono::Utc::now())
    }

    #[test]
    fn a_saved_meeting_whose_update_is_owed_is_never_counted_migrated() {
        let mut tally = JournalTally::default();
        tally.record("a", None, journaled(MeetingStage::Sent, 0));
        tally.record("b", None, journaled(MeetingStage::Saved, 3));
        tally.record("c", None, journaled(MeetingStage::Failed, 1));
        let mut row = status();
        tally.apply(&mut row);
        assert_eq!(
            (
                row.succeeded_meeting,
                row.failed_meeting,
                row.invites_update
            ),
            (1, 2, 1)
        );
        assert!(matches!(
            tally.owed_at_the_end(),
            Err(RunError::UpdatesOwed {
                transient: true,
                ..
            })
        ));

        // A later page delivers b's update: it moves from failed to migrated, c still fails it.
        let prior = journaled(MeetingStage::Saved, 3);
        tally.record("b", Some(&prior), journaled(MeetingStage::Sent, 0));
        tally.apply(&mut row);
        assert_eq!(
            (
                row.succeeded_meeting,
                row.failed_meeting,
                row.invites_update
            ),
            (2, 1, 2)
        );
        assert!(matches!(
            tally.owed_at_the_end(),
            Err(RunError::UpdatesOwed {
                transient: false,
                ..
            })
        ));
        let prior = journaled(MeetingStage::Failed, 1);
        tally.record("c", Some(&prior), journaled(MeetingStage::Sent, 0));
        assert!(tally.owed_at_the_end().is_ok());
        assert_eq!((tally.handled(), tally.skipped()), (3, 0));
    }
}
