//! Mailbox connectors: the two real implementations of [`mms_core::Mailbox`].
//!
//! - [`CalDavMailbox`]: any CalDAV server (RFC 4791), over reqwest with rustls (public roots plus
//!   an optional private CA file).
//! - [`VdirMailbox`]: the embedded store, a vdir folder per user.
//!
//! [`mailbox_from_config`] picks one from the `mailbox` section of the configuration. Both page
//! their searches (P2) so that a worker's memory stays bounded for 100,000-event mailboxes, and
//! both refuse a write whose ETag is stale (P4), which is how a rewrite never clobbers a change the
//! organizer made meanwhile. Both bound a page in bytes as well (`mailbox.max_page_bytes`,
//! `mailbox.max_resource_bytes`) and report a resource they cannot read (not UTF-8, too large)
//! in the page's `unreadable` list instead of failing the mailbox (issue 7.6).

mod body;
mod caldav;
mod listing;
mod multistatus;
mod retry;
mod tls;
mod vdir;

use std::sync::Arc;
use std::time::Duration;

use mms_core::config::{MailboxConfig, MailboxOptions};
use mms_core::Mailbox;

pub use caldav::CalDavMailbox;
pub use vdir::{vdir_etag, VdirMailbox};

/// The `mailbox` configuration cannot be used; the message names the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxConfigError {
    #[error("invalid mailbox configuration: {0}")]
    Invalid(String),
}

/// The connector the configuration describes; `per_server` is
/// `concurrency.per_mailbox_server` (requests in flight to one CalDAV server).
pub fn mailbox_from_config(
    cfg: &MailboxConfig,
    per_server: usize,
) -> Result<Arc<dyn Mailbox>, MailboxConfigError> {
    match cfg {
        MailboxConfig::Vdir { root, options } => Ok(Arc::new(
            VdirMailbox::new(root.clone()).with_options(options)?,
        )),
        MailboxConfig::Caldav {
            calendar_url,
            username,
            password,
            timeout_secs,
            ca_file,
            options,
        } => Ok(Arc::new(
            CalDavMailbox::new(
                calendar_url,
                username.clone(),
                password.clone(),
                Duration::from_secs(*timeout_secs),
                per_server,
                ca_file.as_deref(),
            )?
            .with_options(options)?,
        )),
    }
}

/// The byte limits must leave room for one resource in a page.
pub(crate) fn check_limits(options: &MailboxOptions) -> Result<(), MailboxConfigError> {
    if options.max_resource_bytes == 0 {
        return Err(MailboxConfigError::Invalid(
            "mailbox.max_resource_bytes is 0: set it to the size of the largest event to read \
             (default 10485760)"
                .into(),
        ));
    }
    if options.max_page_bytes < options.max_resource_bytes {
        return Err(MailboxConfigError::Invalid(format!(
            "mailbox.max_page_bytes ({}) is smaller than mailbox.max_resource_bytes ({}): a page \
             must hold at least one resource; raise max_page_bytes",
            options.max_page_bytes, options.max_resource_bytes
        )));
    }
    Ok(())
}
