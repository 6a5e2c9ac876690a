//! Malformed input gets a typed error that names the problem and the line, never a panic.

mod common;

use common::{now, teams_coords, ORGANIZER};
use mms_core::SourceMeetingType;
use mms_ical::{rewrite, select, IcalError};

fn event(body: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x@example.com\r\nORGANIZER:mailto:{ORGANIZER}\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n")
}

fn select_err(ics: &str) -> IcalError {
    select(ics, ORGANIZER, SourceMeetingType::All, now())
        .expect_err("malformed input must be refused")
}

#[test]
fn bad_folding_is_refused_with_its_line() {
    assert_eq!(
        select_err(" BEGIN:VCALENDAR\r\n"),
        IcalError::OrphanContinuation { line: 1 }
    );
}

#[test]
fn a_missing_end_is_refused() {
    let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        select_err(ics).to_string(),
        "line 4: END:VCALENDAR closes BEGIN:VEVENT opened on line 2"
    );
    assert!(matches!(
        rewrite("BEGIN:VCALENDAR\r\n", &teams_coords(), now()),
        Err(IcalError::Unclosed { opened: 1, .. })
    ));
}

#[test]
fn invalid_dates_are_refused_with_the_expected_form() {
    let err = select_err(&event("DTSTART:20250230T250000Z\r\n"));
    assert_eq!(
        err.to_string(),
        "line 6: DTSTART has an invalid value \"20250230T250000Z\": a DATE-TIME is YYYYMMDDTHHMMSS with an optional Z, e.g. 20250131T090000Z"
    );
}

#[test]
fn a_10_mib_description_is_refused_not_processed() {
    let ics = event(&format!(
        "DTSTART:20250401T100000Z\r\nDESCRIPTION:{}\r\n",
        "x".repeat(10 << 20)
    ));
    assert!(matches!(
        select_err(&ics),
        IcalError::PropertyTooLarge { line: 7, .. }
    ));
    let folded = event(&format!(
        "DTSTART:20250401T100000Z\r\nDESCRIPTION:{}\r\n",
        format!("{}\r\n ", "x".repeat(73)).repeat(140_000)
    ));
    assert!(matches!(
        select_err(&folded),
        IcalError::PropertyTooLarge { line: 7, .. }
    ));
}

#[test]
fn a_resource_over_the_limit_is_refused() {
    let limits = mms_ical::Limits {
        max_resource_bytes: 1024,
        ..Default::default()
    };
    let ics = event(&"X-PAD:0123456789\r\n".repeat(100));
    let err =
        mms_ical::select_with(&ics, ORGANIZER, SourceMeetingType::All, now(), &limits).unwrap_err();
    assert!(
        matches!(err, IcalError::TooLarge { limit: 1024, .. }),
        "{err}"
    );
}
