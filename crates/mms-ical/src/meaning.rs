//! Comparison by meaning: whether two spellings of a property say the same thing.
//!
//! CalDAV servers store a meeting their own way. Radicale (vobject) sorts properties and
//! parameters and refolds; Xandikos (python `icalendar`) sorts parameters, quotes parameter
//! values that need no quotes and refolds at other points; Cyrus stores X-ALT-DESC with `;` and
//! `,` unescaped; others re-case parameter names or change line ends. None of that changes what
//! the meeting says, so none of it may make MMS think a meeting still needs its new coordinates:
//! a rewrite that would only re-spell a property leaves it (and the meeting's SEQUENCE) alone.
//!
//! Two properties have the same meaning ([`same_meaning`]) when their [`Meaning`]s are equal:
//!
//! - names compared without case (RFC 5545 §2: names are case-insensitive);
//! - parameters as a set: order ignored, names without case, quoted and unquoted values equal,
//!   RFC 6868 `^`-escapes decoded, the values of multi-valued parameters (FEATURE, MEMBER,
//!   DELEGATED-TO/FROM) as a set, and enumerated values (VALUE, PARTSTAT, FEATURE, ...) without
//!   case, as RFC 5545 §2 says;
//! - TEXT values unescaped per RFC 5545 §3.3.11, leniently (an unescaped `;` or `,` reads as
//!   itself, so Cyrus's spelling equals the escaped one), `\N` as `\n`, and CRLF or CR line
//!   breaks inside the text as LF; HTML bodies (X-ALT-DESC) are TEXT and get the same treatment;
//! - values of other types as written, except enumerated ones (STATUS, TRANSP, ...) and
//!   DATE-TIMEs compared without case.
//!
//! Folding and line endings never reach this module: content lines are compared unfolded.

use std::collections::BTreeMap;

use crate::contentline::ContentLine;
use crate::text::unescape;

/// What a property says, in a canonical form: equal for every spelling of the same content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Meaning {
    /// Upper-cased property name.
    pub name: String,
    /// Upper-cased parameter names, each with its values in canonical order.
    pub params: BTreeMap<String, Vec<String>>,
    /// The value, unescaped when it is TEXT.
    pub value: String,
}

/// Whether `a` and `b` say the same thing (see the module documentation for the rules).
pub fn same_meaning(a: &ContentLine, b: &ContentLine) -> bool {
    a.unfolded() == b.unfolded() || meaning(a) == meaning(b)
}

/// Whether two lists of properties say the same thing, in any order (a multiset comparison:
/// RFC 5545 gives property order no meaning, and servers reorder).
pub fn same_meanings<'a>(
    a: impl IntoIterator<Item = &'a ContentLine>,
    b: impl IntoIterator<Item = &'a ContentLine>,
) -> bool {
    let mut a: Vec<Meaning> = a.into_iter().map(meaning).collect();
    let mut b: Vec<Meaning> = b.into_iter().map(meaning).collect();
    a.sort();
    b.sort();
    a == b
}

/// The canonical form of one property.
pub fn meaning(line: &ContentLine) -> Meaning {
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, raw) in line.params() {
        let name = name.trim().to_ascii_uppercase();
        let values = param_values(&name, raw);
        params.entry(name).or_default().extend(values);
    }
    for (name, values) in params.iter_mut() {
        if MULTI_VALUED_PARAMS.contains(&name.as_str()) {
            values.sort();
            values.dedup();
        }
    }
    let value_type = params
        .get("VALUE")
        .and_then(|v| v.first())
        .map_or_else(|| default_type(line.name()), |v| ValueType::named(v));
    let value = match value_type {
        ValueType::Text => text_meaning(line.value()),
        ValueType::CaseInsensitive => line.value().trim().to_ascii_uppercase(),
        ValueType::AsWritten => uri_meaning(line.value().trim()),
    };
    Meaning {
        name: line.name().to_string(),
        params,
        value,
    }
}

/// A TEXT value's content: unescaped leniently, every line break as LF.
pub fn text_meaning(raw: &str) -> String {
    let text = unescape(raw);
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    }
}

/// A value compared as written, except a `tel:` URI, which is compared as RFC 3966 §4 says:
/// percent-encoded characters decoded and visual separators (`-`, `.`, `(`, `)`) ignored, so
/// `tel:+1-206-555-0134,,731%23` and `tel:+12065550134%2C%2C731#` dial the same number.
fn uri_meaning(value: &str) -> String {
    let Some(number) = value
        .get(..4)
        .filter(|scheme| scheme.eq_ignore_ascii_case("tel:"))
        .map(|_| &value[4..])
    else {
        return value.to_string();
    };
    let decoded = percent_encoding::percent_decode_str(number).decode_utf8_lossy();
    let digits: String = decoded
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    format!("tel:{digits}")
}

