//! Helpers shared by the integration tests: coordinates, fixed moments, fixture paths, and the
//! whole pipeline (select, rewrite, build_update) run on one input.

#![allow(dead_code)] // each test binary uses its own subset

pub mod respell;

use chrono::{DateTime, Utc};
use mms_core::{Coordinates, DialInNumber, OnlineMeetingKind, SourceMeetingType};
use mms_ical::{build_updates, rewrite, select, Document, IcalError, Selected, UpdateContext};

pub const ORGANIZER: &str = "joni.sherman@contoso.com";
pub const SERVICE: &str = "mms@contoso.com";

/// The context of an update sent for `organizer` of tenant `t1` with the default limits.
#[allow(dead_code)]
pub fn update_context(organizer: &str) -> UpdateContext<'_> {
    UpdateContext {
        tenant: "t1",
        organizer,
        service_address: SERVICE,
        max_recipients_per_message: 100,
        notify_declined: false,
        date: now(),
    }
}

/// The moment the golden tests run "at": fixtures are dated around it.
pub fn now() -> DateTime<Utc> {
    "2025-03-03T12:00:00Z".parse().expect("valid RFC 3339")
}

pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The ics-collective corpus, kept in the repository (`tests/corpus/`, BSD licence beside it).
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus/ics-collective-icalendar")
}

pub fn teams_coords() -> Coordinates {
    Coordinates {
        kind: OnlineMeetingKind::Teams,
        join_url: "https://teams.example.net/l/meetup-join/contoso/482913657201".into(),
        meeting_id: "482 913 657 201".into(),
        passcode: Some("x7Kp2Q".into()),
        conference_id: Some("731 204 558".into()),
        dial_in: vec![
            DialInNumber {
                number: "+1 206-555-0134".into(),
                label: "United States, Seattle".into(),
                toll_free: false,
            },
            DialInNumber {
                number: "+1 833-555-0199".into(),
                label: "United States (Toll-free)".into(),
                toll_free: true,
            },
        ],
        find_local_number_url: Some("https://dialin.example.net/contoso".into()),
    }
}

pub fn sfb_coords() -> Coordinates {
    Coordinates {
        kind: OnlineMeetingKind::SfB,
        join_url: "https://meet.contoso.com/joni.sherman/K3M9Q2ZD".into(),
        meeting_id: "K3M9Q2ZD".into(),
        passcode: None,
        conference_id: Some("58213974".into()),
        dial_in: vec![DialInNumber {
            number: "+44 20 7946 0321".into(),
            label: "London, Ünïcode Bridge".into(),
            toll_free: false,
        }],
        find_local_number_url: Some("https://dialin.contoso.com/".into()),
    }
}

/// What the pipeline did with one input.
#[derive(Debug)]
pub enum Outcome {
    Rewritten,
    Unchanged,
    Skipped(String),
    Refused(IcalError),
}

/// Runs parse, select, rewrite and build_update; asserts the lossless round trip on the way.
pub fn pipeline(ics: &str, organizer: &str) -> Outcome {
    match Document::parse(ics) {
        Ok(doc) => assert_eq!(doc.serialize(), ics, "round trip must be byte for byte"),
        Err(e) => return Outcome::Refused(e),
    }
    let selection = match select(ics, organizer, SourceMeetingType::All, now()) {
        Ok(Selected::Migrate(s)) => s,
        Ok(Selected::Skip(skip)) => {
            // A skip still lets the rewriter run on the input: it must not panic either.
            let _ = rewrite(ics, &teams_coords(), now());
            return Outcome::Skipped(skip.reason.to_string());
        }
        Err(e) => return Outcome::Refused(e),
    };
    let rewritten = match rewrite(ics, &teams_coords(), now()) {
        Ok(r) => r,
        Err(e) => return Outcome::Refused(e),
    };
    assert_eq!(rewritten.uid, selection.uid);
    if !rewritten.changed {
        assert_eq!(rewritten.ics, ics);
        return Outcome::Unchanged;
    }
    let again = rewrite(&rewritten.ics, &teams_coords(), now()).expect("our own output parses");
    assert!(
        !again.changed,
        "a second rewrite with the same coordinates must be a no-op"
    );
    let _ = build_updates(&rewritten.ics, &update_context(organizer));
    Outcome::Rewritten
}
