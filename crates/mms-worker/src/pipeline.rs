//! The stages of one migration (D5): search → select → mint → rewrite → save → send, per meeting,
//! journaled. What to do with each meeting is decided by the pure functions of
//! [`crate::decide`], which the what-if preview shares; this module does the I/O around them.
//!
//! Resumability and "exactly once" rest on four facts:
//! 1. Every meeting's progress is journaled in Redis under the migration's correlation id, fenced
//!    by the mailbox lease. A resumed migration (another worker, a retry) skips meetings whose
//!    journal entry is final.
//! 2. Coordinates are minted deterministically per meeting, so re-rewriting an already-saved
//!    meeting is a no-op (`changed == false`, decided by meaning, not bytes).
//! 3. A saved meeting whose update has not reached every attendee is *owed*: `Saving` is journaled
//!    before the PUT together with a per-user pending record, which only the write that records
//!    the last batch as delivered clears. Any later run of the user (a retry, a resumed attempt,
//!    a new migration, a manual start) finds it and sends the update although the text is
//!    already rewritten.
//! 4. An update goes out in batches of at most `mail.max_recipients_per_message` recipients, each
//!    its own message with a deterministic Message-ID. The user's sent ledger records each batch
//!    once the relay took it (with the recipients it refused for a while, which a later send
//!    retries alone), in the same fenced script as the journal. The one window left: the relay
//!    accepted a batch and the worker died before that script ran; the resend then carries the
//!    same Message-ID (ARCHITECTURE.md, "Exactly once").

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use mms_core::{
    Bridge, MailboxError, MailboxItem, MailboxLocation, MeetingServiceError, MigrationRequest,
    MigrationStatus, MintRequest, OutgoingMessage, SendError, UserProfile,
};
use mms_ical::imip::{UpdateContext, UpdatePlan};
use mms_store::journal::{JournalEntry, MeetingStage, MeetingWrite, PendingChange, PendingUpdate};
use mms_store::lease::Lease;
use mms_store::StoreError;
use tracing::Instrument;

use crate::decide::{self, Action, AfterMint, AfterSelect, Notifier, OwedUpdate};
use crate::lease_keeper::LeaseKeeper;
use crate::tally::JournalTally;
use crate::telemetry::{self, FailureReason, FailureScope, SmtpRefusal, StageTimer};
use crate::Services;

/// How often one meeting may change under us (412) before the attempt gives up and retries later.
pub(crate) const MAX_CONFLICTS: usize = 5;
/// Sends of one batch to recipients the relay deferred (4xx on RCPT), within one attempt.
const DEFERRED_ROUNDS: usize = 3;
/// Above this many attendees the update is built on a blocking thread, off the async runtime.
const BLOCKING_BUILD_ATTENDEES: usize = 500;
/// Refused recipients named in a meeting's reason; the rest are counted.
const NAMED_REFUSALS: usize = 3;

/// Why an attempt stopped early. Each variant keeps its cause, so the status's LastMessage and
/// the log show the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error(transparent)]
    Store(StoreError),
    #[error("the meeting platform is unavailable: {0}")]
    Platform(MeetingServiceError),
    #[error("sending the update of {meeting}: {source}")]
    Send {
        meeting: String,
        #[source]
        source: SendError,
    },
    /// The organizer cannot be migrated as the directory stands (unknown user, X1, a domain the
    /// tenant does not own): retrying will not help.
    #[error("{0}")]
    Organizer(String),
    #[error("meeting {0} changed under us {MAX_CONFLICTS} times in a row; will retry")]
    Conflicts(String),
    /// Updates that reached some attendees but not all; `transient` when the relay deferred them.
    #[error("{summary}")]
    UpdatesOwed { summary: String, transient: bool },
    #[error("internal error: {0}")]
    Panic(String),
    /// Our mailbox lease is gone: stop without writing anything more.
    #[error("mailbox lease lost")]
    LeaseLost,
}

impl RunError {
    /// Permanent errors end the migration Failed at once; the others go through the retry policy.
    pub fn is_permanent(&self) -> bool {
        match self {
            RunError::Mailbox(e) => e.is_permanent(),
            RunError::Organizer(_) => true,
            RunError::UpdatesOwed { transient, .. } => !transient,
            RunError::Send { source, .. } => matches!(source, SendError::Permanent(_)),
            _ => false,
        }
    }

