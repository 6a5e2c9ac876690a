//! Selection (P2): does MMS migrate this resource, and if not, why not.
//!
//! A resource is migrated when its organizer is the user, it is not cancelled, some occurrence
//! (of the master's RRULE/RDATE expansion minus EXDATEs and overridden instances, or of a
//! RECURRENCE-ID exception) ends after `now`, and it carries an online block of the requested
//! source type. There is no attendee limit. Every doubt resolves towards migrating: an unknown
//! time zone widens the window, an RRULE the `rrule` crate refuses counts as still running
//! (unless its UNTIL is in the past), and an expansion that hits its bound counts as future.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use mms_core::{OnlineMeetingKind, SourceMeetingType};

use crate::contentline::Component;
use crate::detect::{evidence, Evidence};
use crate::error::IcalError;
use crate::text::unescape;
use crate::time::{local_in, parse_duration, TimeValue, Zone, ZoneResolver};

/// The outcome of [`select`](crate::select).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    Migrate(Selection),
    Skip(Skip),
}

/// A resource MMS migrates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub uid: String,
    pub summary: String,
    /// The online block found; Teams wins when the resource has both and the source is All.
    pub kind: OnlineMeetingKind,
    /// Attendees of the master event (the organizer not counted).
    pub attendees: usize,
    pub sequence: u32,
}

/// A resource MMS leaves alone, with the reason the status shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub uid: Option<String>,
    pub summary: String,
    pub reason: SkipReason,
}

/// Why a resource is not migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The resource holds no VEVENT (a task, a journal, a bare time zone).
    NotAnEvent,
    /// Organized by someone else (`organizer` is who), or by nobody (`organizer` empty).
    NotOrganizer {
        organizer: String,
    },
    Cancelled,
    /// Every occurrence has ended.
    Past,
    /// No online block of the requested source type.
    NoOnlineBlock {
        wanted: SourceMeetingType,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotAnEvent => f.write_str("not an event (no VEVENT)"),
            SkipReason::NotOrganizer { organizer } if organizer.is_empty() => {
                f.write_str("the meeting has no organizer")
            }
            SkipReason::NotOrganizer { organizer } => {
                write!(f, "organized by {organizer}, not by the user")
            }
            SkipReason::Cancelled => f.write_str("the meeting is cancelled"),
            SkipReason::Past => f.write_str("every occurrence has ended"),
            SkipReason::NoOnlineBlock {
                wanted: SourceMeetingType::All,
            } => f.write_str("no Skype for Business or Teams meeting block"),
            SkipReason::NoOnlineBlock {
                wanted: SourceMeetingType::SfB,
            } => f.write_str("no Skype for Business meeting block"),
            SkipReason::NoOnlineBlock {
                wanted: SourceMeetingType::Teams,
            } => f.write_str("no Teams meeting block"),
        }
    }
}

/// How many occurrences of a series are looked at before the series is assumed to run on.
const MAX_OCCURRENCES: usize = 50_000;

/// A mailto: address normalised for comparison.
pub fn address(value: &str) -> String {
    let value = value.trim();
    // `get` rather than slicing: the first seven bytes may end inside a multi-byte character.
    let bare = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &value[7..],
        _ => value,
    };
    bare.trim().to_lowercase()
}

