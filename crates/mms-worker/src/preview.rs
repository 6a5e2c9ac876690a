//! What-if (M5, `--what-if`): the pipeline's search → select → mint → rewrite, stopped before
//! anything is written. No lease, no journal, no `put`, no `send`: a preview can run while a real
//! migration of the same mailbox is under way without disturbing it.
//!
//! Because it calls the very functions the pipeline calls, with the same deterministic minting, a
//! preview lists what the migration started right after it would do (the mailbox permitting).
//! The what-if of an undo (issue 9.2) does the same over [`crate::undo`]'s steps: the undone
//! migration's pre-images, the meeting read by href, [`mms_ical::undo`], [`decide::after_undo`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_core::preview::{
    Preview, PreviewError, PreviewItem, PreviewOutcome, Previewer, PREVIEW_ITEM_CAP,
};
use mms_core::{BodyProperty, MeetingPreImage};
use mms_core::{
    Bridge, MailboxError, MailboxItem, MintRequest, SourceMeetingType, TargetMeetingType,
    UserProfile,
};
use mms_store::journal::{JournalCursor, PendingUpdate};
use std::collections::BTreeMap;

use crate::decide::{self, Action, AfterMint, AfterSelect, AfterUndo, Notifier, OwedUpdate};
use crate::Services;

/// Previews migrations against the mailbox and meeting service a worker would use.
pub struct MailboxPreviewer {
    services: Services,
    /// At most this many meetings per preview (the rest is reported as capped).
    limit: usize,
}

impl MailboxPreviewer {
    /// A previewer listing up to [`PREVIEW_ITEM_CAP`] meetings.
    pub fn new(services: Services) -> Self {
        MailboxPreviewer {
            services,
            limit: PREVIEW_ITEM_CAP,
        }
    }

    /// Lower the cap (at least one meeting is always listed).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// What the pipeline would do to one resource: the same decisions ([`crate::decide`]) on the
    /// same facts, with nothing written.
    async fn preview_meeting(
        &self,
        context: &PreviewContext<'_>,
        item: MailboxItem,
    ) -> Result<PreviewItem, PreviewError> {
        let href = item.href;
        let organizer = context.organizer;
        let selected = mms_ical::select(&item.ics, &organizer.upn, context.source, context.now);
        let selection = match selection_or_item(&href, selected, "", "") {
            Ok(selection) => selection,
            Err(item) => return Ok(*item),
        };
        let item_with =
            |outcome, reason, new_block| item_for(&href, &selection, outcome, reason, new_block);
        let kind = context.target.kind_for(selection.kind);
        let mint = MintRequest {
            organizer,
            bridge: context.bridge.as_ref(),
            kind,
            meeting_uid: &selection.uid,
        };
        let coords = match decide::after_mint(self.services.meetings.mint(&mint).await) {
            AfterMint::Rewrite(coords) => coords,
            AfterMint::Fail { reason } => {
                return Ok(item_with(PreviewOutcome::Failed, reason, None))
            }
            AfterMint::Unavailable { reason } => return Err(PreviewError::Unavailable(reason)),
        };
        let rewritten = mms_ical::rewrite(&item.ics, &coords, context.now);
        let owed = context.pending.get(&href).map(|p| OwedUpdate {
            saved_sequence: p.sequence,
        });
        Ok(
            match decide::after_rewrite(rewritten.as_ref(), owed, context.notifier) {
                Action::Fail { reason } => item_with(PreviewOutcome::Failed, reason, None),
                Action::Unchanged | Action::OwedButSuperseded { .. } => item_with(
                    PreviewOutcome::Unchanged,
                    "already carries the target coordinates".into(),
                    None,
                ),
                Action::SaveAndNotify { sequence, notifier } => item_with(
                    PreviewOutcome::WouldUpdate,
                    format!(
                        "the {kind:?} block would be replaced (SEQUENCE {sequence}) and {}",
                        notified_by(notifier)
                    ),
                    // The rewrite puts exactly this text into DESCRIPTION (mms_ical::render).
                    Some(mms_ical::render::text_block(&coords)),
                ),
                Action::NotifyOwed { sequence, notifier } => item_with(
                    PreviewOutcome::WouldUpdate,
                    format!(
                        "already rewritten (SEQUENCE {sequence}) by an earlier migration whose update did not reach every attendee: {}",
                        notified_by(notifier)
                    ),
                    None,
                ),
            },
        )
    }

