//! Date-time values and time zones, as far as selection (P2) needs them: "when does this
//! occurrence end, in UTC?".
//!
//! TZIDs are resolved in this order: an IANA name (also inside a `/mozilla.org/.../Europe/Paris`
//! style path), a Windows zone name as Outlook writes them ("Pacific Standard Time"), the
//! resource's own VTIMEZONE (its standard offset, ignoring DST), and finally "unknown". An unknown
//! zone, like floating time, is handled with a slack of 14 hours in the direction that keeps the
//! meeting: a false skip loses a meeting, a false keep only costs a rewrite.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use crate::contentline::{Component, ContentLine};
use crate::error::IcalError;

/// How far floating or unresolvable local times may be from UTC (UTC+14 .. UTC-12).
pub const FLOATING_SLACK: Duration = Duration::hours(14);

/// Where a local time is anchored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Utc,
    Iana(chrono_tz::Tz),
    /// From the VTIMEZONE's standard offset.
    Fixed(FixedOffset),
    /// Floating time or an unresolvable TZID: any offset is possible.
    Unknown,
}

/// A DTSTART / DTEND / RECURRENCE-ID / EXDATE / RDATE value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeValue {
    pub local: NaiveDateTime,
    pub zone: Zone,
    /// A DATE (all-day) rather than a DATE-TIME.
    pub all_day: bool,
}

impl TimeValue {
    /// The UTC instant, taking the local time as if it were UTC when the zone is unknown.
    pub fn to_utc(&self) -> DateTime<Utc> {
        match self.zone {
            Zone::Utc | Zone::Unknown => Utc.from_utc_datetime(&self.local),
            Zone::Fixed(offset) => Utc.from_utc_datetime(&(self.local - offset)),
            Zone::Iana(tz) => local_in(tz, self.local).with_timezone(&Utc),
        }
    }

    /// The slack to allow around this value when comparing with `now`.
    pub fn slack(&self) -> Duration {
        if matches!(self.zone, Zone::Unknown) {
            FLOATING_SLACK
        } else {
            Duration::zero()
        }
    }
}

/// `local` in `tz`; a time in a DST gap moves forward by the gap, an ambiguous one takes the first.
pub fn local_in<Tz: TimeZone>(tz: Tz, local: NaiveDateTime) -> DateTime<Tz> {
    let mut probe = local;
    // A gap is at most a few hours wide; four tries of an hour cover every zone in tzdata.
    for _ in 0..4 {
        if let Some(instant) = tz.from_local_datetime(&probe).earliest() {
            return instant;
        }
        probe += Duration::hours(1);
    }
    tz.from_utc_datetime(&local)
}

/// Maps a component's TZIDs to zones, using the resource's VTIMEZONEs as a last resort.
pub struct ZoneResolver<'a> {
    calendar: &'a Component,
}

impl<'a> ZoneResolver<'a> {
    pub fn new(calendar: &'a Component) -> Self {
        ZoneResolver { calendar }
    }

    pub fn resolve(&self, tzid: &str) -> Zone {
        let tzid = tzid.trim();
        if let Some(tz) = iana(tzid) {
            return Zone::Iana(tz);
        }
        if let Some(tz) = windows_zone(tzid) {
            return Zone::Iana(tz);
        }
        self.vtimezone_offset(tzid)
            .map_or(Zone::Unknown, Zone::Fixed)
    }

    fn vtimezone_offset(&self, tzid: &str) -> Option<FixedOffset> {
        let vtimezone = self
            .calendar
            .components()
            .filter(|c| c.name == "VTIMEZONE")
            .find(|c| c.property("TZID").is_some_and(|p| p.value().trim() == tzid))?;
        let standard = vtimezone
            .components()
            .find(|c| c.name == "STANDARD")
            .or_else(|| vtimezone.components().next())?;
        parse_utc_offset(standard.property("TZOFFSETTO")?.value())
    }

    /// Parses a date or date-time property, with its TZID / VALUE parameters.
    pub fn value(&self, property: &ContentLine) -> Result<TimeValue, IcalError> {
        let raw = property.value().trim();
        // A PERIOD (RDATE;VALUE=PERIOD) starts with its start date-time.
        let raw = raw.split('/').next().unwrap_or(raw);
        self.parse(property, raw)
    }

    /// Parses every value of a comma-separated list (EXDATE, RDATE).
    pub fn values(&self, property: &ContentLine) -> Result<Vec<TimeValue>, IcalError> {
        property
            .value()
            .split(',')
            .filter(|v| !v.trim().is_empty())
            .map(|v| self.parse(property, v.trim().split('/').next().unwrap_or(v)))
            .collect()
    }