/// Selection over a parsed VCALENDAR.
pub fn select_calendar(
    calendar: &Component,
    organizer: &str,
    source: SourceMeetingType,
    now: DateTime<Utc>,
) -> Result<Selected, IcalError> {
    let events: Vec<&Component> = calendar
        .components()
        .filter(|c| c.name == "VEVENT")
        .collect();
    let Some(master) = events
        .iter()
        .find(|e| e.property("RECURRENCE-ID").is_none())
        .or(events.first())
        .copied()
    else {
        return Ok(Selected::Skip(Skip {
            uid: None,
            summary: String::new(),
            reason: SkipReason::NotAnEvent,
        }));
    };
    let uid = master.property("UID").map(|p| p.value().trim().to_string());
    let summary = master
        .property("SUMMARY")
        .map(|p| unescape(p.value()))
        .unwrap_or_default();
    let skip = |reason| {
        Ok(Selected::Skip(Skip {
            uid: uid.clone(),
            summary: summary.clone(),
            reason,
        }))
    };

    let found = master
        .property("ORGANIZER")
        .map(|p| address(p.value()))
        .unwrap_or_default();
    if found.is_empty() || found != address(organizer) {
        return skip(SkipReason::NotOrganizer { organizer: found });
    }
    if is_cancelled(master) {
        return skip(SkipReason::Cancelled);
    }
    let zones = ZoneResolver::new(calendar);
    if !has_future_occurrence(&events, &zones, now)? {
        return skip(SkipReason::Past);
    }
    let evidence = events.iter().fold(Evidence::default(), |mut all, e| {
        let found = evidence(e);
        all.teams |= found.teams;
        all.sfb |= found.sfb;
        all
    });
    let kind = match (source, evidence.teams, evidence.sfb) {
        (SourceMeetingType::All | SourceMeetingType::Teams, true, _) => OnlineMeetingKind::Teams,
        (SourceMeetingType::All | SourceMeetingType::SfB, _, true) => OnlineMeetingKind::SfB,
        _ => return skip(SkipReason::NoOnlineBlock { wanted: source }),
    };
    let attendees = master
        .properties()
        .filter(|p| p.name() == "ATTENDEE" && address(p.value()) != found)
        .count();
    let sequence = sequence_of(master)?;
    let Some(uid) = uid else {
        return Err(IcalError::MissingProperty {
            property: "UID",
            why: "a meeting cannot be updated without its UID",
        });
    };
    Ok(Selected::Migrate(Selection {
        uid,
        summary,
        kind,
        attendees,
        sequence,
    }))
}

/// The SEQUENCE of an event (0 when absent, as RFC 5545 says).
pub fn sequence_of(event: &Component) -> Result<u32, IcalError> {
    match event.property("SEQUENCE") {
        None => Ok(0),
        Some(p) => p
            .value()
            .trim()
            .parse()
            .map_err(|_| IcalError::InvalidValue {
                line: p.line,
                property: "SEQUENCE".into(),
                value: p.value().chars().take(60).collect(),
                expected: "a non-negative integer",
            }),
    }
}

fn is_cancelled(event: &Component) -> bool {
    event
        .property("STATUS")
        .is_some_and(|p| p.value().trim().eq_ignore_ascii_case("CANCELLED"))
}