    /// The facts of a preview: the same tenant boundary as a migration (a preview reads the
    /// mailbox too), the bridge, who notifies, the updates owed.
    async fn context<'a>(
        &self,
        organizer: &'a UserProfile,
        source: SourceMeetingType,
        target: TargetMeetingType,
    ) -> Result<PreviewContext<'a>, PreviewError> {
        let services = &self.services;
        let owned = services
            .store
            .owns_upn(&organizer.tenant, &organizer.upn)
            .await
            .map_err(|e| PreviewError::Unavailable(format!("the Redis store failed: {e}")))?;
        if !owned {
            return Err(PreviewError::Mailbox(format!(
                "tenant {} does not own the mail domain of {}: the operator assigns a tenant its domains (mmsctl set-tenant-domains)",
                organizer.tenant, organizer.upn
            )));
        }
        let bridge = match &organizer.audio.bridge {
            Some(id) => services
                .store
                .bridge(&organizer.tenant, id)
                .await
                .map_err(|e| PreviewError::Unavailable(format!("the Redis store failed: {e}")))?,
            None => None,
        };
        let store_error = |e: mms_store::StoreError| {
            PreviewError::Unavailable(format!("the Redis store failed: {e}"))
        };
        Ok(PreviewContext {
            organizer,
            bridge,
            source,
            target,
            now: Utc::now(),
            notifier: if services
                .mailbox
                .server_sends_updates(&organizer.upn)
                .await
                .map_err(mailbox_error)?
            {
                Notifier::Server
            } else {
                Notifier::Mms
            },
            pending: services
                .store
                .pending_updates(&organizer.tenant, &organizer.upn)
                .await
                .map_err(store_error)?,
        })
    }

    /// What the undo would do to one meeting: the same decisions as [`crate::undo`] on the same
    /// facts, with nothing written.
    async fn preview_undo_meeting(
        &self,
        context: &PreviewContext<'_>,
        href: String,
        image: &MeetingPreImage,
    ) -> Result<PreviewItem, PreviewError> {
        let item = match self
            .services
            .mailbox
            .get(&context.organizer.upn, &href)
            .await
        {
            Ok(item) => item,
            Err(MailboxError::ItemNotFound(_)) => {
                return Ok(PreviewItem {
                    href,
                    uid: image.uid.clone(),
                    summary: String::new(),
                    outcome: PreviewOutcome::Skipped,
                    reason: "deleted since the migration: nothing to undo".into(),
                    new_block: None,
                })
            }
            Err(e) => return Err(mailbox_error(e)),
        };
        let selected = mms_ical::select(
            &item.ics,
            &context.organizer.upn,
            SourceMeetingType::All,
            context.now,
        );
        let selection = match selection_or_item(&href, selected, "not undone: ", &image.uid) {
            Ok(selection) => selection,
            Err(item) => return Ok(*item),
        };
        let item_with =
            |outcome, reason, new_block| item_for(&href, &selection, outcome, reason, new_block);
        let owed = context.pending.get(&href).map(|p| OwedUpdate {
            saved_sequence: p.sequence,
        });
        let undone = mms_ical::undo(&item.ics, image, context.now);
        Ok(
            match decide::after_undo(undone, owed, context.notifier) {
                AfterUndo::Skip { reason } => item_with(PreviewOutcome::Skipped, reason, None),
                AfterUndo::Act { action: Action::Fail { reason }, .. } => {
                    item_with(PreviewOutcome::Failed, reason, None)
                }
                AfterUndo::Act {
                    action: Action::Unchanged | Action::OwedButSuperseded { .. },
                    ..
                } => item_with(
                    PreviewOutcome::Unchanged,
                    "already as before the migration: nothing to undo".into(),
                    None,
                ),
                AfterUndo::Act {
                    action: Action::SaveAndNotify { sequence, notifier },
                    ..
                } => item_with(
                    PreviewOutcome::WouldUpdate,
                    format!(
                        "the block the migration replaced would come back (SEQUENCE {sequence}) and {}",
                        notified_by(notifier)
                    ),
                    restored_block(image),
                ),
                AfterUndo::Act {
                    action: Action::NotifyOwed { sequence, notifier },
                    ..
                } => item_with(
                    PreviewOutcome::WouldUpdate,
                    format!(
                        "already undone (SEQUENCE {sequence}) by an earlier undo whose update did not reach every attendee: {}",
                        notified_by(notifier)
                    ),
                    None,
                ),
            },
        )
    }
}

