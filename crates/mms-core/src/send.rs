//! The seam to outgoing mail. `mms-mail` implements it with SMTP (lettre) and a Maildir outbox.
//!
//! One update of a meeting becomes one [`OutgoingMessage`] per batch of recipients (P5). A relay
//! answers per recipient (RFC 5321 §3.3: each `RCPT TO` has its own reply), so a send reports the
//! recipients it could not deliver to ([`SendReport::refused`]) instead of failing the whole
//! message for one bad mailbox; only a problem with the message or the path to the relay is a
//! [`SendError`].

use std::sync::Arc;

use async_trait::async_trait;

/// A fully built iMIP message (RFC 6047) and its SMTP envelope.
///
/// The message is `head` followed by `body`. The batches of one update differ only in their
/// header fields (`To:`, `Message-ID:`), while the body (text, HTML and the calendar with every
/// attendee) is the same, so the body is shared: a 10,000-attendee meeting in 100 batches holds
/// its body once, not 100 times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The deterministic Message-ID (without angle brackets): a resend carries the same one.
    pub message_id: String,
    /// Envelope sender (the service address: the organizer is in `From:`, MMS in `Sender:`).
    pub envelope_from: String,
    /// Envelope recipients: this batch's attendees.
    pub recipients: Vec<String>,
    /// This message's own header fields, CRLF line ends.
    pub head: Vec<u8>,
    /// The rest of the message (the MIME header fields of the body, the blank line and the
    /// body), CRLF line ends; shared by every batch of one update.
    pub body: Arc<[u8]>,
}

impl OutgoingMessage {
    /// A message whose complete RFC 5322 text is `raw` (headers, blank line, body).
    pub fn from_raw(
        message_id: impl Into<String>,
        envelope_from: impl Into<String>,
        recipients: Vec<String>,
        raw: Vec<u8>,
    ) -> OutgoingMessage {
        OutgoingMessage {
            message_id: message_id.into(),
            envelope_from: envelope_from.into(),
            recipients,
            head: raw,
            body: Arc::from(&[][..]),
        }
    }

    /// The two pieces that, in order, make the message.
    pub fn pieces(&self) -> [&[u8]; 2] {
        [&self.head, &self.body]
    }

    /// The whole message as one buffer (a copy: for tests and outboxes that store it whole).
    pub fn raw(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.len());
        raw.extend_from_slice(&self.head);
        raw.extend_from_slice(&self.body);
        raw
    }

    /// Size of the message in octets.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// True when the message has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One recipient the relay would not take, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRefusal {
    /// The envelope recipient, as in [`OutgoingMessage::recipients`].
    pub recipient: String,
    /// The relay's reply, code first (`550 5.1.1 mailbox unavailable`), or why the sender did
    /// not even try (an address that is not one).
    pub reply: String,
    /// `true` for a 5xx reply or an unusable address: sending again will not help. `false` for a
    /// 4xx reply (`452 4.5.3 Too many recipients`, a greylisting `450`): a later attempt may
    /// succeed.
    pub permanent: bool,
}

/// What happened to one message: every recipient not listed in `refused` accepted it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    pub refused: Vec<RecipientRefusal>,
}

impl SendReport {
    /// Whether every recipient accepted the message.
    pub fn all_accepted(&self) -> bool {
        self.refused.is_empty()
    }

    /// The recipients of `message` that accepted it, in envelope order.
    pub fn accepted<'m>(&self, message: &'m OutgoingMessage) -> Vec<&'m str> {
        let refused: std::collections::HashSet<&str> =
            self.refused.iter().map(|r| r.recipient.as_str()).collect();
        message
            .recipients
            .iter()
            .map(String::as_str)
            .filter(|r| !refused.contains(r))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Connection refused, timeout, 4xx for the whole message: retried later.
    #[error("mail relay unavailable: {0}")]
    Transient(String),
    /// 5xx for the whole message (bad sender, message refused): the meeting fails with this reason.
    #[error("mail relay refused the message: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Sender: Send + Sync {
    /// Hands `message` to its recipients. `Ok` means the relay took it for every recipient not
    /// listed in the report's `refused`; when every recipient is refused no message data is
    /// sent at all, and the report lists them all.
    async fn send(&self, message: &OutgoingMessage) -> Result<SendReport, SendError>;
}
