//! TLS trust for the SMTP relay: the extra CA file an admin names (`mail.ca_file`), and what to
//! tell the admin when the relay's certificate is refused.
//!
//! lettre trusts the public (webpki) roots; a relay inside an organisation often has a
//! certificate from a private CA, which `ca_file` adds to those roots. When the handshake fails,
//! lettre reports a connection or TLS error whose cause, a [`rustls::Error`], sits further down
//! the chain of sources; [`certificate_problem`] digs it out and turns it into a sentence that
//! names the key to fix.

use std::error::Error as StdError;
use std::path::Path;

use lettre::transport::smtp::client::Certificate;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error as TlsError};

use crate::MailConfigError;

/// The certificates of the PEM bundle at `path` (`mail.ca_file`), at least one.
pub(crate) fn load_ca_file(path: &Path) -> Result<Vec<Certificate>, MailConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        MailConfigError::Invalid(format!(
            "mail.ca_file {} cannot be read ({e}): name a readable PEM file of CA certificates",
            path.display()
        ))
    })?;
    let not_pem = |detail: String| {
        MailConfigError::Invalid(format!(
            "mail.ca_file {} {detail}: give the CA certificate(s) in PEM form \
             (-----BEGIN CERTIFICATE-----)",
            path.display()
        ))
    };
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(format!("is not a PEM certificate bundle ({e})")))?;
    if ders.is_empty() {
        return Err(not_pem("holds no certificate".into()));
    }
    ders.into_iter()
        .map(|der| {
            Certificate::from_der(der.to_vec())
                .map_err(|e| not_pem(format!("holds a certificate that cannot be used ({e})")))
        })
        .collect()
}

/// If `err` failed in the TLS handshake, what went wrong and what the admin should change.
pub(crate) fn certificate_problem(err: &(dyn StdError + 'static)) -> Option<String> {
    let tls = rustls_cause(err)?;
    Some(match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer)
        | TlsError::InvalidCertificate(CertificateError::BadSignature) => format!(
            "the relay's certificate is not trusted ({tls}): set mail.ca_file to the PEM file of \
             the CA that signed it"
        ),
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the relay's certificate is not valid for mail.host ({tls}): set mail.host to a name \
             the certificate lists, or have it reissued for this one"
        ),
        TlsError::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "the relay's certificate is outside its validity period ({tls}): renew it, or check \
             this host's clock"
        ),
        TlsError::InvalidCertificate(_) => format!(
            "the relay's certificate was refused ({tls}): have it reissued by a CA that \
             mail.ca_file or the public roots trust"
        ),
        _ => format!(
            "the TLS handshake failed ({tls}): check mail.tls (\"tls\" for a port that speaks TLS \
             from the first byte, usually 465; \"starttls\" for one that upgrades, usually 587)"
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
