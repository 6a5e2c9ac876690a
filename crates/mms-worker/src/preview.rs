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
    Bridge, MailboxError, MailboxItem, MeetingServiceError, MintRequest, SourceMeetingType,
    TargetMeetingType, UserProfile,
};
use mms_ical::Selected;

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

    /// What the pipeline would do to one resource.
    async fn preview_meeting(
        &self,
        organizer: &UserProfile,
        bridge: Option<&Bridge>,
        source: SourceMeetingType,
        target: TargetMeetingType,
        item: MailboxItem,
        now: DateTime<Utc>,
    ) -> Result<PreviewItem, PreviewError> {
        let href = item.href;
        let selection = match mms_ical::select(&item.ics, &organizer.upn, source, now) {
            Ok(Selected::Migrate(selection)) => selection,
            Ok(Selected::Skip(skip)) => {
                return Ok(PreviewItem {
                    href,
                    uid: skip.uid.unwrap_or_default(),
                    summary: skip.summary,
                    outcome: PreviewOutcome::Skipped,
                    reason: skip.reason.to_string(),
                    new_block: None,
                })
            }
            Err(e) => {
                return Ok(PreviewItem {
                    href,
                    uid: String::new(),
                    summary: String::new(),
                    outcome: PreviewOutcome::Failed,
                    reason: format!("unreadable iCalendar: {e}"),
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
        let kind = target.kind_for(selection.kind);
        let mint = MintRequest {
            organizer,
            bridge,
            kind,
            meeting_uid: &selection.uid,
        };
        let coords = match self.services.meetings.mint(&mint).await {
            Ok(coords) => coords,
            Err(MeetingServiceError::Unavailable(m)) => {
                return Err(PreviewError::Unavailable(format!(
                    "the meeting platform is unavailable: {m}"
                )))
            }
            Err(refused @ MeetingServiceError::Refused(_)) => {
                return Ok(item_with(PreviewOutcome::Failed, refused.to_string(), None))
            }
        };
        Ok(match mms_ical::rewrite(&item.ics, &coords, now) {
            Ok(rewritten) if rewritten.changed => item_with(
                PreviewOutcome::WouldUpdate,
                format!(
                    "the {kind:?} block would be replaced (SEQUENCE {}) and the update sent to the attendees",
                    rewritten.sequence
                ),
                // The rewrite puts exactly this text into DESCRIPTION (mms_ical::render).
                Some(mms_ical::render::text_block(&coords)),
            ),
            Ok(_) => item_with(
                PreviewOutcome::Unchanged,
                "already carries the target coordinates".into(),
                None,
            ),
            Err(e) => item_with(PreviewOutcome::Failed, format!("cannot rewrite: {e}"), None),
        })
    }
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
        let bridge = match &organizer.audio.bridge {
            Some(id) => services
                .store
                .bridge(&organizer.tenant, id)
                .await
                .map_err(|e| PreviewError::Unavailable(format!("the Redis store failed: {e}")))?,
            None => None,
        };
        let now = Utc::now();
        let page_size = services.config.concurrency.search_page_size;
        let mut found = Preview::default();
        let mut cursor = None;
        loop {
            let page = services
                .mailbox
                .search(&organizer.upn, now, cursor.take(), page_size)
                .await
                .map_err(mailbox_error)?;
            for item in page.items {
                if found.items.len() == self.limit {
                    found.capped = true;
                    return Ok(found);
                }
                let previewed = self
                    .preview_meeting(organizer, bridge.as_ref(), source, target, item, now)
                    .await?;
                found.items.push(previewed);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(found),
            }
        }
    }
}
