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
#[allow(dead_code)]
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
#[allow(dead_code)]
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
#[allow(dead_code)]
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

/// Quick retries short enough for tests: the backoff's shape is unit-tested in the crate.
#[allow(dead_code)]
pub fn fast_retries() -> mms_core::config::MailboxOptions {
    mms_core::config::MailboxOptions {
        retry_base_ms: 5,
        ..Default::default()
    }
}

/// A CalDAV connector (4 requests in flight, 10 s timeout) with [`fast_retries`].
#[allow(dead_code)]
pub fn connector(calendar_url: &str) -> mms_mailbox::CalDavMailbox {
    mms_mailbox::CalDavMailbox::new(
        calendar_url,
        None,
        None,
        std::time::Duration::from_secs(10),
        4,
        None,
    )
    .unwrap()
    .with_options(&fast_retries())
    .unwrap()
}

/// One `#[tokio::test]` per real CalDAV server for each `async fn name(kind: CaldavKind)` named:
/// `name::radicale` and `name::xandikos`.
#[allow(unused_macros)]
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn radicale() {
                    super::$name(mms_testkit::caldav::CaldavKind::Radicale).await
                }
                #[tokio::test]
                async fn xandikos() {
                    super::$name(mms_testkit::caldav::CaldavKind::Xandikos).await
                }
            }
        )*
    };
}

/// A future event whose DESCRIPTION makes the file about `bytes` long (folded at 75 octets).
#[allow(dead_code)]
pub fn big_event(uid: &str, bytes: usize) -> String {
    let start = Utc::now() + Duration::days(20);
    let small = event(uid, start, None);
    let mut description = String::from("DESCRIPTION:");
    let mut line_len = description.len();
    while description.len() < bytes {
        if line_len == 74 {
            description.push_str("\r\n ");
            line_len = 1;
        }
        description.push('x');
        line_len += 1;
    }
    description.push_str("\r\n");
    small.replacen("SUMMARY:", &format!("{description}SUMMARY:"), 1)
}

/// Every item and every unreadable resource of a search, following the cursor; checks that no
/// page exceeds `page_size` and that no href is served twice.
#[allow(dead_code)]
pub async fn search_everything(
    mailbox: &dyn Mailbox,
    user: &str,
    page_size: usize,
) -> Result<(Vec<MailboxItem>, Vec<mms_core::UnreadableItem>), MailboxError> {
    let mut items = Vec::new();
    let mut unreadable = Vec::new();
    let mut cursor = None;
    loop {
        let page = mailbox.search(user, Utc::now(), cursor, page_size).await?;
        assert!(page.items.len() + page.unreadable.len() <= page_size);
        items.extend(page.items);
        unreadable.extend(page.unreadable);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut hrefs: Vec<&str> = items
        .iter()
        .map(|i| i.href.as_str())
        .chain(unreadable.iter().map(|u| u.href.as_str()))
        .collect();
    let all = hrefs.len();
    hrefs.sort();
    hrefs.dedup();
    assert_eq!(hrefs.len(), all, "an href was served twice");
    Ok((items, unreadable))
}
