//! Property tests: the round trip of arbitrary valid events is lossless, the rewrite leaves the
//! text around the block unchanged, rewriting is idempotent, also after a server re-spelled our
//! output (issue 7.2), and ATTENDEE lines are never touched (issue 7.10).

mod common;

use common::respell::{respell, Respelling};
use common::{fixtures_dir, now, sfb_coords, teams_coords};
use mms_ical::{rewrite, text, Document};
use proptest::prelude::*;

/// Organizer text: any printable text, including the characters TEXT must escape and non-ASCII.
fn prose() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,;:\\\\.!?&<>\"'éüß日本🎉\n-]{0,300}"
}

fn param_value() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9 -]{1,20}", "\"[A-Za-z0-9 ,;:-]{1,20}\""]
}

/// A valid VEVENT in a VCALENDAR, folded at arbitrary widths with LF or CRLF line ends.
fn event(before: String, after: String, block: bool) -> String {
    let block_text = if block {
        "\n________________________________________________________________________________\nMicrosoft Teams meeting\nClick here to join the meeting<https://teams.microsoft.com/l/meetup-join/abc>\nMeeting ID: 1 2 3\n________________________________________________________________________________\n"
    } else {
        ""
    };
    let description = text::escape(&format!("{before}{block_text}{after}"));
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:prop@example.com\r\nDTSTART:20250401T100000Z\r\nDTEND:20250401T110000Z\r\nORGANIZER:mailto:o@example.com\r\nATTENDEE;PARTSTAT=DECLINED:mailto:a@example.com\r\nDESCRIPTION:{description}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// Refolds every line of `ics` at `width` octets (clients fold anywhere), with `ending`.
fn refold(ics: &str, width: usize, ending: &str) -> String {
    let mut out = String::new();
    for line in ics.split("\r\n").filter(|l| !l.is_empty()) {
        let mut rest = line;
        let mut first = true;
        while !rest.is_empty() {
            let mut cut = rest.len().min(if first { width } else { width - 1 });
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            if !first {
                out.push(' ');
            }
            out.push_str(&rest[..cut]);
            out.push_str(ending);
            rest = &rest[cut..];
            first = false;
        }
    }
    out
}

proptest! {
    #[test]
    fn round_trip_is_lossless(before in prose(), after in prose(), width in 10usize..200, crlf in any::<bool>(),
                              x_value in prose(), param in param_value()) {
        let ics = event(before, after, false).replace(
            "END:VEVENT",
            &format!("X-VENDOR-THING;X-P={param}:{}\r\nEND:VEVENT", text::escape(&x_value)),
        );
        let ics = refold(&ics, width, if crlf { "\r\n" } else { "\n" });
        let doc = Document::parse(&ics).unwrap();
        prop_assert_eq!(doc.serialize(), ics);
    }

    #[test]
    fn text_outside_the_block_is_unchanged(before in prose(), after in prose(), width in 20usize..120) {
        let ics = refold(&event(before.clone(), after.clone(), true), width, "\r\n");
        let out = rewrite(&ics, &teams_coords(), now()).unwrap();
        prop_assert!(out.changed);
        let unfolded = out.ics.replace("\r\n ", "");
        let description = unfolded.lines().find(|l| l.starts_with("DESCRIPTION:")).unwrap();
        let body = text::unescape(&description["DESCRIPTION:".len()..]);
        prop_assert!(body.starts_with(&format!("{before}\n")), "prefix changed: {:?}", body);
        prop_assert!(body.ends_with(&format!("\n{after}")), "suffix changed: {:?}", body);
        // The attendee and its PARTSTAT are untouched.
        prop_assert!(unfolded.contains("ATTENDEE;PARTSTAT=DECLINED:mailto:a@example.com\r\n"));
    }

    #[test]
    fn rewrite_is_idempotent(before in prose(), after in prose(), sfb in any::<bool>()) {
        let coords = if sfb { sfb_coords() } else { teams_coords() };
        let ics = event(before, after, true);
        let once = rewrite(&ics, &coords, now()).unwrap();
        let twice = rewrite(&once.ics, &coords, now()).unwrap();
        prop_assert!(!twice.changed);
        prop_assert_eq!(twice.ics, once.ics);
    }
}

/// The rewritten fixtures: what a server is given to store after a first migration.
const REWRITTEN_FIXTURES: &[&str] = &[
    "teams_outlook.ics",
    "sfb_outlook.ics",
    "two_blocks.ics",
    "non_ascii.ics",
    "weekly_dst_exceptions.ics",
    "floating_time.ics",
    "attendees_300.ics",
];

fn respelling() -> impl Strategy<Value = Respelling> {
    (
        (
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            any::<bool>(),
        ),
        (
            proptest::option::of(any::<u64>()),
            8usize..120,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (shuffle_params, recase_params, quote, unescape_text, upper_n),
                (shuffle_properties, fold_width, fold_with_tab, lf),
            )| Respelling {
                shuffle_params,
                recase_params,
                quote,
                unescape_text,
                upper_n,
                shuffle_properties,
                fold_width,
                fold_with_tab,
                lf,
            },
        )
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
    let mut doc = Document::parse(ics).expect("parses");
    let mut out = Vec::new();
    doc.with_root(|root| collect(root, &mut out))
        .expect("a calendar");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Issue 7.2: rewrite(x), stored by a server in its own spelling, rewritten again with the
    /// same coordinates, is unchanged: same bytes, same SEQUENCE, so no second update is sent.
    #[test]
    fn a_server_respelling_of_our_output_is_not_a_change(
        fixture in proptest::sample::select(REWRITTEN_FIXTURES),
        generated in proptest::option::of((prose(), prose())),
        sfb in any::<bool>(),
        how in respelling(),
    ) {
        let coords = if sfb { sfb_coords() } else { teams_coords() };
        let input = match generated {
            Some((before, after)) => event(before, after, true),
            None => std::fs::read_to_string(fixtures_dir().join(fixture)).unwrap(),
        };
        let once = rewrite(&input, &coords, now()).unwrap();
        prop_assert!(once.changed);
        let stored = respell(&once.ics, &how);
        let again = rewrite(&stored, &coords, now()).unwrap();
        prop_assert!(!again.changed, "{how:?} made a change:\n{stored}\n=== rewritten to ===\n{}", again.ics);
        prop_assert_eq!(&again.ics, &stored);
        prop_assert_eq!(again.sequence, once.sequence);
    }

    /// Issue 7.10: a rewrite, of the organizer's original or of a server's spelling of an earlier
    /// rewrite with other coordinates, never touches an ATTENDEE line (PARTSTAT, RSVP, ROLE and
    /// every byte of their spelling stay).
    #[test]
    fn attendee_lines_survive_every_rewrite_byte_for_byte(
        fixture in proptest::sample::select(REWRITTEN_FIXTURES),
        sfb_first in any::<bool>(),
        how in respelling(),
    ) {
        let (first, second) = if sfb_first { (sfb_coords(), teams_coords()) } else { (teams_coords(), sfb_coords()) };
        let original = std::fs::read_to_string(fixtures_dir().join(fixture)).unwrap();
        let once = rewrite(&original, &first, now()).unwrap();
        prop_assert_eq!(attendee_lines(&once.ics), attendee_lines(&original));
        let stored = respell(&once.ics, &how);
        let moved = rewrite(&stored, &second, now()).unwrap();
        prop_assert!(moved.changed);
        prop_assert_eq!(moved.sequence, once.sequence + 1);
        prop_assert_eq!(attendee_lines(&moved.ics), attendee_lines(&stored));
        // What a rewrite makes of a server's spelling is itself settled.
        let settled = rewrite(&moved.ics, &second, now()).unwrap();
        prop_assert!(!settled.changed);
        prop_assert_eq!(settled.ics, moved.ics);
    }
}