    /// Which of two errors of one page to report: a lost lease beats a permanent error beats a
    /// transient one.
    fn severity(&self) -> u8 {
        match self {
            RunError::LeaseLost => 3,
            e if e.is_permanent() => 2,
            _ => 1,
        }
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost { .. } => RunError::LeaseLost,
            other => RunError::Store(other),
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
    pub(crate) fn check_lease(&self) -> Result<(), RunError> {
        if self.keeper.is_lost() {
            Err(RunError::LeaseLost)
        } else {
            Ok(())
        }
    }

    /// Journal one meeting now (with its pending-update change and the batches SMTP accepted),
    /// fenced by the lease.
    async fn record(&self, write: MeetingWrite) -> Result<JournalEntry, RunError> {
        self.check_lease()?;
        self.services
            .store
            .record_meetings(
                self.lease,
                &self.request.correlation_id,
                std::slice::from_ref(&write),
            )
            .await?;
        count_meeting(write.entry.stage);
        Ok(write.entry)
    }
}

/// Meetings by outcome, counted where the outcome is journaled, so every path counts exactly once.
fn count_meeting(stage: MeetingStage) {
    let outcome = match stage {
        MeetingStage::Skipped => telemetry::MeetingOutcome::Skipped,
        MeetingStage::Unchanged => telemetry::MeetingOutcome::Unchanged,
        MeetingStage::Sent => telemetry::MeetingOutcome::Updated,
        MeetingStage::Failed => telemetry::MeetingOutcome::Failed,
        MeetingStage::Saving | MeetingStage::Saved => return,
    };
    telemetry::meeting_finished(outcome, None);
}

/// A meeting failed: logged at warn with its reason, counted by kind (no identity in labels).
fn meeting_failed(href: &str, entry: &JournalEntry) {
    tracing::warn!(meeting = %href, uid = %entry.uid, reason = %entry.reason, "meeting failed");
    let reason = if entry.undelivered > 0 {
        FailureReason::SmtpRefused
    } else {
        FailureReason::InvalidEvent
    };
    telemetry::failed(FailureScope::Meeting, reason);
}

/// Look up the organizer and refuse what MMS cannot or may not migrate (X1, another tenant's
/// domain) before touching the mailbox.
pub async fn load_organizer(
    services: &Services,
    request: &MigrationRequest,
) -> Result<(UserProfile, Option<Bridge>), RunError> {
    let store = &services.store;
    let profile = store.user(&request.tenant, &request.user).await?.ok_or_else(|| {
        RunError::Organizer(format!(
            "user {} is not in the directory of tenant {}: import the user (mmsctl import-users) and start the migration again",
            request.user, request.tenant
        ))
    })?;
    // The tenant boundary (see mms_store::domains): a user record, however it got into this
    // tenant's directory, opens only a mailbox in a domain the operator gave this tenant.
    if !store.owns_upn(&request.tenant, &profile.upn).await? {
        return Err(RunError::Organizer(format!(
            "tenant {} does not own the mail domain of {}: the operator assigns a tenant its domains (mmsctl set-tenant-domains); nothing in the mailbox was touched",
            request.tenant, profile.upn
        )));
    }
    if profile.mailbox == MailboxLocation::ExchangeOnPremises {
        return Err(RunError::Organizer(format!(
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

/// Who tells the attendees about this user's saved meetings: the mailbox server when it schedules
/// implicitly (RFC 6638), else MMS.
pub async fn notifier(services: &Services, user: &str) -> Result<Notifier, RunError> {
    Ok(if services.mailbox.server_sends_updates(user).await? {
        Notifier::Server
    } else {
        Notifier::Mms
    })
}

/// What the attempt knows before the first meeting: the organizer, their bridge, who notifies,
/// and the updates owed from earlier runs.
pub struct MailboxContext<'a> {
    pub organizer: &'a UserProfile,
    pub bridge: Option<&'a Bridge>,
    pub notifier: Notifier,
    pub pending: BTreeMap<String, PendingUpdate>,
}

/// Migrate every meeting of the mailbox, page by page; `status` is kept current and written after
/// every page. Ends `Ok` only when every selected meeting is done and every update delivered.
pub async fn migrate_mailbox(
    attempt: &Attempt<'_>,
    context: &MailboxContext<'_>,
    status: &mut MigrationStatus,
) -> Result<JournalTally, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let mut tally =
        JournalTally::load(&services.store, &request.tenant, &request.correlation_id).await?;
    let page_size = services.config.concurrency.search_page_size;
    let parallel = services.config.concurrency.meetings_per_user;
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
        // What this migration journaled for the page's meetings before (a resumed attempt):
        // one read per page, so the worker never holds the whole journal.
        let hrefs: Vec<&str> = page
            .items
            .iter()
            .map(|item| item.href.as_str())
            .chain(page.unreadable.iter().map(|bad| bad.href.as_str()))
            .collect();
        let priors = page_priors(attempt, &hrefs).await?;
        // Meetings without side effects are journaled together, in one script per page.
        let mut with_page: Vec<MeetingWrite> = Vec::new();
        // A resource the connector could not read (not UTF-8, too large) is that meeting's
        // outcome; the rest of the page goes on.
        for bad in page.unreadable {
            if priors.get(&bad.href).is_some_and(|e| is_final(e.stage)) {
                continue;
            }
            tracing::warn!(meeting = %bad.href, problem = %bad.problem, "meeting unreadable");
            let failed = entry(MeetingStage::Failed, "", "", bad.problem.to_string());
            with_page.push(MeetingWrite::new(bad.href, failed));
        }
        let todo: Vec<(MailboxItem, Option<JournalEntry>)> = page
            .items
            .into_iter()
            .filter_map(|item| {
                let prior = priors.get(&item.href).cloned();
                match &prior {
                    Some(entry) if is_final(entry.stage) => None,
                    _ => Some((item, prior)),
                }
            })
            .collect();
        let results: Vec<(String, Result<Done, RunError>)> = stream::iter(todo)
            .map(|(item, prior)| async move {
                let href = item.href.clone();
                let span = tracing::info_span!("meeting", href = %href);
                (
                    href,
                    migrate_meeting(attempt, context, item, prior)
                        .instrument(span)
                        .await,
                )
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        settle_page(attempt, results, with_page, &priors, &mut tally, status).await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tally.owed_at_the_end()?;
    Ok(tally)
}

/// The journal entries this migration already has for `hrefs`, by href (absent: none yet).
pub(crate) async fn page_priors(
    attempt: &Attempt<'_>,
    hrefs: &[&str],
) -> Result<HashMap<String, JournalEntry>, RunError> {
    let request = attempt.request;
    let entries = attempt
        .services
        .store
        .journal_entries(&request.tenant, &request.correlation_id, hrefs)
        .await?;
    Ok(hrefs
        .iter()
        .zip(entries)
        .filter_map(|(href, entry)| entry.map(|entry| (href.to_string(), entry)))
        .collect())
}

/// A page's meetings are done: journal those that wait for the page (one fenced script), count
/// them, recompute the status from the journal and write it. The worst error of the page, if
/// any, ends the attempt after the page's journal is written.
pub(crate) async fn settle_page(
    attempt: &Attempt<'_>,
    results: Vec<(String, Result<Done, RunError>)>,
    mut with_page: Vec<MeetingWrite>,
    priors: &HashMap<String, JournalEntry>,
    tally: &mut JournalTally,
    status: &mut MigrationStatus,
) -> Result<(), RunError> {
    let request = attempt.request;
    let mut worst: Option<RunError> = None;
    for (href, result) in results {
        match result {
            Ok(Done::Recorded(entry)) => {
                if entry.stage == MeetingStage::Failed {
                    meeting_failed(&href, &entry);
                }
                tally.record(&href, priors.get(&href), entry);
            }
            Ok(Done::WithPage(write)) => with_page.push(*write),
            Err(e) => {
                if worst.as_ref().is_none_or(|w| e.severity() > w.severity()) {
                    worst = Some(e);
                }
            }
        }
    }
    if !with_page.is_empty() {
        attempt.check_lease()?;
        attempt
            .services
            .store
            .record_meetings(attempt.lease, &request.correlation_id, &with_page)
            .await?;
        for write in with_page {
            if write.entry.stage == MeetingStage::Failed {
                meeting_failed(&write.key, &write.entry);
            }
            count_meeting(write.entry.stage);
            tally.record(&write.key, priors.get(&write.key), write.entry);
        }
    }
    tally.apply(status);
    if let Some(e) = worst {
        return Err(e);
    }
    status.last_message = format!("In progress: {} meetings handled", tally.handled());
    status.modified_date = Utc::now();
    attempt
        .services
        .store
        .write_status(attempt.lease, status)
        .await?;
    Ok(())
}

pub(crate) fn is_final(stage: MeetingStage) -> bool {
    matches!(
        stage,
        MeetingStage::Skipped | MeetingStage::Unchanged | MeetingStage::Sent | MeetingStage::Failed
    )
}

pub(crate) fn entry(
    stage: MeetingStage,
    uid: &str,
    summary: &str,
    reason: impl Into<String>,
) -> JournalEntry {
    JournalEntry {
        stage,
        sequence: 0,
        message_id: None,
        etag: None,
        reason: reason.into(),
        uid: uid.to_string(),
        summary: summary.to_string(),
        recipients: 0,
        undelivered: 0,
    }
}

/// What is owed for this meeting: an earlier save of this migration whose update is not
/// delivered, or one of an earlier migration of the user.
pub(crate) fn owed_update(
    prior: Option<&JournalEntry>,
    pending: Option<&PendingUpdate>,
) -> Option<OwedUpdate> {
    let from_journal = prior
        .filter(|p| matches!(p.stage, MeetingStage::Saving | MeetingStage::Saved))
        .map(|p| p.sequence);
    from_journal
        .or(pending.map(|p| p.sequence))
        .map(|saved_sequence| OwedUpdate { saved_sequence })
}

/// How one meeting ended in this attempt.
pub(crate) enum Done {
    /// Journaled already: the meeting had side effects (a save, a send) that had to be recorded
    /// before anything else happened.
    Recorded(JournalEntry),
    /// To be journaled with the rest of the page in one script: a skip, an unchanged meeting, a
    /// failure before any write. A worker dying before that script runs only makes the next
    /// attempt decide the same again.
    WithPage(Box<MeetingWrite>),
}

/// One meeting through the stages. Per-meeting problems that retrying cannot fix (unreadable
/// iCalendar, a refused mint, a refused message) end in `Failed`; transient ones abort the
/// attempt.
async fn migrate_meeting(
    attempt: &Attempt<'_>,
    context: &MailboxContext<'_>,
    mut item: MailboxItem,
    prior: Option<JournalEntry>,
) -> Result<Done, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let user = &request.user;
    let key = item.href.clone();
    let mut pending = context.pending.get(&key).cloned();
    let mut owed = owed_update(prior.as_ref(), pending.as_ref());
    let later = |entry| {
        Ok(Done::WithPage(Box::new(MeetingWrite::new(
            key.clone(),
            entry,
        ))))
    };
    for _ in 0..MAX_CONFLICTS {
        attempt.check_lease()?;
        let timer = StageTimer::start("rewrite");
        let selected = timer
            .span()
            .in_scope(|| mms_ical::select(&item.ics, user, request.source, attempt.now));
        let (selection, timer) = match selected_or_entry(timer, selected, "", "") {
            Ok(selected) => selected,
            Err(journaled) => return later(*journaled),
        };
        let mint = MintRequest {
            organizer: context.organizer,
            bridge: context.bridge,
            kind: request.target.kind_for(selection.kind),
            meeting_uid: &selection.uid,
        };
        let coords = match decide::after_mint(services.meetings.mint(&mint).await) {
            AfterMint::Rewrite(coords) => coords,
            AfterMint::Fail { reason } => {
                timer.finish("refused");
                return later(entry(
                    MeetingStage::Failed,
                    &selection.uid,
                    &selection.summary,
                    reason,
                ));
            }
            AfterMint::Unavailable { reason } => {
                timer.finish("error");
                return Err(RunError::Platform(MeetingServiceError::Unavailable(
                    format!("minting coordinates for {key}: {reason}"),
                )));
            }
        };
        let rewritten = timer
            .span()
            .in_scope(|| mms_ical::rewrite(&item.ics, &coords, attempt.now));
        let action = decide::after_rewrite(rewritten.as_ref(), owed, context.notifier);
        let facts = MeetingFacts {
            key: &key,
            selection: &selection,
            unchanged: "already carries the target coordinates",
        };
        match act(
            attempt,
            &facts,
            item,
            rewritten,
            action,
            &mut owed,
            &mut pending,
            timer,
        )
        .await?
        {
            Step::Done(done) => return Ok(done),
            Step::Reread(reread) => item = reread,
        }
    }
    Err(RunError::Conflicts(key))
}

/// The selection of a meeting, with its stage timer still running, or the journal entry that
/// says why there is none (the timer finished): a skip (its reason after `skip_prefix`) or a
/// failure (named by `failed_uid`, which may be empty).
pub(crate) fn selected_or_entry(
    timer: StageTimer,
    selected: Result<mms_ical::Selected, mms_ical::IcalError>,
    skip_prefix: &str,
    failed_uid: &str,
) -> Result<(mms_ical::Selection, StageTimer), Box<JournalEntry>> {
    match decide::after_select(selected) {
        AfterSelect::Mint(selection) => Ok((selection, timer)),
        AfterSelect::Skip {
            uid,
            summary,
            reason,
        } => {
            timer.finish("skipped");
            Err(Box::new(entry(
                MeetingStage::Skipped,
                &uid,
                &summary,
                format!("{skip_prefix}{reason}"),
            )))
        }
        AfterSelect::Fail { reason } => {
            timer.finish("error");
            Err(Box::new(entry(
                MeetingStage::Failed,
                failed_uid,
                "",
                reason,
            )))
        }
    }
}

/// What a meeting's decision is carried out with: its key, what selection found, and how an
/// unchanged meeting is described (a migration's and an undo's words differ).
pub(crate) struct MeetingFacts<'a> {
    pub key: &'a str,
    pub selection: &'a mms_ical::Selection,
    pub unchanged: &'a str,
}

/// Where [`act`] leaves a meeting.
pub(crate) enum Step {
    Done(Done),
    /// The organizer saved the meeting since it was read (412): decide again on this version.
    Reread(MailboxItem),
}

/// Carries out `action` for one meeting (the I/O of question 3, shared by a migration and an
/// undo): journal, save with If-Match, deliver. `rewritten` is the new text; its pre-image, when
/// it has one, is journaled with the `Saving` entry, before the PUT.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn act(
    attempt: &Attempt<'_>,
    facts: &MeetingFacts<'_>,
    item: MailboxItem,
    rewritten: Result<mms_ical::Rewritten, mms_ical::IcalError>,
    action: Action,
    owed: &mut Option<OwedUpdate>,
    pending: &mut Option<PendingUpdate>,
    timer: StageTimer,
) -> Result<Step, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let user = &request.user;
    let key = facts.key.to_string();
    let selection = facts.selection;
    let later = |entry| {
        Ok(Step::Done(Done::WithPage(Box::new(MeetingWrite::new(
            key.clone(),
            entry,
        )))))
    };
    let mut progress = entry(MeetingStage::Saving, &selection.uid, &selection.summary, "");
    match action {
        Action::Fail { reason } => {
            timer.finish("error");
            progress.stage = MeetingStage::Failed;
            progress.reason = reason;
            later(progress)
        }
        Action::Unchanged => {
            timer.finish("unchanged");
            progress.stage = MeetingStage::Unchanged;
            progress.sequence = selection.sequence;
            progress.reason = facts.unchanged.into();
            later(progress)
        }
        Action::OwedButSuperseded { saved, current } => {
            timer.finish("unchanged");
            progress.stage = MeetingStage::Sent;
            progress.sequence = current;
            progress.reason = format!(
                "saved with SEQUENCE {saved}; the organizer's own update (SEQUENCE {current}) already carried the new block"
            );
            let write = MeetingWrite::new(key.clone(), progress).with_pending(PendingChange::Clear);
            return attempt
                .record(write)
                .await
                .map(|e| Step::Done(Done::Recorded(e)));
        }
        Action::NotifyOwed { sequence, notifier } => {
            timer.finish("owed");
            progress.stage = MeetingStage::Saved;
            progress.sequence = sequence;
            let pending = pending
                .take()
                .unwrap_or_else(|| pending_update(selection, sequence, &request.correlation_id));
            let delivery = Delivery {
                key: &key,
                ics: item.ics,
                attendees: selection.attendees,
                notifier,
                pending,
                fresh: false,
            };
            return deliver(attempt, delivery, progress)
                .await
                .map(|e| Step::Done(Done::Recorded(e)));
        }
        Action::SaveAndNotify { sequence, notifier } => {
            timer.finish("changed");
            let Ok(rewritten) = rewritten else {
                unreachable!("SaveAndNotify comes from a successful rewrite")
            };
            progress.sequence = sequence;
            // Saving and the pending update in one script, before the PUT: if we die after
            // the PUT, any later run finds the update owed.
            let update = pending_update(selection, sequence, &request.correlation_id);
            let fresh = owed.is_none();
            let mut saving = MeetingWrite::new(key.clone(), progress.clone())
                .with_pending(PendingChange::Set(update.clone()));
            if !rewritten.pre_image.is_empty() {
                saving = saving.with_pre_image(rewritten.pre_image.clone());
            }
            attempt.record(saving).await?;
            *owed = Some(OwedUpdate {
                saved_sequence: sequence,
            });
            *pending = Some(update.clone());
            attempt.check_lease()?;
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
                    let delivery = Delivery {
                        key: &key,
                        ics: rewritten.ics,
                        attendees: selection.attendees,
                        notifier,
                        pending: update,
                        fresh,
                    };
                    return deliver(attempt, delivery, progress)
                        .await
                        .map(|e| Step::Done(Done::Recorded(e)));
                }
                Err(MailboxError::PreconditionFailed(_)) => {
                    // The organizer edited the meeting since we read it: re-read and rewrite
                    // their version (the owed marker stays: our PUT may have gone through
                    // before the conflict was reported).
                    timer.finish("conflict");
                    return match services.mailbox.get(user, &key).await {
                        Ok(item) => Ok(Step::Reread(item)),
                        Err(MailboxError::ItemNotFound(_)) => {
                            deleted_meanwhile(attempt, &key, selection)
                                .await
                                .map(Step::Done)
                        }
                        Err(e) => Err(e.into()),
                    };
                }
                Err(MailboxError::ItemNotFound(_)) => {
                    timer.finish("gone");
                    return deleted_meanwhile(attempt, &key, selection)
                        .await
                        .map(Step::Done);
                }
                Err(e) => {
                    timer.finish("error");
                    Err(e.into())
                }
            }
        }
    }
}

