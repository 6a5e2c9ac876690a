//! WebDAV / CalDAV XML: the request bodies MMS sends and a reader for `207 Multi-Status` replies.
//!
//! The reader resolves namespaces (`DAV:` and `urn:ietf:params:xml:ns:caldav`) instead of
//! matching prefixes, since servers pick their own (`D:`, `d:`, a default namespace...), and it
//! keeps a property only from a `propstat` whose status is 2xx: a server lists the properties it
//! could not return under a `404` propstat.

use chrono::{DateTime, Utc};
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
    pub calendar_data: Option<String>,
    pub is_collection: bool,
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
  <D:prop><D:getetag/></D:prop>
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
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>"#;

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
    calendar_data: Option<String>,
    is_collection: bool,
}

/// `HTTP/1.1 404 Not Found` → 404.
fn parse_status_line(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Read a multistatus document; the error says where the XML is broken.
pub(crate) fn parse_multistatus(xml: &str) -> Result<Vec<DavResponse>, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Tag> = Vec::new();
    let mut responses = Vec::new();
    let mut current: Option<DavResponse> = None;
    let mut props: Option<PendingProps> = None;
    let mut text = String::new();
    loop {
        let position = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("invalid multistatus XML near byte {position}: {e}"))?;
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
                let unescaped = t
                    .unescape()
                    .map_err(|e| format!("bad text in multistatus XML: {e}"))?;
                text.push_str(&unescaped);
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                text.push_str(
                    std::str::from_utf8(&raw).map_err(|e| format!("CDATA is not UTF-8: {e}"))?,
                );
            }
            Event::End(_) => {
                let tag = stack.pop().unwrap_or(Tag::Other);
                let parent = stack.last().copied();
                match tag {
                    Tag::Href if parent == Some(Tag::Response) => {
                        if let Some(r) = current.as_mut() {
                            r.href = text.trim().to_string();
                        }
                    }
                    Tag::Status => {
                        let status = parse_status_line(&text);
                        match (parent, props.as_mut(), current.as_mut()) {
                            (Some(Tag::Propstat), Some(p), _) => p.status = status,
                            (Some(Tag::Response), _, Some(r)) => r.status = status,
                            _ => {}
                        }
                    }
                    Tag::GetEtag => {
                        if let Some(p) = props.as_mut() {
                            p.etag = Some(text.trim().to_string()).filter(|e| !e.is_empty());
                        }
                    }
                    Tag::CalendarData => {
                        if let Some(p) = props.as_mut() {
                            p.calendar_data = Some(std::mem::take(&mut text));
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
                                r.is_collection |= p.is_collection;
                            }
                        }
                    }
                    Tag::Response => responses.extend(current.take()),
                    Tag::Href | Tag::Other => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.is_empty() {
        Ok(responses)
    } else {
        Err("multistatus XML ends before its elements are closed (truncated reply?)".to_string())
    }
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
        let responses = parse_multistatus(xml).unwrap();
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].href, "/alice/calendar/a.ics");
        assert_eq!(responses[0].etag.as_deref(), Some("\"e1\""));
        assert_eq!(
            responses[0].calendar_data.as_deref(),
            Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
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
        let responses = parse_multistatus(xml).unwrap();
        assert!(responses[0].is_collection);
        assert!(!responses[1].is_collection);
        assert_eq!(
            responses[1].calendar_data.as_deref(),
            Some("BEGIN:VCALENDAR\n")
        );
    }

    #[test]
    fn broken_xml_is_an_error_not_a_panic() {
        assert!(parse_multistatus("<D:multistatus xmlns:D=\"DAV:\"><D:response>").is_err());
        assert!(parse_multistatus("<a></b>").is_err());
    }

    #[test]
    fn multiget_escapes_hrefs() {
        let body = calendar_multiget(&["/a/b&c.ics".to_string()]);
        assert!(body.contains("<D:href>/a/b&amp;c.ics</D:href>"));
    }
}
