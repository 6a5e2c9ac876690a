//! The per-meeting journal of a migration (D5), the stage counters kept with it, the user's
//! pending updates (issue 7.1) and the ledger of sent updates.
//!
//! - The **journal** (`journal:<correlation>`, a hash meeting key -> [`JournalEntry`]) makes a
//!   migration resumable: a resumed attempt skips what is done and finishes what is not.
//! - The **counters** (`counts:<correlation>`, stage -> number of meetings) are moved by the same
//!   script that writes an entry, from the entry's old stage to its new one, so they stay exact
//!   whatever is repeated or resumed, and a status needs no pass over the journal
//!   ([`Store::journal_counts`]). Outcomes are read a page at a time ([`Store::journal_page`],
//!   [`Store::journal_entries`]) rather than all at once.
//! - The **pending updates** (`pending:<user>`, meeting href -> [`PendingUpdate`]) list meetings
//!   whose save succeeded but whose update has not reached every attendee. They belong to the
//!   user, not to one migration, so any later migration of that user (a retry, a new trigger, a
//!   manual start) finds and finishes them ([`Store::pending_updates`]).
//! - The **sent ledger** (`sent:<user>`, Message-ID -> time) says which updates SMTP accepted, so
//!   none is sent twice ([`Store::was_sent`]).
//!
//! - The **pre-images** (`preimage:<correlation>`, meeting key -> [`MeetingPreImage`]) keep what
//!   the migration replaced in each meeting it saved, for an undo (`crate::undo`).
//!
//! A page of meetings is written in ONE fenced script ([`Store::record_meetings`]): entries,
//! counters, pending changes, ledger entries and pre-images together, or nothing when the lease
//! is stale.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use mms_core::{MeetingOutcome, MeetingOutcomeKind, MeetingPreImage};
use redis::{AsyncCommands, Script, ScriptInvocation};
use serde::{Deserialize, Serialize};

use crate::error::Malformed;
use crate::lease::Lease;
use crate::script::{invoke, lua_script, Fenced, LuaCall};
use crate::{Keys, Store, StoreError};

/// What happened to one meeting in one migration; the journal's record, keyed by meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

impl MeetingStage {
    /// Every stage, in pipeline order.
    pub const ALL: [MeetingStage; 6] = [
        MeetingStage::Skipped,
        MeetingStage::Unchanged,
        MeetingStage::Saving,
        MeetingStage::Saved,
        MeetingStage::Sent,
        MeetingStage::Failed,
    ];

    /// The stage's name: its JSON spelling in an entry and its field in the counters hash.
    pub fn name(self) -> &'static str {
        match self {
            MeetingStage::Skipped => "Skipped",
            MeetingStage::Unchanged => "Unchanged",
            MeetingStage::Saving => "Saving",
            MeetingStage::Saved => "Saved",
            MeetingStage::Sent => "Sent",
            MeetingStage::Failed => "Failed",
        }
    }

    fn from_name(name: &str) -> Option<MeetingStage> {
        MeetingStage::ALL.into_iter().find(|s| s.name() == name)
    }
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
    /// Attendees the update has not reached (deferred or refused by the relay): a meeting with
    /// any is never counted as migrated.
    #[serde(default)]
    pub undelivered: u32,
}

impl JournalEntry {
    /// The meeting's outcome as the status shows it (M2). A meeting saved whose update has not
    /// reached every attendee is `Failed`, never migrated: its reason says what is pending.
    pub fn outcome(&self, href: &str) -> MeetingOutcome {
        let outcome = match self.stage {
            MeetingStage::Skipped => MeetingOutcomeKind::Skipped,
            MeetingStage::Unchanged => MeetingOutcomeKind::Unchanged,
            MeetingStage::Sent => MeetingOutcomeKind::Updated,
            MeetingStage::Failed | MeetingStage::Saving | MeetingStage::Saved => {
                MeetingOutcomeKind::Failed
            }
        };
        let reason = match self.stage {
            MeetingStage::Saving => "saved; update pending".to_string(),
            MeetingStage::Saved if self.reason.is_empty() => "saved; update pending".to_string(),
            _ => self.reason.clone(),
        };
        MeetingOutcome {
            uid: self.uid.clone(),
            href: href.to_string(),
            summary: self.summary.clone(),
            outcome,
            reason,
            sequence: Some(self.sequence),
            recipients: self.recipients,
        }
    }
}

