//! The undo of a migration (issue 9.2): the previous online block put back into a meeting, from
//! the pre-image its rewrite recorded ([`mms_core::MeetingPreImage`]), while every later edit of
//! the organizer outside the block stays.
//!
//! For each VEVENT the migration changed (found again by UID and RECURRENCE-ID):
//!
//! - **Bodies** (DESCRIPTION, X-ALT-DESC), in unescaped text: where the body still holds exactly
//!   what the migration wrote, that span gets the old text back; the organizer's text before and
//!   after it keeps its bytes (the span is edited in the escaped value, as the rewrite does). A
//!   body that already holds the old text again (an undo that ran before) is left alone. A body
//!   whose block is neither — the organizer edited the block since — makes the whole meeting a
//!   skip ([`UndoSkip::BlockChanged`]): an undo never overwrites an edit inside the block.
//! - **Properties** (LOCATION, URL, CONFERENCE, X-MICROSOFT-*): a group whose lines the meeting
//!   still carries (in meaning, [`crate::meaning`]) is replaced by the original lines, in place of
//!   the first; a group the organizer changed since (a room typed into LOCATION) keeps the
//!   organizer's version; lines the migration only removed come back unless they already are.
//! - An event that changed gets SEQUENCE raised and DTSTAMP / LAST-MODIFIED set, as a rewrite
//!   does; an undo of an undone meeting changes nothing, so a second undo sends nothing.
//!
//! "Changed" is decided by meaning throughout, so a meeting a server stored in its own spelling
//! (re-escaped, refolded, parameters reordered) is undone like the bytes MMS wrote.

use chrono::{DateTime, Utc};
use mms_core::{BodyPreImage, EventPreImage, MeetingPreImage, PropertyPreImage};

use crate::contentline::{Component, ContentLine, Entry};
use crate::detect::{html_blocks, text_blocks};
use crate::error::IcalError;
use crate::meaning::same_meaning;
use crate::rewrite::{recurrence_id_of, stamp_changed, uid_of};
use crate::select::sequence_of;
use crate::text::{escape, unescape, Unescaped};
use crate::Rewritten;

/// The result of [`crate::undo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    /// The meeting with its previous blocks back. `changed` is false when it already was as
    /// before the migration (nothing to save or send); its `pre_image` is empty.
    Restored(Rewritten),
    /// Left as it is, for the reason given.
    Skipped(UndoSkip),
}

/// Why an undo leaves a meeting as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoSkip {
    /// The resource at that place holds another meeting than the one migrated.
    #[error("the resource now holds another meeting (UID {found:?}; the migration rewrote {expected:?})")]
    OtherMeeting { expected: String, found: String },
    /// The organizer edited the online-meeting block since the migration.
    #[error("the organizer changed the online-meeting block in {property}{} since the migration: undo would overwrite their edit; put the old block back by hand if wanted", occurrence(.recurrence_id))]
    BlockChanged {
        property: &'static str,
        recurrence_id: Option<String>,
    },
}

fn occurrence(recurrence_id: &Option<String>) -> String {
    recurrence_id
        .as_ref()
        .map(|id| format!(" of the occurrence {id}"))
        .unwrap_or_default()
}

/// What [`undo_calendar`] found, before serialization.
pub(crate) enum CalendarUndo {
    Skipped(UndoSkip),
    Done {
        changed: bool,
        uid: String,
        sequence: u32,
    },
}

/// What to do with one body.
enum BodyAction {
    /// Store this raw (escaped) value.
    Set(String),
    /// Remove the property: the migration added it and it holds nothing else.
    Remove,
    /// Already as before, or removed by the organizer: nothing to put back.
    Keep,
}

/// What an undo does to one event, decided before anything is changed.
struct EventPlan<'a> {
    /// Where the VEVENT is in the calendar's entries.
    at: usize,
    image: &'a EventPreImage,
    actions: Vec<(&'a BodyPreImage, BodyAction)>,
}

