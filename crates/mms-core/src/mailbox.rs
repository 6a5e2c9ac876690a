//! The seam between the engine and a user's calendar store.
//!
//! Two real implementations live in `mms-mailbox`: CalDAV (any RFC 4791 server; tested against
//! Radicale) and the embedded vdir store. The engine only ever sees this trait.

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

/// A page of search results. Paging keeps a worker's memory bounded whatever the mailbox size.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    pub items: Vec<MailboxItem>,
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
    /// The server is unavailable or answered 5xx / timed out: transient, retried.
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
}

#[async_trait]
pub trait Mailbox: Send + Sync {
    /// Events of `user`'s calendar that may have an occurrence ending after `from`, one page at a
    /// time. May return more than strictly needed (the selector decides); must not miss any.
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
}
