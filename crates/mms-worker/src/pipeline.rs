//! The stages of one migration (D5): search → rewrite → save → send, per meeting, journaled.
//!
//! Resumability rests on three facts:
//! 1. Every meeting's progress is journaled in Redis under the migration's correlation id, fenced
//!    by the mailbox lease. A resumed migration (another worker, a retry) skips meetings whose
//!    journal entry is final.
//! 2. Coordinates are minted deterministically per meeting, so re-rewriting an already-saved
//!    meeting is a no-op (`changed == false`); `Saving` journaled *before* the PUT tells a resumed
//!    run that an unchanged meeting was saved by us and still needs its update sent.
//! 3. The update's Message-ID is deterministic per (UID, SEQUENCE, attendees) and every message
//!    accepted by SMTP is recorded in the user's sent ledger in the same fenced script as the
//!    journal's `Sent`. The one window left: SMTP accepted the message and the worker died before
//!    that script ran. The resend then carries the same Message-ID, so receiving systems can
//!    recognise it (ARCHITECTURE.md, "Exactly once").

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use mms_core::{Bridge, MailboxLocation, SendError};
use mms_core::{
    MailboxError, MailboxItem, MeetingOutcome, MeetingOutcomeKind, MigrationRequest,
    MigrationStatus, MintRequest, UserProfile,
};
use mms_ical::Selected;
use mms_store::lease::Lease;
use mms_store::progress::{JournalEntry, MeetingStage};
use mms_store::StoreError;

use tracing::Instrument;

use crate::lease_keeper::LeaseKeeper;
use crate::telemetry::{StageTimer, MEETINGS_TOTAL};
use crate::Services;

/// How often one meeting may change under us (412) before the attempt gives up and retries later.
const MAX_CONFLICTS: usize = 5;

/// Why an attempt stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// Worth retrying later: a server was unavailable, Redis hiccuped.
    Transient(String),
    /// Retrying will not help (unknown user, mailbox not found, X1): Failed at once.
    Permanent(String),
    /// Our mailbox lease is gone: stop without writing anything more.
    LeaseLost,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Transient(m) | RunError::Permanent(m) => f.write_str(m),
            RunError::LeaseLost => f.write_str("mailbox lease lost"),
        }
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost { .. } => RunError::LeaseLost,
            other => RunError::Transient(other.to_string()),
        }
    }
}

impl From<MailboxError> for RunError {
    fn from(e: MailboxError) -> Self {
        if e.is_permanent() {
            RunError::Permanent(e.to_string())
        } else {
            RunError::Transient(e.to_string())
        }
    }
}

/// What one attempt works with; borrowed by every meeting's task.
pub struct Attempt<'a> {
    pub services: &'a Services,
    pub request: &'a MigrationRequest,
    pub lease: &'a Lease,
    pub keeper: &'a LeaseKeeper,
    /// The moment "future" is measured from, fixed for the whole attempt.
    pub now: DateTime<Utc>,
}

impl Attempt<'_> {
    fn check_lease(&self) -> Result<(), RunError> {
        if self.keeper.is_lost() {
            Err(RunError::LeaseLost)
        } else {
            Ok(())
        }
    }

    async fn record(&self, key: &str, entry: JournalEntry) -> Result<JournalEntry, RunError> {
        self.check_lease()?;
        let r = &self.request;
        self.services
            .store
            .record_meeting(self.lease, &r.correlation_id, key, &entry)
            .await?;
        count_meeting(entry.stage);
        Ok(entry)
    }
}

/// Meetings by outcome, counted where the outcome is journaled, so every path counts exactly once.
fn count_meeting(stage: MeetingStage) {
    let outcome = match stage {
        MeetingStage::Skipped => "skipped",
        MeetingStage::Unchanged => "unchanged",
        MeetingStage::Sent => "updated",
        MeetingStage::Failed => "failed",
        MeetingStage::Saving | MeetingStage::Saved => return,
    };
    metrics::counter!(MEETINGS_TOTAL, "outcome" => outcome).increment(1);
}

