//! The online-meeting block MMS writes, as plain text (DESCRIPTION) and as HTML (X-ALT-DESC and
//! the update e-mail).
//!
//! The layout follows what attendees know from the vendor's invitations (heading between two
//! separator lines, join link, ids, dial-in numbers with their labels, a "find a local number"
//! link), so the recognisers in `detect` find it again, plus a marker so it is known to be ours.
//! Output depends only on the coordinates: the same coordinates give the same bytes, which is
//! what makes a rewrite with unchanged coordinates a no-op.

use mms_core::{Coordinates, DialInNumber, OnlineMeetingKind};

/// The last line of every text block MMS writes.
pub const MMS_MARKER: &str = "Online meeting details updated by MMS";
/// The `id` of the `<div>` that wraps every HTML block MMS writes.
pub const HTML_WRAPPER_ID: &str = "mms-online-meeting";
/// The label before the join URL in the text block.
pub const JOIN_LABEL: &str = "Join the meeting:";

/// The words of each platform's block.
struct Wording {
    separator: char,
    heading: &'static str,
    call_in: &'static str,
    conference_id: &'static str,
    conference_id_suffix: &'static str,
}

fn wording(kind: OnlineMeetingKind) -> Wording {
    match kind {
        OnlineMeetingKind::Teams => Wording {
            separator: '_',
            heading: "Microsoft Teams meeting",
            call_in: "Or call in (audio only)",
            conference_id: "Phone Conference ID",
            conference_id_suffix: "#",
        },
        OnlineMeetingKind::SfB => Wording {
            separator: '.',
            heading: "Join Skype Meeting",
            call_in: "Join by phone",
            conference_id: "Conference ID",
            conference_id_suffix: "",
        },
    }
}

/// The name clients show in LOCATION for a meeting of `kind`.
pub fn location_placeholder(kind: OnlineMeetingKind) -> &'static str {
    match kind {
        OnlineMeetingKind::Teams => "Microsoft Teams Meeting",
        OnlineMeetingKind::SfB => "Skype Meeting",
    }
}

/// The heading of a block of `kind`, used as the label of its CONFERENCE property.
pub fn heading(kind: OnlineMeetingKind) -> &'static str {
    wording(kind).heading
}

/// How a dial-in number is labelled: its label, and "(Toll-free)" when the label does not say so.
fn dial_in_label(number: &DialInNumber) -> String {
    if number.toll_free && !number.label.to_lowercase().contains("toll") {
        format!("{} (Toll-free)", number.label)
    } else {
        number.label.clone()
    }
}

/// A `tel:` URI that dials `number` and enters the conference id (RFC 3966: `#` is `%23`).
pub fn tel_uri(number: &str, conference_id: Option<&str>) -> String {
    let digits: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    match conference_id {
        Some(id) => {
            let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
            format!("tel:{digits},,{id}%23")
        }
        None => format!("tel:{digits}"),
    }
}

/// The plain-text block, lines separated by `\n`, without a trailing newline.
pub fn text_block(coords: &Coordinates) -> String {
    let w = wording(coords.kind);
    let rule: String = std::iter::repeat_n(w.separator, 80).collect();
    let mut lines = vec![
        rule.clone(),
        w.heading.to_string(),
        format!("{JOIN_LABEL} {}", coords.join_url),
    ];
    if !coords.meeting_id.is_empty() {
        lines.push(format!("Meeting ID: {}", coords.meeting_id));
    }
    if let Some(passcode) = &coords.passcode {
        lines.push(format!("Passcode: {passcode}"));
    }
    if !coords.dial_in.is_empty() {
        lines.push(w.call_in.to_string());
        for number in &coords.dial_in {
            lines.push(format!("{}   {}", number.number, dial_in_label(number)));
        }
        if let Some(id) = &coords.conference_id {
            lines.push(format!(
                "{}: {id}{}",
                w.conference_id, w.conference_id_suffix
            ));
        }
        if let Some(url) = &coords.find_local_number_url {
            lines.push(format!("Find a local number: {url}"));
        }
    }
    lines.push(MMS_MARKER.to_string());
    lines.push(rule);
    lines.join("\n")
}

/// The HTML block: a `<div id="mms-online-meeting">` with every value HTML-escaped.
pub fn html_block(coords: &Coordinates) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let w = wording(coords.kind);
    let rule: String = std::iter::repeat_n(w.separator, 80).collect();
    let kind = match coords.kind {
        OnlineMeetingKind::Teams => "Teams",
        OnlineMeetingKind::SfB => "SfB",
    };
    let mut out = vec![
        format!("<div id=\"{HTML_WRAPPER_ID}\" data-kind=\"{kind}\" style=\"font-family:'Segoe UI',Helvetica,Arial,sans-serif;color:#252424;\">"),
        format!("<div style=\"color:#5F5F5F;\">{rule}</div>"),
        format!("<div style=\"font-size:20px;margin:12px 0;\">{}</div>", w.heading),
        format!("<div><a href=\"{}\">Join the meeting</a></div>", attr(&coords.join_url)),
    ];
    if !coords.meeting_id.is_empty() {
        out.push(format!(
            "<div>Meeting ID: {}</div>",
            text(&coords.meeting_id)
        ));
    }
    if let Some(passcode) = &coords.passcode {
        out.push(format!("<div>Passcode: {}</div>", text(passcode)));
    }
    if !coords.dial_in.is_empty() {
        out.push(format!(
            "<div style=\"margin-top:12px;\">{}</div>",
            w.call_in
        ));
        for number in &coords.dial_in {
            out.push(format!(
                "<div><a href=\"{}\">{}</a>&nbsp;&nbsp;{}</div>",
                attr(&tel_uri(&number.number, coords.conference_id.as_deref())),
                text(&number.number),
                text(&dial_in_label(number)),
            ));
        }
        if let Some(id) = &coords.conference_id {
            out.push(format!(
                "<div>{}: {}{}</div>",
                w.conference_id,
                text(id),
                w.conference_id_suffix
            ));
        }
        if let Some(url) = &coords.find_local_number_url {
            out.push(format!(
                "<div><a href=\"{}\">Find a local number</a></div>",
                attr(url)
            ));
        }
    }
    out.push(format!("<div style=\"color:#5F5F5F;\">{rule}</div>"));
    out.push("</div>".to_string());
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_values_are_escaped() {
        let coords = Coordinates {
            kind: OnlineMeetingKind::Teams,
            join_url: "https://x.test/j?a=1&b=\"2\"".into(),
            meeting_id: "<script>".into(),
            passcode: None,
            conference_id: None,
            dial_in: vec![],
            find_local_number_url: None,
        };
        let html = html_block(&coords);
        assert!(
            html.contains("href=\"https://x.test/j?a=1&amp;b=&quot;2&quot;\""),
            "{html}"
        );
        assert!(html.contains("Meeting ID: &lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn tel_uri_encodes_the_pound_sign() {
        assert_eq!(
            tel_uri("+1 (206) 555-0100", Some("123 456#")),
            "tel:+12065550100,,123456%23"
        );
    }
}