/// How an update of a saved meeting would reach its attendees.
/// The selection of a meeting to preview, or the item that says why there is none: a skip
/// (its reason after `skip_prefix`) or a failure (named by `failed_uid`, which may be empty).
fn selection_or_item(
    href: &str,
    selected: Result<mms_ical::Selected, mms_ical::IcalError>,
    skip_prefix: &str,
    failed_uid: &str,
) -> Result<mms_ical::Selection, Box<PreviewItem>> {
    match decide::after_select(selected) {
        AfterSelect::Mint(selection) => Ok(selection),
        AfterSelect::Skip {
            uid,
            summary,
            reason,
        } => Err(Box::new(PreviewItem {
            href: href.to_string(),
            uid,
            summary,
            outcome: PreviewOutcome::Skipped,
            reason: format!("{skip_prefix}{reason}"),
            new_block: None,
        })),
        AfterSelect::Fail { reason } => Err(Box::new(PreviewItem {
            href: href.to_string(),
            uid: failed_uid.to_string(),
            summary: String::new(),
            outcome: PreviewOutcome::Failed,
            reason,
            new_block: None,
        })),
    }
}

/// The preview item of a selected meeting.
fn item_for(
    href: &str,
    selection: &mms_ical::Selection,
    outcome: PreviewOutcome,
    reason: String,
    new_block: Option<String>,
) -> PreviewItem {
    PreviewItem {
        href: href.to_string(),
        uid: selection.uid.clone(),
        summary: selection.summary.clone(),
        outcome,
        reason,
        new_block,
    }
}

fn notified_by(notifier: Notifier) -> &'static str {
    match notifier {
        Notifier::Mms => "the update sent to the attendees",
        Notifier::Server => "the mailbox server would send the update (RFC 6638)",
    }
}

/// The plain-text block an undo would put back into the master's DESCRIPTION, if it had one.
fn restored_block(image: &MeetingPreImage) -> Option<String> {
    image
        .events
        .iter()
        .find(|e| e.recurrence_id.is_none())
        .or(image.events.first())?
        .bodies
        .iter()
        .find(|b| b.property == BodyProperty::Description)
        .map(|b| b.replaced.trim().to_string())
        .filter(|text| !text.is_empty())
}

/// The facts a preview decides on, fixed for the whole mailbox.
struct PreviewContext<'a> {
    organizer: &'a UserProfile,
    bridge: Option<Bridge>,
    source: SourceMeetingType,
    target: TargetMeetingType,
    now: DateTime<Utc>,
    notifier: Notifier,
    pending: BTreeMap<String, PendingUpdate>,
}

fn mailbox_error(e: MailboxError) -> PreviewError {
    if e.is_permanent() {
        PreviewError::Mailbox(e.to_string())
    } else {
        PreviewError::Unavailable(e.to_string())
    }
}

#[async_trait]
impl Previewer for MailboxPreviewer {
    async fn preview(
        &self,
        organizer: &UserProfile,
        source: SourceMeetingType,
        target: TargetMeetingType,
    ) -> Result<Preview, PreviewError> {
        let services = &self.services;
        let context = self.context(organizer, source, target).await?;
        let page_size = services.config.concurrency.search_page_size;
        let mut found = Preview::default();
        let mut cursor = None;
        loop {
            let page = services
                .mailbox
                .search(&organizer.upn, context.now, cursor.take(), page_size)
                .await
                .map_err(mailbox_error)?;
            for bad in page.unreadable {
                if found.items.len() == self.limit {
                    found.capped = true;
                    return Ok(found);
                }
                found.items.push(PreviewItem {
                    href: bad.href,
                    uid: String::new(),
                    summary: String::new(),
                    outcome: PreviewOutcome::Failed,
                    reason: bad.problem.to_string(),
                    new_block: None,
                });
            }
            for item in page.items {
                if found.items.len() == self.limit {
                    found.capped = true;
                    return Ok(found);
                }
                let previewed = self.preview_meeting(&context, item).await?;
                found.items.push(previewed);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(found),
            }
        }
    }

    async fn preview_undo(
        &self,
        organizer: &UserProfile,
        undone: &str,
    ) -> Result<Preview, PreviewError> {
        let context = self
            .context(
                organizer,
                SourceMeetingType::All,
                TargetMeetingType::Current,
            )
            .await?;
        let store = &self.services.store;
        let page_size = self.services.config.concurrency.search_page_size;
        let mut found = Preview::default();
        let mut cursor = JournalCursor::START;
        loop {
            let page = store
                .pre_images_page(&organizer.tenant, undone, cursor, page_size)
                .await
                .map_err(|e| PreviewError::Unavailable(format!("the Redis store failed: {e}")))?;
            for (href, image) in page.entries {
                if found.items.len() == self.limit {
                    found.capped = true;
                    return Ok(found);
                }
                let previewed = self.preview_undo_meeting(&context, href, &image).await?;
                found.items.push(previewed);
            }
            match page.next {
                Some(next) => cursor = next,
                None => {
                    found.items.sort_by(|a, b| a.href.cmp(&b.href));
                    return Ok(found);
                }
            }
        }
    }
}
