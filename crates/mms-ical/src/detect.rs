//! Finding online-meeting blocks: where, in a meeting's text and HTML body, the Skype for
//! Business, Teams or MMS-written block starts and ends, and which properties carry meeting
//! coordinates.
//!
//! The recognisers key on what the clients write: a heading line ("Microsoft Teams meeting",
//! "Join Skype Meeting", ...) between two separator lines (a run of underscores for Teams, of dots
//! for SfB). The heading must be a line of its own, so an organizer writing "see the Microsoft
//! Teams meeting below" is never mistaken for a block. Blocks MMS wrote carry the same shape plus
//! a marker line (text) or a `<div id="mms-online-meeting">` wrapper (HTML), so a later migration
//! finds and replaces them: migrations are repeatable.

use std::ops::Range;
use std::sync::LazyLock;

use mms_core::OnlineMeetingKind;
use regex::Regex;

use crate::contentline::Component;
use crate::render::{HTML_WRAPPER_ID, MMS_MARKER};
use crate::text::unescape;

/// One online-meeting block found in a text or HTML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Byte range in the unescaped body, from the opening separator to the closing one.
    pub range: Range<usize>,
    pub kind: OnlineMeetingKind,
    /// Written by MMS on an earlier migration.
    pub by_mms: bool,
    /// The join URLs the block advertises (replaced wherever else they appear in the event).
    pub join_urls: Vec<String>,
}

const TEAMS_HEADINGS: &[&str] = &[
    "microsoft teams meeting",
    "join microsoft teams meeting",
    "join teams meeting",
];
const SFB_HEADINGS: &[&str] = &[
    "join skype meeting",
    "join skype for business meeting",
    "join lync meeting",
    "join online meeting",
];

/// How far (in lines) a heading may sit below its opening separator, and how long a block may be.
const MAX_LINES_BEFORE_HEADING: usize = 3;
const MAX_BLOCK_LINES: usize = 80;
/// The same limits for HTML bodies, in bytes.
const MAX_HTML_BEFORE_HEADING: usize = 4_000;
const MAX_HTML_BLOCK: usize = 60_000;

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:https?|conf|sip)://[^\s<>"'\]\)|]+"#).expect("static regex")
});
static HTML_SEPARATOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"_{8,}|\.{8,}").expect("static regex"));

/// The platform a URL joins, if it is a meeting join URL.
pub fn classify_url(url: &str) -> Option<OnlineMeetingKind> {
    let lower = url.to_ascii_lowercase();
    let host = lower
        .split("://")
        .nth(1)
        .unwrap_or(&lower)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if lower.contains("/l/meetup-join/") {
        Some(OnlineMeetingKind::Teams)
    } else if host.starts_with("meet.") || host.starts_with("meet-") || lower.starts_with("conf:") {
        Some(OnlineMeetingKind::SfB)
    } else {
        None
    }
}

/// Every URL in `text`, in order.
pub fn urls(text: &str) -> impl Iterator<Item = &str> {
    urls_with_ranges(text).map(move |range| &text[range])
}

/// The byte ranges of the URLs in `text` (trailing sentence punctuation excluded).
pub fn urls_with_ranges(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    URL.find_iter(text).map(|m| {
        let trimmed = m.as_str().trim_end_matches(['.', ',', ';']);
        m.start()..m.start() + trimmed.len()
    })
}

/// The kind announced by a heading line, which must be the whole line (a trailing `<url>` or
/// ` url` allowed, as Outlook writes "Join Skype Meeting<https://meet...>").
fn heading_kind(line: &str) -> Option<OnlineMeetingKind> {
    let mut line = line.trim();
    if let Some(at) = line.find('<') {
        line = line[..at].trim_end();
    }
    if let Some(at) = line.find("http") {
        line = line[..at].trim_end_matches([' ', ':']);
    }
    let lower = line.to_lowercase();
    if TEAMS_HEADINGS.contains(&lower.as_str()) {
        Some(OnlineMeetingKind::Teams)
    } else if SFB_HEADINGS.contains(&lower.as_str()) {
        Some(OnlineMeetingKind::SfB)
    } else {
        None
    }
}

