//! WebDAV / CalDAV XML: the request bodies MMS sends and a reader for `207 Multi-Status` replies.
//!
//! The reader resolves namespaces (`DAV:` and `urn:ietf:params:xml:ns:caldav`) instead of
//! matching prefixes, since servers pick their own (`D:`, `d:`, a default namespace...), and it
//! keeps a property only from a `propstat` whose status is 2xx: a server lists the properties it
//! could not return under a `404` propstat.
//!
//! The reader works on bytes, not on a `&str`, for two reasons. A resource whose calendar data is
//! not UTF-8 must spoil only its own response (it becomes [`ItemProblem::NotUtf8`]), not the whole
//! page. And a reply cut short by the connector's byte cap (see `crate::body`) still yields the
//! responses that were complete before the cut, plus the href being read when it came, so the
//! connector fetches only the rest.

use chrono::{DateTime, Utc};
use mms_core::ItemProblem;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

const DAV: &[u8] = b"DAV:";
const CALDAV: &[u8] = b"urn:ietf:params:xml:ns:caldav";

/// One `<D:response>` of a multistatus reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DavResponse {
    /// As the server wrote it (usually an absolute, percent-encoded path).
    pub href: String,
    /// A response-level status (`404` for a multiget href that is gone); `None` when the status
    /// is per propstat.
    pub status: Option<u16>,
    pub etag: Option<String>,
    /// The calendar text, or why it is not text.
    pub calendar_data: Option<Result<String, ItemProblem>>,
    /// `getcontentlength`, when the server reported it.
    pub content_length: Option<u64>,
    pub is_collection: bool,
}

/// A multistatus reply as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Multistatus {
    /// The responses whose closing tag was read.
    pub responses: Vec<DavResponse>,
    /// The href of the response that was being read when a truncated reply ended.
    pub cut_at: Option<String>,
}

impl DavResponse {
    pub(crate) fn is_ok(&self) -> bool {
        self.status.is_none_or(|s| (200..300).contains(&s))
    }
}

/// calendar-query for the ETags of every VEVENT with an instance ending after `from`
/// (RFC 4791 §9.9: a conforming server expands recurrences to decide).
pub(crate) fn calendar_query_from(from: DateTime<Utc>) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><D:getcontentlength/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:time-range start="{}"/>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>"#,
        from.format("%Y%m%dT%H%M%SZ")
    )
}

/// PROPFIND (Depth: 1) for the ETag and type of every member: the full listing used when a
/// server cannot filter by time.
pub(crate) const PROPFIND_MEMBERS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:getcontentlength/><D:resourcetype/></D:prop></D:propfind>"#;

/// calendar-multiget for the bodies and ETags of `hrefs`.
pub(crate) fn calendar_multiget(hrefs: &[String]) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
"#,
    );
    for href in hrefs {
        body.push_str("  <D:href>");
        body.push_str(&escape_text(href));
        body.push_str("</D:href>\n");
    }
    body.push_str("</C:calendar-multiget>");
    body
}

fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The elements the reader cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Response,
    Href,
    Propstat,
    Status,
    GetEtag,
    GetContentLength,
    CalendarData,
    Collection,
    Other,
}

fn tag_of(ns: &ResolveResult, local: &[u8]) -> Tag {
    match (ns, local) {
        (ResolveResult::Bound(n), b"response") if n.0 == DAV => Tag::Response,
        (ResolveResult::Bound(n), b"href") if n.0 == DAV => Tag::Href,
        (ResolveResult::Bound(n), b"propstat") if n.0 == DAV => Tag::Propstat,
        (ResolveResult::Bound(n), b"status") if n.0 == DAV => Tag::Status,
        (ResolveResult::Bound(n), b"getetag") if n.0 == DAV => Tag::GetEtag,
        (ResolveResult::Bound(n), b"getcontentlength") if n.0 == DAV => Tag::GetContentLength,
        (ResolveResult::Bound(n), b"collection") if n.0 == DAV => Tag::Collection,
        (ResolveResult::Bound(n), b"calendar-data") if n.0 == CALDAV => Tag::CalendarData,
        _ => Tag::Other,
    }
}

/// Properties of one propstat, kept only if its status turns out to be 2xx.
#[derive(Default)]
struct PendingProps {
    status: Option<u16>,
    etag: Option<String>,
    calendar_data: Option<Result<String, ItemProblem>>,
    content_length: Option<u64>,
    is_collection: bool,
}