/// Look up the organizer and refuse what MMS cannot migrate (X1) before touching the mailbox.
pub async fn load_organizer(
    services: &Services,
    request: &MigrationRequest,
) -> Result<(UserProfile, Option<Bridge>), RunError> {
    let store = &services.store;
    let profile = store.user(&request.tenant, &request.user).await?.ok_or_else(|| {
        RunError::Permanent(format!(
            "user {} is not in the directory of tenant {}: import the user (mmsctl import-users) and start the migration again",
            request.user, request.tenant
        ))
    })?;
    if profile.mailbox == MailboxLocation::ExchangeOnPremises {
        return Err(RunError::Permanent(format!(
            "X1: the mailbox of {} is hosted in Exchange on-premises, which MMS cannot reach; the user can migrate their own meetings with the Meeting Migration Tool",
            request.user
        )));
    }
    let bridge = match &profile.audio.bridge {
        Some(id) => store.bridge(&request.tenant, id).await?,
        None => None,
    };
    Ok((profile, bridge))
}

/// Migrate every meeting of the mailbox, page by page; `status` is kept current and written after
/// every page. Returns the final journal.
pub async fn migrate_mailbox(
    attempt: &Attempt<'_>,
    organizer: &UserProfile,
    bridge: Option<&Bridge>,
    status: &mut MigrationStatus,
) -> Result<HashMap<String, JournalEntry>, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let mut journal = services
        .store
        .journal(&request.tenant, &request.correlation_id)
        .await?;
    let page_size = services.config.concurrency.search_page_size.max(1);
    let parallel = services.config.concurrency.meetings_per_user.max(1);
    let mut cursor = None;
    loop {
        attempt.check_lease()?;
        let timer = StageTimer::start("search");
        let page = match services
            .mailbox
            .search(&request.user, attempt.now, cursor.take(), page_size)
            .instrument(timer.span())
            .await
        {
            Ok(page) => {
                timer.finish("ok");
                page
            }
            Err(e) => {
                timer.finish("error");
                return Err(e.into());
            }
        };
        let todo: Vec<(MailboxItem, Option<JournalEntry>)> = page
            .items
            .into_iter()
            .filter_map(|item| {
                let prior = journal.get(&item.href).cloned();
                match &prior {
                    Some(entry) if is_final(entry.stage) => None,
                    _ => Some((item, prior)),
                }
            })
            .collect();
        let results: Vec<(String, Result<JournalEntry, RunError>)> = stream::iter(todo)
            .map(|(item, prior)| async move {
                let href = item.href.clone();
                let span = tracing::info_span!("meeting", href = %href);
                (
                    href,
                    migrate_meeting(attempt, organizer, bridge, item, prior)
                        .instrument(span)
                        .await,
                )
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        let mut first_error = None;
        for (href, result) in results {
            match result {
                Ok(entry) => {
                    journal.insert(href, entry);
                }
                Err(e) => {
                    // Keep the most severe: a lost lease beats a permanent error beats a transient one.
                    let rank = |e: &RunError| match e {
                        RunError::LeaseLost => 3,
                        RunError::Permanent(_) => 2,
                        RunError::Transient(_) => 1,
                    };
                    if first_error.as_ref().is_none_or(|f| rank(&e) > rank(f)) {
                        first_error = Some(e);
                    }
                }
            }
        }
        tally(status, &journal);
        if let Some(e) = first_error {
            return Err(e);
        }
        status.last_message = format!("In progress: {} meetings handled", status.meetings.len());
        status.modified_date = Utc::now();
        services.store.write_status(attempt.lease, status).await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(journal),
        }
    }
}

fn is_final(stage: MeetingStage) -> bool {
    matches!(
        stage,
        MeetingStage::Skipped | MeetingStage::Unchanged | MeetingStage::Sent | MeetingStage::Failed
    )
}

fn entry(stage: MeetingStage, uid: &str, summary: &str, reason: impl Into<String>) -> JournalEntry {
    JournalEntry {
        stage,
        sequence: 0,
        message_id: None,
        etag: None,
        reason: reason.into(),
        uid: uid.to_string(),
        summary: summary.to_string(),
        recipients: 0,
    }
}