/// The separator character of a separator line: eight or more underscores, or dots.
fn separator(line: &str) -> Option<char> {
    let line = line.trim();
    let first = line.chars().next()?;
    (matches!(first, '_' | '.') && line.len() >= 8 && line.chars().all(|c| c == first))
        .then_some(first)
}

/// Lines that belong to a vendor block when it has no closing separator.
fn block_like(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    const PHRASES: &[&str] = &[
        "http",
        "meeting id",
        "passcode",
        "conference id",
        "call in",
        "join by phone",
        "dial-in",
        "dial in",
        "find a local number",
        "learn more",
        "help",
        "[!oc(",
        "tel:",
        "meeting options",
        "download teams",
        "join on the web",
        "trouble joining",
        "forgot your",
        "join on your computer",
        "click here to join",
    ];
    lower.is_empty()
        || lower.starts_with('+')
        || lower.starts_with(|c: char| c.is_ascii_digit())
        || PHRASES.iter().any(|p| lower.contains(p))
}

/// Lines of `text` with their byte ranges (without the line break; a `\r` before it excluded).
fn lines_with_ranges(text: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        let content = piece.strip_suffix('\n').unwrap_or(piece);
        let content = content.strip_suffix('\r').unwrap_or(content);
        out.push((start..start + content.len(), content));
        start += piece.len();
    }
    out
}

/// Finds the online-meeting blocks of a plain-text body (an unescaped DESCRIPTION).
pub fn text_blocks(text: &str) -> Vec<Block> {
    let lines = lines_with_ranges(text);
    let mut blocks = Vec::new();
    let mut next_free = 0;
    let mut index = 0;
    while index < lines.len() {
        let Some(kind) = heading_kind(lines[index].1) else {
            index += 1;
            continue;
        };
        let opening = (index
            .saturating_sub(MAX_LINES_BEFORE_HEADING)
            .max(next_free)..index)
            .rev()
            .find_map(|i| separator(lines[i].1).map(|c| (i, c)));
        let first = opening.map_or(index, |(i, _)| i);
        let window = (index + 1)..lines.len().min(index + 1 + MAX_BLOCK_LINES);
        let closing =
            opening.and_then(|(_, c)| window.clone().find(|&i| separator(lines[i].1) == Some(c)));
        let last = closing.unwrap_or_else(|| {
            let mut last = index;
            for i in window {
                if !block_like(lines[i].1) || heading_kind(lines[i].1).is_some() {
                    break;
                }
                if !lines[i].1.trim().is_empty() {
                    last = i;
                }
            }
            last
        });
        let range = lines[first].0.start..lines[last].0.end;
        let body = &text[range.clone()];
        blocks.push(Block {
            kind,
            by_mms: body.contains(MMS_MARKER),
            join_urls: join_urls(body),
            range,
        });
        next_free = last + 1;
        index = last + 1;
    }
    blocks
}

/// Join URLs of a block: those that look like meeting URLs, and the one on MMS's "Join" line.
fn join_urls(block: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in block.lines() {
        let mms_join_line = line.trim_start().starts_with(crate::render::JOIN_LABEL);
        for url in urls(line) {
            if (mms_join_line || classify_url(url).is_some()) && !found.iter().any(|f| f == url) {
                found.push(url.to_string());
            }
        }
    }
    found
}