/// A meeting saved with its new coordinates whose update has not reached every attendee yet.
/// Kept per user (not per migration) until a write clears it, so that ANY later migration of the
/// user sends what is missing even though the meeting's text is already rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PendingUpdate {
    pub uid: String,
    /// SEQUENCE of the saved meeting the update announces.
    pub sequence: u32,
    /// The migration that saved it.
    pub correlation_id: String,
    pub saved_at: DateTime<Utc>,
    /// Message-IDs of the recipient batches SMTP already accepted: a later run sends only the
    /// others.
    #[serde(default)]
    pub message_ids_sent: Vec<String>,
    /// Batches the relay took only in part: Message-ID -> the recipients it has not accepted
    /// yet. A later run sends that batch (same Message-ID) to those alone.
    #[serde(default)]
    pub owed: BTreeMap<String, Vec<String>>,
}

/// What a journal write does to the meeting's pending update, in the same step as the entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PendingChange {
    /// Leave it as stored (none, or the one a previous write set).
    #[default]
    Keep,
    /// Store this one (the save succeeded, the update has not reached everyone).
    Set(PendingUpdate),
    /// Remove it (the update reached every attendee, or there is nothing left to send).
    Clear,
}

/// One meeting's write in a [`Store::record_meetings`] page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingWrite {
    /// What the migration replaced in the meeting (stored in the migration's pre-images,
    /// `crate::undo`); `None` leaves what is stored.
    pub pre_image: Option<MeetingPreImage>,
    /// The meeting's key in the journal (its href in the mailbox).
    pub key: String,
    pub entry: JournalEntry,
    pub pending: PendingChange,
    /// Message-IDs SMTP accepted for this meeting since its last write: added to the user's sent
    /// ledger in the same step.
    pub sent: Vec<String>,
}

impl MeetingWrite {
    /// A journal entry alone: pending update kept, nothing added to the ledger.
    pub fn new(key: impl Into<String>, entry: JournalEntry) -> Self {
        MeetingWrite {
            key: key.into(),
            entry,
            pending: PendingChange::Keep,
            sent: Vec::new(),
            pre_image: None,
        }
    }

    /// The same write, storing what the migration replaced in the meeting too (written with
    /// the `Saving` entry, before the meeting is saved, so an undo finds every meeting saved).
    pub fn with_pre_image(self, pre_image: MeetingPreImage) -> Self {
        MeetingWrite {
            pre_image: Some(pre_image),
            ..self
        }
    }

    /// The same write, changing the meeting's pending update too.
    pub fn with_pending(self, pending: PendingChange) -> Self {
        MeetingWrite { pending, ..self }
    }

    /// The same write, adding `message_ids` (accepted by SMTP) to the sent ledger too.
    pub fn with_sent(self, message_ids: Vec<String>) -> Self {
        MeetingWrite {
            sent: message_ids,
            ..self
        }
    }
}

/// How many meetings of one migration are at each stage (the journal counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageCounts {
    pub skipped: u64,
    pub unchanged: u64,
    pub saving: u64,
    pub saved: u64,
    pub sent: u64,
    pub failed: u64,
}

impl StageCounts {
    /// Meetings at `stage`.
    pub fn get(&self, stage: MeetingStage) -> u64 {
        match stage {
            MeetingStage::Skipped => self.skipped,
            MeetingStage::Unchanged => self.unchanged,
            MeetingStage::Saving => self.saving,
            MeetingStage::Saved => self.saved,
            MeetingStage::Sent => self.sent,
            MeetingStage::Failed => self.failed,
        }
    }

    fn slot(&mut self, stage: MeetingStage) -> &mut u64 {
        match stage {
            MeetingStage::Skipped => &mut self.skipped,
            MeetingStage::Unchanged => &mut self.unchanged,
            MeetingStage::Saving => &mut self.saving,
            MeetingStage::Saved => &mut self.saved,
            MeetingStage::Sent => &mut self.sent,
            MeetingStage::Failed => &mut self.failed,
        }
    }