/// One meeting through the stages. Per-meeting problems that retrying cannot fix (unreadable
/// iCalendar, a refused message) end in a journaled `Failed`; transient ones abort the attempt.
async fn migrate_meeting(
    attempt: &Attempt<'_>,
    organizer: &UserProfile,
    bridge: Option<&Bridge>,
    mut item: MailboxItem,
    mut prior: Option<JournalEntry>,
) -> Result<JournalEntry, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let user = &request.user;
    let key = item.href.clone();
    for _ in 0..MAX_CONFLICTS {
        attempt.check_lease()?;
        let timer = StageTimer::start("rewrite");
        let selection = match timer
            .span()
            .in_scope(|| mms_ical::select(&item.ics, user, request.source, attempt.now))
        {
            Ok(Selected::Migrate(selection)) => selection,
            Ok(Selected::Skip(skip)) => {
                timer.finish("skipped");
                let uid = skip.uid.unwrap_or_default();
                return attempt
                    .record(
                        &key,
                        entry(
                            MeetingStage::Skipped,
                            &uid,
                            &skip.summary,
                            skip.reason.to_string(),
                        ),
                    )
                    .await;
            }
            Err(e) => {
                timer.finish("error");
                return attempt
                    .record(
                        &key,
                        entry(
                            MeetingStage::Failed,
                            "",
                            "",
                            format!("unreadable iCalendar: {e}"),
                        ),
                    )
                    .await;
            }
        };
        let kind = request.target.kind_for(selection.kind);
        let mint = MintRequest {
            organizer,
            bridge,
            kind,
            meeting_uid: &selection.uid,
        };
        let coords = services
            .meetings
            .mint(&mint)
            .await
            .map_err(|e| RunError::Transient(e.to_string()))?;
        let rewritten = match timer
            .span()
            .in_scope(|| mms_ical::rewrite(&item.ics, &coords, attempt.now))
        {
            Ok(r) => r,
            Err(e) => {
                timer.finish("error");
                return attempt
                    .record(
                        &key,
                        entry(
                            MeetingStage::Failed,
                            &selection.uid,
                            &selection.summary,
                            format!("cannot rewrite: {e}"),
                        ),
                    )
                    .await;
            }
        };
        timer.finish(if rewritten.changed {
            "changed"
        } else {
            "unchanged"
        });
        let saved_by_us = matches!(
            prior.as_ref().map(|p| p.stage),
            Some(MeetingStage::Saving | MeetingStage::Saved)
        );
        if !rewritten.changed && !saved_by_us {
            let mut e = entry(
                MeetingStage::Unchanged,
                &selection.uid,
                &selection.summary,
                "already carries the target coordinates",
            );
            e.sequence = rewritten.sequence;
            return attempt.record(&key, e).await;
        }
        if let (false, Some(saved)) = (rewritten.changed, prior.as_ref()) {
            // Our earlier save is in the mailbox but its update may not have gone out. If the
            // organizer has since saved a later version (higher SEQUENCE), their client sent that
            // update, with our block in it: sending ours now would repeat a SEQUENCE.
            if selection.sequence > saved.sequence {
                let mut e = entry(
                    MeetingStage::Sent,
                    &selection.uid,
                    &selection.summary,
                    format!(
                        "saved with SEQUENCE {}; the organizer's own update (SEQUENCE {}) already carried the new block",
                        saved.sequence, selection.sequence
                    ),
                );
                e.sequence = selection.sequence;
                return attempt.record(&key, e).await;
            }
        }
        let mut progress = entry(MeetingStage::Saving, &selection.uid, &selection.summary, "");
        progress.sequence = rewritten.sequence;
        let stored_ics = if rewritten.changed {
            prior = Some(attempt.record(&key, progress.clone()).await?);
            let timer = StageTimer::start("save");
            match services
                .mailbox
                .put(user, &item.href, &rewritten.ics, &item.etag)
                .instrument(timer.span())
                .await
            {
                Ok(etag) => {
                    timer.finish("ok");
                    progress.stage = MeetingStage::Saved;
                    progress.etag = Some(etag);
                    attempt.record(&key, progress.clone()).await?;
                }
                Err(MailboxError::PreconditionFailed(_)) => {
                    // The organizer edited the meeting since we read it: re-read and rewrite their version.
                    timer.finish("conflict");
                    item = services.mailbox.get(user, &key).await?;
                    continue;
                }
                Err(MailboxError::ItemNotFound(_)) => {
                    timer.finish("gone");
                    return attempt
                        .record(
                            &key,
                            entry(
                                MeetingStage::Skipped,
                                &selection.uid,
                                &selection.summary,
                                "deleted by its organizer during the migration",
                            ),
                        )
                        .await;
                }
                Err(e) => {
                    timer.finish("error");
                    return Err(e.into());
                }
            }
            rewritten.ics
        } else {
            item.ics
        };
        return send_update(attempt, &key, &stored_ics, progress).await;
    }
    Err(RunError::Transient(format!(
        "meeting {key} changed under us {MAX_CONFLICTS} times in a row; will retry"
    )))
}