/// Finds the online-meeting blocks of an HTML body (an unescaped X-ALT-DESC).
///
/// MMS's own wrapper is found by its id and its matching `</div>`; a vendor block by its heading
/// between two separator runs, widened to the elements that hold the separators so that no tag
/// is left half-closed.
pub fn html_blocks(html: &str) -> Vec<Block> {
    let lower = html.to_ascii_lowercase();
    let mut blocks = Vec::new();
    let mut search_from = 0;
    while let Some(found) = lower[search_from..].find(&format!("id=\"{HTML_WRAPPER_ID}\"")) {
        let attr_at = search_from + found;
        let Some(start) = lower[..attr_at].rfind("<div") else {
            break;
        };
        let Some(end) = matching_div_end(&lower, start) else {
            break;
        };
        let body = &html[start..end];
        let kind = if lower[start..end].contains("data-kind=\"sfb\"") {
            OnlineMeetingKind::SfB
        } else {
            OnlineMeetingKind::Teams
        };
        blocks.push(Block {
            range: start..end,
            kind,
            by_mms: true,
            join_urls: html_join_urls(body),
        });
        search_from = end;
    }
    let separators: Vec<Range<usize>> = HTML_SEPARATOR.find_iter(html).map(|m| m.range()).collect();
    for (phrases, kind) in [
        (TEAMS_HEADINGS, OnlineMeetingKind::Teams),
        (SFB_HEADINGS, OnlineMeetingKind::SfB),
    ] {
        for phrase in phrases {
            let mut from = 0;
            while let Some(found) = lower[from..].find(phrase) {
                let at = from + found;
                from = at + phrase.len();
                if blocks.iter().any(|b| b.range.contains(&at)) {
                    continue;
                }
                if let Some(range) = html_block_around(html, &separators, at) {
                    if blocks
                        .iter()
                        .all(|b| b.range.end <= range.start || b.range.start >= range.end)
                    {
                        let body = &html[range.clone()];
                        blocks.push(Block {
                            kind,
                            by_mms: false,
                            join_urls: html_join_urls(body),
                            range,
                        });
                    }
                }
            }
        }
    }
    blocks.sort_by_key(|b| b.range.start);
    blocks
}

fn html_join_urls(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for url in urls(body) {
        let url = html_escape::decode_html_entities(url).into_owned();
        if classify_url(&url).is_some() && !found.contains(&url) {
            found.push(url);
        }
    }
    found
}

/// The block around a heading at `at`: from the separator before it to the matching one after.
fn html_block_around(html: &str, separators: &[Range<usize>], at: usize) -> Option<Range<usize>> {
    let opening = separators
        .iter()
        .rev()
        .find(|s| s.end <= at && at - s.end <= MAX_HTML_BEFORE_HEADING)?;
    let opening_char = html[opening.start..].chars().next()?;
    let closing = separators.iter().find(|s| {
        s.start > at && s.start - at <= MAX_HTML_BLOCK && html[s.start..].starts_with(opening_char)
    })?;
    let (start, depth) = widen_back_over_open_tags(html, opening.start);
    let end = widen_forward_over_close_tags(html, closing.end, depth);
    Some(start..end)
}

/// Moves `at` back over opening tags (and whitespace) directly before it; returns the new start
/// and how many tags were crossed.
fn widen_back_over_open_tags(html: &str, mut at: usize) -> (usize, usize) {
    let mut depth = 0;
    loop {
        let before = html[..at].trim_end();
        if !before.ends_with('>') {
            return (at, depth);
        }
        let Some(open) = before.rfind('<') else {
            return (at, depth);
        };
        let tag = &before[open..];
        if tag.starts_with("</")
            || tag.starts_with("<!")
            || tag.ends_with("/>")
            || tag.to_ascii_lowercase().starts_with("<br")
        {
            return (at, depth);
        }
        at = open;
        depth += 1;
    }
}

/// Moves `at` forward over up to `depth` closing tags (and whitespace between them).
fn widen_forward_over_close_tags(html: &str, mut at: usize, depth: usize) -> usize {
    for _ in 0..depth {
        let rest = &html[at..];
        let skipped = rest.len() - rest.trim_start().len();
        if !rest[skipped..].starts_with("</") {
            break;
        }
        let Some(close) = rest[skipped..].find('>') else {
            break;
        };
        at += skipped + close + 1;
    }
    at
}

/// The end (exclusive) of the `<div` element starting at `start`, counting nested divs.
fn matching_div_end(lower: &str, start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    loop {
        let open = lower[at..].find("<div").map(|i| i + at);
        let close = lower[at..].find("</div").map(|i| i + at);
        match (open, close) {
            (Some(o), Some(c)) if o < c => {
                depth += 1;
                at = o + 4;
            }
            (_, Some(c)) => {
                depth = depth.checked_sub(1)?;
                let end = lower[c..].find('>').map(|i| i + c + 1)?;
                if depth == 0 {
                    return Some(end);
                }
                at = end;
            }
            _ => return None,
        }
    }
}

/// What an event tells about its online meeting, from its bodies and its properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub teams: bool,
    pub sfb: bool,
    /// Join URLs found anywhere (blocks, X-MICROSOFT-*, LOCATION, URL, CONFERENCE).
    pub join_urls: Vec<String>,
}

