//! The rewrite (P4): put new coordinates into every VEVENT of a resource, touching nothing but
//! the online-meeting block and the properties that carried the old coordinates.
//!
//! Bodies are edited in their escaped form: the block's range is found in the unescaped text and
//! mapped back to the raw value, so the organizer's text before and after it keeps its exact
//! bytes. Only an event whose content changed gets SEQUENCE raised and DTSTAMP / LAST-MODIFIED
//! set: rewriting with the coordinates already in place changes nothing at all.
//!
//! Every change is also recorded as the event's *pre-image* ([`EventPreImage`]): the span of each
//! body that was replaced and the whole content lines that were replaced or removed, each with
//! what was written instead, so that [`crate::undo`] can put them back.
//!
//! "Changed" means changed in meaning (`crate::meaning`): a meeting that already carries the
//! target block, in whatever spelling its CalDAV server stored it (parameters reordered,
//! re-cased or quoted, TEXT escaped differently, refolded, other line ends, properties
//! reordered), is not changed, keeps its SEQUENCE and its bytes, and gets no second update.

use chrono::{DateTime, Utc};
use mms_core::{
    BodyPreImage, BodyProperty, Coordinates, EventPreImage, OnlineMeetingKind, PropertyPreImage,
};

use crate::contentline::{Component, ContentLine, Edit};
use crate::detect::{
    classify_url, evidence, html_blocks, text_blocks, urls_with_ranges, Block,
    LOCATION_PLACEHOLDERS,
};
use crate::error::IcalError;
use crate::meaning::{same_meaning, same_meanings};
use crate::render::{heading, html_block, location_placeholder, tel_uri, text_block};
use crate::select::sequence_of;
use crate::text::{escape, unescape, Unescaped};

/// Properties that describe the old online meeting and have no meaning for the new one: the
/// old Teams meeting's thread and tenant ids, the old SfB conference's focus URI and its dial-in
/// details. MMS has no values of these kinds for the new meeting (its coordinates hold a join
/// URL, ids and numbers), so they are removed rather than left pointing at the old meeting.
const STALE_MEETING_PROPERTIES: &[&str] = &[
    "X-MICROSOFT-SKYPETEAMSPROPERTIES",
    "X-MICROSOFT-ONLINEMEETINGCONFLINK",
    "X-MICROSOFT-ONLINEMEETINGINFORMATION",
];

/// The property Outlook reads to show its "Join Teams meeting" button.
const TEAMS_URL_PROPERTY: &str = "X-MICROSOFT-SKYPETEAMSMEETINGURL";

/// Rewrites one VEVENT; returns what it replaced (its pre-image, for an undo) when its content
/// changed, `None` when it did not (before SEQUENCE and stamps).
pub fn rewrite_event(
    event: &mut Component,
    coords: &Coordinates,
    line_ending: &str,
    now: DateTime<Utc>,
) -> Result<Option<EventPreImage>, IcalError> {
    let found = evidence(event);
    if !found.any() {
        return Ok(None);
    }
    let old_urls = found.join_urls;
    let mut image = EventPreImage {
        uid: uid_of(event),
        recurrence_id: recurrence_id_of(event),
        ..EventPreImage::default()
    };
    image.bodies.extend(rewrite_body(
        event,
        BodyProperty::Description,
        &text_block(coords),
        coords.kind,
        text_blocks,
        line_ending,
    ));
    if event.property("X-ALT-DESC").is_some() {
        image.bodies.extend(rewrite_body(
            event,
            BodyProperty::AltDescription,
            &html_block(coords),
            coords.kind,
            html_blocks,
            line_ending,
        ));
    }
    let mut teams_url_present = event.property(TEAMS_URL_PROPERTY).is_some();
    event.edit_properties(|p| {
        let edit = edit_property(p, coords, &old_urls, &mut teams_url_present, line_ending);
        if let Edit::Replace(lines) = &edit {
            // The same test `edit_properties` applies: one line saying the same is no change.
            if !(lines.len() == 1 && same_meaning(&lines[0], p)) {
                image.properties.push(PropertyPreImage {
                    before: vec![p.unfolded().to_string()],
                    after: lines.iter().map(|l| l.unfolded().to_string()).collect(),
                });
            }
        }
        edit
    });
    image
        .properties
        .extend(rewrite_conference(event, coords, &old_urls, line_ending));
    if image.bodies.is_empty() && image.properties.is_empty() {
        return Ok(None);
    }
    stamp_changed(event, line_ending, now)?;
    Ok(Some(image))
}