/// Send the saved meeting's update to its attendees, unless the ledger says it went out already.
async fn send_update(
    attempt: &Attempt<'_>,
    key: &str,
    ics: &str,
    mut progress: JournalEntry,
) -> Result<JournalEntry, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let timer = StageTimer::start("send");
    // Minimal adaptation to the batched API (the lead's pipeline rewrite replaces this): every
    // batch is sent (unless the ledger has it), then each batch's Message-ID is recorded.
    let policy = services.config.mail.updates();
    let context = mms_ical::UpdateContext {
        tenant: &request.tenant,
        organizer: &request.user,
        service_address: &services.config.service_address,
        max_recipients_per_message: policy.max_recipients_per_message,
        notify_declined: policy.notify_declined,
        date: Utc::now(),
    };
    let plan = match mms_ical::build_updates(ics, &context) {
        Ok(plan) => plan,
        Err(e) => {
            timer.finish("error");
            progress.stage = MeetingStage::Failed;
            progress.reason = format!("saved, but the update message cannot be built: {e}");
            return attempt.record(key, progress).await;
        }
    };
    progress.stage = MeetingStage::Sent;
    progress.recipients = plan.recipient_count() as u32;
    let not_notified: Vec<String> = plan.not_notified.iter().map(|n| n.to_string()).collect();
    if plan.batches.is_empty() {
        timer.finish("no_recipients");
        progress.reason = if not_notified.is_empty() {
            "no attendees to notify".into()
        } else {
            format!(
                "no attendees to notify; not notified: {}",
                not_notified.join("; ")
            )
        };
        return attempt.record(key, progress).await;
    }
    let mut refusals: Vec<String> = Vec::new();
    for message in &plan.batches {
        attempt.check_lease()?;
        if services
            .store
            .was_sent(&request.tenant, &request.user, &message.message_id)
            .await?
        {
            continue;
        }
        match services.sender.send(message).instrument(timer.span()).await {
            Ok(report) => {
                if let Some(transient) = report.refused.iter().find(|r| !r.permanent) {
                    timer.finish("error");
                    return Err(RunError::Transient(format!(
                        "sending the update of {key}: relay deferred {}: {}",
                        transient.recipient, transient.reply
                    )));
                }
                progress.recipients = progress
                    .recipients
                    .saturating_sub(report.refused.len() as u32);
                refusals.extend(
                    report
                        .refused
                        .iter()
                        .map(|r| format!("{} refused: {}", r.recipient, r.reply)),
                );
            }
            Err(SendError::Transient(m)) => {
                timer.finish("error");
                return Err(RunError::Transient(format!(
                    "sending the update of {key}: {m}"
                )));
            }
            Err(SendError::Permanent(m)) => {
                timer.finish("refused");
                progress.stage = MeetingStage::Failed;
                progress.message_id = None;
                progress.reason = format!("saved, but the mail relay refused the update: {m}");
                return attempt.record(key, progress).await;
            }
        }
    }
    timer.finish("ok");
    let notes: Vec<String> = refusals.into_iter().chain(not_notified).collect();
    if !notes.is_empty() {
        progress.reason = format!("not notified: {}", notes.join("; "));
    }
    for message in &plan.batches {
        progress.message_id = Some(message.message_id.clone());
        record_sent_persistently(attempt, key, &progress).await?;
    }
    count_meeting(progress.stage);
    Ok(progress)
}

