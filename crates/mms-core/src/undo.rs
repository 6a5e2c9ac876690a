//! What a migration replaced in a meeting — its *pre-image* — so that the migration can be
//! undone (issue 9.2).
//!
//! The rewrite (`mms_ical::rewrite`) records, for every VEVENT it changed, the text it took out
//! of the two bodies and the whole content lines it replaced or removed, each next to what it
//! wrote instead. The store keeps one [`MeetingPreImage`] per meeting of a migration
//! (`mms_store::undo`), and an undo (`mms_ical::undo`) puts the old text back where the meeting
//! still carries what the migration wrote, leaving everything else (the organizer's later edits)
//! as it is.
//!
//! Only text lives here, no parsing: the records are plain data at the seam between the engine
//! (which writes and reads them) and the store (which keeps them as JSON).

use serde::{Deserialize, Serialize};

/// What one migration changed in one meeting resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MeetingPreImage {
    /// UID of the meeting: an undo refuses a resource that now holds another meeting.
    pub uid: String,
    /// One record per VEVENT the migration changed (master and exceptions).
    pub events: Vec<EventPreImage>,
}

impl MeetingPreImage {
    /// Whether the migration changed nothing in the meeting (nothing to undo).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// What the migration changed in one VEVENT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventPreImage {
    /// The event's UID (trimmed; empty when it has none).
    #[serde(default)]
    pub uid: String,
    /// The RECURRENCE-ID value of the occurrence (trimmed), `None` for the master or a single
    /// event: together with the UID, what finds the VEVENT again (events with the same pair,
    /// which RFC 5545 does not allow but files hold, are matched in order).
    #[serde(default)]
    pub recurrence_id: Option<String>,
    /// The online block of DESCRIPTION and of X-ALT-DESC, as changed.
    #[serde(default)]
    pub bodies: Vec<BodyPreImage>,
    /// The meeting properties (LOCATION, URL, CONFERENCE, X-MICROSOFT-*) replaced or removed.
    #[serde(default)]
    pub properties: Vec<PropertyPreImage>,
}

/// The TEXT properties that carry an online-meeting block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyProperty {
    /// `DESCRIPTION`: the plain-text body.
    Description,
    /// `X-ALT-DESC`: the HTML body Outlook shows.
    AltDescription,
}

impl BodyProperty {
    /// The iCalendar property name.
    pub fn name(self) -> &'static str {
        match self {
            BodyProperty::Description => "DESCRIPTION",
            BodyProperty::AltDescription => "X-ALT-DESC",
        }
    }
}

/// One body's change, in unescaped text (RFC 5545 TEXT escaping removed, so that a server that
/// re-escapes the value stored the same text): the span of the old body the migration replaced
/// and the span it wrote in its place. Everything before and after the span was left as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BodyPreImage {
    pub property: BodyProperty,
    /// Whether the property existed before: the migration adds DESCRIPTION to an event whose
    /// online meeting was only in properties, and an undo removes it again when nothing else
    /// was written into it since.
    pub existed: bool,
    /// The old text: the old block(s), and whatever lay between two blocks it merged.
    pub replaced: String,
    /// The new text: MMS's block (and the blank line it added before a block it appended).
    pub written: String,
}

/// One group of meeting properties: the whole original content lines (unfolded) the migration
/// took out, and those it wrote in their place. A replaced LOCATION is one line for one line;
/// CONFERENCE lines go as a group; a stale X-MICROSOFT-* property removed has no `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PropertyPreImage {
    #[serde(default)]
    pub before: Vec<String>,
    #[serde(default)]
    pub after: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pre_image_round_trips_through_json_with_readable_names() {
        let image = MeetingPreImage {
            uid: "u1".into(),
            events: vec![EventPreImage {
                uid: "u1".into(),
                recurrence_id: None,
                bodies: vec![BodyPreImage {
                    property: BodyProperty::Description,
                    existed: true,
                    replaced: "old".into(),
                    written: "new".into(),
                }],
                properties: vec![PropertyPreImage {
                    before: vec!["LOCATION:Skype Meeting".into()],
                    after: vec!["LOCATION:Microsoft Teams Meeting".into()],
                }],
            }],
        };
        let json = serde_json::to_string(&image).unwrap();
        assert!(json.contains("\"Property\":\"Description\""), "{json}");
        assert_eq!(
            serde_json::from_str::<MeetingPreImage>(&json).unwrap(),
            image
        );
        assert!(!image.is_empty());
        assert!(MeetingPreImage::default().is_empty());
    }
}