/// `HTTP/1.1 404 Not Found` → 404.
fn parse_status_line(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Read a complete multistatus document; the error says where the XML is broken.
pub(crate) fn parse_multistatus(xml: &[u8]) -> Result<Vec<DavResponse>, String> {
    let (read, problem) = read_multistatus(xml);
    match problem {
        None => Ok(read.responses),
        Some(problem) => Err(problem),
    }
}

/// Read the responses of a reply that the byte cap cut short: every complete one, and the href
/// of the one the cut fell in.
pub(crate) fn parse_truncated_multistatus(xml: &[u8]) -> Multistatus {
    read_multistatus(xml).0
}

/// Text being collected for the element that is open.
#[derive(Default)]
struct Collected {
    text: String,
    /// Set when a piece of the text was not UTF-8: the offset of the first bad byte.
    not_utf8: Option<usize>,
}

impl Collected {
    fn clear(&mut self) {
        self.text.clear();
        self.not_utf8 = None;
    }

    /// Append escaped XML text; invalid UTF-8 is remembered, not fatal.
    fn push_escaped(&mut self, raw: &[u8]) -> Result<(), String> {
        match std::str::from_utf8(raw) {
            Ok(escaped) => {
                let unescaped = quick_xml::escape::unescape(escaped)
                    .map_err(|e| format!("bad text in multistatus XML: {e}"))?;
                self.text.push_str(&unescaped);
            }
            Err(e) => self.mark_not_utf8(&raw[..e.valid_up_to()]),
        }
        Ok(())
    }

    fn push_raw(&mut self, raw: &[u8]) {
        match std::str::from_utf8(raw) {
            Ok(text) => self.text.push_str(text),
            Err(e) => self.mark_not_utf8(&raw[..e.valid_up_to()]),
        }
    }

    fn mark_not_utf8(&mut self, valid_prefix: &[u8]) {
        if self.not_utf8.is_none() {
            let prefix = String::from_utf8_lossy(valid_prefix);
            let decoded = quick_xml::escape::unescape(&prefix)
                .map(|s| s.len())
                .unwrap_or(prefix.len());
            self.not_utf8 = Some(self.text.len() + decoded);
        }
    }

    fn take_calendar_data(&mut self) -> Result<String, ItemProblem> {
        match self.not_utf8.take() {
            Some(offset) => {
                self.text.clear();
                Err(ItemProblem::NotUtf8 { offset })
            }
            None => Ok(std::mem::take(&mut self.text)),
        }
    }
}

/// The responses read, and what stopped the reader before the end of a well-formed document.
fn read_multistatus(xml: &[u8]) -> (Multistatus, Option<String>) {
    let mut reader = NsReader::from_reader(xml);
    let mut stack: Vec<Tag> = Vec::new();
    let mut read = Multistatus::default();
    let mut current: Option<DavResponse> = None;
    let mut props: Option<PendingProps> = None;
    let mut text = Collected::default();
    let problem = loop {
        let position = reader.buffer_position();
        let (ns, event) = match reader.read_resolved_event() {
            Ok(resolved) => resolved,
            Err(e) => break Some(format!("invalid multistatus XML near byte {position}: {e}")),
        };
        match event {
            Event::Start(start) => {
                let tag = tag_of(&ns, start.local_name().as_ref());
                match tag {
                    Tag::Response => current = Some(DavResponse::default()),
                    Tag::Propstat => props = Some(PendingProps::default()),
                    _ => {}
                }
                text.clear();
                stack.push(tag);
            }
            Event::Empty(empty) if tag_of(&ns, empty.local_name().as_ref()) == Tag::Collection => {
                if let Some(p) = props.as_mut() {
                    p.is_collection = true;
                }
            }
            Event::Text(t) => {
                if let Err(problem) = text.push_escaped(&t) {
                    break Some(problem);
                }
            }
            Event::CData(c) => text.push_raw(&c),
            Event::End(_) => {
                let tag = stack.pop().unwrap_or(Tag::Other);
                let parent = stack.last().copied();
                match tag {
                    Tag::Href if parent == Some(Tag::Response) => {
                        if let Some(r) = current.as_mut() {
                            r.href = text.text.trim().to_string();
                        }
                    }
                    Tag::Status => {
                        let status = parse_status_line(&text.text);
                        match (parent, props.as_mut(), current.as_mut()) {
                            (Some(Tag::Propstat), Some(p), _) => p.status = status,
                            (Some(Tag::Response), _, Some(r)) => r.status = status,
                            _ => {}
                        }
                    }
                    Tag::GetEtag => {
                        if let Some(p) = props.as_mut() {
                            p.etag = Some(text.text.trim().to_string()).filter(|e| !e.is_empty());
                        }
                    }
                    Tag::GetContentLength => {
                        if let Some(p) = props.as_mut() {
                            p.content_length = text.text.trim().parse().ok();
                        }
                    }
                    Tag::CalendarData => {
                        if let Some(p) = props.as_mut() {
                            p.calendar_data = Some(text.take_calendar_data());
                        }
                    }
                    Tag::Collection => {
                        if let Some(p) = props.as_mut() {
                            p.is_collection = true;
                        }
                    }
                    Tag::Propstat => {
                        if let (Some(p), Some(r)) = (props.take(), current.as_mut()) {
                            if p.status.is_none_or(|s| (200..300).contains(&s)) {
                                r.etag = r.etag.take().or(p.etag);
                                r.calendar_data = r.calendar_data.take().or(p.calendar_data);
                                r.content_length = r.content_length.or(p.content_length);
                                r.is_collection |= p.is_collection;
                            }
                        }
                    }
                    Tag::Response => read.responses.extend(current.take()),
                    Tag::Href | Tag::Other => {}
                }
                text.clear();
            }
            Event::Eof => {
                break (!stack.is_empty()).then(|| {
                    "multistatus XML ends before its elements are closed (truncated reply?)"
                        .to_string()
                })
            }
            _ => {}
        }
    };
    if problem.is_some() {
        read.cut_at = current.map(|r| r.href).filter(|h| !h.is_empty());
    }
    (read, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_any_prefix_and_keeps_only_successful_propstats() {
        let xml = r#"<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:cal="urn:ietf:params:xml:ns:caldav">
  <response>
    <href> /alice/calendar/a.ics </href>
    <propstat><prop><getetag>"e1"</getetag><cal:calendar-data>BEGIN:VCALENDAR&#13;
END:VCALENDAR&#13;
</cal:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat>
    <propstat><prop><getetag>"ignored"</getetag></prop><status>HTTP/1.1 404 Not Found</status></propstat>
  </response>
  <x:response xmlns:x="DAV:"><x:href>/alice/calendar/gone.ics</x:href><x:status>HTTP/1.1 404 Not Found</x:status></x:response>
</multistatus>"#;
        let responses = parse_multistatus(xml.as_bytes()).unwrap();
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].href, "/alice/calendar/a.ics");
        assert_eq!(responses[0].etag.as_deref(), Some("\"e1\""));
        assert_eq!(
            responses[0].calendar_data,
            Some(Ok("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_string()))
        );
        assert!(responses[0].is_ok());
        assert!(!responses[1].is_ok());
    }

    #[test]
    fn marks_collections_and_reads_cdata() {
        let xml = r#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:response><D:href>/a/calendar/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>/a/calendar/x.ics</D:href><D:propstat><D:prop><C:calendar-data><![CDATA[BEGIN:VCALENDAR
]]></C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
</D:multistatus>"#;
        let responses = parse_multistatus(xml.as_bytes()).unwrap();
        assert!(responses[0].is_collection);
        assert!(!responses[1].is_collection);
        assert_eq!(
            responses[1].calendar_data,
            Some(Ok("BEGIN:VCALENDAR\n".to_string()))
        );
    }

    #[test]
    fn broken_xml_is_an_error_not_a_panic() {
        assert!(parse_multistatus(b"<D:multistatus xmlns:D=\"DAV:\"><D:response>").is_err());
        assert!(parse_multistatus(b"<a></b>").is_err());
    }

    /// One response whose calendar data is not UTF-8 spoils only itself.
    #[test]
    fn calendar_data_that_is_not_utf8_is_a_problem_of_its_response_only() {
        let mut xml = br#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:response><D:href>/a/bad.ics</D:href><D:propstat><D:prop><D:getetag>"b"</D:getetag><C:calendar-data>BEGIN:&amp;"#.to_vec();
        xml.extend_from_slice(b"\xff\xfe binary");
        xml.extend_from_slice(br#"</C:calendar-data><D:getcontentlength>12</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>/a/good.ics</D:href><D:propstat><D:prop><D:getetag>"g"</D:getetag><C:calendar-data>BEGIN:VCALENDAR</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
</D:multistatus>"#);
        let responses = parse_multistatus(&xml).unwrap();
        assert_eq!(
            responses[0].calendar_data,
            Some(Err(ItemProblem::NotUtf8 { offset: 7 }))
        );
        assert_eq!(responses[0].content_length, Some(12));
        assert_eq!(
            responses[1].calendar_data,
            Some(Ok("BEGIN:VCALENDAR".to_string()))
        );
    }

    /// A reply cut by the byte cap yields its complete responses and where the cut fell.
    #[test]
    fn a_truncated_reply_yields_its_complete_responses_and_the_cut_href() {
        let xml = br#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:response><D:href>/a/1.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag><C:calendar-data>one</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response><D:href>/a/2.ics</D:href><D:propstat><D:prop><D:getetag>"2"</D:getetag><C:calendar-data>tw"#;
        assert!(parse_multistatus(xml).is_err());
        let read = parse_truncated_multistatus(xml);
        assert_eq!(read.responses.len(), 1);
        assert_eq!(read.responses[0].href, "/a/1.ics");
        assert_eq!(read.cut_at.as_deref(), Some("/a/2.ics"));
    }

    #[test]
    fn multiget_escapes_hrefs() {
        let body = calendar_multiget(&["/a/b&c.ics".to_string()]);
        assert!(body.contains("<D:href>/a/b&amp;c.ics</D:href>"));
    }
}