fn pending_update(
    selection: &mms_ical::Selection,
    sequence: u32,
    correlation: &str,
) -> PendingUpdate {
    PendingUpdate {
        uid: selection.uid.clone(),
        sequence,
        correlation_id: correlation.to_string(),
        saved_at: Utc::now(),
        message_ids_sent: Vec::new(),
        owed: BTreeMap::new(),
    }
}

/// The organizer deleted the meeting while we worked on it: nothing to save or tell anyone.
async fn deleted_meanwhile(
    attempt: &Attempt<'_>,
    key: &str,
    selection: &mms_ical::Selection,
) -> Result<Done, RunError> {
    let skipped = entry(
        MeetingStage::Skipped,
        &selection.uid,
        &selection.summary,
        "deleted by its organizer during the migration",
    );
    let write = MeetingWrite::new(key, skipped).with_pending(PendingChange::Clear);
    attempt.record(write).await.map(Done::Recorded)
}

/// Build the update of a saved meeting: batches of at most `mail.max_recipients_per_message`
/// recipients. Large meetings are built on a blocking thread, off the async runtime.
async fn build_plan(
    services: &Services,
    request: &MigrationRequest,
    ics: String,
    attendees: usize,
) -> Result<Result<UpdatePlan, mms_ical::IcalError>, RunError> {
    let policy = services.config.mail.updates().clone();
    let tenant = request.tenant.clone();
    let organizer = request.user.clone();
    let service_address = services.config.service_address.clone();
    let build = move || {
        let context = UpdateContext {
            tenant: &tenant,
            organizer: &organizer,
            service_address: &service_address,
            max_recipients_per_message: policy.max_recipients_per_message,
            notify_declined: policy.notify_declined,
            date: Utc::now(),
        };
        mms_ical::build_updates(&ics, &context)
    };
    if attendees > BLOCKING_BUILD_ATTENDEES {
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| RunError::Panic(format!("building an update: {e}")))
    } else {
        Ok(build())
    }
}

