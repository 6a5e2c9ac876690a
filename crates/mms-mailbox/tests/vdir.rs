//! The embedded vdir store (P2 search, P4 save), on a real temp folder.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Utc;
use common::{search_all, seed_events, uids, ORGANIZER};
use mms_core::config::MailboxConfig;
use mms_core::{Mailbox, MailboxError};
use mms_mailbox::{mailbox_from_config, vdir_etag, VdirMailbox};

fn seeded(root: &Path) -> VdirMailbox {
    let dir = root.join(ORGANIZER);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, ics) in seed_events(Utc::now()) {
        std::fs::write(dir.join(name), ics).unwrap();
    }
    // Not events: a hidden temp file and a non-.ics file.
    std::fs::write(dir.join(".future.ics.123.tmp"), "partial").unwrap();
    std::fs::write(dir.join("color"), "#ff0000").unwrap();
    VdirMailbox::new(root)
}

/// P2: the store returns every event (the selector decides), sorted by file name, page by page.
#[tokio::test]
async fn search_returns_every_event_in_name_order_page_by_page() {
    let root = tempfile::tempdir().unwrap();
    let mailbox = seeded(root.path());
    for page_size in [1, 2, 10] {
        let (items, pages) = search_all(&mailbox, ORGANIZER, Utc::now(), page_size)
            .await
            .unwrap();
        let hrefs: Vec<&str> = items.iter().map(|i| i.href.as_str()).collect();
        assert_eq!(
            hrefs,
            ["ended-series.ics", "future.ics", "past.ics", "weekly.ics"],
            "page_size {page_size}"
        );
        assert_eq!(pages, 4usize.div_ceil(page_size));
        for item in &items {
            let bytes = std::fs::read(root.path().join(ORGANIZER).join(&item.href)).unwrap();
            assert_eq!(item.etag, vdir_etag(&bytes));
        }
    }
    assert_eq!(
        uids(
            &search_all(&mailbox, ORGANIZER, Utc::now(), 3)
                .await
                .unwrap()
                .0
        ),
        ["ended-series", "future", "past", "weekly"]
    );
}

/// P4: a write with the current ETag replaces the file; the old ETag is then stale.
#[tokio::test]
async fn put_with_the_current_etag_succeeds_and_a_stale_etag_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mailbox = seeded(root.path());
    let item = mailbox.get(ORGANIZER, "future.ics").await.unwrap();
    let rewritten = item.ics.replace("SUMMARY:future", "SUMMARY:moved");
    let new_etag = mailbox
        .put(ORGANIZER, "future.ics", &rewritten, &item.etag)
        .await
        .unwrap();
    assert_eq!(new_etag, vdir_etag(rewritten.as_bytes()));
    assert_eq!(
        std::fs::read_to_string(root.path().join(ORGANIZER).join("future.ics")).unwrap(),
        rewritten
    );

    let err = mailbox
        .put(ORGANIZER, "future.ics", &item.ics, &item.etag)
        .await
        .unwrap_err();
    assert_eq!(err, MailboxError::PreconditionFailed("future.ics".into()));
    assert_eq!(
        mailbox.get(ORGANIZER, "future.ics").await.unwrap().ics,
        rewritten
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.path().join(ORGANIZER))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tmp") && n != ".future.ics.123.tmp")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
}

#[tokio::test]
async fn unknown_users_and_items_are_not_found() {
    let root = tempfile::tempdir().unwrap();
    let mailbox = seeded(root.path());
    let err = mailbox
        .search("nobody@example.com", Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MailboxError::MailboxNotFound("nobody@example.com".into())
    );
    assert!(err.is_permanent());
    let err = mailbox
        .put("nobody@example.com", "future.ics", "x", "e")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MailboxError::MailboxNotFound("nobody@example.com".into())
    );
    for escaping_user in ["..", "../alice@example.com", ""] {
        let err = mailbox
            .search(escaping_user, Utc::now(), None, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(err, MailboxError::MailboxNotFound(_)),
            "{escaping_user:?}: {err:?}"
        );
    }
    let err = mailbox.get(ORGANIZER, "deleted.ics").await.unwrap_err();
    assert_eq!(err, MailboxError::ItemNotFound("deleted.ics".into()));
    let err = mailbox
        .get(ORGANIZER, "../other/future.ics")
        .await
        .unwrap_err();
    assert!(matches!(err, MailboxError::ItemNotFound(_)), "{err:?}");
}

/// Issue 7.6: a file that is not UTF-8 is reported for itself, with the offset of its first bad
/// byte; the other events are still returned.
#[tokio::test]
async fn a_file_that_is_not_utf8_is_reported_and_the_others_returned() {
    let root = tempfile::tempdir().unwrap();
    let mailbox = seeded(root.path());
    std::fs::write(
        root.path().join(ORGANIZER).join("latin1.ics"),
        b"SUMMARY:caf\xe9\r\n",
    )
    .unwrap();
    let page = mailbox
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        uids(&page.items),
        ["ended-series", "future", "past", "weekly"]
    );
    assert_eq!(page.unreadable.len(), 1);
    let bad = &page.unreadable[0];
    assert_eq!(bad.href, "latin1.ics");
    assert_eq!(bad.problem, mms_core::ItemProblem::NotUtf8 { offset: 11 });
    assert!(bad.problem.to_string().contains("UTF-8"));
    let err = mailbox.get(ORGANIZER, "latin1.ics").await.unwrap_err();
    assert!(
        err.to_string().contains("latin1.ics") && err.to_string().contains("UTF-8"),
        "{err}"
    );
}

/// 10,000 events: every one is returned exactly once, in order, whether the listing is cached or
/// each page is served by a fresh connector (a resumed search), and deletions mid-search are
/// tolerated.
#[tokio::test]
async fn ten_thousand_events_page_through_without_loss() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(ORGANIZER);
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..10_000 {
        std::fs::write(
            dir.join(format!("{n:05}.ics")),
            common::event(&format!("e{n}"), Utc::now(), None),
        )
        .unwrap();
    }
    let mailbox = VdirMailbox::new(root.path());
    let (items, pages) = search_all(&mailbox, ORGANIZER, Utc::now(), 250)
        .await
        .unwrap();
    assert_eq!(pages, 40);
    let hrefs: Vec<String> = items.iter().map(|i| i.href.clone()).collect();
    let expected: Vec<String> = (0..10_000).map(|n| format!("{n:05}.ics")).collect();
    assert_eq!(hrefs, expected);

    let mut seen = BTreeSet::new();
    let mut cursor = None;
    loop {
        let fresh = VdirMailbox::new(root.path());
        let page = fresh
            .search(ORGANIZER, Utc::now(), cursor, 1_000)
            .await
            .unwrap();
        for item in page.items {
            assert!(
                seen.insert(item.href.clone()),
                "{} returned twice",
                item.href
            );
            // Delete a file further on: it must simply not appear.
            if item.href == "04000.ics" {
                std::fs::remove_file(dir.join("05500.ics")).unwrap();
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9_999);
    assert!(!seen.contains("05500.ics"));
}

#[tokio::test]
async fn the_configuration_picks_the_vdir_store() {
    let root = tempfile::tempdir().unwrap();
    seeded(root.path());
    let mailbox = mailbox_from_config(
        &MailboxConfig::Vdir {
            root: root.path().to_path_buf(),
            options: Default::default(),
        },
        4,
    )
    .unwrap();
    assert_eq!(
        search_all(mailbox.as_ref(), ORGANIZER, Utc::now(), 10)
            .await
            .unwrap()
            .0
            .len(),
        4
    );
}
