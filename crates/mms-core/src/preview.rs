//! The what-if seam (`mmsctl start-meeting-migration --what-if`, M5): what a migration would
//! change in a user's mailbox, computed without saving a meeting or sending an update.
//!
//! The contract lives here, at the seam: the control plane serves it (route
//! `migrations:preview`) and the worker crate implements it over the same building blocks as the real pipeline (mailbox search, select,
//! mint, rewrite), so that a preview and the migration that follows agree meeting for meeting.
//! The API serves previews only when a previewer is configured (`mms api` and `mms all` build one
//! from the mailbox configuration); without one the route answers 503 `preview_unavailable`.

use crate::{SourceMeetingType, TargetMeetingType, UserProfile};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// How many meetings one preview lists at most. A mailbox can hold tens of thousands of events;
/// an answer that size helps nobody reading a table, and computing it would hold the API busy.
pub const PREVIEW_ITEM_CAP: usize = 1_000;

/// What the migration would do to one meeting (P2–P4), mirroring the outcomes of a real run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PreviewOutcome {
    /// The online-meeting block would be replaced, the meeting saved and its update sent.
    WouldUpdate,
    /// The meeting already carries the target coordinates: nothing would be written or sent.
    Unchanged,
    /// Not migrated at all (organized by someone else, past, cancelled, no online block...).
    Skipped,
    /// The meeting cannot be migrated as it stands (unreadable iCalendar, a refused mint).
    Failed,
}

/// One meeting of the preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct PreviewItem {
    /// Where the meeting lives in the mailbox (CalDAV href, vdir file name).
    pub href: String,
    /// The meeting's UID; empty when the resource is too broken to have one.
    pub uid: String,
    pub summary: String,
    pub outcome: PreviewOutcome,
    /// Why: the skip reason, the failure, or what would change.
    pub reason: String,
    /// For `WouldUpdate`: the new online-meeting block of DESCRIPTION, as plain text (for an
    /// undo: the old block that would come back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_block: Option<String>,
}

/// What a [`Previewer`] found: the meetings in mailbox order, at most a cap of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    pub items: Vec<PreviewItem>,
    /// True when the mailbox holds more meetings than were listed.
    pub capped: bool,
}

/// Why a preview could not be computed; per-meeting problems are `Failed` items instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// Worth retrying: the mailbox server, the meeting platform or Redis is unavailable.
    #[error("{0}; retry the preview when it is reachable again")]
    Unavailable(String),
    /// The user's mailbox cannot be read until an admin fixes something (no calendar for the
    /// user, credentials refused by the server).
    #[error("{0}; check the mailbox configuration and that the user has a calendar")]
    Mailbox(String),
}

/// Computes what a migration of `organizer`'s mailbox would change, writing nothing anywhere.
#[async_trait]
pub trait Previewer: Send + Sync {
    async fn preview(
        &self,
        organizer: &UserProfile,
        source: SourceMeetingType,
        target: TargetMeetingType,
    ) -> Result<Preview, PreviewError>;

    /// What an undo of migration `undone` of `organizer` would do (issue 9.2), meeting by
    /// meeting of those that migration saved, writing nothing anywhere. `WouldUpdate` items
    /// carry the block that would come back in `new_block`.
    async fn preview_undo(
        &self,
        organizer: &UserProfile,
        undone: &str,
    ) -> Result<Preview, PreviewError>;
}