/// Undoes the migration described by `pre_image` in `calendar` (see the module documentation).
/// Decides every body of every event first, so that a skipped meeting is left untouched.
pub(crate) fn undo_calendar(
    calendar: &mut Component,
    pre_image: &MeetingPreImage,
    line_ending: &str,
    now: DateTime<Utc>,
) -> Result<CalendarUndo, IcalError> {
    let uid = uid_of(
        calendar
            .master_event()
            .ok_or(IcalError::NoEvent { action: "undo" })?,
    );
    if uid != pre_image.uid {
        return Ok(CalendarUndo::Skipped(UndoSkip::OtherMeeting {
            expected: pre_image.uid.clone(),
            found: uid,
        }));
    }
    let mut plans: Vec<EventPlan> = Vec::new();
    for (index, image) in pre_image.events.iter().enumerate() {
        // Events with the same UID and RECURRENCE-ID are matched in order.
        let nth = pre_image.events[..index]
            .iter()
            .filter(|e| e.uid == image.uid && e.recurrence_id == image.recurrence_id)
            .count();
        // An occurrence deleted since has nothing left to put back.
        let Some(at) = event_position(calendar, image, nth) else {
            continue;
        };
        let Entry::Component(event) = &calendar.entries[at] else {
            unreachable!("event_position points at a component")
        };
        let mut actions = Vec::new();
        for body in &image.bodies {
            match plan_body(event, body, line_ending) {
                Some(action) => actions.push((body, action)),
                None => {
                    return Ok(CalendarUndo::Skipped(UndoSkip::BlockChanged {
                        property: body.property.name(),
                        recurrence_id: image.recurrence_id.clone(),
                    }))
                }
            }
        }
        plans.push(EventPlan { at, image, actions });
    }
    let mut changed = false;
    for EventPlan { at, image, actions } in plans {
        let Entry::Component(event) = &mut calendar.entries[at] else {
            unreachable!("event_position points at a component")
        };
        let mut event_changed = false;
        for (body, action) in actions {
            event_changed |= apply_body(event, body, action, line_ending);
        }
        for group in &image.properties {
            event_changed |= undo_properties(event, group, line_ending);
        }
        if event_changed {
            stamp_changed(event, line_ending, now)?;
            changed = true;
        }
    }
    let master = calendar
        .master_event()
        .ok_or(IcalError::NoEvent { action: "undo" })?;
    Ok(CalendarUndo::Done {
        changed,
        uid,
        sequence: sequence_of(master)?,
    })
}

/// Where in `calendar.entries` the `nth` VEVENT with the UID and RECURRENCE-ID of `image` is.
fn event_position(calendar: &Component, image: &EventPreImage, nth: usize) -> Option<usize> {
    calendar
        .entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| match entry {
            Entry::Component(c) if c.name == "VEVENT" => {
                uid_of(c) == image.uid && recurrence_id_of(c) == image.recurrence_id
            }
            _ => false,
        })
        .nth(nth)
        .map(|(at, _)| at)
}

/// Decides one body; `None` when the organizer changed its block since (the meeting is skipped).
fn plan_body(event: &Component, body: &BodyPreImage, line_ending: &str) -> Option<BodyAction> {
    let Some(property) = event.property(body.property.name()) else {
        // Removed by the organizer (or never stored by the server): nothing to put back into.
        return Some(BodyAction::Keep);
    };
    let raw = property.value();
    let unescaped = Unescaped::new(raw);
    if let Some(at) = unescaped.text.find(&body.written) {
        let range = unescaped.raw_range(at, at + body.written.len());
        let value = format!(
            "{}{}{}",
            &raw[..range.start],
            escape(&body.replaced),
            &raw[range.end..]
        );
        if !body.existed && unescape(&value).trim().is_empty() {
            return Some(BodyAction::Remove);
        }
        // A parameter section that would read differently with the new value cannot be
        // written back (see `ContentLine::with_value`): leave the meeting to a person.
        property.with_value(&value, line_ending)?;
        return Some(BodyAction::Set(value));
    }
    let as_before = if body.replaced.is_empty() {
        // The migration only appended its block: as before when no block of MMS is left.
        let blocks = match body.property {
            mms_core::BodyProperty::Description => text_blocks(&unescaped.text),
            mms_core::BodyProperty::AltDescription => html_blocks(&unescaped.text),
        };
        !blocks.iter().any(|b| b.by_mms)
    } else {
        unescaped.text.contains(&body.replaced)
    };
    as_before.then_some(BodyAction::Keep)
}

