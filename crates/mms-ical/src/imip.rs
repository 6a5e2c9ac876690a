//! The update messages (P5): iMIP (RFC 6047) REQUESTs that carry the rewritten meeting to its
//! attendees, sent by MMS on the organizer's behalf, in batches of at most
//! `mail.max_recipients_per_message` recipients.
//!
//! [`build_updates`] parses the resource once and builds:
//!
//! - the audience ([`crate::message::recipients`]): every attendee of every VEVENT, sorted and
//!   deduplicated case-insensitively, minus the organizer, the attendees who declined (unless
//!   `notify_declined`) and the ones without a usable address, which are reported in
//!   [`UpdatePlan::not_notified`];
//! - one MIME body ([`crate::message::body`]) shared by every batch: text, HTML and the calendar
//!   with `METHOD:REQUEST` and every attendee's PARTSTAT as stored;
//! - per batch, its header block ([`crate::message::header`], folded per RFC 5322) and its
//!   Message-ID, unique per (tenant, organizer, UID, SEQUENCE, batch) and deterministic: a
//!   resend of the same batch carries the same id, and the relay, the attendee's mailbox and
//!   MMS's own sent ledger recognise it.
//!
//! The cost is linear in the attendee count (one parse, one sort, one body); a 10,000-attendee
//! meeting builds in milliseconds (`benches/updates.rs`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mms_core::OutgoingMessage;
use sha2::{Digest, Sha256};

use crate::contentline::{ContentLine, Document, Entry};
use crate::error::IcalError;
use crate::message::body::{html_part, mime_body, text_part, Renderings};
use crate::message::header::{self, HeaderBlock};
use crate::message::recipients::{self, address_problem, mail_address, Recipient};
use crate::select::sequence_of;
use crate::text::unescape;

pub use crate::message::recipients::{NotNotified, NotNotifiedReason};

/// Who sends the update, on whose behalf, and how it is split.
#[derive(Debug, Clone, Copy)]
pub struct UpdateContext<'a> {
    /// The tenant the organizer belongs to: part of every Message-ID, so two tenants that hold
    /// the same meeting never share one.
    pub tenant: &'a str,
    /// The organizer's UPN / address: `From:`, and never a recipient.
    pub organizer: &'a str,
    /// The service address: `Sender:` and the envelope sender; its domain is the Message-IDs'
    /// right-hand side.
    pub service_address: &'a str,
    /// Recipients per message (`mail.max_recipients_per_message`, default 100), at least 1.
    pub max_recipients_per_message: usize,
    /// Whether attendees who declined get the update (`mail.notify_declined`, default false).
    pub notify_declined: bool,
    /// The `Date:` of the messages (RFC 5322 §3.6.1 requires one).
    pub date: DateTime<Utc>,
}

/// Everything one meeting's update consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePlan {
    pub uid: String,
    pub sequence: u32,
    /// One message per batch of at most `max_recipients_per_message` recipients, in recipient
    /// order; empty when nobody is to be notified.
    pub batches: Vec<OutgoingMessage>,
    /// Attendees who get no update, each with the reason, for the meeting's outcome.
    pub not_notified: Vec<NotNotified>,
}

impl UpdatePlan {
    /// Every recipient of every batch.
    pub fn recipient_count(&self) -> usize {
        self.batches.iter().map(|b| b.recipients.len()).sum()
    }
}

/// The Message-ID (without angle brackets) of the batch of `recipients` (lower-cased
/// addresses, in batch order) of the update of (`uid`, `sequence`) that `organizer` of
/// `tenant` sends. `domain` is the right-hand side.
///
/// Each field is length-prefixed before hashing, so no two different inputs can run together
/// into the same hashed text (`tenant "a|b"` against `tenant "a"` + `organizer "b..."`).
pub fn message_id(
    tenant: &str,
    organizer: &str,
    uid: &str,
    sequence: u32,
    recipients: &[&str],
    domain: &str,
) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(tenant.as_bytes());
    field(organizer.to_lowercase().as_bytes());
    field(uid.as_bytes());
    field(&sequence.to_be_bytes());
    for recipient in recipients {
        field(recipient.as_bytes());
    }
    format!("{}@{domain}", &hex::encode(hash.finalize())[..32])
}

