//! Who gets an update: the attendees of every VEVENT of the resource, each once, in a stable
//! order, minus the organizer, the attendees who declined (unless asked) and the ones that have
//! no usable mail address, which are reported instead of dropped.
//!
//! Deduplication is case-insensitive (RFC 5321 lets a local part be case-sensitive, but no
//! calendar server treats `Joni@` and `joni@` as two people, and mailing both is the duplicate
//! an attendee complains about). The address is sent as first written (lowest in byte order
//! among its spellings, so the choice does not depend on the order of the ATTENDEE lines).
//! Sorting, not `Vec::contains`, keeps this O(n log n) for 100,000 attendees.

use std::fmt;

use crate::contentline::{Component, ContentLine};

/// One attendee that gets the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address as written (without `mailto:`).
    pub address: String,
    /// Lower-cased address: the identity used for ordering, dedup and the Message-ID.
    pub key: String,
    /// The attendee's CN, cleaned for a header.
    pub name: Option<String>,
}

/// An attendee that gets no update, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotNotified {
    /// The attendee as the resource names it (address, or the ATTENDEE value when it has none).
    pub attendee: String,
    pub reason: NotNotifiedReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotNotifiedReason {
    /// PARTSTAT=DECLINED on every ATTENDEE line of this attendee, and `mail.notify_declined`
    /// is false.
    Declined,
    /// The ATTENDEE value is not a `mailto:` URI and no EMAIL parameter gives an address.
    NoMailAddress,
    /// The address cannot be used in SMTP; the text says why.
    BadAddress(String),
}

impl fmt::Display for NotNotifiedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotNotifiedReason::Declined => f.write_str(
                "declined the meeting (set mail.notify_declined = true to update such attendees too)",
            ),
            NotNotifiedReason::NoMailAddress => f.write_str(
                "has no mail address (the ATTENDEE is not a mailto: URI and has no EMAIL parameter)",
            ),
            NotNotifiedReason::BadAddress(why) => write!(f, "has an unusable mail address: {why}"),
        }
    }
}

impl fmt::Display for NotNotified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.attendee, self.reason)
    }
}

/// The outcome of looking at every attendee.
#[derive(Debug, Default)]
pub struct Audience {
    /// Sorted by key, each attendee once.
    pub recipients: Vec<Recipient>,
    pub not_notified: Vec<NotNotified>,
}

/// The longest address SMTP carries (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with
/// its angle brackets).
const MAX_ADDRESS: usize = 254;

/// Why `address` cannot be an SMTP recipient, if it cannot.
pub fn address_problem(address: &str) -> Option<String> {
    if address.len() > MAX_ADDRESS {
        return Some(format!(
            "it is {} octets long, over SMTP's {MAX_ADDRESS}",
            address.len()
        ));
    }
    if !address.is_ascii() {
        return Some(
            "it is not ASCII, which needs SMTPUTF8 (RFC 6531); MMS sends plain SMTP".to_string(),
        );
    }
    match address.parse::<lettre::Address>() {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// The address part of an ATTENDEE or ORGANIZER value: after `mailto:`, else the EMAIL
/// parameter (RFC 7986 §6.2), else none.
pub fn mail_address(line: &ContentLine) -> Option<String> {
    let value = line.value().trim();
    match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => {
            Some(value[7..].trim().to_string())
        }
        _ => line
            .param("EMAIL")
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty()),
    }
}

/// Collects the audience of `calendar`'s VEVENTs. `organizers` are lower-cased addresses that
/// never receive the update (the sender and the ORGANIZER property).
pub fn audience(calendar: &Component, organizers: &[String], notify_declined: bool) -> Audience {
    struct Seen {
        recipient: Recipient,
        declined: bool,
    }
    let mut seen: Vec<Seen> = Vec::new();
    let mut not_notified: Vec<NotNotified> = Vec::new();
    for event in calendar.components().filter(|c| c.name == "VEVENT") {
        for line in event.properties().filter(|p| p.name() == "ATTENDEE") {
            let Some(address) = mail_address(line) else {
                not_notified.push(NotNotified {
                    attendee: line.value().trim().to_string(),
                    reason: NotNotifiedReason::NoMailAddress,
                });
                continue;
            };
            let key = address.to_lowercase();
            if organizers.contains(&key) {
                continue;
            }
            if let Some(problem) = address_problem(&address) {
                not_notified.push(NotNotified {
                    attendee: address,
                    reason: NotNotifiedReason::BadAddress(problem),
                });
                continue;
            }
            let declined = line
                .param("PARTSTAT")
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("DECLINED"));
            let name = line
                .param("CN")
                .map(crate::imip::header_text)
                .filter(|n| !n.is_empty());
            seen.push(Seen {
                recipient: Recipient { address, key, name },
                declined,
            });
        }
    }
    seen.sort_unstable_by(|a, b| {
        (&a.recipient.key, &a.recipient.address).cmp(&(&b.recipient.key, &b.recipient.address))
    });
    // One entry per key: the first spelling, a name if any line has one, and "declined" only
    // if every line of the attendee says so (an attendee who declined the series but accepted
    // one occurrence still needs that occurrence's new link).
    let mut merged: Vec<Seen> = Vec::with_capacity(seen.len());
    for next in seen {
        match merged.last_mut() {
            Some(last) if last.recipient.key == next.recipient.key => {
                last.declined &= next.declined;
                if last.recipient.name.is_none() {
                    last.recipient.name = next.recipient.name;
                }
            }
            _ => merged.push(next),
        }
    }
    let mut audience = Audience {
        recipients: Vec::with_capacity(merged.len()),
        not_notified,
    };
    for entry in merged {
        if entry.declined && !notify_declined {
            audience.not_notified.push(NotNotified {
                attendee: entry.recipient.address,
                reason: NotNotifiedReason::Declined,
            });
        } else {
            audience.recipients.push(entry.recipient);
        }
    }
    audience
        .not_notified
        .sort_unstable_by(|a, b| a.attendee.cmp(&b.attendee));
    audience.not_notified.dedup();
    audience
}
