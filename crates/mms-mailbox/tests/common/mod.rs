//! Calendar fixtures shared by the connector tests: a handful of events placed around "now".

use chrono::{DateTime, Duration, Utc};
use mms_core::{Mailbox, MailboxError, MailboxItem};

pub const ORGANIZER: &str = "alice@example.com";

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

pub fn event(uid: &str, start: DateTime<Utc>, rrule: Option<&str>) -> String {
    let rrule = rrule.map(|r| format!("RRULE:{r}\r\n")).unwrap_or_default();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mms//tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\n{rrule}SUMMARY:{uid}\r\n\
         ORGANIZER:mailto:{ORGANIZER}\r\nATTENDEE:mailto:bob@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        stamp(start),
        stamp(start),
        stamp(start + Duration::hours(1)),
    )
}

/// (file name, content): a weekly series begun a month ago (future occurrences), a past
/// meeting, a future one, and a series whose last occurrence is past.
pub fn seed_events(now: DateTime<Utc>) -> Vec<(&'static str, String)> {
    vec![
        (
            "ended-series.ics",
            event(
                "ended-series",
                now - Duration::days(60),
                Some("FREQ=DAILY;COUNT=2"),
            ),
        ),
        (
            "future.ics",
            event("future", now + Duration::days(10), None),
        ),
        ("past.ics", event("past", now - Duration::days(10), None)),
        (
            "weekly.ics",
            event("weekly", now - Duration::days(30), Some("FREQ=WEEKLY")),
        ),
    ]
}

/// Every item of a search, following the cursor; also checks that no page exceeds `page_size`.
pub async fn search_all(
    mailbox: &dyn Mailbox,
    user: &str,
    from: DateTime<Utc>,
    page_size: usize,
) -> Result<(Vec<MailboxItem>, usize), MailboxError> {
    let mut items = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = mailbox.search(user, from, cursor, page_size).await?;
        pages += 1;
        assert!(
            page.items.len() <= page_size,
            "page of {} items for page_size {page_size}",
            page.items.len()
        );
        items.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok((items, pages)),
        }
    }
}

/// The UIDs of `items`, sorted.
pub fn uids(items: &[MailboxItem]) -> Vec<String> {
    let mut uids: Vec<String> = items
        .iter()
        .filter_map(|i| {
            i.ics
                .lines()
                .find_map(|l| l.strip_prefix("UID:"))
                .map(|u| u.trim().to_string())
        })
        .collect();
    uids.sort();
    uids
}
