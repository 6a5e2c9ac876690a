//! An undo (issue 9.2) is a migration of its own (`MigrationType::Undo`, `Trigger::Undo`): the
//! same actor, lease, fencing, exactly-once journal, pending updates and iMIP delivery as a
//! migration ([`crate::pipeline`]), with another source of work. Instead of searching the
//! mailbox and minting, it pages through the pre-images the undone migration recorded
//! (`mms_store::undo`) — exactly the meetings that migration saved — reads each meeting by href
//! and lets [`mms_ical::undo`] put the old block back; [`decide::after_undo`] says what to do.
//!
//! The undo's own update raises SEQUENCE over what the meeting holds now, so its Message-IDs
//! differ from the migration's, and the sent ledger keeps a repeated undo from resending. An
//! undo records no pre-image of its own: an undo is not undone (start a migration instead).

use futures::stream::{self, StreamExt};
use mms_core::{MailboxError, MeetingPreImage, MigrationStatus, SourceMeetingType};
use mms_store::journal::{JournalCursor, JournalEntry, MeetingStage, MeetingWrite};
use tracing::Instrument;

use crate::decide::{self, AfterUndo};
use crate::pipeline::{
    act, entry, is_final, owed_update, page_priors, selected_or_entry, settle_page, Attempt, Done,
    MailboxContext, MeetingFacts, RunError, Step, MAX_CONFLICTS,
};
use crate::tally::JournalTally;
use crate::telemetry::StageTimer;

/// Undo, meeting by meeting, what migration `undone` of this user saved; `status` is kept
/// current and written after every page, as a migration's.
pub async fn undo_mailbox(
    attempt: &Attempt<'_>,
    context: &MailboxContext<'_>,
    status: &mut MigrationStatus,
    undone: &str,
) -> Result<JournalTally, RunError> {
    let services = attempt.services;
    let request = attempt.request;
    let mut tally =
        JournalTally::load(&services.store, &request.tenant, &request.correlation_id).await?;
    let page_size = services.config.concurrency.search_page_size;
    let parallel = services.config.concurrency.meetings_per_user;
    let mut cursor = JournalCursor::START;
    loop {
        attempt.check_lease()?;
        let page = services
            .store
            .pre_images_page(&request.tenant, undone, cursor, page_size)
            .await?;
        let hrefs: Vec<&str> = page.entries.iter().map(|(href, _)| href.as_str()).collect();
        let priors = page_priors(attempt, &hrefs).await?;
        let todo: Vec<(String, MeetingPreImage, Option<JournalEntry>)> = page
            .entries
            .into_iter()
            .filter_map(|(href, image)| {
                let prior = priors.get(&href).cloned();
                match &prior {
                    Some(entry) if is_final(entry.stage) => None,
                    _ => Some((href, image, prior)),
                }
            })
            .collect();
        let results: Vec<(String, Result<Done, RunError>)> = stream::iter(todo)
            .map(|(href, image, prior)| async move {
                let span = tracing::info_span!("meeting", href = %href, undo_of = %undone);
                let result = undo_meeting(attempt, context, &href, &image, prior)
                    .instrument(span)
                    .await;
                (href, result)
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        settle_page(attempt, results, Vec::new(), &priors, &mut tally, status).await?;
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    tally.owed_at_the_end()?;
    Ok(tally)
}

/// One meeting of an undo: read it, check it is still the organizer's live meeting (the same
/// selection rules as a migration: not cancelled, not past), put the old block back, save and
/// send as a migration does.
async fn undo_meeting(
    attempt: &Attempt<'_>,
    context: &MailboxContext<'_>,
    href: &str,
    image: &MeetingPreImage,
    prior: Option<JournalEntry>,
) -> Result<Done, RunError> {
    let services = attempt.services;
    let user = &attempt.request.user;
    let mut pending = context.pending.get(href).cloned();
    let mut owed = owed_update(prior.as_ref(), pending.as_ref());
    let later = |entry| Ok(Done::WithPage(Box::new(MeetingWrite::new(href, entry))));
    let mut item = match services.mailbox.get(user, href).await {
        Ok(item) => item,
        Err(MailboxError::ItemNotFound(_)) => {
            return later(entry(
                MeetingStage::Skipped,
                &image.uid,
                "",
                "deleted since the migration: nothing to undo",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    for _ in 0..MAX_CONFLICTS {
        attempt.check_lease()?;
        let timer = StageTimer::start("rewrite");
        let selected = timer
            .span()
            .in_scope(|| mms_ical::select(&item.ics, user, SourceMeetingType::All, attempt.now));
        let (selection, timer) =
            match selected_or_entry(timer, selected, "not undone: ", &image.uid) {
                Ok(selected) => selected,
                Err(journaled) => return later(*journaled),
            };
        let undone = timer
            .span()
            .in_scope(|| mms_ical::undo(&item.ics, image, attempt.now));
        let (action, restored) = match decide::after_undo(undone, owed, context.notifier) {
            AfterUndo::Skip { reason } => {
                timer.finish("skipped");
                return later(entry(
                    MeetingStage::Skipped,
                    &selection.uid,
                    &selection.summary,
                    reason,
                ));
            }
            AfterUndo::Act { action, restored } => (action, restored),
        };
        let facts = MeetingFacts {
            key: href,
            selection: &selection,
            unchanged: "already as before the migration: nothing to undo",
        };
        match act(
            attempt,
            &facts,
            item,
            restored,
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
    Err(RunError::Conflicts(href.to_string()))
}