/// A saved meeting whose update is to be delivered.
struct Delivery<'k> {
    key: &'k str,
    /// The meeting as saved (its update carries it).
    ics: String,
    attendees: usize,
    notifier: Notifier,
    /// What is left to send, kept current batch by batch and written with each batch.
    pending: PendingUpdate,
    /// Saved for the first time by this very attempt: nothing of its update can have been sent
    /// yet, so the ledger need not be asked.
    fresh: bool,
}

/// Deliver the saved meeting's update to every attendee, batch by batch: batches the ledger (or
/// the pending update) says went out are skipped, recipients a batch still owes are sent to
/// alone. `progress` is the meeting's `Saved` entry; the returned entry is `Sent` (all
/// delivered), `Saved` (some deferred: the attempt is retried) or `Failed` (some refused).
async fn deliver(
    attempt: &Attempt<'_>,
    mut delivery: Delivery<'_>,
    mut progress: JournalEntry,
) -> Result<JournalEntry, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let key = delivery.key;
    if delivery.notifier == Notifier::Server {
        progress.stage = MeetingStage::Sent;
        progress.reason =
            "the mailbox server sends the update itself (RFC 6638 implicit scheduling)".into();
        let write = MeetingWrite::new(key, progress).with_pending(PendingChange::Clear);
        return attempt.record(write).await;
    }
    let timer = StageTimer::start("send");
    let plan = match build_plan(services, request, delivery.ics, delivery.attendees).await? {
        Ok(plan) => plan,
        Err(e) => {
            timer.finish("error");
            progress.stage = MeetingStage::Failed;
            progress.reason = format!("saved, but the update message cannot be built: {e}");
            return attempt.record(MeetingWrite::new(key, progress)).await;
        }
    };
    let total = plan.recipient_count();
    progress.recipients = total as u32;
    progress.message_id = plan.batches.first().map(|b| b.message_id.clone());
    let not_notified = if plan.not_notified.is_empty() {
        String::new()
    } else {
        let named: Vec<String> = plan
            .not_notified
            .iter()
            .take(NAMED_REFUSALS)
            .map(|n| n.to_string())
            .collect();
        format!(
            "; not notified: {}{}",
            named.join(", "),
            more(plan.not_notified.len())
        )
    };
    if plan.batches.is_empty() {
        timer.finish("no_recipients");
        progress.stage = MeetingStage::Sent;
        progress.reason = format!("no attendees to notify{not_notified}");
        let write = MeetingWrite::new(key, progress).with_pending(PendingChange::Clear);
        return attempt.record(write).await;
    }
    let mut deferred: Vec<(String, String)> = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    // The last batch's outcome is written together with the meeting's final entry.
    let mut unrecorded_sent: Vec<String> = Vec::new();
    let batches = plan.batches.len();
    for (index, mut batch) in plan.batches.into_iter().enumerate() {
        attempt.check_lease()?;
        let id = batch.message_id.clone();
        let pending = &mut delivery.pending;
        if pending.message_ids_sent.contains(&id) {
            continue;
        }
        if !delivery.fresh
            && services
                .store
                .was_sent(&request.tenant, &request.user, &id)
                .await?
        {
            continue;
        }
        if let Some(owed) = pending.owed.get(&id) {
            batch.recipients = owed.clone();
        }
        let (still_deferred, still_refused) = send_batch(attempt, key, &mut batch)
            .instrument(timer.span())
            .await?;
        let owed: Vec<String> = still_deferred
            .iter()
            .chain(&still_refused)
            .map(|(r, _)| r.clone())
            .collect();
        let sent = if owed.is_empty() {
            pending.owed.remove(&id);
            pending.message_ids_sent.push(id.clone());
            vec![id]
        } else {
            pending.owed.insert(id, owed);
            Vec::new()
        };
        deferred.extend(still_deferred);
        refused.extend(still_refused);
        if index + 1 == batches {
            unrecorded_sent = sent;
        } else {
            // What the relay took is recorded before the next batch goes out: a crash resends
            // at most the batch in flight.
            let write = MeetingWrite::new(key, progress.clone())
                .with_sent(sent)
                .with_pending(PendingChange::Set(pending.clone()));
            record_persistently(attempt, write).await?;
        }
    }
    let undelivered = deferred.len() + refused.len();
    progress.undelivered = undelivered as u32;
    let named = |list: &[(String, String)]| {
        let shown: Vec<String> = list
            .iter()
            .take(NAMED_REFUSALS)
            .map(|(r, reply)| format!("{r} ({reply})"))
            .collect();
        shown.join(", ") + &more(list.len())
    };
    let pending_change = if undelivered == 0 {
        progress.stage = MeetingStage::Sent;
        progress.reason = format!("update sent to {total} attendees{not_notified}");
        timer.finish("ok");
        PendingChange::Clear
    } else if !deferred.is_empty() {
        timer.finish("deferred");
        progress.stage = MeetingStage::Saved;
        progress.reason = format!(
            "saved; update pending: the relay deferred {} of {total} attendees: {}{not_notified}",
            deferred.len(),
            named(&deferred)
        );
        PendingChange::Set(delivery.pending)
    } else {
        timer.finish("refused");
        progress.stage = MeetingStage::Failed;
        progress.reason = format!(
            "saved, but the relay refused the update for {} of {total} attendees: {}{not_notified}",
            refused.len(),
            named(&refused)
        );
        PendingChange::Set(delivery.pending)
    };
    let write = MeetingWrite::new(key, progress)
        .with_sent(unrecorded_sent)
        .with_pending(pending_change);
    record_persistently(attempt, write).await
}

