//! The CalDAV connector against two real servers, Radicale and Xandikos (P2 search, P4 save).
//!
//! Every test body but the credentials one runs on both (see `on_both_servers!`); where the
//! servers differ (Xandikos re-serialises what it stores), the assertions compare by meaning.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::Utc;
use common::{connector, search_all, seed_events, uids, ORGANIZER};
use mms_core::{Mailbox, MailboxError};
use mms_mailbox::CalDavMailbox;
use mms_testkit::caldav::{CaldavKind, CaldavServer};
use mms_testkit::proxy::FaultProxy;
use mms_testkit::radicale::Radicale;

async fn seeded(kind: CaldavKind) -> CaldavServer {
    let server = CaldavServer::start(kind).await;
    server.create_calendar(ORGANIZER).await;
    for (name, ics) in seed_events(Utc::now()) {
        server.put_event(ORGANIZER, name, &ics).await;
    }
    server
}

on_both_servers! {
    search_from_now_returns_the_future_and_recurring_events_page_by_page,
    a_cursor_resumes_on_another_connector,
    put_with_the_current_etag_succeeds_and_a_stale_etag_is_refused,
    an_unknown_user_or_item_is_not_found,
    an_unavailable_server_is_a_transient_error_naming_the_url,
    a_server_without_time_range_falls_back_to_listing_every_event,
}

/// P2: from now, the series with future occurrences and the future meeting; not the past
/// meeting nor the ended series; whatever the page size.
async fn search_from_now_returns_the_future_and_recurring_events_page_by_page(kind: CaldavKind) {
    let server = seeded(kind).await;
    let mailbox = connector(&server.calendar_url_template());
    for page_size in [1, 2, 10] {
        let (items, pages) = search_all(&mailbox, ORGANIZER, Utc::now(), page_size)
            .await
            .unwrap();
        assert_eq!(
            uids(&items),
            vec!["future", "weekly"],
            "page_size {page_size}"
        );
        assert_eq!(pages, 2usize.div_ceil(page_size), "page_size {page_size}");
        assert!(items
            .iter()
            .all(|i| !i.etag.is_empty() && i.ics.contains("BEGIN:VEVENT")));
    }
}

/// A search resumed by a connector that never saw its first page (another worker) continues.
async fn a_cursor_resumes_on_another_connector(kind: CaldavKind) {
    let server = seeded(kind).await;
    let first = connector(&server.calendar_url_template());
    let page = first.search(ORGANIZER, Utc::now(), None, 1).await.unwrap();
    let second = connector(&server.calendar_url_template());
    let rest = second
        .search(ORGANIZER, Utc::now(), page.next, 1)
        .await
        .unwrap();
    assert!(rest.next.is_none());
    let mut all = page.items;
    all.extend(rest.items);
    assert_eq!(uids(&all), vec!["future", "weekly"]);
}

/// P4: a write with the current ETag lands and yields a new ETag; the old one is then stale.
async fn put_with_the_current_etag_succeeds_and_a_stale_etag_is_refused(kind: CaldavKind) {
    let server = seeded(kind).await;
    let mailbox = connector(&server.calendar_url_template());
    let (items, _) = search_all(&mailbox, ORGANIZER, Utc::now(), 10)
        .await
        .unwrap();
    let future = items.iter().find(|i| i.ics.contains("UID:future")).unwrap();

    let fetched = mailbox.get(ORGANIZER, &future.href).await.unwrap();
    assert_eq!(fetched.etag, future.etag);

    let rewritten = future
        .ics
        .replace("SUMMARY:future", "SUMMARY:moved to Teams");
    let new_etag = mailbox
        .put(ORGANIZER, &future.href, &rewritten, &future.etag)
        .await
        .unwrap();
    assert_ne!(new_etag, future.etag);
    assert!(server
        .get_event(ORGANIZER, "future.ics")
        .await
        .contains("SUMMARY:moved to Teams"));
    assert_eq!(
        mailbox.get(ORGANIZER, &future.href).await.unwrap().etag,
        new_etag
    );

    let stale = mailbox
        .put(ORGANIZER, &future.href, &future.ics, &future.etag)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, MailboxError::PreconditionFailed(_)),
        "{stale:?}"
    );
    assert!(server
        .get_event(ORGANIZER, "future.ics")
        .await
        .contains("SUMMARY:moved to Teams"));
}