    /// Meetings journaled, whatever their stage.
    pub fn total(&self) -> u64 {
        MeetingStage::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// The counts of `entries` (what the counters hold when nothing drifted): for tests and
    /// repairs.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a JournalEntry>) -> StageCounts {
        let mut counts = StageCounts::default();
        for entry in entries {
            *counts.slot(entry.stage) += 1;
        }
        counts
    }
}

/// Where [`Store::journal_page`] (or the pre-images' page) goes on: HSCAN's cursor, opaque to
/// callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalCursor(u64);

impl JournalCursor {
    /// The first page.
    pub const START: JournalCursor = JournalCursor(0);
}

/// One page of a migration's journal, in no set order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPage {
    pub entries: Vec<(String, JournalEntry)>,
    /// Where the next page starts; `None` after the last. As with any HSCAN, an entry changed
    /// while paging may show up on two pages: key the result by meeting.
    pub next: Option<JournalCursor>,
}

static RECORD_MEETINGS: LazyLock<Script> = lua_script!(
    "lib/fence.lua",
    "lib/journal.lua",
    "progress/record_meetings.lua"
);

/// One meeting of a [`RecordMeetings`] call, encoded as the script reads it.
struct EncodedWrite<'a> {
    key: &'a str,
    entry_json: String,
    stage: MeetingStage,
    pending_op: &'static str,
    pending_json: String,
    sent_json: String,
    /// Deflated JSON (see [`crate::undo::encode_pre_image`]); empty for none.
    pre_image: Vec<u8>,
}

impl<'a> EncodedWrite<'a> {
    fn new(
        key: &'a str,
        entry: &JournalEntry,
        pending: &PendingChange,
        sent: &[String],
        pre_image: Option<&MeetingPreImage>,
    ) -> Result<Self, StoreError> {
        let pre_image = match pre_image {
            Some(image) => crate::undo::encode_pre_image(image)?,
            None => Vec::new(),
        };
        let (pending_op, pending_json) = match pending {
            PendingChange::Keep => ("keep", String::new()),
            PendingChange::Clear => ("clear", String::new()),
            PendingChange::Set(update) => (
                "set",
                serde_json::to_string(update)
                    .map_err(|e| StoreError::encode("pending update", e))?,
            ),
        };
        let sent_json = if sent.is_empty() {
            String::new()
        } else {
            serde_json::to_string(sent).map_err(|e| StoreError::encode("message ids", e))?
        };
        Ok(EncodedWrite {
            key,
            entry_json: journal_json(entry)?,
            stage: entry.stage,
            pending_op,
            pending_json,
            sent_json,
            pre_image,
        })
    }
}

/// `lua/progress/record_meetings.lua`: a page of journal entries with their counters, pending
/// changes and ledger entries, under the lease.
struct RecordMeetings<'a> {
    keys: &'a Keys,
    lease: &'a Lease,
    correlation: &'a str,
    now_ms: i64,
    ledger_ttl_ms: u64,
    writes: Vec<EncodedWrite<'a>>,
}

impl LuaCall for RecordMeetings<'_> {
    type Reply = Fenced;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let (tenant, user) = (&self.lease.tenant, &self.lease.user);
        let mut call = RECORD_MEETINGS.prepare_invoke();
        call.key(self.keys.lease(tenant, user))
            .key(self.keys.journal(tenant, self.correlation))
            .key(self.keys.counts(tenant, self.correlation))
            .key(self.keys.pending(tenant, user))
            .key(self.keys.sent(tenant, user))
            .key(self.keys.pre_images(tenant, self.correlation))
            .arg(self.lease.value())
            .arg(self.now_ms)
            .arg(self.ledger_ttl_ms);
        for write in &self.writes {
            call.arg(write.key)
                .arg(&write.entry_json)
                .arg(write.stage.name())
                .arg(write.pending_op)
                .arg(&write.pending_json)
                .arg(&write.sent_json)
                .arg(&write.pre_image);
        }
        call
    }
}

pub(crate) fn journal_json(entry: &JournalEntry) -> Result<String, StoreError> {
    serde_json::to_string(entry).map_err(|e| StoreError::encode("journal entry", e))
}

fn parse_entry(key: &str, meeting: &str, text: &str) -> Result<JournalEntry, StoreError> {
    parse_field(
        key,
        meeting,
        text,
        "delete the field (`redis-cli HDEL`) so the meeting is redone",
    )
}

