//! Outgoing mail: the two real implementations of [`mms_core::Sender`] (P5).
//!
//! - [`SmtpSender`]: hands each iMIP message to an SMTP relay over a small pool of connections
//!   (lettre; plain, STARTTLS or TLS trusting the public roots plus an optional private CA file,
//!   optional credentials), reporting each recipient the relay refused.
//! - [`MaildirSender`]: the embedded outbox, one file per message in a Maildir `new/` folder.
//!
//! [`sender_from_config`] picks one from the `mail` section of the configuration.

mod maildir;
mod smtp;
mod tls;

use std::sync::Arc;

use mms_core::config::MailConfig;
use mms_core::Sender;

pub use maildir::MaildirSender;
pub use smtp::{SmtpSender, SmtpTls, DEFAULT_CONNECTIONS};

/// The `mail` configuration cannot be used; the message names the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailConfigError {
    #[error("invalid mail configuration: {0}")]
    Invalid(String),
}

/// The sender the configuration describes.
pub fn sender_from_config(cfg: &MailConfig) -> Result<Arc<dyn Sender>, MailConfigError> {
    match cfg {
        MailConfig::Maildir { root, .. } => Ok(Arc::new(MaildirSender::new(root.clone()))),
        MailConfig::Smtp {
            host,
            port,
            tls,
            username,
            password,
            timeout_secs,
            ca_file,
            connections,
            ..
        } => {
            let tls = *tls;
            let credentials = match (username, password) {
                (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                (None, None) => None,
                _ => {
                    return Err(MailConfigError::Invalid(
                        "mail.username and mail.password go together: set both or neither".into(),
                    ))
                }
            };
            Ok(Arc::new(SmtpSender::with_connections(
                host,
                *port,
                tls,
                credentials,
                std::time::Duration::from_secs(*timeout_secs),
                ca_file.as_deref(),
                *connections,
            )?))
        }
    }
}