/// A changed event gets SEQUENCE raised and DTSTAMP / LAST-MODIFIED set to `now` (RFC 5546
/// 2.1.4: attendees' clients apply an update only with a higher SEQUENCE). The rewrite and the
/// undo both end this way.
pub(crate) fn stamp_changed(
    event: &mut Component,
    line_ending: &str,
    now: DateTime<Utc>,
) -> Result<(), IcalError> {
    let sequence = sequence_of(event)?.saturating_add(1);
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    event.set_property(
        "SEQUENCE",
        ContentLine::new("SEQUENCE", "", &sequence.to_string(), line_ending),
    );
    event.set_property(
        "DTSTAMP",
        ContentLine::new("DTSTAMP", "", &stamp, line_ending),
    );
    event.set_property(
        "LAST-MODIFIED",
        ContentLine::new("LAST-MODIFIED", "", &stamp, line_ending),
    );
    Ok(())
}

/// An event's UID, trimmed; empty when it has none.
pub(crate) fn uid_of(event: &Component) -> String {
    event
        .property("UID")
        .map(|p| p.value().trim().to_string())
        .unwrap_or_default()
}

/// The occurrence an event stands for: its RECURRENCE-ID value, trimmed and upper-cased (a
/// DATE-TIME's case carries no meaning), `None` for a master or single event.
pub(crate) fn recurrence_id_of(event: &Component) -> Option<String> {
    event
        .property("RECURRENCE-ID")
        .map(|p| p.value().trim().to_ascii_uppercase())
}

/// How many times a body is re-edited looking for a fixpoint (see [`rewrite_body`]).
const MAX_BODY_PASSES: usize = 4;

/// Puts `block` into a TEXT body (see [`body_with_block`]), iterated to a fixpoint: broken HTML
/// can make the recognisers see a different block layout in their own output, and a rewrite
/// must be idempotent whatever the input. A body that does not settle within a few passes
/// (found only by fuzzing) is left as it was. Returns what changed ([`body_pre_image`]), or
/// `None` when the body was left as it was.
fn rewrite_body(
    event: &mut Component,
    property: BodyProperty,
    block: &str,
    kind: OnlineMeetingKind,
    find: fn(&str) -> Vec<Block>,
    line_ending: &str,
) -> Option<BodyPreImage> {
    let name = property.name();
    let Some(existing) = event.property(name) else {
        let value = escape(block);
        event.set_property(name, ContentLine::new(name, "", &value, line_ending));
        return Some(body_pre_image(property, None, &value, block));
    };
    let html = property == BodyProperty::AltDescription;
    let mut current = existing.value().to_string();
    for _ in 0..MAX_BODY_PASSES {
        let next = body_with_block(&current, block, kind, find, html);
        if next == current {
            if current == existing.value() {
                return None;
            }
            let before = existing.value().to_string();
            let line = existing.with_value(&current, line_ending)?;
            return event
                .set_property(name, line)
                .then(|| body_pre_image(property, Some(&before), &current, block));
        }
        current = next;
    }
    None
}

/// What a body's rewrite replaced, from the raw values before (`None`: no such property) and
/// after: in unescaped text, the smallest span around `block` outside of which both are equal.
/// The span is widened to hold the whole block, so that an undo finds all of what MMS wrote.
pub(crate) fn body_pre_image(
    property: BodyProperty,
    before_raw: Option<&str>,
    after_raw: &str,
    block: &str,
) -> BodyPreImage {
    let before = before_raw.map(unescape).unwrap_or_default();
    let after = unescape(after_raw);
    let prefix = common_prefix(&before, &after);
    let suffix = common_suffix(&before[prefix..], &after[prefix..]);
    let (mut start, mut end) = (prefix, after.len() - suffix);
    if let Some(at) = after.find(block) {
        start = start.min(at);
        end = end.max(at + block.len());
    }
    let tail = after.len() - end;
    BodyPreImage {
        property,
        existed: before_raw.is_some(),
        replaced: before[start..before.len() - tail].to_string(),
        written: after[start..end].to_string(),
    }
}

