//! The rewrite engine of MMS: lossless iCalendar, selection of the meetings to migrate (P2),
//! detection and rewrite of the online-meeting block (P4), and the iMIP update (P5). No I/O.
//!
//! The worker calls four functions, in order, for each resource of the organizer's mailbox:
//! [`select`] (migrate or skip, with a reason), [`rewrite`] (new coordinates in; the new resource
//! and whether anything changed out), then, when it changed and was saved, [`build_updates`] (the
//! messages to the attendees, in batches). [`Limits`] bounds what one resource may cost.
//! An undo of a migration calls [`undo`] instead of [`rewrite`], with the pre-image the rewrite
//! recorded ([`Rewritten::pre_image`]).
//!
//! # Why a content-line layer of our own
//!
//! P4 demands that everything the organizer wrote stays byte for byte. Two maintained Rust
//! parsers were compared:
//!
//! - `icalendar` (0.17): a strongly typed builder with a parser that only accepts input unfolded
//!   beforehand (`parser::unfold`); `to_string()` writes its own folding and CRLF line ends, so the
//!   original folding points, LF line ends and blank lines are gone. Only canonical input survives
//!   a round trip, and Outlook's output is not canonical.
//! - `calcard` (Stalwart): a thorough, liberal RFC 5545/7986 parser with typed properties and
//!   JSCalendar conversion; it rebuilds the text on output (its own test resources pair each
//!   `.ics` with a normalised `.ics.out`), and it is a large dependency for the little semantics
//!   selection needs.
//!
//! Neither preserves bytes, so [`contentline`] keeps each content line's original folded bytes
//! and unfolds and splits it only when read; a property MMS changes is the only one
//! re-serialized (folded at 75 octets, never inside a UTF-8 sequence). The semantics that are
//! hard to get right are not hand-written: recurrence expansion is the maintained `rrule` crate
//! (with `chrono-tz` zones), MIME is lettre's builder. For every file of the ics-collective corpus
//! that parses, `serialize(parse(x)) == x` byte for byte, with no normalisation at all.
//!
//! # "Already migrated" is decided by meaning
//!
//! Servers store a meeting in their own spelling (parameters sorted or quoted, TEXT escaped
//! differently, refolded, properties reordered). A rewrite compares every property it would
//! write with the one in place by meaning ([`meaning`]: RFC 5545's case, escaping and set rules),
//! so a meeting MMS migrated before, as any server stored it, comes back unchanged, with its
//! SEQUENCE and bytes, and no second update is sent.
//!
//! # Time zones
//!
//! TZIDs are IANA names, Windows names (mapped to IANA), or resolved from the resource's own
//! VTIMEZONE; floating times and unknown zones widen the "still in the future" test by 14 hours.
//! A time zone never makes selection fail: a false skip would lose a meeting.

pub mod contentline;
pub mod detect;
pub mod error;
pub mod imip;
pub mod meaning;
pub mod message;
pub mod render;
pub mod rewrite;
pub mod select;
pub mod text;
pub mod time;
pub mod undo;

use chrono::{DateTime, Utc};
use mms_core::{Coordinates, MeetingPreImage, SourceMeetingType};

pub use contentline::{Document, Limits};
pub use error::IcalError;
pub use imip::{build_updates, NotNotified, NotNotifiedReason, UpdateContext, UpdatePlan};
pub use select::{Selected, Selection, Skip, SkipReason};
pub use undo::{UndoSkip, Undone};