/// Once SMTP has accepted an update, recording it is what stands between us and a resend: ride
/// out a short Redis outage (a restart, a failover) rather than give up at the first error.
async fn record_sent_persistently(
    attempt: &Attempt<'_>,
    key: &str,
    progress: &JournalEntry,
) -> Result<(), RunError> {
    let mut delay = std::time::Duration::from_millis(100);
    for _ in 0..12 {
        attempt.check_lease()?;
        match attempt
            .services
            .store
            .record_sent(
                attempt.lease,
                &attempt.request.correlation_id,
                key,
                progress,
            )
            .await
        {
            Ok(()) => return Ok(()),
            Err(StoreError::LeaseLost { .. }) => return Err(RunError::LeaseLost),
            Err(e) => {
                tracing::warn!(error = %e, meeting = key, "recording a sent update failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(2));
            }
        }
    }
    Err(RunError::Transient(format!(
        "the update of {key} was sent but could not be recorded; Redis unavailable"
    )))
}

/// Recompute the status counters and per-meeting list from the journal, so they stay exact across
/// resumes and retries (M2).
pub fn tally(status: &mut MigrationStatus, journal: &HashMap<String, JournalEntry>) {
    let mut meetings: Vec<MeetingOutcome> = journal
        .iter()
        .map(|(href, e)| {
            let outcome = match e.stage {
                MeetingStage::Skipped => MeetingOutcomeKind::Skipped,
                MeetingStage::Unchanged => MeetingOutcomeKind::Unchanged,
                MeetingStage::Sent => MeetingOutcomeKind::Updated,
                MeetingStage::Failed => MeetingOutcomeKind::Failed,
                // Saved but not yet sent: still in progress; counted as failed only if the attempt ends here.
                MeetingStage::Saving | MeetingStage::Saved => MeetingOutcomeKind::Failed,
            };
            let reason = match e.stage {
                MeetingStage::Saving | MeetingStage::Saved => {
                    "saved; update not sent yet".to_string()
                }
                _ => e.reason.clone(),
            };
            MeetingOutcome {
                uid: e.uid.clone(),
                href: href.clone(),
                summary: e.summary.clone(),
                outcome,
                reason,
                sequence: Some(e.sequence),
                recipients: e.recipients,
            }
        })
        .collect();
    meetings.sort_by(|a, b| a.href.cmp(&b.href));
    let count = |k: MeetingOutcomeKind| meetings.iter().filter(|m| m.outcome == k).count() as u32;
    status.succeeded_meeting =
        count(MeetingOutcomeKind::Updated) + count(MeetingOutcomeKind::Unchanged);
    status.failed_meeting = count(MeetingOutcomeKind::Failed);
    status.total_meeting = status.succeeded_meeting + status.failed_meeting;
    status.invites_update = journal
        .values()
        .filter(|e| e.stage == MeetingStage::Sent && e.message_id.is_some())
        .count() as u32;
    status.meetings = meetings;
}

/// A short summary for LastMessage.
pub fn summary_message(status: &MigrationStatus) -> String {
    let skipped = status
        .meetings
        .iter()
        .filter(|m| m.outcome == MeetingOutcomeKind::Skipped)
        .count();
    format!(
        "Completed: {} of {} meetings migrated ({} updates sent), {} failed, {} skipped",
        status.succeeded_meeting,
        status.total_meeting,
        status.invites_update,
        status.failed_meeting,
        skipped
    )
}