/// Length in bytes of the longest common prefix of `a` and `b`, at a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
        .min(b.len())
}

/// Length in bytes of the longest common suffix of `a` and `b`, at a character boundary.
fn common_suffix(a: &str, b: &str) -> usize {
    a.chars()
        .rev()
        .zip(b.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

/// Replaces one block of a TEXT body with `block` and drops the others; adds `block` when the
/// body has none (the meeting's coordinates were only in properties). The block replaced in place
/// is the one the organizer's text most likely points at: MMS's own from an earlier run, else the
/// last one of the target kind (an invitation carrying an obsolete SfB block and a current Teams
/// block below it, "use this one"), else the first.
fn body_with_block(
    raw: &str,
    block: &str,
    kind: OnlineMeetingKind,
    find: fn(&str) -> Vec<Block>,
    html: bool,
) -> String {
    let unescaped = Unescaped::new(raw);
    let blocks = find(&unescaped.text);
    if blocks.is_empty() {
        return insert_block(raw, &unescaped.text, block, html);
    }
    let keep = blocks
        .iter()
        .position(|b| b.by_mms)
        .or_else(|| blocks.iter().rposition(|b| b.kind == kind))
        .unwrap_or(0);
    let mut out = String::with_capacity(raw.len() + block.len());
    let mut copied = 0;
    for (i, found) in blocks.iter().enumerate() {
        let range = unescaped.raw_range(found.range.start, found.range.end);
        out.push_str(&raw[copied..range.start]);
        if i == keep {
            out.push_str(&escape(block));
        }
        copied = range.end;
    }
    out.push_str(&raw[copied..]);
    out
}

/// A body with the block added: before `</body>` in HTML, else at the end after a blank line.
fn insert_block(raw: &str, text: &str, block: &str, html: bool) -> String {
    if html {
        if let Some(at) = raw.to_ascii_lowercase().rfind("</body>") {
            return format!("{}{}\\n{}", &raw[..at], escape(block), &raw[at..]);
        }
    }
    if text.trim().is_empty() {
        escape(block)
    } else {
        format!("{raw}\\n\\n{}", escape(block))
    }
}

/// LOCATION, URL and the X-MICROSOFT-* meeting properties, made to name the new platform:
///
/// - LOCATION and X-MICROSOFT-LOCATIONDISPLAYNAME that only held the old platform's name
///   ("Skype Meeting") name the new one ("Microsoft Teams Meeting"); otherwise only the old join
///   URLs in them are replaced (a room name stays);
/// - URL and X-MICROSOFT-ONLINEMEETINGEXTERNALLINK get the new join URL for the old one;
/// - X-MICROSOFT-SKYPETEAMSMEETINGURL holds the new join URL when the meeting goes to Teams and
///   is removed when it goes to SfB; an SfB meeting's X-MICROSOFT-ONLINEMEETINGCONFLINK moving to
///   Teams becomes that property (in its place) when the event has none, so Outlook shows its
///   join button for the new meeting;
/// - the other old-meeting properties ([`STALE_MEETING_PROPERTIES`]) are removed.
fn edit_property(
    property: &ContentLine,
    coords: &Coordinates,
    old_urls: &[String],
    teams_url_present: &mut bool,
    line_ending: &str,
) -> Edit {
    let value = property.value();
    let replace = |new_value: &str| match property.with_value(new_value, line_ending) {
        Some(line) => Edit::Replace(vec![line]),
        None => Edit::Keep,
    };
    let teams = coords.kind == OnlineMeetingKind::Teams;
    match property.name() {
        "LOCATION" | "X-MICROSOFT-LOCATIONDISPLAYNAME" => {
            let lower = unescape(value).trim().to_lowercase();
            if LOCATION_PLACEHOLDERS.iter().any(|(p, _)| *p == lower) {
                replace(&escape(location_placeholder(coords.kind)))
            } else {
                replace(&replace_urls(value, old_urls, &escape(&coords.join_url)))
            }
        }
        "URL" | "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK" => {
            replace(&replace_urls(value, old_urls, &coords.join_url))
        }
        TEAMS_URL_PROPERTY if teams => replace(&coords.join_url),
        TEAMS_URL_PROPERTY => Edit::Replace(Vec::new()),
        "X-MICROSOFT-ONLINEMEETINGCONFLINK" if teams && !*teams_url_present => {
            *teams_url_present = true;
            Edit::Replace(vec![ContentLine::new(
                TEAMS_URL_PROPERTY,
                "",
                &coords.join_url,
                line_ending,
            )])
        }
        name if STALE_MEETING_PROPERTIES.contains(&name) => Edit::Replace(Vec::new()),
        _ => Edit::Keep,
    }
}

/// `value` with every URL that is a meeting join URL, or one of the old ones, replaced by
/// `new_url`. Whole URLs are replaced, never a prefix, so that a rewrite never leaves the tail of
/// an old URL behind (which a later run would see as yet another URL to replace).
fn replace_urls(value: &str, old_urls: &[String], new_url: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut copied = 0;
    for found in urls_with_ranges(value) {
        let url = &value[found.clone()];
        if classify_url(url).is_some() || old_urls.iter().any(|u| u == url) {
            out.push_str(&value[copied..found.start]);
            out.push_str(new_url);
            copied = found.end;
        }
    }
    out.push_str(&value[copied..]);
    out
}

/// RFC 7986 CONFERENCE properties: those pointing at the old meeting (its join URL or a phone
/// number) are replaced, in place of the first of them, by the new join URL and dial-in numbers.
/// Returns the group replaced and its replacement, `None` when nothing changed.
fn rewrite_conference(
    event: &mut Component,
    coords: &Coordinates,
    old_urls: &[String],
    line_ending: &str,
) -> Option<PropertyPreImage> {
    let is_old = |p: &ContentLine| {
        let value = p.value().trim();
        p.name() == "CONFERENCE"
            && (value.to_ascii_lowercase().starts_with("tel:")
                || value == coords.join_url
                || old_urls.iter().any(|u| u == value))
    };
    if !event.properties().any(is_old) {
        return None;
    }
    let mut replacement = vec![ContentLine::new(
        "CONFERENCE",
        &format!(
            "VALUE=URI;FEATURE=AUDIO,VIDEO;LABEL={}",
            param_value(heading(coords.kind))
        ),
        &coords.join_url,
        line_ending,
    )];
    for number in &coords.dial_in {
        replacement.push(ContentLine::new(
            "CONFERENCE",
            &format!(
                "VALUE=URI;FEATURE=PHONE;LABEL={}",
                param_value(&number.label)
            ),
            &conference_tel_uri(&number.number, coords.conference_id.as_deref()),
            line_ending,
        ));
    }
    // Servers reorder CONFERENCE lines and their parameters: the old lines that already say
    // what the replacement says, in any order and spelling, stay as they are.
    if same_meanings(event.properties().filter(|p| is_old(p)), &replacement) {
        return None;
    }
    let image = PropertyPreImage {
        before: event
            .properties()
            .filter(|p| is_old(p))
            .map(|p| p.unfolded().to_string())
            .collect(),
        after: replacement
            .iter()
            .map(|l| l.unfolded().to_string())
            .collect(),
    };
    let mut pending = Some(replacement);
    event.edit_properties(|p| match (is_old(p), pending.take()) {
        (true, Some(lines)) => Edit::Replace(lines),
        (true, None) => Edit::Replace(Vec::new()),
        (false, taken) => {
            pending = taken;
            Edit::Keep
        }
    });
    Some(image)
}

/// The `tel:` URI of a CONFERENCE property: [`tel_uri`] with its pause commas percent-encoded.
///
/// CONFERENCE is a URI, where a bare `,` is legal, but Radicale (vobject 0.9.9) reads it as a
/// list separator and stores only what comes before the first comma: `tel:+12065550134,,731204558%23`
/// came back as `tel:+12065550134` (seen against the real server, `tests/fixtures/stored/`), so
/// every later run saw a changed meeting and mailed everyone again. `%2C` dials the same (dialers
/// percent-decode a tel URI, as they already must for the `%23` of the conference id's `#`).
fn conference_tel_uri(number: &str, conference_id: Option<&str>) -> String {
    tel_uri(number, conference_id).replace(',', "%2C")
}

/// A parameter value, quoted when it holds `:`, `;` or `,` (RFC 5545 3.2; `"` cannot appear).
fn param_value(value: &str) -> String {
    let value: String = value
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    if value.contains([':', ';', ',']) {
        format!("\"{value}\"")
    } else {
        value
    }
}
