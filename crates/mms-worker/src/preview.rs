//! What-if (M5, `--what-if`): the pipeline's search → select → mint → rewrite, stopped before
//! anything is written. No lease, no journal, no `put`, no `send`: a preview can run while a real
//! migration of the same mailbox is under way without disturbing it.
//!
//! Because it calls the very functions the pipeline calls, with the same deterministic minting, a
//! preview lists what the migration started right after it would do (the mailbox permitting).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_core::preview::{
    Preview, PreviewError, PreviewItem, PreviewOutcome, Previewer, PREVIEW_ITEM_CAP,
};
use mms_core::{
    Bridge, MailboxError, MailboxItem, MintRequest, SourceMeetingType, TargetMeetingType,
    UserProfile,
};
use mms_store::journal::PendingUpdate;
use std::collections::BTreeMap;

use crate::decide::{self, Action, AfterMint, AfterSelect, Notifier, OwedUpdate};
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
        let selection = match decide::after_select(selected) {
            AfterSelect::Mint(selection) => selection,
            AfterSelect::Skip {
                uid,
                summary,
                reason,
            } => {
                return Ok(PreviewItem {
                    href,
                    uid,
                    summary,
                    outcome: PreviewOutcome::Skipped,
                    reason,
                    new_block: None,
                })
            }
            AfterSelect::Fail { reason } => {
                return Ok(PreviewItem {
                    href,
                    uid: String::new(),
                    summary: String::new(),
                    outcome: PreviewOutcome::Failed,
                    reason,
                    new_block: None,
                })
            }
        };
        let item_with = |outcome, reason: String, new_block| PreviewItem {
            href: href.clone(),
            uid: selection.uid.clone(),
            summary: selection.summary.clone(),
            outcome,
            reason,
            new_block,
        };
        let kind = context.target.kind_for(selection.kind);
        let mint = MintRequest {
            organizer,
            bridge: context.bridge,
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
        let notified_by = |notifier| match notifier {
            Notifier::Mms => "the update sent to the attendees",
            Notifier::Server => "the mailbox server would send the update (RFC 6638)",
        };
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
}

/// The facts a preview decides on, fixed for the whole mailbox.
struct PreviewContext<'a> {
    organizer: &'a UserProfile,
    bridge: Option<&'a Bridge>,
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
        // The same tenant boundary as the migration (mms_store::domains): a preview reads the
        // mailbox too, so it must not read one of another tenant's users.
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
        let context = PreviewContext {
            organizer,
            bridge: bridge.as_ref(),
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
        };
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
}
