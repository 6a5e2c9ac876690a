//! Golden tests on realistic fixtures (`tests/fixtures/*.ics` at the workspace root): what
//! selection says for each source type, and the exact rewritten resource. The expected outputs
//! under `tests/fixtures/expected/` are the spec; regenerate them with `MMS_BLESS=1 cargo test -p
//! mms-ical --test golden` and review the diff by eye.

mod common;

use chrono::{DateTime, Utc};
use common::{fixtures_dir, now, sfb_coords, teams_coords, update_context, ORGANIZER, SERVICE};
use mms_core::SourceMeetingType;
use mms_ical::{build_updates, detect, rewrite, select, Selected, SkipReason};

fn fixture(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with the expected file, or writes it when `MMS_BLESS` is set.
fn golden(name: &str, actual: &str) {
    let path = fixtures_dir().join("expected").join(name);
    if std::env::var_os("MMS_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with MMS_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file; rerun with MMS_BLESS=1 and review the diff"
    );
}

fn describe(selected: &Selected) -> String {
    match selected {
        Selected::Migrate(s) => format!(
            "migrate uid={} kind={:?} attendees={} sequence={} summary={:?}",
            s.uid, s.kind, s.attendees, s.sequence, s.summary
        ),
        Selected::Skip(s) => format!("skip uid={:?} reason={:?} ({})", s.uid, s.reason, s.reason),
    }
}

const FIXTURES: &[&str] = &[
    "teams_outlook.ics",
    "sfb_outlook.ics",
    "weekly_dst_exceptions.ics",
    "floating_time.ics",
    "non_ascii.ics",
    "attendees_300.ics",
    "two_blocks.ics",
    "no_block.ics",
    "not_organizer.ics",
    "past.ics",
    "cancelled.ics",
];

#[test]
fn selection_and_rewrite_match_the_golden_files() {
    for name in FIXTURES {
        let ics = fixture(name);
        let stem = name.trim_end_matches(".ics");
        let mut report = String::new();
        for source in [
            SourceMeetingType::All,
            SourceMeetingType::SfB,
            SourceMeetingType::Teams,
        ] {
            let selected = select(&ics, ORGANIZER, source, now()).expect("fixtures are valid");
            report.push_str(&format!("{source}: {}\n", describe(&selected)));
        }
        golden(&format!("{stem}.select.txt"), &report);
        if matches!(
            select(&ics, ORGANIZER, SourceMeetingType::All, now()),
            Ok(Selected::Migrate(_))
        ) {
            let to_teams = rewrite(&ics, &teams_coords(), now()).expect("rewrite");
            assert!(to_teams.changed, "{name}");
            golden(&format!("{stem}.teams.ics"), &to_teams.ics);
            let to_sfb = rewrite(&ics, &sfb_coords(), now()).expect("rewrite");
            golden(&format!("{stem}.sfb.ics"), &to_sfb.ics);
        }
    }
}

#[test]
fn every_rewritten_fixture_has_exactly_one_block_ours_and_the_organizers_text() {
    for name in [
        "teams_outlook.ics",
        "sfb_outlook.ics",
        "two_blocks.ics",
        "non_ascii.ics",
        "floating_time.ics",
    ] {
        let ics = fixture(name);
        let out = rewrite(&ics, &teams_coords(), now()).expect("rewrite").ics;
        let doc = mms_ical::Document::parse(&out).expect("our output parses");
        let mut doc = doc;
        doc.with_root(|cal| {
            for event in cal.components().filter(|c| c.name == "VEVENT") {
                let text = mms_ical::text::unescape(
                    event.property("DESCRIPTION").expect("description").value(),
                );
                let blocks = detect::text_blocks(&text);
                assert_eq!(blocks.len(), 1, "{name}: {text}");
                assert!(blocks[0].by_mms);
                assert_eq!(blocks[0].join_urls, vec![teams_coords().join_url]);
                assert!(
                    !text.contains("teams.microsoft.com/l/meetup-join"),
                    "{name}: old URL left"
                );
                assert!(!text.contains("meet.contoso.com"), "{name}: old URL left");
            }
        })
        .expect("a calendar");
    }
    let out = rewrite(&fixture("two_blocks.ics"), &teams_coords(), now())
        .unwrap()
        .ics;
    let text = mms_ical::text::unescape(&out.replace("\r\n ", ""));
    assert!(text.contains("Design review. Note: the old Skype details below are obsolete.\n\n"));
    assert!(text.contains("\n\nUse this one:\n\n"));
    assert!(text.contains("CONFERENCE;VALUE=URI;FEATURE=CHAT:https://chat.contoso.com/room/design"));
}

#[test]
fn html_bodies_get_our_block_with_escaped_values_and_keep_the_rest() {
    let out = rewrite(&fixture("teams_outlook.ics"), &teams_coords(), now())
        .unwrap()
        .ics;
    let unfolded = out.replace("\r\n ", "");
    let html_line = unfolded
        .lines()
        .find(|l| l.starts_with("X-ALT-DESC"))
        .expect("html body");
    let html = mms_ical::text::unescape(html_line.split_once(':').unwrap().1);
    assert!(html.contains("<div>Let's review the Q2 roadmap; bring your notes, ideas &amp; questions.</div>\n<div><br></div>\n<div id=\"mms-online-meeting\""));
    assert!(html.contains("</div>\n<div>Thanks — Joni</div>\n</body>"));
    assert!(!html.contains("teams.microsoft.com"), "{html}");
    assert_eq!(detect::html_blocks(&html).len(), 1);
}

#[test]
fn properties_follow_the_new_meeting() {
    let out = rewrite(&fixture("sfb_outlook.ics"), &teams_coords(), now()).unwrap();
    let unfolded = out.ics.replace("\r\n ", "");
    assert!(unfolded.contains("\r\nLOCATION;LANGUAGE=en-US:Microsoft Teams Meeting\r\n"));
    assert!(!unfolded.contains("X-MICROSOFT-ONLINEMEETINGCONFLINK"));
    assert!(unfolded.contains("\r\nSEQUENCE:3\r\n"));
    assert!(unfolded.contains("\r\nDTSTAMP:20250303T120000Z\r\n"));
    assert!(unfolded.contains("\r\nLAST-MODIFIED:20250303T120000Z\r\n"));
    assert_eq!(out.sequence, 3);
    // Attendees, their PARTSTATs and the alarm are untouched, byte for byte.
    let original = fixture("sfb_outlook.ics");
    for line in original
        .split_inclusive("\r\n")
        .filter(|l| l.starts_with("ATTENDEE"))
    {
        assert!(out.ics.contains(line));
    }
    let alarm =
        &original[original.find("BEGIN:VALARM").unwrap()..original.find("END:VALARM").unwrap()];
    assert!(out.ics.contains(alarm));
}

#[test]
fn rewriting_twice_is_a_no_op() {
    for name in FIXTURES {
        let ics = fixture(name);
        for coords in [teams_coords(), sfb_coords()] {
            let once = rewrite(&ics, &coords, now()).unwrap();
            let later: DateTime<Utc> = "2025-03-05T08:00:00Z".parse().unwrap();
            let twice = rewrite(&once.ics, &coords, later).unwrap();
            assert!(!twice.changed, "{name}");
            assert_eq!(twice.ics, once.ics, "{name}");
            assert_eq!(twice.sequence, once.sequence);
        }
    }
}

#[test]
fn a_second_bridge_change_updates_our_own_block() {
    let ics = fixture("teams_outlook.ics");
    let first = rewrite(&ics, &teams_coords(), now()).unwrap();
    let mut moved = teams_coords();
    moved.dial_in.truncate(1);
    moved.dial_in[0].number = "+1 425-555-0177".into();
    moved.conference_id = Some("999 888 777".into());
    let second = rewrite(&first.ics, &moved, now()).unwrap();
    assert!(second.changed);
    assert_eq!(second.sequence, first.sequence + 1);
    let text = second.ics.replace("\r\n ", "");
    assert!(
        text.contains("+1 425-555-0177")
            && !text.contains("+1 206-555-0134")
            && !text.contains("833-555-0199")
    );
    // Audio conferencing turned off (T2c): the dial-in part goes away.
    let mut no_audio = moved.clone();
    no_audio.dial_in.clear();
    no_audio.conference_id = None;
    no_audio.find_local_number_url = None;
    let third = rewrite(&second.ics, &no_audio, now())
        .unwrap()
        .ics
        .replace("\r\n ", "");
    assert!(
        !third.contains("Or call in")
            && !third.contains("tel:")
            && !third.contains("Phone Conference ID")
    );
}

#[test]
fn recurrence_dst_and_floating_time_decide_past_and_future() {
    let weekly = fixture("weekly_dst_exceptions.ics");
    let at = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
    let reason =
        |ics: &str, when: &str| match select(ics, ORGANIZER, SourceMeetingType::All, at(when))
            .unwrap()
        {
            Selected::Migrate(_) => None,
            Selected::Skip(s) => Some(s.reason),
        };
    // A series that started in the past with future occurrences counts.
    assert_eq!(reason(&weekly, "2025-03-03T12:00:00Z"), None);
    // The last occurrence, 31 March 09:30 EDT, ends at 13:45Z (it would be 14:45Z if DST were ignored).
    assert_eq!(reason(&weekly, "2025-03-31T13:40:00Z"), None);
    assert_eq!(
        reason(&weekly, "2025-03-31T13:50:00Z"),
        Some(SkipReason::Past)
    );
    // Floating 12:00-13:00: could be as late as UTC-12, so kept until 13:00 + 14 h (generous).
    let floating = fixture("floating_time.ics");
    assert_eq!(reason(&floating, "2025-03-04T02:59:00Z"), None);
    assert_eq!(
        reason(&floating, "2025-03-04T03:01:00Z"),
        Some(SkipReason::Past)
    );
}

#[test]
fn three_hundred_attendees_are_migrated_and_all_get_the_update() {
    let ics = fixture("attendees_300.ics");
    let Selected::Migrate(selection) =
        select(&ics, ORGANIZER, SourceMeetingType::All, now()).unwrap()
    else {
        panic!("300 attendees must not be skipped");
    };
    assert_eq!(selection.attendees, 300);
    let rewritten = rewrite(&ics, &teams_coords(), now()).unwrap();
    let plan = build_updates(&rewritten.ics, &update_context(ORGANIZER)).unwrap();
    assert_eq!(plan.recipient_count(), 300);
    assert_eq!(
        plan.batches.len(),
        3,
        "batches of mail.max_recipients_per_message = 100"
    );
}

#[test]
fn the_update_is_an_imip_request_on_behalf_of_the_organizer() {
    let rewritten = rewrite(&fixture("non_ascii.ics"), &teams_coords(), now()).unwrap();
    let mut plan = build_updates(&rewritten.ics, &update_context(ORGANIZER)).unwrap();
    let mut again = build_updates(&rewritten.ics, &update_context(ORGANIZER)).unwrap();
    assert_eq!(plan.batches.len(), 1);
    let (message, again) = (plan.batches.remove(0), again.batches.remove(0));
    assert_eq!(
        message.message_id, again.message_id,
        "a resend carries the same Message-ID"
    );
    assert_eq!(
        message.recipients,
        vec!["soren@fabrikam.dk", "yamada@fabrikam.jp"]
    );
    assert_eq!(message.envelope_from, SERVICE);
    let raw = String::from_utf8(message.raw()).expect("the message is 7-bit/UTF-8 text");
    assert!(raw.contains(&format!("Message-ID: <{}>", message.message_id)));
    assert!(
        raw.contains("From: =?utf-8?") || raw.contains("From: \"Sherman, J"),
        "{raw}"
    );
    assert!(raw.contains("Sender: mms@contoso.com"));
    assert!(raw.contains("multipart/alternative"));
    assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
    assert!(raw.contains("Content-Type: text/calendar; charset=utf-8; method=REQUEST"));
    assert!(
        !raw.contains("To: joni.sherman"),
        "the organizer is not a recipient"
    );
    // The calendar part carries METHOD:REQUEST and the non-ASCII summary intact.
    let body = raw.split("method=REQUEST").nth(1).unwrap();
    let b64: String = body
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split("\r\n--")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let decoded = String::from_utf8(base64_decode(&b64)).unwrap();
    assert!(decoded.contains("\r\nMETHOD:REQUEST\r\n"));
    assert!(decoded.contains("SUMMARY:Budgetbesprechung – 予算会議 🎉"));
    // The stored resource does not get METHOD.
    assert!(!rewritten.ics.contains("METHOD:"));
}

/// A minimal base64 decoder for the test (lettre encodes; this only checks what it wrote).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .expect("base64 alphabet") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// The raw ATTENDEE lines of every component, in order.
fn attendee_lines(ics: &str) -> Vec<String> {
    fn collect(component: &mms_ical::contentline::Component, out: &mut Vec<String>) {
        out.extend(
            component
                .properties()
                .filter(|p| p.name() == "ATTENDEE")
                .map(|p| p.raw().to_string()),
        );
        for sub in component.components() {
            collect(sub, out);
        }
    }
    let mut doc = mms_ical::Document::parse(ics).expect("parses");
    let mut out = Vec::new();
    doc.with_root(|root| collect(root, &mut out))
        .expect("a calendar");
    out
}

/// Issue 7.10: every PARTSTAT (and RSVP, ROLE, CN, ...) is kept: a rewrite never touches an
/// ATTENDEE line, byte for byte, whatever the fixture and the target platform.
#[test]
fn a_rewrite_never_touches_attendee_lines() {
    let mut declined = 0;
    for name in FIXTURES {
        let ics = fixture(name);
        let before = attendee_lines(&ics);
        declined += before
            .iter()
            .filter(|l| l.contains("PARTSTAT=DECLINED"))
            .count();
        for coords in [teams_coords(), sfb_coords()] {
            let out = rewrite(&ics, &coords, now()).unwrap();
            assert_eq!(attendee_lines(&out.ics), before, "{name}");
        }
    }
    assert!(declined > 0, "the fixtures must hold a declined attendee");
}

/// The value of the first `name` property of the master event, unfolded and unescaped.
fn master_value(ics: &str, name: &str) -> Option<String> {
    let doc = mms_ical::Document::parse(ics).unwrap();
    let event = doc.calendar()?.master_event()?;
    event
        .property(name)
        .map(|p| mms_ical::text::unescape(p.value()))
}

/// Issue 7.11: after a move, Outlook's vendor properties name the new platform and carry its
/// join URL; nothing still says "Skype Meeting" after a move to Teams, or points at Teams after
/// a move to SfB.
#[test]
fn vendor_properties_follow_the_platform() {
    let to_teams = rewrite(&fixture("sfb_outlook.ics"), &teams_coords(), now())
        .unwrap()
        .ics;
    assert_eq!(
        master_value(&to_teams, "X-MICROSOFT-LOCATIONDISPLAYNAME").as_deref(),
        Some("Microsoft Teams Meeting")
    );
    assert_eq!(
        master_value(&to_teams, "LOCATION").as_deref(),
        Some("Microsoft Teams Meeting")
    );
    assert_eq!(
        master_value(&to_teams, "X-MICROSOFT-SKYPETEAMSMEETINGURL"),
        Some(teams_coords().join_url)
    );
    for gone in [
        "X-MICROSOFT-ONLINEMEETINGCONFLINK",
        "X-MICROSOFT-ONLINEMEETINGINFORMATION",
    ] {
        assert_eq!(master_value(&to_teams, gone), None, "{gone}");
    }
    let unfolded = to_teams.replace("\r\n ", "");
    assert!(!unfolded.contains("Skype Meeting"), "{unfolded}");

    let to_sfb = rewrite(&fixture("teams_outlook.ics"), &sfb_coords(), now())
        .unwrap()
        .ics;
    assert_eq!(
        master_value(&to_sfb, "X-MICROSOFT-LOCATIONDISPLAYNAME").as_deref(),
        Some("Skype Meeting")
    );
    assert_eq!(
        master_value(&to_sfb, "LOCATION").as_deref(),
        Some("Skype Meeting")
    );
    for gone in [
        "X-MICROSOFT-SKYPETEAMSMEETINGURL",
        "X-MICROSOFT-SKYPETEAMSPROPERTIES",
    ] {
        assert_eq!(master_value(&to_sfb, gone), None, "{gone}");
    }
    let unfolded = to_sfb.replace("\r\n ", "");
    assert!(!unfolded.contains("Teams"), "{unfolded}");

    // Lync 2013 wrote "Lync Meeting": a name of the old platform too.
    let lync = fixture("sfb_outlook.ics").replace(
        "LOCATION;LANGUAGE=en-US:Skype Meeting",
        "LOCATION;LANGUAGE=en-US:Lync Meeting",
    );
    assert!(lync.contains("Lync Meeting"));
    let lync_to_teams = rewrite(&lync, &teams_coords(), now()).unwrap().ics;
    assert_eq!(
        master_value(&lync_to_teams, "LOCATION").as_deref(),
        Some("Microsoft Teams Meeting")
    );

    // Teams to Teams (a new bridge): the Teams URL property follows the new meeting.
    let moved = rewrite(&fixture("teams_outlook.ics"), &teams_coords(), now())
        .unwrap()
        .ics;
    assert_eq!(
        master_value(&moved, "X-MICROSOFT-SKYPETEAMSMEETINGURL"),
        Some(teams_coords().join_url)
    );
    assert_eq!(
        master_value(&moved, "X-MICROSOFT-LOCATIONDISPLAYNAME").as_deref(),
        Some("Microsoft Teams Meeting")
    );
}
