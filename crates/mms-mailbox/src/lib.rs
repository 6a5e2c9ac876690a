//! Mailbox connectors: the two real implementations of [`mms_core::Mailbox`].
//!
//! - [`CalDavMailbox`]: any CalDAV server (RFC 4791), over reqwest with rustls (public roots plus
//!   an optional private CA file).
//! - [`VdirMailbox`]: the embedded store, a vdir folder per user.
//!
//! [`mailbox_from_config`] picks one from the `mailbox` section of the configuration. Both page
//! their searches (P2) so that a worker's memory stays bounded for 100,000-event mailboxes, and
//! both refuse a write whose ETag is stale (P4), which is how a rewrite never clobbers a change the
//! organizer made meanwhile.

mod caldav;
mod listing;
mod multistatus;
mod tls;
mod vdir;

use std::sync::Arc;
use std::time::Duration;

use mms_core::config::MailboxConfig;
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
        MailboxConfig::Vdir { root } => Ok(Arc::new(VdirMailbox::new(root.clone()))),
        MailboxConfig::Caldav {
            calendar_url,
            username,
            password,
            timeout_secs,
            ca_file,
        } => Ok(Arc::new(CalDavMailbox::new(
            calendar_url,
            username.clone(),
            password.clone(),
            Duration::from_secs(*timeout_secs),
            per_server,
            ca_file.as_deref(),
        )?)),
    }
}
