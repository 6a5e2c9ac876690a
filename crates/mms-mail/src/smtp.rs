//! SMTP delivery over a small pool of lettre connections, one transaction per message, one
//! reply per recipient.
//!
//! # The conversation
//!
//! Each message is one mail transaction (RFC 5321 §3.3) on a connection from the pool:
//! `RSET` when the connection was used before (it checks that the relay still listens, and
//! starts from a clean state), `MAIL FROM` with the service address, one `RCPT TO` per
//! recipient, then `DATA`. Every `RCPT` gets its own reply, and a refusal is recorded for that
//! recipient in the [`SendReport`] instead of failing the message: a `550` for one attendee's
//! mailbox (permanent) or a `452 Too many recipients` (transient) leaves the others delivered.
//! When every recipient is refused no data is sent. A refusal of the whole message (`MAIL`,
//! `DATA`, or the reply after the data: `500 Line too long`, `552` size) is a
//! [`SendError::Permanent`] for 5xx and [`SendError::Transient`] for 4xx; connection failures
//! and timeouts are transient (retried later, P7).
//!
//! lettre's `AsyncSmtpTransport` cannot do this: its `send` aborts the whole transaction at the
//! first refused `RCPT`, and without its `pool` feature it opens a connection per message. So
//! this module drives lettre's [`AsyncSmtpConnection`] (connect, STARTTLS, AUTH, commands and
//! replies), and owns only the transaction and the pool.
//!
//! # The pool
//!
//! At most `mail.connections` connections per sender (one per message in flight); an idle one
//! is reused by the next message and dropped on any error, so the next message opens a fresh
//! one. A connection that the relay closed while idle fails its `RSET` and is replaced before
//! anything of the message was sent.
//!
//! # One write for the data and the final dot
//!
//! lettre's `AsyncSmtpConnection::message` writes the message and the terminating
//! `\r\n.\r\n` as two flushed writes. With Nagle's algorithm the small second write waits for
//! the relay to acknowledge the first, and the relay delays that acknowledgement (~40 ms on
//! Linux): every message stalled that long, 67 messages/s against 312/s for smtplib (issue 11).
//! Here the dot-stuffed data and the terminator are one buffer handed to
//! `AsyncSmtpConnection::command`, which writes its argument once and reads one reply, which is
//! exactly what the second half of `DATA` is.
//!
//! # TLS and credentials
//!
//! With `starttls` or `tls` the relay's certificate is checked against the public roots plus
//! `mail.ca_file` (see [`crate::tls`]). A refused certificate is **transient**: the message is
//! fine and so is every recipient; what is wrong is the path to the relay, which an admin fixes
//! (by setting `mail.ca_file`, or by installing the right certificate on the relay) without
//! touching the meetings. The retry schedule (P7) is slow, minutes then hours, so retrying does
//! not hammer the relay, and the updates go out once the fix is in; a permanent error would
//! instead fail every meeting of every user at once. Refused credentials (`535`) stay
//! permanent, as every 5xx is.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error as SmtpError;
use lettre::Address;
use mms_core::{OutgoingMessage, RecipientRefusal, SendError, SendReport, Sender};
use tokio::sync::Semaphore;

use crate::tls::{certificate_problem, load_ca_file};
use crate::MailConfigError;

/// How the connection to the relay is protected (`mail.tls`): defined with the configuration,
/// which serde reads and checks at load time.
pub use mms_core::config::SmtpTls;

/// The TLS set-up of a connection, with the parameters built once.
#[derive(Clone)]
enum Protection {
    None,
    StartTls(TlsParameters),
    Wrapper(TlsParameters),
}

/// Everything needed to open a connection to the relay.
struct Relay {
    host: String,
    port: u16,
    protection: Protection,
    credentials: Option<Credentials>,
    hello: ClientId,
}

/// The pool size of `mail.connections` when none is given.
pub const DEFAULT_CONNECTIONS: usize = 4;

pub struct SmtpSender {
    relay: Relay,
    /// `host:port`, for messages.
    name: String,
    /// Bound on one whole exchange (connect, TLS, AUTH, the transaction): a relay that stops
    /// answering (or a TLS mode that does not match the port: both ends then wait for the other
    /// to speak first) would otherwise hold the migration forever.
    exchange_timeout: Duration,
    /// One permit per connection: at most that many messages are in flight at once.
    slots: Semaphore,
    /// Connections that finished a transaction cleanly, most recent last.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl SmtpSender {
    /// A sender to the relay `host:port` with [`DEFAULT_CONNECTIONS`] connections;
    /// `credentials` is (user name, password). With TLS, `ca_file` (a PEM bundle) adds CAs to
    /// the trusted public roots. `timeout` bounds each whole exchange (connect, TLS, AUTH, DATA).
    pub fn new(
        host: &str,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, String)>,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<SmtpSender, MailConfigError> {
        Self::with_connections(
            host,
            port,
            tls,
            credentials,
            timeout,
            ca_file,
            DEFAULT_CONNECTIONS,
        )
    }