impl Evidence {
    fn note(&mut self, kind: OnlineMeetingKind) {
        match kind {
            OnlineMeetingKind::Teams => self.teams = true,
            OnlineMeetingKind::SfB => self.sfb = true,
        }
    }

    fn note_url(&mut self, url: &str) {
        if let Some(kind) = classify_url(url) {
            self.note(kind);
            if !self.join_urls.iter().any(|u| u == url) {
                self.join_urls.push(url.to_string());
            }
        }
    }

    fn note_block(&mut self, block: &Block) {
        self.note(block.kind);
        for url in &block.join_urls {
            if !self.join_urls.contains(url) {
                self.join_urls.push(url.clone());
            }
        }
    }

    pub fn any(&self) -> bool {
        self.teams || self.sfb
    }
}

/// The `LOCATION` values clients put for an online meeting, with the platform they name.
pub const LOCATION_PLACEHOLDERS: &[(&str, OnlineMeetingKind)] = &[
    ("microsoft teams meeting", OnlineMeetingKind::Teams),
    ("skype meeting", OnlineMeetingKind::SfB),
    ("skype for business meeting", OnlineMeetingKind::SfB),
    ("lync meeting", OnlineMeetingKind::SfB),
];

/// Collects the online-meeting evidence of one VEVENT.
pub fn evidence(event: &Component) -> Evidence {
    let mut evidence = Evidence::default();
    for property in event.properties() {
        match property.name() {
            "DESCRIPTION" => {
                let text = unescape(property.value());
                text_blocks(&text)
                    .iter()
                    .for_each(|b| evidence.note_block(b));
                urls(&text).for_each(|u| evidence.note_url(u));
            }
            "X-ALT-DESC" => {
                let html = unescape(property.value());
                html_blocks(&html)
                    .iter()
                    .for_each(|b| evidence.note_block(b));
            }
            "LOCATION" => {
                let text = unescape(property.value());
                let lower = text.trim().to_lowercase();
                if let Some((_, kind)) = LOCATION_PLACEHOLDERS.iter().find(|(p, _)| *p == lower) {
                    evidence.note(*kind);
                }
                urls(&text).for_each(|u| evidence.note_url(u));
            }
            "URL" | "CONFERENCE" | "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK" => {
                urls(property.value()).for_each(|u| evidence.note_url(u));
            }
            "X-MICROSOFT-SKYPETEAMSMEETINGURL" => {
                evidence.teams = true;
                urls(property.value()).for_each(|u| evidence.note_url(u));
            }
            "X-MICROSOFT-SKYPETEAMSPROPERTIES" => evidence.teams = true,
            "X-MICROSOFT-ONLINEMEETINGCONFLINK" | "X-MICROSOFT-ONLINEMEETINGINFORMATION" => {
                evidence.sfb = true
            }
            _ => {}
        }
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heading_inside_a_sentence_is_not_a_block() {
        assert!(text_blocks("We will use the Microsoft Teams meeting below.\nBye").is_empty());
    }

    #[test]
    fn an_sfb_block_without_closing_separator_ends_at_the_last_block_line() {
        let text = "Agenda\n\nJoin Skype Meeting<https://meet.contoso.com/joni/AB12>\nConference ID: 1234\n\nThanks, Joni";
        let blocks = text_blocks(text);
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            &text[blocks[0].range.clone()],
            "Join Skype Meeting<https://meet.contoso.com/joni/AB12>\nConference ID: 1234"
        );
        assert_eq!(
            blocks[0].join_urls,
            vec!["https://meet.contoso.com/joni/AB12"]
        );
    }

    #[test]
    fn html_block_is_widened_to_balanced_tags() {
        let html = "<p>Hi</p><div><span>__________</span></div><div><b>Microsoft Teams meeting</b> \
                    <a href=\"https://teams.microsoft.com/l/meetup-join/x\">Join</a></div><div><span>__________</span></div><p>Bye</p>";
        let blocks = html_blocks(html);
        assert_eq!(blocks.len(), 1);
        let body = &html[blocks[0].range.clone()];
        assert!(
            body.starts_with("<div><span>___") && body.ends_with("___</span></div>"),
            "{body}"
        );
    }
}
