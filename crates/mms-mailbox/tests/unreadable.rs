//! A bad resource is an outcome of its meeting, not of the mailbox (issue 7.6), and memory is
//! bounded by bytes as well as by items: on Radicale, Xandikos and the vdir store.
//!
//! The mailbox holds three good meetings, one binary (non-UTF-8) resource and one oversized one.
//! The search must return the three, and the two in `unreadable` with their reasons; the largest
//! body the reader ever buffered (as it reports it) must stay within the caps.
//!
//! Neither CalDAV server stores a non-UTF-8 calendar (both refuse such a PUT; Radicale also skips
//! such a file found in its folder, which is checked too), so the binary resource is served
//! through the body-rewriting [`FaultProxy`] in front of the real server: the event is stored
//! with a marker that the proxy turns into invalid UTF-8 bytes on the way out. The oversized one is
//! 2 MiB against a 256 KiB resource cap on the CalDAV servers (each takes minutes to accept a 50
//! MB PUT on this machine, and the code path is the same); the vdir store gets a real 50 MB file
//! against the default 10 MiB cap.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::Utc;
use common::{big_event, event, search_everything, uids, ORGANIZER};
use mms_core::config::MailboxOptions;
use mms_core::{ItemProblem, Mailbox, MailboxError};
use mms_mailbox::{CalDavMailbox, VdirMailbox};
use mms_testkit::caldav::{CaldavKind, CaldavServer};
use mms_testkit::proxy::FaultProxy;

/// Turned into invalid UTF-8 by the proxy (same length: 16 bytes).
const MARKER: &[u8] = b"MMS-CORRUPT-ME!!";
const INVALID: &[u8] = b"\xff\xfe\xfd\xfcBINARY\x80\x81\x82\x83\xc0\xc1";

const RESOURCE_CAP: u64 = 256 * 1024;
const PAGE_CAP: u64 = 1024 * 1024;

fn small_caps() -> MailboxOptions {
    MailboxOptions {
        max_resource_bytes: RESOURCE_CAP,
        max_page_bytes: PAGE_CAP,
        retry_base_ms: 5,
        ..Default::default()
    }
}

fn good_meetings() -> Vec<(String, String)> {
    (1..=3)
        .map(|i| {
            let uid = format!("good-{i}");
            let ics = event(&uid, Utc::now() + chrono::Duration::days(i), None);
            (format!("{uid}.ics"), ics)
        })
        .collect()
}

on_both_servers! {
    a_binary_and_an_oversized_resource_are_reported_and_the_others_returned,
}