/// Text fit for a header (display name, subject): control characters, which a broken resource
/// can carry in a CN or SUMMARY, become spaces, and runs of whitespace one space.
pub fn header_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The bare address of `value` (`mailto:` dropped), checked for use in SMTP.
fn checked_address(what: &'static str, value: &str) -> Result<String, IcalError> {
    let trimmed = value.trim();
    let address = match trimmed.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => trimmed[7..].trim(),
        _ => trimmed,
    };
    match address_problem(address) {
        None => Ok(address.to_string()),
        Some(reason) => Err(IcalError::BadAddress {
            what,
            value: value.to_string(),
            reason,
        }),
    }
}

/// Builds the update messages for an (already rewritten and saved) resource.
pub fn build_updates(ics: &str, ctx: &UpdateContext) -> Result<UpdatePlan, IcalError> {
    if ctx.max_recipients_per_message == 0 {
        return Err(IcalError::InvalidSetting {
            key: "mail.max_recipients_per_message",
            value: "0".into(),
            expected: "1 or more (the relay's per-message recipient limit; 100 is safe)",
        });
    }
    let organizer = checked_address("organizer", ctx.organizer)?;
    let service = checked_address("service address", ctx.service_address)?;
    let domain = service
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .ok_or(IcalError::BadAddress {
            what: "service address",
            value: ctx.service_address.to_string(),
            reason: "it has no domain, which Message-IDs need as their right-hand side".into(),
        })?;

    let mut document = Document::parse(ics)?;
    let calendar = document.calendar().ok_or(IcalError::NoCalendar)?;
    let master = calendar
        .master_event()
        .ok_or(IcalError::NoEvent { action: "send" })?;
    let uid = master
        .property("UID")
        .map(|p| p.value().trim().to_string())
        .ok_or(IcalError::MissingProperty {
            property: "UID",
            why: "attendees' clients match the update to their copy by UID",
        })?;
    let sequence = sequence_of(master)?;
    let summary = master
        .property("SUMMARY")
        .map(|p| unescape(p.value()))
        .unwrap_or_default();
    let description = master
        .property("DESCRIPTION")
        .map(|p| unescape(p.value()))
        .unwrap_or_default();
    let alt_desc = master
        .property("X-ALT-DESC")
        .filter(|p| {
            p.param("FMTTYPE")
                .is_none_or(|t| t.trim().eq_ignore_ascii_case("text/html"))
        })
        .map(|p| unescape(p.value()));
    let organizer_property = master.property("ORGANIZER");
    let organizer_name = organizer_property
        .and_then(|p| p.param("CN"))
        .map(header_text)
        .filter(|n| !n.is_empty());
    let mut organizers = vec![organizer.to_lowercase()];
    if let Some(address) = organizer_property.and_then(mail_address) {
        organizers.push(address.to_lowercase());
    }
    let audience = recipients::audience(calendar, &organizers, ctx.notify_declined);

    if audience.recipients.is_empty() {
        return Ok(UpdatePlan {
            uid,
            sequence,
            batches: Vec::new(),
            not_notified: audience.not_notified,
        });
    }

    let renderings = Renderings {
        text: text_part(&summary, &description),
        html: html_part(&summary, &description, alt_desc.as_deref()),
        calendar: with_method_request(&mut document)?,
    };
    let boundary = boundary_for(&renderings);
    let body: Arc<[u8]> = Arc::from(mime_body(renderings, &boundary)?);

    // The fields every batch shares, written once.
    let mut common = HeaderBlock::default();
    let date = ctx.date.to_rfc2822();
    common.field("Date", date.split(' '));
    common.field(
        "From",
        header::mailbox(organizer_name.as_deref(), &organizer),
    );
    common.field("Sender", [service.as_str()]);
    let subject = header::unstructured(&header_text(&summary));
    if !subject.is_empty() {
        common.field("Subject", subject);
    }
    let common = common.into_bytes();

    let batches = audience
        .recipients
        .chunks(ctx.max_recipients_per_message)
        .map(|batch| {
            build_batch(
                batch, &common, &body, ctx.tenant, &organizer, &uid, sequence, &domain, &service,
            )
        })
        .collect();
    Ok(UpdatePlan {
        uid,
        sequence,
        batches,
        not_notified: audience.not_notified,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_batch(
    batch: &[Recipient],
    common: &[u8],
    body: &Arc<[u8]>,
    tenant: &str,
    organizer: &str,
    uid: &str,
    sequence: u32,
    domain: &str,
    service: &str,
) -> OutgoingMessage {
    let keys: Vec<&str> = batch.iter().map(|r| r.key.as_str()).collect();
    let id = message_id(tenant, organizer, uid, sequence, &keys, domain);
    let mut head = HeaderBlock::with_capacity(common.len() + batch.len() * 48 + 128);
    head.field(
        "To",
        header::mailbox_list(
            batch
                .iter()
                .map(|r| (r.name.as_deref(), r.address.as_str())),
        ),
    );
    head.field("Message-ID", [format!("<{id}>")]);
    head.field("MIME-Version", ["1.0"]);
    let mut bytes = Vec::with_capacity(common.len() + 4096);
    bytes.extend_from_slice(common);
    bytes.extend_from_slice(&head.into_bytes());
    OutgoingMessage {
        message_id: id,
        envelope_from: service.to_string(),
        recipients: batch.iter().map(|r| r.address.clone()).collect(),
        head: bytes,
        body: Arc::clone(body),
    }
}

/// The calendar part: the stored resource with `METHOD:REQUEST` (iTIP's method belongs to the
/// message, not to the stored resource, so a METHOD already there is replaced).
fn with_method_request(document: &mut Document) -> Result<String, IcalError> {
    let line_ending = document.line_ending;
    let calendar = document.calendar_mut().ok_or(IcalError::NoCalendar)?;
    calendar
        .entries
        .retain(|e| !matches!(e, Entry::Property(p) if p.name() == "METHOD"));
    let at = calendar
        .entries
        .iter()
        .position(|e| matches!(e, Entry::Component(_)))
        .unwrap_or(calendar.entries.len());
    calendar.entries.insert(
        at,
        Entry::Property(ContentLine::new("METHOD", "", "REQUEST", line_ending)),
    );
    Ok(document.serialize())
}

/// A MIME boundary derived from the parts. `=_` cannot occur in quoted-printable or base64
/// output, and the digest makes it absent from a 7bit part as well.
fn boundary_for(parts: &Renderings) -> String {
    let mut hash = Sha256::new();
    for part in [&parts.text, &parts.html, &parts.calendar] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    format!("=_mms_{}", &hex::encode(hash.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_differ_by_every_input_and_repeat_for_the_same() {
        let base = || {
            message_id(
                "t1",
                "joni@contoso.com",
                "u",
                2,
                &["a@x.com"],
                "contoso.com",
            )
        };
        assert_eq!(base(), base());
        assert!(base().ends_with("@contoso.com"));
        let others = [
            message_id(
                "t2",
                "joni@contoso.com",
                "u",
                2,
                &["a@x.com"],
                "contoso.com",
            ),
            message_id("t1", "lee@contoso.com", "u", 2, &["a@x.com"], "contoso.com"),
            message_id(
                "t1",
                "joni@contoso.com",
                "v",
                2,
                &["a@x.com"],
                "contoso.com",
            ),
            message_id(
                "t1",
                "joni@contoso.com",
                "u",
                3,
                &["a@x.com"],
                "contoso.com",
            ),
            message_id(
                "t1",
                "joni@contoso.com",
                "u",
                2,
                &["b@x.com"],
                "contoso.com",
            ),
        ];
        for other in others {
            assert_ne!(other, base());
        }
        // Length prefixes keep fields from running into each other.
        assert_ne!(
            message_id("ab", "c@d", "u", 1, &[], "x"),
            message_id("a", "bc@d", "u", 1, &[], "x")
        );
        // The organizer's spelling does not matter.
        assert_eq!(
            base(),
            message_id(
                "t1",
                "Joni@Contoso.com",
                "u",
                2,
                &["a@x.com"],
                "contoso.com"
            )
        );
    }

    #[test]
    fn control_characters_never_reach_a_header() {
        assert_eq!(header_text("Sher\ran,\t J\u{f6}ni\n"), "Sher an, J\u{f6}ni");
    }
}
