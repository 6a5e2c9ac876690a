//! TLS trust for the SMTP relay: the extra CA file an admin names (`mail.ca_file`), and what to
//! tell the admin when the relay's certificate is refused.
//!
//! lettre trusts the public (webpki) roots; a relay inside an organisation often has a
//! certificate from a private CA, which `ca_file` adds to those roots. When the handshake fails,
//! lettre reports a connection or TLS error whose cause, a [`rustls::Error`], sits further down
//! the chain of sources; `mms_tls::certificate_problem` digs it out and turns it into a sentence that
//! names the key to fix.

use std::error::Error as StdError;
use std::path::Path;

use lettre::transport::smtp::client::Certificate;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

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
    mms_tls::certificate_problem(
        err,
        &mms_tls::Peer {
            whose: "the relay's",
            ca_key: "mail.ca_file",
            host_advice: "set mail.host to a name the certificate lists, or have it reissued for this one",
            handshake_advice: "check mail.tls (\"tls\" for a port that speaks TLS from the first byte, usually 465; \"starttls\" for one that upgrades, usually 587)",
        },
    )
}