    /// [`SmtpSender::new`] with a pool of `connections` (`mail.connections`, at least 1).
    pub fn with_connections(
        host: &str,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, String)>,
        timeout: Duration,
        ca_file: Option<&Path>,
        connections: usize,
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
        if connections == 0 {
            return Err(MailConfigError::Invalid(
                "mail.connections is 0: set it to 1 or more (4 is the default)".into(),
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
        let protection = match tls {
            SmtpTls::None => Protection::None,
            SmtpTls::StartTls => Protection::StartTls(tls_parameters()?),
            SmtpTls::Tls => Protection::Wrapper(tls_parameters()?),
        };
        Ok(SmtpSender {
            relay: Relay {
                host: host.to_string(),
                port,
                protection,
                credentials: credentials.map(|(user, password)| Credentials::new(user, password)),
                hello: ClientId::default(),
            },
            name: format!("{host}:{port}"),
            exchange_timeout: timeout,
            slots: Semaphore::new(connections),
            idle: Mutex::new(Vec::with_capacity(connections)),
        })
    }

    /// Opens, protects and authenticates a new connection.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let relay = &self.relay;
        let wrapper = match &relay.protection {
            Protection::Wrapper(parameters) => Some(parameters.clone()),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (relay.host.as_str(), relay.port),
            Some(self.exchange_timeout),
            &relay.hello,
            wrapper,
            None,
        )
        .await?;
        if let Protection::StartTls(parameters) = &relay.protection {
            connection
                .starttls(parameters.clone(), &relay.hello)
                .await?;
        }
        if let Some(credentials) = &relay.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }

    /// A connection ready for a transaction: an idle one that still answers `RSET`, else a
    /// new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut connection) = idle else {
                return self.connect().await;
            };
            if connection.command(Rset).await.is_ok() {
                return Ok(connection);
            }
            // Closed by the relay while idle (its timeout, a restart): nothing was sent yet.
            connection.abort().await;
        }
    }

    fn checkin(&self, connection: AsyncSmtpConnection) {
        if !connection.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(connection);
        }
    }

    /// The whole exchange for one message on one connection.
    async fn exchange(
        &self,
        message: &OutgoingMessage,
        from: &Address,
        recipients: &[(usize, Address)],
        mut report: SendReport,
    ) -> Result<SendReport, Failure> {
        let mut connection = self.checkout().await.map_err(Failure::Connect)?;
        match self
            .transaction(&mut connection, message, from, recipients, &mut report)
            .await
        {
            Ok(()) => {
                self.checkin(connection);
                Ok(report)
            }
            Err(failure) => {
                // Whatever state the relay is in now, this connection is not trusted again.
                connection.abort().await;
                Err(failure)
            }
        }
    }

    async fn transaction(
        &self,
        connection: &mut AsyncSmtpConnection,
        message: &OutgoingMessage,
        from: &Address,
        recipients: &[(usize, Address)],
        report: &mut SendReport,
    ) -> Result<(), Failure> {
        let eight_bit = !message.head.is_ascii() || !message.body.is_ascii();
        let mut parameters = Vec::new();
        if eight_bit {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failure::NoEightBitMime);
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        connection
            .command(Mail::new(Some(from.clone()), parameters))
            .await
            .map_err(|e| Failure::Reply("MAIL FROM", e))?;
        let mut accepted = 0;
        for (index, address) in recipients {
            match connection.command(Rcpt::new(address.clone(), vec![])).await {
                Ok(_) => accepted += 1,
                Err(e) if e.is_permanent() || e.is_transient() => {
                    report.refused.push(RecipientRefusal {
                        recipient: message.recipients[*index].clone(),
                        reply: reply_text(&e),
                        permanent: e.is_permanent(),
                    })
                }
                Err(e) => return Err(Failure::Reply("RCPT TO", e)),
            }
        }
        if accepted == 0 {
            // Nobody to deliver to: end the transaction without data, keep the connection.
            return connection
                .command(Rset)
                .await
                .map(drop)
                .map_err(|e| Failure::Reply("RSET", e));
        }
        connection
            .command(Data)
            .await
            .map_err(|e| Failure::Reply("DATA", e))?;
        let payload = DataPayload::new(message);
        let reply = match std::str::from_utf8(&payload.0) {
            Ok(text) => connection.command(text).await,
            // Not UTF-8, so not writable through `command`: lettre's own path (two writes).
            Err(_) => connection.message_iter(message.pieces().into_iter()).await,
        };
        reply
            .map(drop)
            .map_err(|e| Failure::Reply("the message data", e))
    }
}

/// The data of `DATA`: the message dot-stuffed (RFC 5321 §4.5.2), its last line ended, and the
/// terminating `.` line, as one buffer.
struct DataPayload(Vec<u8>);

