//! TLS trust for the CalDAV connector: the extra CA file an admin names (`mailbox.ca_file`), and
//! what to tell the admin when a server's certificate is refused.
//!
//! reqwest trusts the public (webpki) roots; an organisation's CalDAV server often has a
//! certificate from a private CA, which `ca_file` adds to those roots. When the handshake fails,
//! reqwest reports only "error sending request"; the cause is a [`rustls::Error`] a few levels
//! down its chain of sources, which [`certificate_problem`] digs out and turns into a sentence
//! that names the key to fix.

use std::error::Error as StdError;
use std::path::Path;

use rustls::{CertificateError, Error as TlsError};

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
    let tls = rustls_cause(err)?;
    Some(match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer)
        | TlsError::InvalidCertificate(CertificateError::BadSignature) => format!(
            "the server's certificate is not trusted ({tls}): set mailbox.ca_file to the PEM file \
             of the CA that signed it"
        ),
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is not valid for the host in mailbox.calendar_url ({tls}): \
             use a host name the certificate lists, or have it reissued for this one"
        ),
        TlsError::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "the server's certificate is outside its validity period ({tls}): renew it, or check \
             this host's clock"
        ),
        TlsError::InvalidCertificate(_) => format!(
            "the server's certificate was refused ({tls}): have it reissued by a CA that \
             mailbox.ca_file or the public roots trust"
        ),
        _ => format!(
            "the TLS handshake failed ({tls}): check that the server speaks TLS (https) on this port"
        ),
    })
}

/// The rustls error somewhere in `err`'s chain of sources. An `io::Error` that wraps another
/// error reports that error's *source* as its own, skipping the wrapped error itself, so the walk
/// steps into it explicitly.
fn rustls_cause<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a TlsError> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
                None => current.source(),
            },
            None => current.source(),
        };
    }
    None
}