/// Carries out a body's action; returns whether the event changed in meaning.
fn apply_body(
    event: &mut Component,
    body: &BodyPreImage,
    action: BodyAction,
    line_ending: &str,
) -> bool {
    let name = body.property.name();
    match action {
        BodyAction::Keep => false,
        BodyAction::Remove => {
            let at = event
                .entries
                .iter()
                .position(|e| matches!(e, Entry::Property(p) if p.name() == name));
            at.map(|at| event.entries.remove(at)).is_some()
        }
        BodyAction::Set(value) => {
            let Some(line) = event
                .property(name)
                .and_then(|p| p.with_value(&value, line_ending))
            else {
                return false;
            };
            event.set_property(name, line)
        }
    }
}

/// Puts one property group back (see the module documentation); returns whether it did.
fn undo_properties(event: &mut Component, group: &PropertyPreImage, line_ending: &str) -> bool {
    let parse = |lines: &[String]| -> Option<Vec<ContentLine>> {
        lines
            .iter()
            .map(|l| ContentLine::from_unfolded_text(l, line_ending).ok())
            .collect()
    };
    // A line that does not parse again cannot have been written by a rewrite: leave the group.
    let (Some(before), Some(after)) = (parse(&group.before), parse(&group.after)) else {
        return false;
    };
    let present = |wanted: &[ContentLine]| -> Option<Vec<usize>> {
        let mut used: Vec<usize> = Vec::new();
        for line in wanted {
            let at = event.entries.iter().enumerate().position(|(i, e)| {
                matches!(e, Entry::Property(p) if !used.contains(&i) && same_meaning(p, line))
            })?;
            used.push(at);
        }
        Some(used)
    };
    if after.is_empty() {
        if present(&before).is_some() {
            return false;
        }
        for line in before {
            event.insert_property(line);
        }
        return true;
    }
    let Some(mut found) = present(&after) else {
        // The organizer changed what the migration wrote, or an undo already ran: theirs stays.
        return false;
    };
    found.sort_unstable();
    let old = std::mem::take(&mut event.entries);
    let mut before = Some(before);
    for (i, entry) in old.into_iter().enumerate() {
        if i == found[0] {
            let lines = before.take().unwrap_or_default();
            event.entries.extend(lines.into_iter().map(Entry::Property));
        } else if !found.contains(&i) {
            event.entries.push(entry);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use mms_core::{BodyProperty, Coordinates, OnlineMeetingKind};

    fn coords() -> Coordinates {
        Coordinates {
            kind: OnlineMeetingKind::Teams,
            join_url: "https://teams.example.net/l/meetup-join/x/1".into(),
            meeting_id: "1".into(),
            passcode: None,
            conference_id: None,
            dial_in: vec![],
            find_local_number_url: None,
        }
    }

    const SFB: &str = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:2\r\nSUMMARY:Sync\r\n\
        LOCATION:Skype Meeting\r\nX-MICROSOFT-ONLINEMEETINGCONFLINK:conf:sip:joni@contoso.com\r\n\
        DESCRIPTION:Agenda\\n\\nJoin Skype Meeting<https://meet.contoso.com/joni/AB12>\\nConference ID: 1234\\n\\nThanks\r\n\
        END:VEVENT\r\nEND:VCALENDAR\r\n";

    fn now() -> DateTime<Utc> {
        "2025-03-03T12:00:00Z".parse().unwrap()
    }

    /// The resource without its folding, for `contains`.
    fn unfolded(ics: &str) -> String {
        ics.replace("\r\n ", "")
    }

    #[test]
    fn the_pre_image_holds_the_old_block_and_the_new_one_only() {
        let migrated = crate::rewrite(SFB, &coords(), now()).unwrap();
        let image = &migrated.pre_image.events[0];
        let description = image
            .bodies
            .iter()
            .find(|b| b.property == BodyProperty::Description)
            .unwrap();
        assert!(description.existed);
        assert!(
            description.replaced.starts_with("Join Skype Meeting")
                && description.replaced.ends_with("1234"),
            "{:?}",
            description.replaced
        );
        assert!(!description.written.contains("Agenda") && !description.written.contains("Thanks"));
        assert!(description.written.contains(crate::render::MMS_MARKER));
        let location = image
            .properties
            .iter()
            .find(|p| p.before[0].starts_with("LOCATION"))
            .unwrap();
        assert_eq!(location.after, ["LOCATION:Microsoft Teams Meeting"]);
    }

    #[test]
    fn an_agenda_edit_outside_the_block_is_kept_and_a_second_undo_changes_nothing() {
        let migrated = crate::rewrite(SFB, &coords(), now()).unwrap();
        let edited = migrated.ics.replace("Agenda", "New agenda");
        let Undone::Restored(undone) = crate::undo(&edited, &migrated.pre_image, now()).unwrap()
        else {
            panic!("not skipped")
        };
        assert!(undone.changed);
        assert_eq!(undone.sequence, 4, "raised over the migration's 3");
        let expected = SFB
            .replace("Agenda", "New agenda")
            .replace("SEQUENCE:2", "SEQUENCE:4");
        assert!(undone.ics.contains("LOCATION:Skype Meeting\r\n"));
        assert!(unfolded(&undone.ics)
            .contains("X-MICROSOFT-ONLINEMEETINGCONFLINK:conf:sip:joni@contoso.com"));
        assert!(!undone.ics.contains("X-MICROSOFT-SKYPETEAMSMEETINGURL"));
        let description = |ics: &str| {
            crate::Document::parse(ics)
                .unwrap()
                .calendar()
                .unwrap()
                .master_event()
                .unwrap()
                .property("DESCRIPTION")
                .unwrap()
                .unfolded()
                .to_string()
        };
        assert_eq!(description(&undone.ics), description(&expected));
        let Undone::Restored(again) = crate::undo(&undone.ics, &migrated.pre_image, now()).unwrap()
        else {
            panic!("not skipped")
        };
        assert!(!again.changed);
        assert_eq!(again.ics, undone.ics);
    }

    #[test]
    fn an_edit_inside_the_block_skips_the_meeting_untouched() {
        let migrated = crate::rewrite(SFB, &coords(), now()).unwrap();
        let edited = migrated.ics.replace("Meeting ID: 1", "Meeting ID: 2");
        assert_ne!(edited, migrated.ics);
        let undone = crate::undo(&edited, &migrated.pre_image, now()).unwrap();
        assert_eq!(
            undone,
            Undone::Skipped(UndoSkip::BlockChanged {
                property: "DESCRIPTION",
                recurrence_id: None
            })
        );
        let Undone::Skipped(skip) = undone else {
            unreachable!()
        };
        assert!(skip
            .to_string()
            .contains("changed the online-meeting block in DESCRIPTION"));
        let other = crate::undo(
            &migrated.ics.replace("UID:u1", "UID:u2"),
            &migrated.pre_image,
            now(),
        )
        .unwrap();
        assert!(matches!(
            other,
            Undone::Skipped(UndoSkip::OtherMeeting { .. })
        ));
    }

    #[test]
    fn an_organizer_room_in_location_stays() {
        let migrated = crate::rewrite(SFB, &coords(), now()).unwrap();
        let edited = migrated
            .ics
            .replace("LOCATION:Microsoft Teams Meeting", "LOCATION:Room 5");
        let Undone::Restored(undone) = crate::undo(&edited, &migrated.pre_image, now()).unwrap()
        else {
            panic!("not skipped")
        };
        assert!(undone.ics.contains("LOCATION:Room 5\r\n"));
        assert!(unfolded(&undone.ics)
            .contains("Join Skype Meeting<https://meet.contoso.com/joni/AB12>"));
    }

    #[test]
    fn a_description_the_migration_added_goes_again() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u3\r\nSUMMARY:x\r\n\
                   X-MICROSOFT-SKYPETEAMSMEETINGURL:https://teams.microsoft.com/l/meetup-join/old\r\n\
                   END:VEVENT\r\nEND:VCALENDAR\r\n";
        let migrated = crate::rewrite(ics, &coords(), now()).unwrap();
        assert!(migrated.ics.contains("DESCRIPTION:"));
        let Undone::Restored(undone) =
            crate::undo(&migrated.ics, &migrated.pre_image, now()).unwrap()
        else {
            panic!("not skipped")
        };
        assert!(!undone.ics.contains("DESCRIPTION"), "{}", undone.ics);
        assert!(unfolded(&undone.ics).contains("meetup-join/old"));
    }
}
