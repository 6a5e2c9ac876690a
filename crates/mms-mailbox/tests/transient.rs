//! Transient answers of one request are retried in place (issue 7.7), per-server concurrency
//! holds across users (`concurrency.per_mailbox_server`), scheduling servers are detected
//! (issue 7.9) and transport errors carry their cause (issue 7.11).
//!
//! Faults are injected by the fault-injecting [`FaultProxy`] in front of a real server (it
//! answers 423 / 429 / 503 or resets the connection for the next K requests, and rewrites the
//! `DAV` header when asked); Xandikos's own 423 to concurrent writes is provoked for real.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::Utc;
use common::{connector, event, fast_retries, seed_events, ORGANIZER};
use mms_core::config::{MailboxOptions, SchedulingMode};
use mms_core::{Mailbox, MailboxError};
use mms_mailbox::{CalDavMailbox, VdirMailbox};
use mms_testkit::caldav::{CaldavKind, CaldavServer};
use mms_testkit::proxy::{Fault, FaultProxy};

async fn seeded(kind: CaldavKind) -> CaldavServer {
    let server = CaldavServer::start(kind).await;
    server.create_calendar(ORGANIZER).await;
    for (name, ics) in seed_events(Utc::now()) {
        server.put_event(ORGANIZER, name, &ics).await;
    }
    server
}

fn through(proxy: &FaultProxy) -> String {
    format!("{}/{{user}}/calendar/", proxy.base_url())
}

fn faults() -> Vec<Fault> {
    vec![
        Fault::status(423),
        Fault::Status {
            status: 429,
            retry_after: Some("1".into()),
        },
        Fault::Status {
            status: 503,
            retry_after: Some(
                (Utc::now() + chrono::Duration::seconds(1))
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            ),
        },
        Fault::Reset,
    ]
}

on_both_servers! {
    a_transient_answer_for_k_requests_is_ridden_out_in_place,
}

/// 423, 429 + Retry-After (seconds), 503 + Retry-After (HTTP date) and a reset, each for the next
/// 3 requests of a GET, a search and a PUT: every call succeeds (4 retries allowed), and the proxy
/// saw the faults, so they were retried, not avoided.
async fn a_transient_answer_for_k_requests_is_ridden_out_in_place(kind: CaldavKind) {
    let server = seeded(kind).await;
    let proxy = FaultProxy::start(server.port()).await;
    let mailbox = connector(&through(&proxy));
    for (round, fault) in faults().into_iter().enumerate() {
        let refused = proxy.refused_count();
        proxy.fail_next(3, fault.clone());
        let item = mailbox
            .get(ORGANIZER, "future.ics")
            .await
            .unwrap_or_else(|e| {
                panic!("GET after 3 × {fault:?}: {e}");
            });
        assert_eq!(proxy.refused_count() - refused, 3, "{fault:?}");

        proxy.fail_next(3, fault.clone());
        let page = mailbox
            .search(ORGANIZER, Utc::now(), None, 10)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2, "{fault:?}");

        proxy.fail_next(3, fault.clone());
        let rewritten = item
            .ics
            .replacen("SUMMARY:", &format!("SUMMARY:moved {round} "), 1);
        let etag = mailbox
            .put(ORGANIZER, "future.ics", &rewritten, &item.etag)
            .await
            .unwrap_or_else(|e| panic!("PUT after 3 × {fault:?}: {e}"));
        assert_ne!(etag, item.etag);
        assert_eq!(proxy.refused_count() - refused, 9, "{fault:?}");
        assert!(server
            .get_event(ORGANIZER, "future.ics")
            .await
            .contains(&format!("moved {round} ")));
    }
}