impl DataPayload {
    fn new(message: &OutgoingMessage) -> DataPayload {
        let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
        let mut at_line_start = true;
        for piece in message.pieces() {
            for &byte in piece {
                if at_line_start && byte == b'.' {
                    out.push(b'.');
                }
                out.push(byte);
                at_line_start = byte == b'\n';
            }
        }
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        DataPayload(out)
    }
}

/// Why an exchange failed, before it is worded for the admin.
enum Failure {
    /// Connecting, the TLS handshake or AUTH failed.
    Connect(SmtpError),
    /// The relay refused a command of the transaction (or the connection broke during it).
    Reply(&'static str, SmtpError),
    /// The message has 8-bit bytes and the relay does not offer 8BITMIME (RFC 6152).
    NoEightBitMime,
}

/// The relay's reply as it sent it: `550 5.1.1 mailbox unavailable`.
fn reply_text(error: &SmtpError) -> String {
    match (error.status(), error.source()) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        (Some(code), None) => code.to_string(),
        _ => error.to_string(),
    }
}

fn parse_address(role: &str, address: &str) -> Result<Address, String> {
    address
        .parse()
        .map_err(|e| format!("{role} address {address:?} is not a valid mail address: {e}"))
}

#[async_trait]
impl Sender for SmtpSender {
    async fn send(&self, message: &OutgoingMessage) -> Result<SendReport, SendError> {
        let from = parse_address("envelope sender", &message.envelope_from)
            .map_err(SendError::Permanent)?;
        if message.recipients.is_empty() {
            return Err(SendError::Permanent(format!(
                "message {} has no recipients",
                message.message_id
            )));
        }
        // An address that is not one is refused here, as a relay would refuse it: the others
        // still get the message.
        let mut report = SendReport::default();
        let mut recipients = Vec::with_capacity(message.recipients.len());
        for (index, recipient) in message.recipients.iter().enumerate() {
            match parse_address("recipient", recipient) {
                Ok(address) => recipients.push((index, address)),
                Err(reason) => report.refused.push(RecipientRefusal {
                    recipient: recipient.clone(),
                    reply: reason,
                    permanent: true,
                }),
            }
        }
        if recipients.is_empty() {
            return Ok(report);
        }

        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Transient("the SMTP sender is shutting down".into()))?;
        let exchange = self.exchange(message, &from, &recipients, report);
        let Ok(outcome) = tokio::time::timeout(self.exchange_timeout, exchange).await else {
            return Err(SendError::Transient(format!(
                "relay {} did not finish taking message {} within {}s (mail.timeout_secs): if it \
                 persists, check that mail.tls matches the port (\"tls\" for one that speaks TLS \
                 from the first byte, usually 465; \"starttls\" for one that upgrades, usually 587)",
                self.name,
                message.message_id,
                self.exchange_timeout.as_secs()
            )));
        };
        outcome.map_err(|failure| self.worded(failure, message))
    }
}

impl SmtpSender {
    /// The [`SendError`] an admin reads for `failure`.
    fn worded(&self, failure: Failure, message: &OutgoingMessage) -> SendError {
        let id = &message.message_id;
        let relay = &self.name;
        match failure {
            Failure::NoEightBitMime => SendError::Permanent(format!(
                "relay {relay} does not accept 8-bit data (no 8BITMIME) and message {id} has some"
            )),
            Failure::Connect(e) if e.is_permanent() => SendError::Permanent(format!(
                "relay {relay} refused the connection for message {id}: {}",
                reply_text(&e)
            )),
            Failure::Connect(e) => {
                let reason = certificate_problem(&e).unwrap_or_else(|| full_chain(&e));
                SendError::Transient(format!("relay {relay} did not take message {id}: {reason}"))
            }
            Failure::Reply(step, e) if e.is_permanent() => SendError::Permanent(format!(
                "relay {relay} refused message {id} at {step}: {}",
                reply_text(&e)
            )),
            Failure::Reply(step, e) if e.is_transient() => SendError::Transient(format!(
                "relay {relay} deferred message {id} at {step}: {}",
                reply_text(&e)
            )),
            Failure::Reply(step, e) => SendError::Transient(format!(
                "relay {relay} did not take message {id} ({step}): {}",
                full_chain(&e)
            )),
        }
    }
}

/// `error` and its sources, so "network error" says which one.
fn full_chain(error: &SmtpError) -> String {
    let mut text = error.to_string();
    let mut source = error.source().and_then(|s| s.source());
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_dot_stuffed_and_ends_with_one_terminator() {
        let message = OutgoingMessage::from_raw(
            "id@x",
            "a@x",
            vec!["b@x".into()],
            b".starts\r\nmid.dle\r\n.\r\n..two\r\nlast".to_vec(),
        );
        assert_eq!(
            DataPayload::new(&message).0,
            b"..starts\r\nmid.dle\r\n..\r\n...two\r\nlast\r\n.\r\n".to_vec()
        );
        let ended = OutgoingMessage::from_raw("id@x", "a@x", vec![], b"x\r\n".to_vec());
        assert_eq!(DataPayload::new(&ended).0, b"x\r\n.\r\n".to_vec());
    }
}
