//! TLS trust for the CalDAV connector: the extra CA file an admin names (`mailbox.ca_file`), and
//! what to tell the admin when a server's certificate is refused.
//!
//! reqwest trusts the public (webpki) roots; an organisation's CalDAV server often has a
//! certificate from a private CA, which `ca_file` adds to those roots. When the handshake fails,
//! reqwest reports only "error sending request"; the cause is a `rustls::Error` a few levels
//! down its chain of sources, which `mms_tls::certificate_problem` digs out and turns into a sentence
//! that names the key to fix.

use std::error::Error as StdError;
use std::path::Path;

use crate::MailboxConfigError;

/// The certificates of the PEM bundle at `path` (`mailbox.ca_file`), at least one.
pub(crate) fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, MailboxConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        MailboxConfigError::Invalid(format!(
            "mailbox.ca_file {} cannot be read ({e}): name a readable PEM file of CA certificates",
            path.display()
        ))
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        MailboxConfigError::Invalid(format!(
            "mailbox.ca_file {} is not a PEM certificate bundle ({e}): give the CA certificate(s) \
             in PEM form (-----BEGIN CERTIFICATE-----)",
            path.display()
        ))
    })?;
    if certificates.is_empty() {
        return Err(MailboxConfigError::Invalid(format!(
            "mailbox.ca_file {} holds no certificate: give the CA certificate(s) in PEM form \
             (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certificates)
}

/// If `err` failed in the TLS handshake, what went wrong and what the admin should change.
pub(crate) fn certificate_problem(err: &(dyn StdError + 'static)) -> Option<String> {
    mms_tls::certificate_problem(
        err,
        &mms_tls::Peer {
            whose: "the server's",
            ca_key: "mailbox.ca_file",
            host_advice: "use a host name in mailbox.calendar_url that the certificate lists, or have it reissued for this one",
            handshake_advice: "check that the server speaks TLS (https) on this port",
        },
    )
}