async fn a_binary_and_an_oversized_resource_are_reported_and_the_others_returned(kind: CaldavKind) {
    let server = CaldavServer::start(kind).await;
    server.create_calendar(ORGANIZER).await;
    for (name, ics) in good_meetings() {
        server.put_event(ORGANIZER, &name, &ics).await;
    }
    let corrupt = event("corrupt", Utc::now() + chrono::Duration::days(5), None).replace(
        "SUMMARY:corrupt",
        &format!("SUMMARY:{}", std::str::from_utf8(MARKER).unwrap()),
    );
    server.put_event(ORGANIZER, "corrupt.ics", &corrupt).await;
    server
        .put_event(ORGANIZER, "big.ics", &big_event("big", 2 * 1024 * 1024))
        .await;
    if let CaldavServer::Radicale(radicale) = &server {
        // A binary file another tool left in the folder: Radicale itself skips it ("Skip broken
        // item"), so it is never listed; the rest must still be served.
        radicale.write_raw_file(ORGANIZER, "raw-binary.ics", &[0xff, 0xd8, 0xff, 0xe0, 0, 1]);
    }
    let proxy = FaultProxy::start(server.port()).await;
    proxy.corrupt_responses(MARKER, INVALID);
    let mailbox = CalDavMailbox::new(
        &format!("{}/{{user}}/calendar/", proxy.base_url()),
        None,
        None,
        Duration::from_secs(30),
        4,
        None,
    )
    .unwrap()
    .with_options(&small_caps())
    .unwrap();

    for page_size in [10, 2] {
        let (items, unreadable) = search_everything(&mailbox, ORGANIZER, page_size)
            .await
            .unwrap();
        assert_eq!(
            uids(&items),
            ["good-1", "good-2", "good-3"],
            "page_size {page_size}"
        );
        assert_eq!(unreadable.len(), 2, "page_size {page_size}: {unreadable:?}");
        let big = unreadable
            .iter()
            .find(|u| u.href.ends_with("big.ics"))
            .expect("big.ics reported");
        assert!(
            matches!(big.problem, ItemProblem::TooLarge { bytes, limit } if bytes > RESOURCE_CAP && limit == RESOURCE_CAP),
            "{big:?}"
        );
        assert!(big.problem.to_string().contains("max_resource_bytes"));
        let bad = unreadable
            .iter()
            .find(|u| u.href.ends_with("corrupt.ics"))
            .expect("corrupt.ics reported");
        assert!(
            matches!(bad.problem, ItemProblem::NotUtf8 { offset } if offset > 0),
            "{bad:?}"
        );
        assert!(bad.problem.to_string().contains("UTF-8"));
    }
    assert!(
        mailbox.largest_body_buffered() <= PAGE_CAP,
        "the reader held {} bytes, over the page cap {PAGE_CAP}",
        mailbox.largest_body_buffered()
    );

    let err = mailbox.get(ORGANIZER, "big.ics").await.unwrap_err();
    assert!(
        matches!(
            &err,
            MailboxError::Unreadable {
                problem: ItemProblem::TooLarge { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.concerns_one_item() && !err.is_permanent());
    let err = mailbox.get(ORGANIZER, "corrupt.ics").await.unwrap_err();
    assert!(
        matches!(
            &err,
            MailboxError::Unreadable {
                problem: ItemProblem::NotUtf8 { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(mailbox.largest_body_buffered() <= PAGE_CAP);
}

/// The embedded store with a real 50 MB file and a real binary file, at the default caps.
#[tokio::test]
async fn vdir_reports_a_binary_and_a_50_mb_file_and_returns_the_others() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(ORGANIZER);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, ics) in good_meetings() {
        std::fs::write(dir.join(name), ics).unwrap();
    }
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 256) as u8).collect();
    assert!(std::str::from_utf8(&binary).is_err());
    std::fs::write(dir.join("binary.ics"), &binary).unwrap();
    std::fs::write(dir.join("huge.ics"), big_event("huge", 50 * 1000 * 1000)).unwrap();
    let mailbox = VdirMailbox::new(root.path())
        .with_options(&MailboxOptions::default())
        .unwrap();
    let limit = MailboxOptions::default().max_resource_bytes;

    for page_size in [10, 1] {
        let (items, unreadable) = search_everything(&mailbox, ORGANIZER, page_size)
            .await
            .unwrap();
        assert_eq!(uids(&items), ["good-1", "good-2", "good-3"]);
        let problems: Vec<(&str, &ItemProblem)> = unreadable
            .iter()
            .map(|u| (u.href.as_str(), &u.problem))
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(matches!(
            problems[0],
            ("binary.ics", ItemProblem::NotUtf8 { .. })
        ));
        assert!(
            matches!(problems[1], ("huge.ics", ItemProblem::TooLarge { bytes, limit: l }) if *bytes > 50_000_000 && *l == limit),
            "{problems:?}"
        );
        assert!(
            unreadable[0].etag.is_some(),
            "a binary file's version is known"
        );
    }
    assert!(
        mailbox.largest_body_buffered() < 64 * 1024,
        "the 50 MB file was read: {} bytes buffered",
        mailbox.largest_body_buffered()
    );
    let err = mailbox.get(ORGANIZER, "huge.ics").await.unwrap_err();
    assert!(matches!(err, MailboxError::Unreadable { .. }), "{err:?}");
}

/// A page is cut by bytes before it is cut by items: five 400 KB events with a 1 MiB page cap
/// come two per page, each exactly once, and no page holds more than the cap.
#[tokio::test]
async fn vdir_pages_are_bounded_in_bytes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(ORGANIZER);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=5 {
        std::fs::write(
            dir.join(format!("e{i}.ics")),
            big_event(&format!("e{i}"), 400_000),
        )
        .unwrap();
    }
    let options = MailboxOptions {
        max_resource_bytes: 512 * 1024,
        max_page_bytes: PAGE_CAP,
        ..Default::default()
    };
    let mailbox = VdirMailbox::new(root.path())
        .with_options(&options)
        .unwrap();
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = mailbox
            .search(ORGANIZER, Utc::now(), cursor, 100)
            .await
            .unwrap();
        let bytes: usize = page.items.iter().map(|i| i.ics.len()).sum();
        assert!(bytes as u64 <= PAGE_CAP, "a page of {bytes} bytes");
        assert!(!page.items.is_empty(), "a page made no progress");
        seen.extend(page.items.into_iter().map(|i| i.href));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["e1.ics", "e2.ics", "e3.ics", "e4.ics", "e5.ics"]);
}

/// The same byte bound on a real CalDAV server: Radicale reports no sizes in its listing, so the
/// multiget reply is cut at the page cap and the rest fetched after it; every event comes once.
#[tokio::test]
async fn caldav_pages_are_bounded_in_bytes() {
    let server = CaldavServer::start(CaldavKind::Radicale).await;
    server.create_calendar(ORGANIZER).await;
    for i in 1..=4 {
        server
            .put_event(
                ORGANIZER,
                &format!("e{i}.ics"),
                &big_event(&format!("e{i}"), 200_000),
            )
            .await;
    }
    let options = MailboxOptions {
        max_resource_bytes: 256 * 1024,
        max_page_bytes: 512 * 1024,
        retry_base_ms: 5,
        ..Default::default()
    };
    let mailbox = CalDavMailbox::new(
        &server.calendar_url_template(),
        None,
        None,
        Duration::from_secs(30),
        4,
        None,
    )
    .unwrap()
    .with_options(&options)
    .unwrap();
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = mailbox
            .search(ORGANIZER, Utc::now(), cursor, 100)
            .await
            .unwrap();
        let bytes: usize = page.items.iter().map(|i| i.ics.len()).sum();
        assert!(bytes as u64 <= 512 * 1024, "a page of {bytes} bytes");
        assert!(!page.items.is_empty(), "a page made no progress");
        assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
        seen.extend(page.items.into_iter().map(|i| i.href));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let names: Vec<&str> = seen.iter().map(|h| h.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["e1.ics", "e2.ics", "e3.ics", "e4.ics"]);
    assert!(mailbox.largest_body_buffered() <= 512 * 1024);
}