    fn parse(&self, property: &ContentLine, raw: &str) -> Result<TimeValue, IcalError> {
        let invalid = |expected| IcalError::InvalidValue {
            line: property.line,
            property: property.name().to_string(),
            value: raw.chars().take(60).collect(),
            expected,
        };
        if raw.len() == 8
            || property
                .param("VALUE")
                .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        {
            let date = NaiveDate::parse_from_str(raw, "%Y%m%d")
                .map_err(|_| invalid("a DATE is YYYYMMDD, e.g. 20250131"))?;
            return Ok(TimeValue {
                local: date.and_time(NaiveTime::MIN),
                zone: Zone::Unknown,
                all_day: true,
            });
        }
        let (digits, utc) = match raw.strip_suffix(['Z', 'z']) {
            Some(digits) => (digits, true),
            None => (raw, false),
        };
        let local = NaiveDateTime::parse_from_str(digits, "%Y%m%dT%H%M%S").map_err(|_| {
            invalid("a DATE-TIME is YYYYMMDDTHHMMSS with an optional Z, e.g. 20250131T090000Z")
        })?;
        let zone = match (utc, property.param("TZID")) {
            (true, _) => Zone::Utc,
            (false, Some(tzid)) => self.resolve(tzid),
            (false, None) => Zone::Unknown,
        };
        Ok(TimeValue {
            local,
            zone,
            all_day: false,
        })
    }
}

/// An IANA name, also at the end of a path-like TZID (`/freeassociation.sourceforge.net/Europe/Oslo`).
fn iana(tzid: &str) -> Option<chrono_tz::Tz> {
    let tzid = tzid.trim_matches('"');
    let mut rest = tzid;
    loop {
        if let Ok(tz) = rest.parse::<chrono_tz::Tz>() {
            return Some(tz);
        }
        rest = rest.split_once('/')?.1;
    }
}

/// The Windows zone names Outlook and Exchange write most often, with their CLDR IANA zone.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time", "America/Denver"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("Eastern Standard Time", "America/New_York"),
    ("US Eastern Standard Time", "America/Indianapolis"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Argentina Standard Time", "America/Buenos_Aires"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("UTC", "UTC"),
    ("Coordinated Universal Time", "UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Nepal Standard Time", "Asia/Katmandu"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Fiji Standard Time", "Pacific/Fiji"),
];

fn windows_zone(tzid: &str) -> Option<chrono_tz::Tz> {
    let tzid = tzid.trim_matches('"');
    WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(tzid))
        .and_then(|(_, iana)| iana.parse().ok())
}

/// `+0100`, `-0500`, `+053000` as a fixed offset.
fn parse_utc_offset(raw: &str) -> Option<FixedOffset> {
    let raw = raw.trim();
    let (sign, digits) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        digits
            .get(range)
            .and_then(|d| d.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let seconds = number(0..2) * 3600 + number(2..4) * 60 + number(4..6);
    FixedOffset::east_opt(sign * seconds)
}

/// An RFC 5545 DURATION (`PT1H30M`, `P1D`, `-P1W`) in seconds, or `None` when malformed.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (sign, rest) = match raw.as_bytes().first()? {
        b'-' => (-1, &raw[1..]),
        b'+' => (1, &raw[1..]),
        _ => (1, raw),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let mut seconds: i64 = 0;
    let mut number: i64 = 0;
    let mut digits = 0;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            d @ '0'..='9' => {
                number = number
                    .checked_mul(10)?
                    .checked_add(i64::from(d as u8 - b'0'))?;
                digits += 1;
            }
            'T' => continue,
            unit => {
                let scale = match unit {
                    'W' => 7 * 86_400,
                    'D' => 86_400,
                    'H' => 3_600,
                    'M' => 60,
                    'S' => 1,
                    _ => return None,
                };
                if digits == 0 {
                    return None;
                }
                seconds = seconds.checked_add(number.checked_mul(scale)?)?;
                number = 0;
                digits = 0;
            }
        }
    }
    // About a million years: anything longer is garbage, not a meeting.
    (digits == 0 && seconds < 1 << 45).then(|| Duration::seconds(sign * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("-P1W"), Some(Duration::weeks(-1)));
        assert_eq!(parse_duration("P1DT2S"), Some(Duration::seconds(86_402)));
        assert_eq!(parse_duration("PT"), Some(Duration::zero()));
        assert_eq!(parse_duration("P1X"), None);
        assert_eq!(parse_duration("P99999999999999999999D"), None);
    }

    #[test]
    fn zones_resolve_iana_paths_windows_names_and_offsets() {
        assert_eq!(
            iana("/mozilla.org/20050126_1/America/New_York"),
            Some(chrono_tz::America::New_York)
        );
        assert_eq!(
            windows_zone("Pacific Standard Time"),
            Some(chrono_tz::America::Los_Angeles)
        );
        assert_eq!(
            parse_utc_offset("-0530"),
            FixedOffset::east_opt(-(5 * 3600 + 30 * 60))
        );
        assert_eq!(parse_utc_offset("0530"), None);
    }

    #[test]
    fn a_time_in_a_dst_gap_moves_forward() {
        let gap = NaiveDate::from_ymd_opt(2025, 3, 9)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        let instant = local_in(chrono_tz::America::New_York, gap).with_timezone(&Utc);
        assert_eq!(instant.to_rfc3339(), "2025-03-09T07:30:00+00:00");
    }
}
