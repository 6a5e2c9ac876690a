//! The update messages of issue 7 (points 1, 3, 4, 10), read back with an independent MIME
//! parser (`mail-parser`): folding under RFC 5322's limits for meetings of every size, encoded
//! words, batches, Message-IDs, declined attendees, and both parts carrying the description
//! and the new block (P5).

mod common;

use std::collections::HashSet;

use common::{now, teams_coords, update_context, ORGANIZER, SERVICE};
use mail_parser::{MessageParser, MimeHeaders};
use mms_ical::{build_updates, rewrite, IcalError, NotNotifiedReason, UpdateContext, UpdatePlan};
use mms_testkit::smtp::{attendee_address, meeting_with_attendees};

const SUMMARY: &str =
    "All-hands \u{2014} Gesamtbetriebsversammlung \u{4e88}\u{7b97}\u{4f1a}\u{8b70}";

fn plan(ics: &str) -> UpdatePlan {
    build_updates(ics, &update_context(ORGANIZER)).expect("the update builds")
}

/// Every line of `raw` fits SMTP (998 octets), and every header line the 78 RFC 5322 asks for.
fn assert_line_limits(raw: &[u8]) {
    let text = std::str::from_utf8(raw).expect("the message is ASCII");
    assert!(text.is_ascii(), "8-bit data in the message");
    let (head, _) = text.split_once("\r\n\r\n").expect("a header block");
    for line in head.split("\r\n") {
        assert!(
            line.len() <= 78,
            "header line of {} octets: {line:?}",
            line.len()
        );
    }
    for line in text.split("\r\n") {
        assert!(line.len() <= 998, "line of {} octets", line.len());
    }
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "bare CR or LF"
    );
}

fn check_meeting_of(attendees: usize) {
    let ics = meeting_with_attendees("big-1", ORGANIZER, attendees);
    let plan = plan(&ics);
    assert_eq!(plan.batches.len(), attendees.div_ceil(100));
    let mut everyone = Vec::new();
    for batch in &plan.batches {
        assert!(batch.recipients.len() <= 100);
        let raw = batch.raw();
        assert_line_limits(&raw);
        let parsed = MessageParser::default().parse(&raw).expect("parses");
        let to: Vec<String> = parsed
            .to()
            .expect("a To: field")
            .iter()
            .map(|a| a.address().expect("an address").to_string())
            .collect();
        assert_eq!(to, batch.recipients, "To: lists exactly the batch");
        assert_eq!(parsed.subject(), Some(SUMMARY));
        assert_eq!(parsed.message_id(), Some(batch.message_id.as_str()));
        everyone.extend(batch.recipients.iter().cloned());
    }
    let mut expected: Vec<String> = (0..attendees).map(attendee_address).collect();
    expected.sort();
    assert_eq!(everyone, expected, "every attendee once, in sorted order");
    let ids: HashSet<&str> = plan.batches.iter().map(|b| b.message_id.as_str()).collect();
    assert_eq!(ids.len(), plan.batches.len(), "one Message-ID per batch");
}

#[test]
fn meetings_of_40_60_300_1500_and_10000_attendees_fit_every_line_limit() {
    for attendees in [40, 60, 300, 1_500, 10_000] {
        check_meeting_of(attendees);
    }
}

#[test]
fn display_names_survive_quoting_and_encoding() {
    let plan = plan(&meeting_with_attendees("names-1", ORGANIZER, 3));
    let raw = plan.batches[0].raw();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let names: Vec<String> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| a.name().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        names,
        vec!["Attendee 0", "Doe, John 1", "S\u{f8}ren \u{c6}r\u{f8} 2"]
    );
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Joni Sherman"));
    assert_eq!(from.address(), Some(ORGANIZER));
    let sender = parsed.sender().unwrap().first().unwrap();
    assert_eq!(sender.address(), Some(SERVICE));
}

#[test]
fn a_long_subject_without_spaces_is_encoded_words_split_on_characters() {
    let long = "\u{4e88}\u{7b97}".repeat(300) + &"x".repeat(1_200);
    let ics = meeting_with_attendees("subject-1", ORGANIZER, 2).replace(
        &format!("SUMMARY:{SUMMARY}\r\n"),
        &format!("SUMMARY:{long}\r\n"),
    );
    let plan = plan(&ics);
    let raw = plan.batches[0].raw();
    assert_line_limits(&raw);
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(parsed.subject(), Some(long.as_str()));
}