/// Parameters whose value is a list with no order (RFC 5545 §3.2.11, .4, .5; RFC 7986 §6.3).
const MULTI_VALUED_PARAMS: &[&str] = &["FEATURE", "MEMBER", "DELEGATED-TO", "DELEGATED-FROM"];

/// Parameters whose values are enumerated tokens (or media types), so case-insensitive
/// (RFC 5545 §2, §3.2; RFC 7986 §6; RFC 6838 for FMTTYPE).
const CASE_INSENSITIVE_PARAMS: &[&str] = &[
    "VALUE", "ENCODING", "CUTYPE", "PARTSTAT", "ROLE", "RSVP", "FBTYPE", "RELTYPE", "RANGE",
    "RELATED", "FMTTYPE", "FEATURE", "DISPLAY",
];

/// The values of one parameter: split at commas outside quotes for multi-valued parameters,
/// quotes removed, RFC 6868 escapes decoded, enumerated values upper-cased.
fn param_values(name: &str, raw: &str) -> Vec<String> {
    let pieces = if MULTI_VALUED_PARAMS.contains(&name) {
        split_outside_quotes(raw)
    } else {
        vec![raw]
    };
    let upper = CASE_INSENSITIVE_PARAMS.contains(&name);
    pieces
        .into_iter()
        .map(|piece| {
            let value = decode_caret(&piece.replace('"', ""));
            let value = value.trim();
            if upper {
                value.to_ascii_uppercase()
            } else {
                value.to_string()
            }
        })
        .collect()
}

fn split_outside_quotes(raw: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                pieces.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&raw[start..]);
    pieces
}

/// RFC 6868: `^n` is a newline, `^'` a double quote, `^^` a caret; any other `^` is itself.
fn decode_caret(value: &str) -> String {
    if !value.contains('^') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let decoded = match (c, chars.peek()) {
            ('^', Some('n')) => Some('\n'),
            ('^', Some('\'')) => Some('"'),
            ('^', Some('^')) => Some('^'),
            _ => None,
        };
        match decoded {
            Some(d) => {
                chars.next();
                out.push(d);
            }
            None => out.push(c),
        }
    }
    out
}

/// How a value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    /// TEXT (RFC 5545 §3.3.11): unescaped before comparing.
    Text,
    /// Enumerated tokens, DATE-TIME, BOOLEAN...: compared without case.
    CaseInsensitive,
    /// URI, CAL-ADDRESS, RECUR, numbers...: compared as written (trimmed).
    AsWritten,
}

impl ValueType {
    /// The type an explicit `VALUE=` names.
    fn named(value: &str) -> ValueType {
        match value {
            "TEXT" => ValueType::Text,
            "DATE" | "DATE-TIME" | "TIME" | "BOOLEAN" | "UTC-OFFSET" | "DURATION" | "PERIOD" => {
                ValueType::CaseInsensitive
            }
            _ => ValueType::AsWritten,
        }
    }
}