/// One meeting's JSON field of a per-migration hash (`key`), or a corruption error that names
/// the field and says what deleting it does (`fix`).
pub(crate) fn parse_field<T: serde::de::DeserializeOwned>(
    key: &str,
    meeting: &str,
    text: &str,
    fix: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::corrupt(format!("{key} field {meeting}"), fix, e))
}

impl Store {
    /// Journal a page of meetings under the lease in ONE fenced script: each entry (counters
    /// moved from its old stage to its new one), its pending-update change and its accepted
    /// Message-IDs (sent ledger). A stale lease gets [`StoreError::LeaseLost`] and nothing of the
    /// page is written. An empty page writes nothing and sends nothing.
    pub async fn record_meetings(
        &self,
        lease: &Lease,
        correlation: &str,
        writes: &[MeetingWrite],
    ) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let encoded = writes
            .iter()
            .map(|w| EncodedWrite::new(&w.key, &w.entry, &w.pending, &w.sent, w.pre_image.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.run_record_meetings(lease, correlation, encoded).await
    }

    async fn run_record_meetings(
        &self,
        lease: &Lease,
        correlation: &str,
        writes: Vec<EncodedWrite<'_>>,
    ) -> Result<(), StoreError> {
        let call = RecordMeetings {
            keys: &self.keys,
            lease,
            correlation,
            now_ms: Utc::now().timestamp_millis(),
            ledger_ttl_ms: self.retention_durations().sent_ledger_ms,
            writes,
        };
        invoke(&call, &mut self.conn.clone())
            .await?
            .or_lease_lost(lease)
    }

    /// Record what was done to one meeting, under the lease (a page of one; pending update
    /// kept).
    pub async fn record_meeting(
        &self,
        lease: &Lease,
        correlation: &str,
        meeting_key: &str,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        let write = EncodedWrite::new(meeting_key, entry, &PendingChange::Keep, &[], None)?;
        self.run_record_meetings(lease, correlation, vec![write])
            .await
    }

    /// Journal `Sent` for the meeting AND add its message id to the user's sent ledger AND clear
    /// its pending update (the update reached everyone), atomically, fenced. `entry` must be a
    /// `Sent` record carrying the message id.
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
        let sent = [message_id.to_string()];
        let write = EncodedWrite::new(meeting_key, entry, &PendingChange::Clear, &sent, None)?;
        self.run_record_meetings(lease, correlation, vec![write])
            .await
    }

    /// Every meeting's outcome of one migration, sorted by href: the per-meeting detail of its
    /// status (status rows no longer carry it). Reads the whole journal: for a very large mailbox
    /// page with [`Store::journal_page`] instead.
    pub async fn meeting_outcomes(
        &self,
        tenant: &str,
        correlation: &str,
    ) -> Result<Vec<MeetingOutcome>, StoreError> {
        let mut outcomes: Vec<MeetingOutcome> = self
            .journal(tenant, correlation)
            .await?
            .iter()
            .map(|(href, entry)| entry.outcome(href))
            .collect();
        outcomes.sort_by(|a, b| a.href.cmp(&b.href));
        Ok(outcomes)
    }

    /// The whole journal of one migration: meeting key -> what was done to it. For a large
    /// mailbox prefer [`Store::journal_page`] / [`Store::journal_entries`].
    pub async fn journal(
        &self,
        tenant: &str,
        correlation: &str,
    ) -> Result<HashMap<String, JournalEntry>, StoreError> {
        let key = self.keys.journal(tenant, correlation);
        let mut conn = self.conn.clone();
        let raw: HashMap<String, String> = conn.hgetall(&key).await?;
        raw.into_iter()
            .map(|(meeting, text)| parse_entry(&key, &meeting, &text).map(|entry| (meeting, entry)))
            .collect()
    }

    /// About `count` entries of a migration's journal from `cursor` (HSCAN: Redis is not
    /// blocked however large the journal; a small journal comes back whole in one page).
    pub async fn journal_page(
        &self,
        tenant: &str,
        correlation: &str,
        cursor: JournalCursor,
        count: usize,
    ) -> Result<JournalPage, StoreError> {
        let key = self.keys.journal(tenant, correlation);
        let (entries, next) = self
            .meeting_hash_page(&key, cursor, count, |meeting, text: &String| {
                parse_entry(&key, meeting, text)
            })
            .await?;
        Ok(JournalPage { entries, next })
    }

