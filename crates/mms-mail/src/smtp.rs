//! SMTP delivery through lettre's async transport.
//!
//! The message is sent as built (`OutgoingMessage.raw`, never re-encoded) with the envelope the
//! engine chose: the service address as envelope sender, every attendee but the organizer as
//! recipients. A 5xx reply is permanent (the meeting fails with the relay's words); connection
//! failures, timeouts and 4xx replies are transient (retried later, P7).
//!
//! With `starttls` or `tls` the relay's certificate is checked against the public roots plus
//! `mail.ca_file` (see [`crate::tls`]), and credentials are only sent once the connection is
//! encrypted. A refused certificate is **transient**: the message is fine and so is every
//! recipient; what is wrong is the path to the relay, which an admin fixes (by setting
//! `mail.ca_file`, or by installing the right certificate on the relay) without touching the
//! meetings. The retry schedule (P7) is slow, minutes then hours, so retrying does not hammer the
//! relay, and the updates go out once the fix is in; a permanent error would instead fail every
//! meeting of every user at once. Refused credentials (`535`) stay permanent, as every 5xx is.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mms_core::{OutgoingMessage, SendError, Sender};

use crate::tls::{certificate_problem, load_ca_file};
use crate::MailConfigError;

/// How the connection to the relay is protected (`mail.tls`): defined with the configuration,
/// which serde reads and checks at load time.
pub use mms_core::config::SmtpTls;

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
    /// Bound on one whole exchange. lettre's own timeout covers only the TCP connect, so a relay
    /// that stops answering (or a TLS mode that does not match the port: both ends then wait for
    /// the other to speak first) would otherwise hold the migration forever.
    exchange_timeout: Duration,
}

impl SmtpSender {
    /// A sender to the relay `host:port`; `credentials` is (user name, password). With TLS,
    /// `ca_file` (a PEM bundle) adds CAs to the trusted public roots. `timeout` bounds each whole
    /// exchange (connect, TLS, AUTH, DATA).
    pub fn new(
        host: &str,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, String)>,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<SmtpSender, MailConfigError> {
        if host.is_empty() {
            return Err(MailConfigError::Invalid(
                "mail.host is empty: name the SMTP relay".into(),
            ));
        }
        if timeout.is_zero() {
            return Err(MailConfigError::Invalid(
                "mail.timeout_secs is 0: set it to 1 or more".into(),
            ));
        }
        if ca_file.is_some() && tls == SmtpTls::None {
            return Err(MailConfigError::Invalid(
                "mail.ca_file is set but mail.tls is \"none\": set mail.tls to \"starttls\" or \
                 \"tls\", or remove mail.ca_file"
                    .into(),
            ));
        }
        let extra_roots = match ca_file {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        let tls_parameters = || {
            extra_roots
                .iter()
                .cloned()
                .fold(TlsParameters::builder(host.to_string()), |builder, root| {
                    builder.add_root_certificate(root)
                })
                .build()
                .map_err(|e| {
                    MailConfigError::Invalid(format!(
                        "TLS set-up for mail.host {host:?} failed: {e}"
                    ))
                })
        };
        let tls = match tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            relay: format!("{host}:{port}"),
            exchange_timeout: timeout,
        })
    }
}

fn parse_address(role: &str, address: &str) -> Result<Address, SendError> {
    address.parse().map_err(|e| {
        SendError::Permanent(format!(
            "{role} address {address:?} is not a valid mail address: {e}"
        ))
    })
}

#[async_trait]
impl Sender for SmtpSender {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        let from = parse_address("envelope sender", &message.envelope_from)?;
        let recipients = message
            .recipients
            .iter()
            .map(|r| parse_address("recipient", r))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), recipients).map_err(|e| {
            SendError::Permanent(format!(
                "message {} has no usable recipients: {e}",
                message.message_id
            ))
        })?;
        // lettre ends DATA with "\r\n.\r\n" whatever the message ends with; the CRLF that ends
        // the message's last line is that terminator's first CRLF, so it is not sent twice.
        let raw = message.raw.strip_suffix(b"\r\n").unwrap_or(&message.raw);
        let exchange = self.transport.send_raw(&envelope, raw);
        let Ok(outcome) = tokio::time::timeout(self.exchange_timeout, exchange).await else {
            return Err(SendError::Transient(format!(
                "relay {} did not finish taking message {} within {}s (mail.timeout_secs): if it \
                 persists, check that mail.tls matches the port (\"tls\" for one that speaks TLS \
                 from the first byte, usually 465; \"starttls\" for one that upgrades, usually 587)",
                self.relay,
                message.message_id,
                self.exchange_timeout.as_secs()
            )));
        };
        match outcome {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                "relay {} refused message {}: {e}",
                self.relay, message.message_id
            ))),
            Err(e) => {
                let reason = certificate_problem(&e).unwrap_or_else(|| e.to_string());
                Err(SendError::Transient(format!(
                    "relay {} did not take message {}: {reason}",
                    self.relay, message.message_id
                )))
            }
        }
    }
}