async fn an_unknown_user_or_item_is_not_found(kind: CaldavKind) {
    let server = seeded(kind).await;
    let mailbox = connector(&server.calendar_url_template());
    let err = mailbox
        .search("nobody@example.com", Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MailboxError::MailboxNotFound("nobody@example.com".into())
    );
    assert!(err.is_permanent());
    let ics = common::event("future", Utc::now(), None);
    let err = mailbox
        .put("nobody@example.com", "future.ics", &ics, "\"e\"")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MailboxError::MailboxNotFound("nobody@example.com".into())
    );
    let err = mailbox.get(ORGANIZER, "deleted.ics").await.unwrap_err();
    assert!(matches!(err, MailboxError::ItemNotFound(_)), "{err:?}");
}

/// Radicale only: Xandikos's own Basic auth requires its self-signed TLS (`--autocert`).
#[tokio::test]
async fn refused_credentials_are_unauthorized() {
    let radicale = Radicale::start_with_users(&[(ORGANIZER, "right")]).await;
    radicale.create_calendar(ORGANIZER).await;
    let good = CalDavMailbox::new(
        &radicale.calendar_url_template(),
        Some(ORGANIZER.into()),
        Some("right".into()),
        Duration::from_secs(10),
        2,
        None,
    )
    .unwrap();
    assert!(good
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    let bad = CalDavMailbox::new(
        &radicale.calendar_url_template(),
        Some(ORGANIZER.into()),
        Some("wrong".into()),
        Duration::from_secs(10),
        2,
        None,
    )
    .unwrap();
    let err = bad
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MailboxError::Unauthorized(_)) && err.is_permanent(),
        "{err:?}"
    );
}

/// A 503 from the server, or no server at all, is transient and says which URL failed.
async fn an_unavailable_server_is_a_transient_error_naming_the_url(kind: CaldavKind) {
    let server = seeded(kind).await;
    let proxy = FaultProxy::start(server.port()).await;
    let through_proxy = format!("{}/{{user}}/calendar/", proxy.base_url());
    let mailbox = connector(&through_proxy);
    assert_eq!(
        search_all(&mailbox, ORGANIZER, Utc::now(), 10)
            .await
            .unwrap()
            .0
            .len(),
        2
    );

    proxy.set_failing(true);
    let err = mailbox.get(ORGANIZER, "future.ics").await.unwrap_err();
    assert!(
        matches!(&err, MailboxError::Unavailable(m) if m.contains("503") && m.contains("future.ics")),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    let err = mailbox
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MailboxError::Unavailable(m) if m.contains("503")),
        "{err:?}"
    );
    proxy.set_failing(false);
    assert_eq!(
        mailbox.get(ORGANIZER, "future.ics").await.unwrap().href,
        "future.ics"
    );

    let nowhere = connector(&format!(
        "http://127.0.0.1:{}/{{user}}/calendar/",
        mms_testkit::free_port()
    ));
    let err = nowhere
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MailboxError::Unavailable(m) if m.contains("127.0.0.1")),
        "{err:?}"
    );
}

/// A server that refuses the time-range query still yields every event (the full listing), so
/// nothing is missed: the past ones are dropped later by the selector.
async fn a_server_without_time_range_falls_back_to_listing_every_event(kind: CaldavKind) {
    let server = seeded(kind).await;
    let proxy = FaultProxy::start(server.port()).await;
    proxy.refuse_requests_containing(Some("time-range"));
    let mailbox = connector(&format!("{}/{{user}}/calendar/", proxy.base_url()));
    for page_size in [1, 3] {
        let (items, _) = search_all(&mailbox, ORGANIZER, Utc::now(), page_size)
            .await
            .unwrap();
        assert_eq!(
            uids(&items),
            vec!["ended-series", "future", "past", "weekly"],
            "page_size {page_size}"
        );
    }
    assert!(
        proxy.refused_count() >= 2,
        "the time-range query was not tried"
    );
}

#[test]
fn a_bad_configuration_says_what_to_fix() {
    let err = CalDavMailbox::new(
        "not a url/{user}",
        None,
        None,
        Duration::from_secs(5),
        4,
        None,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("calendar_url"), "{err}");
    let err = CalDavMailbox::new(
        "http://h/{user}/",
        None,
        None,
        Duration::from_secs(5),
        0,
        None,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("per_mailbox_server"), "{err}");
}