/// The default value type of a property (RFC 5545 §3.7, §3.8; RFC 7986 §5). Unknown and X-
/// properties are TEXT (RFC 5545 §3.8.8.2: "the default value type is TEXT").
fn default_type(name: &str) -> ValueType {
    match name {
        "STATUS" | "TRANSP" | "CLASS" | "ACTION" | "METHOD" | "CALSCALE" | "DTSTART" | "DTEND"
        | "DUE" | "DTSTAMP" | "CREATED" | "LAST-MODIFIED" | "COMPLETED" | "RECURRENCE-ID"
        | "EXDATE" | "RDATE" | "DURATION" | "TRIGGER" | "TZOFFSETFROM" | "TZOFFSETTO"
        | "FREEBUSY" => ValueType::CaseInsensitive,
        "ATTACH" | "CONFERENCE" | "URL" | "TZURL" | "SOURCE" | "IMAGE" | "ATTENDEE"
        | "ORGANIZER" | "RRULE" | "EXRULE" | "GEO" | "SEQUENCE" | "PRIORITY"
        | "PERCENT-COMPLETE" | "REPEAT" | "VERSION" | "REFRESH-INTERVAL" | "TZID" => {
            ValueType::AsWritten
        }
        _ => ValueType::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contentline::Document;

    /// The first property of a one-property calendar.
    fn line(text: &str) -> ContentLine {
        let ics = format!("BEGIN:VCALENDAR\r\n{text}\r\nEND:VCALENDAR\r\n");
        let doc = Document::parse(&ics).expect("valid line");
        doc.calendar()
            .and_then(|c| c.properties().next().cloned())
            .expect("one property")
    }

    fn same(a: &str, b: &str) -> bool {
        same_meaning(&line(a), &line(b))
    }

    #[test]
    fn parameter_order_case_and_quotes_carry_no_meaning() {
        let ours = "CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO;LABEL=Microsoft Teams meeting:https://x.test/j";
        // Xandikos' and Radicale's spelling: parameters sorted.
        assert!(same(ours, "CONFERENCE;FEATURE=AUDIO,VIDEO;LABEL=Microsoft Teams meeting;VALUE=URI:https://x.test/j"));
        assert!(same(ours, "conference;label=\"Microsoft Teams meeting\";feature=video,\"audio\";value=uri:https://x.test/j"));
        // LABEL is free text: its case is meaning.
        assert!(!same(ours, "CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO;LABEL=microsoft teams meeting:https://x.test/j"));
        // A URI's case is meaning too.
        assert!(!same(ours, "CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO;LABEL=Microsoft Teams meeting:https://x.test/J"));
        // A missing parameter is a difference.
        assert!(!same(
            ours,
            "CONFERENCE;VALUE=URI;FEATURE=AUDIO,VIDEO:https://x.test/j"
        ));
        assert!(!same(
            ours,
            "CONFERENCE;VALUE=URI;FEATURE=AUDIO;LABEL=Microsoft Teams meeting:https://x.test/j"
        ));
    }

    #[test]
    fn text_values_are_compared_unescaped_and_leniently() {
        let escaped = r"X-ALT-DESC;FMTTYPE=text/html:<p>a\, b\; c</p>\n<p>d</p>";
        // Cyrus: `;` and `,` not escaped.
        assert!(same(
            escaped,
            "X-ALT-DESC;FMTTYPE=text/html:<p>a, b; c</p>\\n<p>d</p>"
        ));
        assert!(same(
            escaped,
            "X-ALT-DESC;FMTTYPE=TEXT/HTML:<p>a\\, b\\; c</p>\\N<p>d</p>"
        ));
        assert!(!same(
            escaped,
            "X-ALT-DESC;FMTTYPE=text/html:<p>a, b; c</p> <p>d</p>"
        ));
        assert_eq!(text_meaning("a\r\nb\rc"), "a\nb\nc");
    }

    #[test]
    fn rfc_6868_escapes_are_decoded() {
        assert!(same(
            "ATTENDEE;CN=Caret ^^ Co:mailto:j@x.test",
            "ATTENDEE;CN=\"Caret ^ Co\":mailto:j@x.test"
        ));
        assert!(!same(
            "ATTENDEE;CN=Caret ^^ Co:mailto:j@x.test",
            "ATTENDEE;CN=Caret ^^^^ Co:mailto:j@x.test"
        ));
        assert_eq!(decode_caret("a^nb^'c^^d^x"), "a\nb\"c^d^x");
    }

    #[test]
    fn enumerated_values_ignore_case_and_uris_do_not() {
        assert!(same("STATUS:confirmed", "STATUS:CONFIRMED"));
        assert!(same("DTSTART:20250101t100000z", "DTSTART:20250101T100000Z"));
        assert!(!same("URL:https://x.test/A", "URL:https://x.test/a"));
        assert!(same(
            "ATTENDEE;PARTSTAT=accepted:mailto:a@x.test",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@x.test"
        ));
        assert!(!same(
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@x.test",
            "ATTENDEE;PARTSTAT=DECLINED:mailto:a@x.test"
        ));
    }

    #[test]
    fn tel_uris_compare_as_rfc_3966_says() {
        assert!(same(
            "CONFERENCE;VALUE=URI:tel:+1-206-555-0134,,731204558%23",
            "CONFERENCE;VALUE=URI:TEL:+12065550134%2C%2C731204558#"
        ));
        // What Radicale kept of the first one is another number to dial.
        assert!(!same(
            "CONFERENCE;VALUE=URI:tel:+12065550134,,731204558%23",
            "CONFERENCE;VALUE=URI:tel:+12065550134"
        ));
        // Other URIs keep their percent-encoding: `%2F` is not `/` in a path.
        assert!(!same("URL:https://x.test/a%2Fb", "URL:https://x.test/a/b"));
    }

    #[test]
    fn property_order_carries_no_meaning() {
        let a = [
            line("CONFERENCE;VALUE=URI:tel:+1"),
            line("CONFERENCE;VALUE=URI:https://x.test/j"),
        ];
        let b = [
            line("CONFERENCE;VALUE=URI:https://x.test/j"),
            line("conference;value=uri:tel:+1"),
        ];
        assert!(same_meanings(&a, &b));
        assert!(!same_meanings(&a, &b[..1]));
    }
}
