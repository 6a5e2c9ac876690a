//! Property tests: the round trip of arbitrary valid events is lossless, the rewrite leaves the
//! text around the block unchanged, and rewriting is idempotent.

mod common;

use common::{now, sfb_coords, teams_coords};
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