#[test]
fn message_ids_are_unique_per_tenant_organizer_and_batch_and_stable() {
    let ics = meeting_with_attendees("same-uid", ORGANIZER, 250);
    let other_organizer = "lee.gu@contoso.com";
    let contexts = [
        update_context(ORGANIZER),
        UpdateContext {
            tenant: "t2",
            ..update_context(ORGANIZER)
        },
        update_context(other_organizer),
    ];
    let mut ids = HashSet::new();
    for ctx in &contexts {
        let plan = build_updates(&ics, ctx).unwrap();
        assert_eq!(plan.batches.len(), 3);
        for batch in &plan.batches {
            assert!(
                batch.message_id.ends_with("@contoso.com"),
                "{}",
                batch.message_id
            );
            assert!(ids.insert(batch.message_id.clone()), "duplicate id");
        }
    }
    assert_eq!(ids.len(), 9);
    // A resend, even at another time, carries the same ids.
    let later = UpdateContext {
        date: "2025-03-04T08:00:00Z".parse().unwrap(),
        ..update_context(ORGANIZER)
    };
    let first = plan(&ics);
    let again = build_updates(&ics, &later).unwrap();
    let ids = |p: &UpdatePlan| {
        p.batches
            .iter()
            .map(|b| b.message_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&again));
    assert_eq!(
        first.batches[0].body, again.batches[0].body,
        "same body bytes"
    );
}

