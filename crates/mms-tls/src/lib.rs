//! What to tell an admin when a TLS handshake with one of MMS's peers (a CalDAV server, the mail
//! relay) fails.
//!
//! The HTTP and SMTP clients report such failures as "error sending request" or "connection
//! error"; the cause, a [`rustls::Error`], sits a few levels down the chain of sources.
//! [`certificate_problem`] digs it out and turns it into a sentence that names the configuration
//! key to fix. Both connectors share it so that the advice reads the same wherever it appears.

use std::error::Error as StdError;

use rustls::{CertificateError, Error as TlsError};

/// How the advice names the peer and the configuration keys that concern it.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// The peer, possessive: "the server's", "the relay's".
    pub whose: &'a str,
    /// The key holding the extra CA bundle: `mailbox.ca_file`, `mail.ca_file`.
    pub ca_key: &'a str,
    /// What to change when the certificate does not name the host.
    pub host_advice: &'a str,
    /// What to check when the peer does not speak TLS where we expected it.
    pub handshake_advice: &'a str,
}

/// If `err` failed in the TLS handshake, what went wrong and what the admin should change.
pub fn certificate_problem(err: &(dyn StdError + 'static), peer: &Peer<'_>) -> Option<String> {
    let tls = rustls_cause(err)?;
    let Peer {
        whose,
        ca_key,
        host_advice,
        handshake_advice,
    } = *peer;
    Some(match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer)
        | TlsError::InvalidCertificate(CertificateError::BadSignature) => {
            format!("{whose} certificate is not trusted ({tls}): set {ca_key} to the PEM file of the CA that signed it")
        }
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("{whose} certificate is not valid for this host name ({tls}): {host_advice}"),
        TlsError::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!("{whose} certificate is outside its validity period ({tls}): renew it, or check this host's clock"),
        TlsError::InvalidCertificate(_) => format!(
            "{whose} certificate was refused ({tls}): have it reissued by a CA that {ca_key} or the public roots trust"
        ),
        _ => format!("the TLS handshake failed ({tls}): {handshake_advice}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: Peer<'static> = Peer {
        whose: "the relay's",
        ca_key: "mail.ca_file",
        host_advice: "set mail.host to a name the certificate lists",
        handshake_advice: "check mail.tls",
    };

    #[test]
    fn an_unknown_issuer_wrapped_in_io_errors_names_the_ca_key() {
        let tls = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(tls);
        let outer = std::io::Error::other(io);
        let advice = certificate_problem(&outer, &PEER).expect("found the rustls cause");
        assert!(
            advice.starts_with("the relay's certificate is not trusted"),
            "{advice}"
        );
        assert!(advice.contains("set mail.ca_file"), "{advice}");
    }

    #[test]
    fn an_error_without_a_tls_cause_is_not_diagnosed() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_problem(&io, &PEER), None);
    }
}
