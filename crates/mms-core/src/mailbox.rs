//! The seam between the engine and a user's calendar store.
//!
//! Two real implementations live in `mms-mailbox`: CalDAV (any RFC 4791 server; tested against
//! Radicale and Xandikos) and the embedded vdir store. The engine only ever sees this trait.
//!
//! A resource the connector cannot hand over as text (not UTF-8, larger than
//! `mailbox.max_resource_bytes`) is not an error of the whole mailbox: a search lists it in
//! [`SearchPage::unreadable`] with an [`ItemProblem`] that says what to fix, and returns the other
//! items of the page, so one bad file never stops a user's migration (issue 7.6).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One calendar resource: a `.ics` holding a VEVENT (possibly a master plus its exceptions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxItem {
    /// Where the resource lives, stable across reads (a CalDAV href, a vdir file name).
    pub href: String,
    /// Opaque version tag; a write with a stale one fails with [`MailboxError::PreconditionFailed`].
    pub etag: String,
    pub ics: String,
}

/// A resource a search found but could not read as a calendar: a per-meeting outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableItem {
    pub href: String,
    /// The version seen, when the server told it (lets an outcome name the exact version).
    pub etag: Option<String>,
    pub problem: ItemProblem,
}

/// Why one resource could not be read; the message says what the admin can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemProblem {
    /// iCalendar is UTF-8 (RFC 5545 §3.1.4); the first invalid byte is at `offset`.
    #[error(
        "not UTF-8 text (first invalid byte at offset {offset}): iCalendar data must be UTF-8; \
         re-encode the file or remove it from the calendar"
    )]
    NotUtf8 { offset: usize },
    /// Larger than `mailbox.max_resource_bytes`; `bytes` is the size the server declared, or
    /// (when it declared none) how many bytes were read before the reader stopped.
    #[error(
        "{bytes} bytes or more, over the limit of {limit} bytes: raise mailbox.max_resource_bytes \
         if such an event is legitimate, or shrink it (large attachments belong outside the event)"
    )]
    TooLarge { bytes: u64, limit: u64 },
    /// The server listed the resource without the part named here (its ETag, its calendar data).
    #[error(
        "the server returned it without its {missing}: check the server's logs for this resource"
    )]
    Incomplete { missing: &'static str },
}

/// A page of search results. Paging keeps a worker's memory bounded whatever the mailbox size:
/// a page holds at most `page_size` resources and at most `mailbox.max_page_bytes` of their text.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    pub items: Vec<MailboxItem>,
    /// Resources of this page that could not be read, each with its reason.
    pub unreadable: Vec<UnreadableItem>,
    /// Pass back to get the next page; `None` when this was the last one.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The user has no mailbox (calendar) here: permanent, fails the migration at once.
    #[error("mailbox of {0} not found")]
    MailboxNotFound(String),
    /// The resource is gone (deleted by its organizer since the search).
    #[error("calendar item {0} not found")]
    ItemNotFound(String),
    /// The resource changed since it was read (HTTP 412 on If-Match): re-read and rewrite.
    #[error("calendar item {0} changed since it was read")]
    PreconditionFailed(String),
    /// One resource cannot be read as a calendar (from `get`): an outcome of that meeting only.
    #[error("calendar item {href} is unreadable: {problem}")]
    Unreadable { href: String, problem: ItemProblem },
    /// The server is unavailable or answered 5xx / 423 / 429 / timed out, even after the
    /// connector's quick retries: transient, retried on the slow schedule.
    #[error("mailbox server unavailable: {0}")]
    Unavailable(String),
    /// Credentials refused: permanent until an admin fixes the configuration.
    #[error("mailbox server refused the credentials: {0}")]
    Unauthorized(String),
    /// The server answered something we cannot use (bad XML, unexpected status).
    #[error("mailbox protocol error: {0}")]
    Protocol(String),
}

impl MailboxError {
    /// Permanent errors fail the migration at once instead of being retried (P7).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MailboxError::MailboxNotFound(_) | MailboxError::Unauthorized(_)
        )
    }

    /// Errors about one resource, not the mailbox: the meeting gets an outcome, the others go on.
    pub fn concerns_one_item(&self) -> bool {
        matches!(
            self,
            MailboxError::ItemNotFound(_)
                | MailboxError::PreconditionFailed(_)
                | MailboxError::Unreadable { .. }
        )
    }
}

#[async_trait]
pub trait Mailbox: Send + Sync {
    /// Events of `user`'s calendar that may have an occurrence ending after `from`, one page at a
    /// time. May return more than strictly needed (the selector decides); must not miss any:
    /// what cannot be read is in [`SearchPage::unreadable`], never silently left out.
    async fn search(
        &self,
        user: &str,
        from: DateTime<Utc>,
        cursor: Option<String>,
        page_size: usize,
    ) -> Result<SearchPage, MailboxError>;

    /// Read one resource again (after a 412, or when resuming).
    async fn get(&self, user: &str, href: &str) -> Result<MailboxItem, MailboxError>;

    /// Replace a resource only if it still has `if_match`; returns the new ETag.
    async fn put(
        &self,
        user: &str,
        href: &str,
        ics: &str,
        if_match: &str,
    ) -> Result<String, MailboxError>;

    /// Does the server send the attendees' update itself when the organizer's event is saved
    /// (RFC 6638 implicit scheduling)? Then MMS must not mail a second one (issue 7.9). Decided
    /// by `mailbox.scheduling`: `auto` asks the server, `server` / `mms` override it. The default
    /// (for wrappers and test doubles) says no: MMS mails.
    async fn server_sends_updates(&self, user: &str) -> Result<bool, MailboxError> {
        let _ = user;
        Ok(false)
    }
}
