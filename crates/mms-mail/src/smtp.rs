//! SMTP delivery through lettre's async transport.
//!
//! The message is sent as built (`OutgoingMessage.raw`, never re-encoded) with the envelope the
//! engine chose: the service address as envelope sender, every attendee but the organizer as
//! recipients. A 5xx reply is permanent (the meeting fails with the relay's words); connection
//! failures, timeouts and 4xx replies are transient (retried later, P7).

use std::time::Duration;

use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mms_core::{OutgoingMessage, SendError, Sender};

use crate::MailConfigError;

/// How the connection to the relay is protected (`mail.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a test sink.
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    /// Read `none`, `starttls` or `tls`.
    pub fn parse(value: &str) -> Result<SmtpTls, MailConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            other => Err(MailConfigError::Invalid(format!(
                "mail.tls is {other:?}: use \"none\", \"starttls\" or \"tls\""
            ))),
        }
    }
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
}

impl SmtpSender {
    /// A sender to the relay `host:port`; `credentials` is (user name, password).
    pub fn new(
        host: &str,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, String)>,
        timeout: Duration,
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
        let tls_parameters = || {
            TlsParameters::new(host.to_string()).map_err(|e| {
                MailConfigError::Invalid(format!("TLS set-up for mail.host {host:?} failed: {e}"))
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
        match self.transport.send_raw(&envelope, raw).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                "relay {} refused message {}: {e}",
                self.relay, message.message_id
            ))),
            Err(e) => Err(SendError::Transient(format!(
                "relay {} did not take message {}: {e}",
                self.relay, message.message_id
            ))),
        }
    }
}
