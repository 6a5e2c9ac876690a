//! The update message (P5): an iMIP (RFC 6047) REQUEST that carries the rewritten meeting to
//! every attendee, sent by MMS on the organizer's behalf.
//!
//! The MIME structure is built with lettre's message builder (multipart/alternative: text/plain,
//! text/html, text/calendar; method=REQUEST), which also takes care of encoded-words and transfer
//! encodings, so non-ASCII summaries and bodies arrive intact. The Message-ID is derived from
//! (UID, SEQUENCE, attendee set): a resend of the same update carries the same id and can be
//! recognised by the relay, the mailbox and MMS's own outbox.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use mms_core::OutgoingMessage;
use sha2::{Digest, Sha256};

use crate::contentline::{ContentLine, Document, Entry};
use crate::detect::{html_blocks, text_blocks};
use crate::error::IcalError;
use crate::select::{address, sequence_of};
use crate::text::unescape;

/// The Message-ID (without angle brackets) of the update for (`uid`, `sequence`, `attendees`).
pub fn message_id(uid: &str, sequence: u32, attendees: &[String]) -> String {
    let mut sorted: Vec<String> = attendees.iter().map(|a| address(a)).collect();
    sorted.sort();
    sorted.dedup();
    let digest = Sha256::digest(format!("{uid}|{sequence}|{}", sorted.join(",")).as_bytes());
    format!("{}@mms", &hex::encode(digest)[..32])
}

fn mailbox(what: &'static str, value: &str, name: Option<String>) -> Result<Mailbox, IcalError> {
    let email = address(value);
    let parsed =
        email
            .parse()
            .map_err(|e: lettre::address::AddressError| IcalError::BadAddress {
                what,
                value: value.to_string(),
                reason: e.to_string(),
            })?;
    let name = name.map(|n| header_text(&n)).filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, parsed))
}

/// Text fit for a header (display name, subject): control characters, which a broken resource
/// can carry in a CN or SUMMARY and which lettre cannot encode (a lone CR once made it panic,
/// found by the fuzz target), become spaces.
fn header_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds the iMIP REQUEST for an (already rewritten) resource.
pub fn build_update(
    ics: &str,
    organizer: &str,
    service_address: &str,
) -> Result<OutgoingMessage, IcalError> {
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
    let organizer_address = address(organizer);
    let organizer_name = master
        .property("ORGANIZER")
        .and_then(|p| p.param("CN"))
        .map(str::to_string);

    let mut recipients: Vec<String> = Vec::new();
    for event in calendar.components().filter(|c| c.name == "VEVENT") {
        for attendee in event.properties().filter(|p| p.name() == "ATTENDEE") {
            let attendee = address(attendee.value());
            if attendee != organizer_address
                && attendee.contains('@')
                && !recipients.contains(&attendee)
            {
                recipients.push(attendee);
            }
        }
    }
    if recipients.is_empty() {
        return Err(IcalError::MissingProperty {
            property: "ATTENDEE",
            why: "an update needs at least one attendee besides the organizer",
        });
    }

    let description = master
        .property("DESCRIPTION")
        .map(|p| unescape(p.value()))
        .unwrap_or_default();
    let text_part = match text_blocks(&description).first() {
        Some(block) => format!("{summary}\n\n{}\n", &description[block.range.clone()]),
        None => format!("{summary}\n"),
    };
    let html = master
        .property("X-ALT-DESC")
        .map(|p| unescape(p.value()))
        .unwrap_or_default();
    let html_part = match html_blocks(&html).first() {
        Some(block) => format!(
            "<html><body><p>{}</p>\n{}\n</body></html>\n",
            html_escape::encode_text(&summary),
            &html[block.range.clone()]
        ),
        None => format!(
            "<html><body><p>{}</p></body></html>\n",
            html_escape::encode_text(&summary)
        ),
    };

    // METHOD belongs to the message (iTIP), not to the stored resource.
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
    let calendar_text = document.serialize();

    let id = message_id(&uid, sequence, &recipients);
    let mut builder = Message::builder()
        .from(mailbox("organizer", organizer, organizer_name)?)
        .sender(mailbox("service address", service_address, None)?)
        .subject(header_text(&summary))
        .message_id(Some(format!("<{id}>")));
    for recipient in &recipients {
        builder = builder.to(mailbox("attendee", recipient, None)?);
    }
    let calendar_type = ContentType::parse("text/calendar; charset=utf-8; method=REQUEST")
        .map_err(|e| IcalError::Message(e.to_string()))?;
    let message = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text_part))
                .singlepart(SinglePart::html(html_part))
                .singlepart(
                    SinglePart::builder()
                        .header(calendar_type)
                        .header(ContentTransferEncoding::Base64)
                        .body(calendar_text),
                ),
        )
        .map_err(|e| IcalError::Message(e.to_string()))?;
    Ok(OutgoingMessage {
        message_id: id,
        envelope_from: address(service_address),
        recipients,
        raw: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_ignores_attendee_order_and_case() {
        let a = message_id("u", 2, &["mailto:B@x.com".into(), "a@x.com".into()]);
        let b = message_id("u", 2, &["A@X.com".into(), "b@x.com".into()]);
        assert_eq!(a, b);
        assert_ne!(a, message_id("u", 3, &["a@x.com".into(), "b@x.com".into()]));
        assert!(a.ends_with("@mms") && a.len() == 32 + 4);
    }

    #[test]
    fn control_characters_never_reach_lettre() {
        assert_eq!(header_text("Sher\ran,\t J\u{f6}ni\n"), "Sher an, J\u{f6}ni");
    }
}