/// An event with a recurrence exception, repeated attendees in other spellings, the organizer
/// among the attendees, and attendees without a usable address.
fn tricky_meeting(extra_master: &str, extra_exception: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:tricky-1\r\n\
         SEQUENCE:2\r\nDTSTART:20300601T150000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Weekly\r\n\
         ORGANIZER;CN=Joni:mailto:{ORGANIZER}\r\n\
         ATTENDEE;CN=Joni;PARTSTAT=ACCEPTED:mailto:Joni.Sherman@Contoso.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:B@x.com\r\n\
         ATTENDEE;PARTSTAT=NEEDS-ACTION:MAILTO:a@x.com\r\n\
         ATTENDEE;CUTYPE=ROOM:urn:uuid:6f1d2c1e-room\r\n\
         ATTENDEE;EMAIL=e@x.com:urn:uuid:7a2b-person\r\n\
         ATTENDEE:mailto:not an address\r\n{extra_master}END:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:tricky-1\r\nRECURRENCE-ID:20300608T150000Z\r\nSEQUENCE:2\r\n\
         DTSTART:20300608T160000Z\r\nSUMMARY:Weekly (moved)\r\n\
         ATTENDEE;PARTSTAT=ACCEPTED:mailto:b@X.com\r\n{extra_exception}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[test]
fn recipients_are_every_attendee_once_sorted_without_the_organizer() {
    let plan = plan(&tricky_meeting("", ""));
    assert_eq!(plan.uid, "tricky-1");
    assert_eq!(plan.sequence, 2);
    assert_eq!(plan.batches.len(), 1);
    assert_eq!(
        plan.batches[0].recipients,
        vec!["a@x.com", "B@x.com", "e@x.com"],
        "case-insensitive dedup across VEVENTs, EMAIL parameter used, organizer left out"
    );
    let reasons: Vec<(&str, &NotNotifiedReason)> = plan
        .not_notified
        .iter()
        .map(|n| (n.attendee.as_str(), &n.reason))
        .collect();
    assert!(reasons.contains(&("urn:uuid:6f1d2c1e-room", &NotNotifiedReason::NoMailAddress)));
    assert!(
        reasons
            .iter()
            .any(|(a, r)| *a == "not an address" && matches!(r, NotNotifiedReason::BadAddress(_))),
        "{reasons:?}"
    );
    assert_eq!(plan.not_notified.len(), 2);
}

#[test]
fn batches_follow_max_recipients_per_message() {
    let ics = meeting_with_attendees("batches-1", ORGANIZER, 250);
    let ctx = UpdateContext {
        max_recipients_per_message: 40,
        ..update_context(ORGANIZER)
    };
    let plan = build_updates(&ics, &ctx).unwrap();
    let sizes: Vec<usize> = plan.batches.iter().map(|b| b.recipients.len()).collect();
    assert_eq!(sizes, vec![40, 40, 40, 40, 40, 40, 10]);
    // Batches share one body (the calendar with all 250 attendees), not 7 copies.
    assert!(plan
        .batches
        .windows(2)
        .all(|w| std::sync::Arc::ptr_eq(&w[0].body, &w[1].body)));
    let err = build_updates(
        &ics,
        &UpdateContext {
            max_recipients_per_message: 0,
            ..update_context(ORGANIZER)
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            IcalError::InvalidSetting {
                key: "mail.max_recipients_per_message",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn declined_attendees_keep_their_partstat_but_get_no_update_by_default() {
    let ics = tricky_meeting(
        "ATTENDEE;PARTSTAT=DECLINED:mailto:no@x.com\r\n\
         ATTENDEE;PARTSTAT=DECLINED:mailto:series-only@x.com\r\n",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:series-only@x.com\r\n",
    );
    let plan = plan(&ics);
    let recipients = &plan.batches[0].recipients;
    assert!(!recipients.contains(&"no@x.com".to_string()));
    assert!(
        recipients.contains(&"series-only@x.com".to_string()),
        "declined the series but accepted an occurrence: needs its link"
    );
    assert!(plan
        .not_notified
        .iter()
        .any(|n| n.attendee == "no@x.com" && n.reason == NotNotifiedReason::Declined));
    assert!(plan
        .not_notified
        .iter()
        .any(|n| n.to_string().contains("mail.notify_declined")));

    // The calendar part is the stored resource: every PARTSTAT kept, METHOD:REQUEST added.
    let raw = plan.batches[0].raw();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let calendar = parsed
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|t| t.subtype() == Some("calendar"))
        })
        .expect("a text/calendar part");
    let calendar = calendar.text_contents().expect("text");
    assert!(calendar.contains("\r\nMETHOD:REQUEST\r\n"));
    assert!(calendar.contains("ATTENDEE;PARTSTAT=DECLINED:mailto:no@x.com"));
    assert!(calendar.contains("ATTENDEE;CN=Joni;PARTSTAT=ACCEPTED:mailto:Joni.Sherman@Contoso.com"));

    let all = build_updates(
        &ics,
        &UpdateContext {
            notify_declined: true,
            ..update_context(ORGANIZER)
        },
    )
    .unwrap();
    assert!(all.batches[0].recipients.contains(&"no@x.com".to_string()));
    assert!(all
        .not_notified
        .iter()
        .all(|n| n.reason != NotNotifiedReason::Declined));
}

#[test]
fn a_meeting_whose_attendees_all_declined_has_no_batches() {
    let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTART:20300601T150000Z\r\n\
               ATTENDEE;PARTSTAT=DECLINED:mailto:x@y.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let plan = plan(ics);
    assert!(plan.batches.is_empty());
    assert_eq!(plan.not_notified.len(), 1);
}

/// Most CalDAV clients write no X-ALT-DESC: the HTML part is then the description rendered,
/// with the new join link clickable, and the text part keeps the organizer's agenda.
#[test]
fn both_parts_carry_the_agenda_and_the_new_block_without_x_alt_desc() {
    let ics = meeting_with_attendees("parts-1", ORGANIZER, 5);
    assert!(!ics.contains("X-ALT-DESC"));
    let rewritten = rewrite(&ics, &teams_coords(), now()).unwrap();
    assert!(rewritten.changed);
    let plan = plan(&rewritten.ics);
    let raw = plan.batches[0].raw();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let join = &teams_coords().join_url;
    let text = parsed.body_text(0).expect("a text part");
    assert!(text.contains("Agenda:\n1. Results\n2. Questions"), "{text}");
    assert!(text.contains(join.as_str()), "{text}");
    let html = parsed.body_html(0).expect("an HTML part");
    let escaped_join = html_escape::encode_double_quoted_attribute(join);
    assert!(
        html.contains(&format!("<a href=\"{escaped_join}\">")),
        "{html}"
    );
    assert!(html.contains("Agenda:<br>"), "{html}");
    let dial_in = &teams_coords().dial_in[0].number;
    assert!(text.contains(dial_in.as_str()) && html.contains(dial_in.as_str()));
}

#[test]
fn an_x_alt_desc_is_the_html_part() {
    let alt = "<html><body><p><b>Agenda</b></p><p><a href=\"https://teams.example.net/j\">Join</a></p></body></html>";
    let ics = meeting_with_attendees("alt-1", ORGANIZER, 2).replace(
        "END:VEVENT\r\n",
        &format!(
            "X-ALT-DESC;FMTTYPE=text/html:{}\r\nEND:VEVENT\r\n",
            alt.replace(',', "\\,")
        ),
    );
    let plan = plan(&ics);
    let raw = plan.batches[0].raw();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(parsed.body_html(0).unwrap().trim_end(), alt);
}

#[test]
fn unusable_addresses_of_the_sender_say_what_to_fix() {
    let ics = meeting_with_attendees("errors-1", ORGANIZER, 2);
    let no_domain = UpdateContext {
        service_address: "mms",
        ..update_context(ORGANIZER)
    };
    let err = build_updates(&ics, &no_domain).unwrap_err();
    assert!(
        matches!(
            err,
            IcalError::BadAddress {
                what: "service address",
                ..
            }
        ),
        "{err}"
    );
    let err = build_updates(&ics, &update_context("not an organizer")).unwrap_err();
    assert!(
        matches!(
            err,
            IcalError::BadAddress {
                what: "organizer",
                ..
            }
        ),
        "{err}"
    );
}