/// A fault that never ends surfaces as `Unavailable` after the bounded retries (1 + 4 tries),
/// naming the last answer; a 412 is never retried.
#[tokio::test]
async fn a_lasting_fault_is_unavailable_after_the_bounded_retries_and_412_is_not_retried() {
    let server = seeded(CaldavKind::Radicale).await;
    let proxy = FaultProxy::start(server.port()).await;
    let mailbox = connector(&through(&proxy));
    for (fault, named) in [
        (Fault::status(423), "423"),
        (Fault::status(429), "429"),
        (Fault::status(503), "503"),
        (Fault::Reset, "failed"),
    ] {
        proxy.fail_always(Some(fault.clone()));
        let before = proxy.request_count();
        let err = mailbox.get(ORGANIZER, "future.ics").await.unwrap_err();
        assert_eq!(
            proxy.request_count() - before,
            5,
            "{fault:?}: 1 try + 4 retries"
        );
        assert!(
            matches!(&err, MailboxError::Unavailable(m) if m.contains(named) && m.contains("after 5 tries")),
            "{fault:?}: {err:?}"
        );
        assert!(!err.is_permanent());
    }
    proxy.fail_always(None);

    let item = mailbox.get(ORGANIZER, "future.ics").await.unwrap();
    let before = proxy.request_count();
    let err = mailbox
        .put(ORGANIZER, "future.ics", &item.ics, "\"stale\"")
        .await
        .unwrap_err();
    assert!(
        matches!(err, MailboxError::PreconditionFailed(_)),
        "{err:?}"
    );
    // The PUT, then the check that the calendar exists (a missing one also answers 412 on some
    // servers): no retry of the PUT.
    assert_eq!(proxy.request_count() - before, 2);
}

/// Xandikos answers 423 to concurrent writes in one calendar: twenty concurrent PUTs through the
/// connector all land (any 423 among them was retried in place).
#[tokio::test]
async fn concurrent_puts_on_xandikos_all_land() {
    let server = CaldavServer::start(CaldavKind::Xandikos).await;
    server.create_calendar(ORGANIZER).await;
    let mut etags = Vec::new();
    for i in 0..20 {
        let name = format!("c{i}.ics");
        let ics = event(
            &format!("c{i}"),
            Utc::now() + chrono::Duration::days(3),
            None,
        );
        etags.push((
            name.clone(),
            server.put_event(ORGANIZER, &name, &ics).await,
            ics,
        ));
    }
    let mailbox = CalDavMailbox::new(
        &server.calendar_url_template(),
        None,
        None,
        Duration::from_secs(30),
        20,
        None,
    )
    .unwrap()
    .with_options(&MailboxOptions {
        request_retries: 8,
        retry_base_ms: 20,
        ..Default::default()
    })
    .unwrap();
    let puts = etags.iter().map(|(name, etag, ics)| {
        let mailbox = &mailbox;
        async move {
            let moved = ics.replace("SUMMARY:", "SUMMARY:moved ");
            mailbox.put(ORGANIZER, name, &moved, etag).await
        }
    });
    for result in futures_join_all(puts).await {
        result.unwrap();
    }
    for (name, _, _) in &etags {
        assert!(server.get_event(ORGANIZER, name).await.contains("moved"));
    }
}

