//! The body of an update: what an attendee's mail client shows, and the calendar it imports.
//!
//! `multipart/alternative` (RFC 2046 §5.1.4) with three parts, simplest first:
//!
//! - `text/plain`: the organizer's whole DESCRIPTION, unescaped, with its agenda and the new
//!   online-meeting block that the rewrite put there;
//! - `text/html`: the organizer's X-ALT-DESC when the event has one (Outlook writes it; it
//!   carries the new HTML block after the rewrite), otherwise the DESCRIPTION rendered as
//!   escaped HTML with paragraphs, line breaks and clickable links, so an HTML-only reader
//!   still sees the join link and the dial-in numbers;
//! - `text/calendar; method=REQUEST`: the stored resource with `METHOD:REQUEST` (RFC 6047).
//!
//! lettre's MIME builder does the transfer encodings (it picks 7bit, quoted-printable or
//! base64 so that no body line passes 76 characters). The boundary is derived from the content,
//! not random, so the same update builds the same bytes.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{MultiPart, MultiPartKind, SinglePart};

use crate::detect::urls_with_ranges;
use crate::error::IcalError;

/// The three renderings of one update.
pub struct Renderings {
    pub text: String,
    pub html: String,
    pub calendar: String,
}

/// The text part: the DESCRIPTION as the organizer wrote it, or the SUMMARY when there is none.
pub fn text_part(summary: &str, description: &str) -> String {
    let body = if description.trim().is_empty() {
        summary
    } else {
        description
    };
    let mut text = body.replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The HTML part: `alt_desc` (the X-ALT-DESC body) when given, else the DESCRIPTION as HTML.
pub fn html_part(summary: &str, description: &str, alt_desc: Option<&str>) -> String {
    if let Some(html) = alt_desc.filter(|h| !h.trim().is_empty()) {
        return html.to_string();
    }
    let mut html = String::with_capacity(description.len() * 5 / 4 + 128);
    html.push_str("<html><body>\n");
    if description.trim().is_empty() {
        html.push_str("<p>");
        html.push_str(&html_escape::encode_text(summary));
        html.push_str("</p>\n");
    } else {
        for paragraph in paragraphs(description) {
            html.push_str("<p>");
            for (i, line) in paragraph.iter().enumerate() {
                if i > 0 {
                    html.push_str("<br>\n");
                }
                push_linked(&mut html, line);
            }
            html.push_str("</p>\n");
        }
    }
    html.push_str("</body></html>\n");
    html
}

/// The text's paragraphs (separated by blank lines), each as its lines.
fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut paragraphs = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// Appends `line` escaped, each URL in it as a link to itself.
fn push_linked(html: &mut String, line: &str) {
    let mut at = 0;
    for url in urls_with_ranges(line) {
        html.push_str(&html_escape::encode_text(&line[at..url.start]));
        let target = &line[url.clone()];
        html.push_str("<a href=\"");
        html.push_str(&html_escape::encode_double_quoted_attribute(target));
        html.push_str("\">");
        html.push_str(&html_escape::encode_text(target));
        html.push_str("</a>");
        at = url.end;
    }
    html.push_str(&html_escape::encode_text(&line[at..]));
}

/// The MIME body (its `Content-Type` field, a blank line, the parts), CRLF line ends.
pub fn mime_body(parts: Renderings, boundary: &str) -> Result<Vec<u8>, IcalError> {
    let calendar_type = ContentType::parse("text/calendar; charset=utf-8; method=REQUEST")
        .map_err(|e| IcalError::Message(e.to_string()))?;
    let multipart = MultiPart::builder()
        .kind(MultiPartKind::Alternative)
        .boundary(boundary)
        .build()
        .singlepart(SinglePart::plain(parts.text))
        .singlepart(SinglePart::html(parts.html))
        .singlepart(
            SinglePart::builder()
                .header(calendar_type)
                .header(ContentTransferEncoding::Base64)
                .body(parts.calendar),
        );
    Ok(multipart.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_of_a_plain_description_keeps_paragraphs_breaks_and_links() {
        let description = "Agenda:\n1. Budget <draft> & plan\n\n\
            Join Microsoft Teams Meeting\nhttps://teams.example/l/meetup-join/a?b=1&c=2.\n\
            +1 555 0100,,123#";
        let html = html_part("Weekly", description, None);
        assert!(html.contains("<p>Agenda:<br>\n1. Budget &lt;draft&gt; &amp; plan</p>"));
        assert!(html.contains(
            "<a href=\"https://teams.example/l/meetup-join/a?b=1&amp;c=2\">\
             https://teams.example/l/meetup-join/a?b=1&amp;c=2</a>."
        ));
        assert!(html.contains("+1 555 0100,,123#</p>"));
    }

    #[test]
    fn x_alt_desc_wins_and_an_empty_description_falls_back_to_the_summary() {
        assert_eq!(
            html_part("S", "text", Some("<html>mine</html>")),
            "<html>mine</html>"
        );
        assert!(html_part("Q3 <review>", "", None).contains("<p>Q3 &lt;review&gt;</p>"));
        assert_eq!(text_part("S", ""), "S\n");
        assert_eq!(text_part("S", "line 1\r\nline 2"), "line 1\nline 2\n");
    }
}