/// Whether any non-cancelled occurrence of the resource ends after `now`.
fn has_future_occurrence(
    events: &[&Component],
    zones: &ZoneResolver,
    now: DateTime<Utc>,
) -> Result<bool, IcalError> {
    let mut overridden = Vec::new();
    for event in events
        .iter()
        .filter(|e| e.property("RECURRENCE-ID").is_some())
    {
        if let Some(id) = event.property("RECURRENCE-ID") {
            overridden.push(zones.value(id)?);
        }
        if !is_cancelled(event) && single_ends_after(event, zones, now)? {
            return Ok(true);
        }
    }
    for master in events
        .iter()
        .filter(|e| e.property("RECURRENCE-ID").is_none())
    {
        if !is_cancelled(master) && series_ends_after(master, zones, &overridden, now)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// DTSTART and the duration of one occurrence.
fn start_and_duration(
    event: &Component,
    zones: &ZoneResolver,
) -> Result<Option<(TimeValue, Duration)>, IcalError> {
    let Some(start) = event.property("DTSTART") else {
        return Ok(None);
    };
    let start = zones.value(start)?;
    let duration = if let Some(end) = event.property("DTEND").or_else(|| event.property("DUE")) {
        let end = zones.value(end)?;
        (end.to_utc() - start.to_utc()).max(Duration::zero())
    } else if let Some(duration) = event.property("DURATION") {
        parse_duration(duration.value()).ok_or_else(|| IcalError::InvalidValue {
            line: duration.line,
            property: "DURATION".into(),
            value: duration.value().chars().take(60).collect(),
            expected: "a duration such as PT1H30M or P1D",
        })?
    } else if start.all_day {
        Duration::days(1)
    } else {
        Duration::zero()
    };
    Ok(Some((start, duration)))
}

fn single_ends_after(
    event: &Component,
    zones: &ZoneResolver,
    now: DateTime<Utc>,
) -> Result<bool, IcalError> {
    let Some((start, duration)) = start_and_duration(event, zones)? else {
        return Ok(false);
    };
    Ok(start.to_utc() + duration + start.slack() > now)
}

/// Expands the master's RRULE / RDATE / EXDATE with the `rrule` crate until one occurrence ends
/// after `now`.
fn series_ends_after(
    master: &Component,
    zones: &ZoneResolver,
    overridden: &[TimeValue],
    now: DateTime<Utc>,
) -> Result<bool, IcalError> {
    let Some((start, duration)) = start_and_duration(master, zones)? else {
        return Ok(false);
    };
    let threshold = now - duration - start.slack();
    if start.to_utc() > threshold {
        return Ok(true);
    }
    let rrules: Vec<_> = master
        .properties()
        .filter(|p| p.name() == "RRULE")
        .collect();
    let mut rdates = Vec::new();
    let mut exdates = overridden.to_vec();
    for property in master.properties() {
        match property.name() {
            "RDATE" => rdates.extend(zones.values(property)?),
            "EXDATE" => exdates.extend(zones.values(property)?),
            _ => {}
        }
    }
    let excluded = |t: &TimeValue| exdates.iter().any(|x| x.to_utc() == t.to_utc());
    if rdates
        .iter()
        .any(|r| r.to_utc() > threshold && !excluded(r))
    {
        return Ok(true);
    }
    let anchor = |t: &TimeValue| -> DateTime<rrule::Tz> {
        match t.zone {
            Zone::Iana(tz) => local_in(rrule::Tz::Tz(tz), t.local),
            _ => t.to_utc().with_timezone(&rrule::Tz::UTC),
        }
    };
    let dt_start = anchor(&start);
    for rrule_line in rrules {
        let set = rrule_line
            .value()
            .parse::<rrule::RRule<rrule::Unvalidated>>()
            .and_then(|rule| rule.build(dt_start));
        let set = match set {
            Ok(set) => exdates
                .iter()
                .fold(set.limit(), |set, x| set.exdate(anchor(x))),
            // The rule is one the crate will not expand (UNTIL in another zone, an odd BYxxx):
            // keep the meeting unless its UNTIL is visibly past.
            Err(_) => {
                if until_is_past(rrule_line.value(), threshold) {
                    continue;
                }
                return Ok(true);
            }
        };
        let threshold = threshold.with_timezone(&rrule::Tz::UTC);
        let mut seen = 0;
        for occurrence in set.into_iter() {
            if occurrence > threshold {
                return Ok(true);
            }
            seen += 1;
            if seen >= MAX_OCCURRENCES {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether an RRULE's UNTIL (as UTC, date or date-time) is before `threshold`.
fn until_is_past(rule: &str, threshold: DateTime<Utc>) -> bool {
    let Some(until) = rule.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("UNTIL")
            .then(|| value.trim())
    }) else {
        return false;
    };
    let digits: String = until.chars().filter(char::is_ascii_digit).collect();
    let Some(date) = digits
        .get(..8)
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
    else {
        return false;
    };
    // A day of margin covers the zone the UNTIL may have been written in.
    date.and_time(chrono::NaiveTime::MIN).and_utc() + Duration::days(2) < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_without_mailto_and_case() {
        assert_eq!(address(" MAILTO:Joni@Contoso.COM"), "joni@contoso.com");
        assert_eq!(address("joni@contoso.com"), "joni@contoso.com");
        // Found by the fuzz target: a multi-byte character across byte 7 once panicked.
        assert_eq!(address("mailto🎉:a@b.c"), "mailto🎉:a@b.c");
    }

    #[test]
    fn until_in_the_past_is_detected_without_the_crate() {
        let now = "2025-06-01T00:00:00Z".parse().unwrap();
        assert!(until_is_past("FREQ=DAILY;UNTIL=20240101T000000", now));
        assert!(!until_is_past("FREQ=DAILY;UNTIL=20260101", now));
        assert!(!until_is_past("FREQ=DAILY", now));
    }
}