/// The resource as text: iCalendar is UTF-8 (RFC 5545 3.1.4); anything else is a typed error.
pub fn utf8(bytes: &[u8]) -> Result<&str, IcalError> {
    std::str::from_utf8(bytes).map_err(|e| IcalError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Decides whether MMS migrates the resource `ics` for `organizer` (P2), with default [`Limits`].
///
/// Skips (organized by someone else, cancelled, past, no online block of `source`, not an event)
/// are `Ok(Selected::Skip)` with a reason; only unreadable input is an error.
pub fn select(
    ics: &str,
    organizer: &str,
    source: SourceMeetingType,
    now: DateTime<Utc>,
) -> Result<Selected, IcalError> {
    select_with(ics, organizer, source, now, &Limits::default())
}

/// [`select`] with explicit limits.
pub fn select_with(
    ics: &str,
    organizer: &str,
    source: SourceMeetingType,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Selected, IcalError> {
    let mut document = Document::parse_with(ics, limits)?;
    document.with_root(|calendar| select::select_calendar(calendar, organizer, source, now))?
}

/// The result of [`rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The new resource; byte-identical to the input when `changed` is false.
    pub ics: String,
    /// Whether any event changed in meaning ([`meaning`]): false for a meeting that already
    /// carries the target coordinates in any server's spelling, so nothing is saved or sent.
    pub changed: bool,
    pub uid: String,
    /// SEQUENCE of the master event after the rewrite.
    pub sequence: u32,
    /// What the rewrite replaced, per changed VEVENT (empty when nothing changed): kept by the
    /// worker so that the migration can be undone ([`undo`]).
    pub pre_image: MeetingPreImage,
}

/// Writes `coords` into every VEVENT (master and exceptions) that has an online block or
/// online-meeting properties (P4). `now` becomes DTSTAMP and LAST-MODIFIED of changed events.
pub fn rewrite(
    ics: &str,
    coords: &Coordinates,
    now: DateTime<Utc>,
) -> Result<Rewritten, IcalError> {
    rewrite_with(ics, coords, now, &Limits::default())
}

/// [`rewrite`] with explicit limits.
pub fn rewrite_with(
    ics: &str,
    coords: &Coordinates,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Rewritten, IcalError> {
    let mut document = Document::parse_with(ics, limits)?;
    let line_ending = document.line_ending;
    let (events, uid, sequence) = document.with_root(|calendar| -> Result<_, IcalError> {
        let mut events = Vec::new();
        for event in calendar.components_mut().filter(|c| c.name == "VEVENT") {
            events.extend(rewrite::rewrite_event(event, coords, line_ending, now)?);
        }
        let master = calendar
            .master_event()
            .ok_or(IcalError::NoEvent { action: "rewrite" })?;
        let uid = master
            .property("UID")
            .map(|p| p.value().trim().to_string())
            .ok_or(IcalError::MissingProperty {
                property: "UID",
                why: "a meeting cannot be updated without its UID",
            })?;
        Ok((events, uid, select::sequence_of(master)?))
    })??;
    let changed = !events.is_empty();
    let ics = if changed {
        document.serialize()
    } else {
        ics.to_string()
    };
    Ok(Rewritten {
        ics,
        changed,
        pre_image: MeetingPreImage {
            uid: uid.clone(),
            events,
        },
        uid,
        sequence,
    })
}

/// Undoes a migration of one meeting (issue 9.2): given the meeting as it is now and the
/// pre-image its migration recorded ([`Rewritten::pre_image`]), puts the previous online block
/// back wherever the meeting still carries what the migration wrote, keeping every later edit of
/// the organizer outside the block. See [`undo::undo_event`] for the rules. `now` becomes
/// DTSTAMP and LAST-MODIFIED of the events that changed, whose SEQUENCE is raised.
pub fn undo(
    ics: &str,
    pre_image: &MeetingPreImage,
    now: DateTime<Utc>,
) -> Result<Undone, IcalError> {
    undo_with(ics, pre_image, now, &Limits::default())
}

/// [`undo`] with explicit limits.
pub fn undo_with(
    ics: &str,
    pre_image: &MeetingPreImage,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Undone, IcalError> {
    let mut document = Document::parse_with(ics, limits)?;
    let line_ending = document.line_ending;
    let result = document
        .with_root(|calendar| undo::undo_calendar(calendar, pre_image, line_ending, now))??;
    Ok(match result {
        undo::CalendarUndo::Skipped(skip) => Undone::Skipped(skip),
        undo::CalendarUndo::Done {
            changed,
            uid,
            sequence,
        } => Undone::Restored(Rewritten {
            ics: if changed {
                document.serialize()
            } else {
                ics.to_string()
            },
            changed,
            uid,
            sequence,
            pre_image: MeetingPreImage::default(),
        }),
    })
}