/// Runs futures concurrently on this task (no extra dependency for the test).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut pending: Vec<_> = handles.into_iter().enumerate().collect();
    std::future::poll_fn(move |cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(out) => {
                outputs[*i] = Some(out);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(
                outputs
                    .drain(..)
                    .map(|o| o.expect("polled to the end"))
                    .collect(),
            )
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// Two users of one server searched and read concurrently through one connector: the proxy never
/// sees more than `per_mailbox_server` requests open at once, and does see that many.
#[tokio::test]
async fn the_per_server_cap_holds_across_users() {
    let server = seeded(CaldavKind::Radicale).await;
    let other = "bob@example.com";
    server.create_calendar(other).await;
    for (name, ics) in seed_events(Utc::now()) {
        server.put_event(other, name, &ics).await;
    }
    let proxy = FaultProxy::start(server.port()).await;
    proxy.hold_each_request(Duration::from_millis(30));
    const CAP: usize = 2;
    let mailbox = CalDavMailbox::new(
        &through(&proxy),
        None,
        None,
        Duration::from_secs(30),
        CAP,
        None,
    )
    .unwrap()
    .with_options(&fast_retries())
    .unwrap();
    let work = [ORGANIZER, other].into_iter().flat_map(|user| {
        let mailbox = &mailbox;
        (0..6).map(move |_| async move {
            let page = mailbox.search(user, Utc::now(), None, 1).await.unwrap();
            mailbox.get(user, "future.ics").await.unwrap();
            page.items.len()
        })
    });
    let found = futures_join_all(work).await;
    assert!(found.iter().all(|n| *n == 1));
    assert!(
        proxy.max_in_flight() <= CAP as u64,
        "{} requests in flight at once, over the cap of {CAP}",
        proxy.max_in_flight()
    );
    assert_eq!(
        proxy.max_in_flight(),
        CAP as u64,
        "the cap was never reached"
    );
}

/// RFC 6638: `auto` asks the server once per origin; neither Radicale nor a proxy-free Radicale
/// advertises scheduling, Xandikos does; the header-rewriting proxy adding
/// `calendar-auto-schedule` makes Radicale count as scheduling; `server` / `mms` override.
#[tokio::test]
async fn servers_that_schedule_themselves_are_detected_and_overrides_win() {
    let radicale = seeded(CaldavKind::Radicale).await;
    let plain = connector(&radicale.calendar_url_template());
    assert!(!plain.server_sends_updates(ORGANIZER).await.unwrap());

    let proxy = FaultProxy::start(radicale.port()).await;
    proxy.add_dav_capability(Some("calendar-auto-schedule"));
    let rewritten = connector(&through(&proxy));
    assert!(rewritten.server_sends_updates(ORGANIZER).await.unwrap());
    assert!(rewritten
        .server_sends_updates("bob@example.com")
        .await
        .unwrap());
    assert_eq!(proxy.request_count(), 1, "one OPTIONS per server origin");

    let xandikos = CaldavServer::start(CaldavKind::Xandikos).await;
    xandikos.create_calendar(ORGANIZER).await;
    let on_xandikos = |scheduling| {
        connector(&xandikos.calendar_url_template())
            .with_options(&MailboxOptions {
                scheduling,
                ..fast_retries()
            })
            .unwrap()
    };
    // Xandikos 0.4 advertises calendar-auto-schedule (it sends iTIP only with --imip-send).
    assert!(on_xandikos(SchedulingMode::Auto)
        .server_sends_updates(ORGANIZER)
        .await
        .unwrap());
    assert!(!on_xandikos(SchedulingMode::Mms)
        .server_sends_updates(ORGANIZER)
        .await
        .unwrap());
    let forced = connector(&radicale.calendar_url_template())
        .with_options(&MailboxOptions {
            scheduling: SchedulingMode::Server,
            ..fast_retries()
        })
        .unwrap();
    assert!(forced.server_sends_updates(ORGANIZER).await.unwrap());

    let root = tempfile::tempdir().unwrap();
    assert!(!VdirMailbox::new(root.path())
        .server_sends_updates(ORGANIZER)
        .await
        .unwrap());
    let vdir_server = VdirMailbox::new(root.path())
        .with_options(&MailboxOptions {
            scheduling: SchedulingMode::Server,
            ..Default::default()
        })
        .unwrap();
    assert!(vdir_server.server_sends_updates(ORGANIZER).await.unwrap());
}

/// Issue 7.11: a refused connection says why (the OS error from the source chain), where, and
/// what to check.
#[tokio::test]
async fn a_refused_connection_names_its_cause_and_what_to_check() {
    let port = mms_testkit::free_port();
    let mailbox = connector(&format!("http://127.0.0.1:{port}/{{user}}/calendar/"));
    let err = mailbox.get(ORGANIZER, "future.ics").await.unwrap_err();
    let MailboxError::Unavailable(message) = &err else {
        panic!("{err:?}");
    };
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        message.to_lowercase().contains("connection refused"),
        "the cause is missing: {message}"
    );
    assert!(message.contains("check that the server"), "{message}");
    assert!(message.contains("after 5 tries"), "{message}");
}
