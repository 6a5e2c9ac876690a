//! The seam to outgoing mail. `mms-mail` implements it with SMTP (lettre) and a Maildir outbox.

use async_trait::async_trait;

/// A fully built iMIP message (RFC 6047) and its SMTP envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The deterministic Message-ID (without angle brackets): a resend carries the same one.
    pub message_id: String,
    /// Envelope sender (the service address: the organizer is in `From:`, MMS in `Sender:`).
    pub envelope_from: String,
    /// Envelope recipients: every attendee but the organizer.
    pub recipients: Vec<String>,
    /// The RFC 5322 message, CRLF line ends.
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Connection refused, timeout, 4xx: retried later.
    #[error("mail relay unavailable: {0}")]
    Transient(String),
    /// 5xx for the whole message (bad sender, message refused): the meeting fails with this reason.
    #[error("mail relay refused the message: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError>;
}