fn more(count: usize) -> String {
    if count > NAMED_REFUSALS {
        format!(" and {} more", count - NAMED_REFUSALS)
    } else {
        String::new()
    }
}

/// A relay's refusal of one recipient: (address, the relay's reply).
type Refusal = (String, String);

/// Send one batch; recipients the relay deferred are sent again alone, a few times. Returns the
/// recipients still deferred and those refused for good.
async fn send_batch(
    attempt: &Attempt<'_>,
    key: &str,
    batch: &mut OutgoingMessage,
) -> Result<(Vec<Refusal>, Vec<Refusal>), RunError> {
    let mut refused = Vec::new();
    let mut delay = Duration::from_millis(200);
    for round in 0..DEFERRED_ROUNDS {
        attempt.check_lease()?;
        let report = match attempt.services.sender.send(batch).await {
            Ok(report) => report,
            Err(SendError::Permanent(reply)) => {
                tracing::warn!(meeting = %key, reply = %reply, "SMTP relay refused the update");
                telemetry::smtp_refused(SmtpRefusal::Permanent);
                // The whole message refused: every recipient of it is refused with that reply.
                refused.extend(batch.recipients.drain(..).map(|r| (r, reply.clone())));
                return Ok((Vec::new(), refused));
            }
            Err(e) => {
                return Err(RunError::Send {
                    meeting: key.to_string(),
                    source: e,
                })
            }
        };
        let mut deferred = Vec::new();
        for refusal in report.refused {
            tracing::warn!(meeting = %key, recipient = %refusal.recipient, reply = %refusal.reply, permanent = refusal.permanent, "SMTP relay refused a recipient");
            telemetry::smtp_refused(if refusal.permanent {
                SmtpRefusal::Permanent
            } else {
                SmtpRefusal::Transient
            });
            if refusal.permanent {
                refused.push((refusal.recipient, refusal.reply));
            } else {
                deferred.push((refusal.recipient, refusal.reply));
            }
        }
        if deferred.is_empty() || round + 1 == DEFERRED_ROUNDS {
            return Ok((deferred, refused));
        }
        batch.recipients = deferred.into_iter().map(|(r, _)| r).collect();
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last round returns")
}

/// Journal a write that follows a send. Once the relay has taken a batch, this write is what
/// stands between us and a resend, so a short Redis outage (a restart, a failover) is ridden out.
async fn record_persistently(
    attempt: &Attempt<'_>,
    write: MeetingWrite,
) -> Result<JournalEntry, RunError> {
    let mut delay = Duration::from_millis(100);
    let mut last = None;
    for _ in 0..12 {
        match attempt.record(write.clone()).await {
            Ok(entry) => return Ok(entry),
            Err(RunError::Store(e)) => {
                tracing::warn!(error = %e, meeting = %write.key, "recording a sent update failed; retrying");
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(other) => return Err(other),
        }
    }
    Err(RunError::Store(last.expect("the loop ran")))
}

/// A short summary for LastMessage, from the status's counters and the tally's skipped count.
pub fn summary_message(status: &MigrationStatus, skipped: u32) -> String {
    let done = match status.migration_type {
        mms_core::MigrationType::Undo => "undone",
        _ => "migrated",
    };
    format!(
        "Completed: {} of {} meetings {done} ({} updates sent), {} failed, {} skipped",
        status.succeeded_meeting,
        status.total_meeting,
        status.invites_update,
        status.failed_meeting,
        skipped
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_comes_from_this_journal_or_the_users_pending_updates() {
        let saved = entry(MeetingStage::Saved, "u", "s", "");
        assert!(owed_update(Some(&saved), None).is_some());
        let sent = entry(MeetingStage::Sent, "u", "s", "");
        assert!(owed_update(Some(&sent), None).is_none());
        let pending = PendingUpdate {
            uid: "u".into(),
            sequence: 4,
            correlation_id: "c".into(),
            saved_at: Utc::now(),
            message_ids_sent: Vec::new(),
            owed: BTreeMap::new(),
        };
        assert_eq!(
            owed_update(None, Some(&pending)),
            Some(OwedUpdate { saved_sequence: 4 })
        );
        assert_eq!(owed_update(None, None), None);
    }
}