    /// About `count` fields of a per-migration hash keyed by meeting (HSCAN from `cursor`),
    /// each decoded by `decode`; the cursor of the next page, `None` after the last.
    pub(crate) async fn meeting_hash_page<V: redis::FromRedisValue, T>(
        &self,
        key: &str,
        cursor: JournalCursor,
        count: usize,
        decode: impl Fn(&str, &V) -> Result<T, StoreError>,
    ) -> Result<(Vec<(String, T)>, Option<JournalCursor>), StoreError> {
        let (next, fields): (u64, Vec<(String, V)>) = redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor.0)
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut self.conn.clone())
            .await?;
        let entries = fields
            .into_iter()
            .map(|(meeting, value)| decode(&meeting, &value).map(|decoded| (meeting, decoded)))
            .collect::<Result<_, _>>()?;
        Ok((entries, (next != 0).then_some(JournalCursor(next))))
    }

    /// The journal entries of `meetings` (HMGET), in that order; `None` for a meeting not
    /// journaled in this migration.
    pub async fn journal_entries<S: AsRef<str>>(
        &self,
        tenant: &str,
        correlation: &str,
        meetings: &[S],
    ) -> Result<Vec<Option<JournalEntry>>, StoreError> {
        if meetings.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.journal(tenant, correlation);
        let fields: Vec<&str> = meetings.iter().map(AsRef::as_ref).collect();
        // HMGET with one field returns a bare value in redis-rs's typed API; the explicit
        // command keeps the reply an array whatever the count.
        let texts: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&key)
            .arg(&fields)
            .query_async(&mut self.conn.clone())
            .await?;
        fields
            .iter()
            .zip(texts)
            .map(|(meeting, text)| {
                text.map(|text| parse_entry(&key, meeting, &text))
                    .transpose()
            })
            .collect()
    }

    /// How many meetings of a migration are at each stage, from the counters kept with the
    /// journal (one small read, whatever the mailbox size).
    pub async fn journal_counts(
        &self,
        tenant: &str,
        correlation: &str,
    ) -> Result<StageCounts, StoreError> {
        let key = self.keys.counts(tenant, correlation);
        let raw: HashMap<String, i64> = self.conn.clone().hgetall(&key).await.map_err(|e| {
            if e.kind() == redis::ErrorKind::TypeError {
                StoreError::corrupt(
                    &key,
                    "delete the key: the next journal write of the migration counts its journal again",
                    Malformed::Value(format!("a counter is not a number: {e}")),
                )
            } else {
                StoreError::Redis(e)
            }
        })?;
        let mut counts = StageCounts::default();
        for (field, value) in raw {
            let stage = MeetingStage::from_name(&field).ok_or_else(|| {
                StoreError::corrupt(
                    &key,
                    "delete the key: the next journal write of the migration counts its journal again",
                    Malformed::Value(format!("{field:?} is not a meeting stage")),
                )
            })?;
            *counts.slot(stage) = u64::try_from(value).map_err(|_| {
                StoreError::corrupt(
                    &key,
                    "delete the key: the next journal write of the migration counts its journal again",
                    Malformed::Value(format!("{field} is {value}, below zero")),
                )
            })?;
        }
        Ok(counts)
    }

    /// The user's pending updates (meeting href -> what is left to send), across all of the
    /// user's migrations.
    pub async fn pending_updates(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<BTreeMap<String, PendingUpdate>, StoreError> {
        let key = self.keys.pending(tenant, user);
        let raw: HashMap<String, String> = self.conn.clone().hgetall(&key).await?;
        raw.into_iter()
            .map(|(href, text)| {
                serde_json::from_str(&text)
                    .map(|update| (href.clone(), update))
                    .map_err(|e| {
                        StoreError::corrupt(
                            format!("{key} field {href}"),
                            "delete the field (`redis-cli HDEL`) and start a migration of the user: the meeting's update is then sent again",
                            e,
                        )
                    })
            })
            .collect()
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
