//! Leases and fenced progress against a real redis-server: D4 (one holder, fencing tokens, stale
//! holders write nothing), D5 (journal), M2 (status rows and listing), the sent ledger.

mod common;

use chrono::{Duration, Utc};
use common::{fresh, manual};
use mms_core::{MigrationState, MigrationStatus, MigrationType};
use mms_store::{HistoryEvent, JournalEntry, MeetingStage, StatusFilter, StoreError};
use redis::AsyncCommands;

fn sent_entry(message_id: &str) -> JournalEntry {
    JournalEntry {
        stage: MeetingStage::Sent,
        sequence: 3,
        message_id: Some(message_id.to_string()),
        etag: Some("\"e2\"".to_string()),
        reason: String::new(),
        uid: "uid-1".into(),
        summary: "Weekly sync".into(),
        recipients: 2,
        undelivered: 0,
    }
}

/// D4: the lease is exclusive and every acquisition gets a larger token than the one before.
#[tokio::test]
async fn lease_is_exclusive_with_increasing_tokens() {
    let (_server, store) = fresh(false).await;
    let first = store
        .acquire_lease("acme", "ann@acme.test", "w1", 30_000)
        .await
        .unwrap()
        .expect("free");
    assert!(store
        .acquire_lease("acme", "ann@acme.test", "w2", 30_000)
        .await
        .unwrap()
        .is_none());
    assert!(store.renew_lease(&first, 30_000).await.unwrap());
    store.release_lease(&first).await.unwrap();

    let second = store
        .acquire_lease("acme", "ann@acme.test", "w2", 30_000)
        .await
        .unwrap()
        .expect("released");
    assert!(second.token > first.token);
    store.release_lease(&first).await.unwrap(); // a stale release must not free the new holder's lease
    assert!(store
        .acquire_lease("acme", "ann@acme.test", "w3", 30_000)
        .await
        .unwrap()
        .is_none());
    store.release_lease(&second).await.unwrap();
    let third = store
        .acquire_lease("acme", "ann@acme.test", "w3", 30_000)
        .await
        .unwrap()
        .expect("released");
    assert!(third.token > second.token);
    assert!(
        store
            .acquire_lease("acme", "ann@acme.test", "w1", 0)
            .await
            .is_err(),
        "a zero ttl is refused"
    );
}

/// D4: after a takeover the old holder cannot renew, and every fenced write it tries returns
/// LeaseLost and leaves Redis as it was.
#[tokio::test]
async fn a_stale_holder_cannot_renew_or_write() {
    let (_server, store) = fresh(false).await;
    let req = manual("acme", "bob@acme.test");
    store.enqueue(&req, 0).await.unwrap();
    let old = store
        .acquire_lease("acme", &req.user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();

    // The lease expires (deleted here rather than waited for) and another worker takes over.
    let mut conn = store.connection();
    conn.del::<_, ()>(store.keys().lease("acme", &req.user))
        .await
        .unwrap();
    let new = store
        .acquire_lease("acme", &req.user, "w2", 30_000)
        .await
        .unwrap()
        .unwrap();
    assert!(!store.renew_lease(&old, 30_000).await.unwrap());

    let before = store
        .status("acme", &req.correlation_id)
        .await
        .unwrap()
        .unwrap();
    let mut stale = before.clone();
    stale.state = MigrationState::Failed;
    stale.last_message = "stale writer".into();
    assert!(
        matches!(store.write_status(&old, &stale).await, Err(StoreError::LeaseLost { token, .. }) if token == old.token)
    );
    assert_eq!(
        store
            .status("acme", &req.correlation_id)
            .await
            .unwrap()
            .unwrap(),
        before
    );

    assert!(matches!(
        store
            .record_meeting(&old, &req.correlation_id, "m1", &sent_entry("<a@x>"))
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store
            .record_sent(&old, &req.correlation_id, "m1", &sent_entry("<a@x>"))
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(store
        .journal("acme", &req.correlation_id)
        .await
        .unwrap()
        .is_empty());
    assert!(!store.was_sent("acme", &req.user, "<a@x>").await.unwrap());

    let mut running = before.clone();
    running.state = MigrationState::InProgress;
    store.write_status(&new, &running).await.unwrap();
    assert_eq!(
        store
            .status("acme", &req.correlation_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        MigrationState::InProgress
    );
}

/// The sent ledger: record_sent journals the meeting and makes was_sent true, atomically.
#[tokio::test]
async fn record_sent_makes_was_sent_true() {
    let (_server, store) = fresh(false).await;
    let lease = store
        .acquire_lease("acme", "cy@acme.test", "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    let saved = JournalEntry {
        stage: MeetingStage::Saved,
        sequence: 3,
        message_id: Some("<m1@x>".into()),
        etag: Some("\"e2\"".into()),
        reason: String::new(),
        uid: "uid-1".into(),
        summary: "Weekly sync".into(),
        recipients: 0,
        undelivered: 0,
    };
    store
        .record_meeting(&lease, "c1", "uid-1", &saved)
        .await
        .unwrap();
    assert!(!store
        .was_sent("acme", "cy@acme.test", "<m1@x>")
        .await
        .unwrap());

    store
        .record_sent(&lease, "c1", "uid-1", &sent_entry("<m1@x>"))
        .await
        .unwrap();
    assert!(store
        .was_sent("acme", "cy@acme.test", "<m1@x>")
        .await
        .unwrap());
    let journal = store.journal("acme", "c1").await.unwrap();
    assert_eq!(journal.get("uid-1"), Some(&sent_entry("<m1@x>")));

    let not_sent = JournalEntry {
        message_id: None,
        ..sent_entry("")
    };
    assert!(matches!(
        store.record_sent(&lease, "c1", "uid-2", &not_sent).await,
        Err(StoreError::Invalid(_))
    ));
}

/// The queue side may not overwrite a row a live worker is running, nor write InProgress itself.
#[tokio::test]
async fn unfenced_writes_leave_a_running_migration_alone() {
    let (_server, store) = fresh(false).await;
    let req = manual("acme", "dee@acme.test");
    store.enqueue(&req, 0).await.unwrap();
    let mut row = store
        .status("acme", &req.correlation_id)
        .await
        .unwrap()
        .unwrap();
    row.state = MigrationState::InProgress;
    assert!(matches!(
        store.put_status_unfenced(&row).await,
        Err(StoreError::Invalid(_))
    ));

    let lease = store
        .acquire_lease("acme", &req.user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    store.write_status(&lease, &row).await.unwrap();
    let mut cancel = row.clone();
    cancel.state = MigrationState::Failed;
    assert!(matches!(
        store.put_status_unfenced(&cancel).await,
        Err(StoreError::InProgress { .. })
    ));

    store.release_lease(&lease).await.unwrap(); // a dead worker's InProgress row may be overwritten
    store.put_status_unfenced(&cancel).await.unwrap();
    assert_eq!(
        store
            .status("acme", &req.correlation_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        MigrationState::Failed
    );
}

/// M2: listing filters by state, type and creation time, newest first, paged.
#[tokio::test]
async fn list_statuses_filters_and_pages_newest_first() {
    let (_server, store) = fresh(false).await;
    let base = Utc::now() - Duration::days(10);
    let mut ids = Vec::new();
    for day in 0..6 {
        let req = manual("acme", &format!("u{day}@acme.test"));
        let mut row = MigrationStatus::pending(&req, "id", base + Duration::days(day));
        if day % 2 == 1 {
            row.state = MigrationState::Succeeded;
            row.migration_type = MigrationType::ToSameType;
        }
        store.put_status_unfenced(&row).await.unwrap();
        ids.push(req.correlation_id);
    }
    let all = store
        .list_statuses("acme", &StatusFilter::default())
        .await
        .unwrap();
    let got: Vec<&str> = all.iter().map(|s| s.correlation_id.as_str()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, newest_first);

    let succeeded = StatusFilter {
        state: Some(MigrationState::Succeeded),
        ..Default::default()
    };
    let got = store.list_statuses("acme", &succeeded).await.unwrap();
    assert_eq!(
        got.iter().map(|s| &s.correlation_id).collect::<Vec<_>>(),
        vec![&ids[5], &ids[3], &ids[1]]
    );

    let window = StatusFilter {
        start: Some(base + Duration::days(1)),
        end: Some(base + Duration::days(3)),
        ..Default::default()
    };
    assert_eq!(store.list_statuses("acme", &window).await.unwrap().len(), 3);
    let teams = StatusFilter {
        migration_type: Some(MigrationType::AllToTeams),
        offset: 1,
        limit: 1,
        ..Default::default()
    };
    let page = store.list_statuses("acme", &teams).await.unwrap();
    assert_eq!(
        page.iter().map(|s| &s.correlation_id).collect::<Vec<_>>(),
        vec![&ids[2]]
    );

    assert_eq!(
        store.user_statuses("acme", "u2@acme.test").await.unwrap()[0].correlation_id,
        ids[2]
    );
}

/// The transaction history keeps its order and shows an undecodable record instead of hiding it.
#[tokio::test]
async fn history_appends_in_order_and_shows_corrupt_records() {
    let (_server, store) = fresh(false).await;
    store
        .append_history(
            "acme",
            "eve@acme.test",
            &HistoryEvent::now(
                "c1",
                mms_store::history::HistoryEventKind::Started,
                "lease token 1",
            ),
        )
        .await
        .unwrap();
    let mut conn = store.connection();
    conn.rpush::<_, _, ()>(store.keys().history("acme", "eve@acme.test"), "{not json")
        .await
        .unwrap();
    store
        .append_history(
            "acme",
            "eve@acme.test",
            &HistoryEvent::now(
                "c1",
                mms_store::history::HistoryEventKind::Succeeded,
                "3 meetings",
            ),
        )
        .await
        .unwrap();
    let events: Vec<String> = store
        .history("acme", "eve@acme.test")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.to_string())
        .collect();
    assert_eq!(events, vec!["Started", "Corrupt", "Succeeded"]);
}

/// Retention: a migration's journal expires once the migration is final (not before: a resume
/// needs it), and the sent ledger expires months after its last entry.
#[tokio::test]
async fn journals_expire_once_final_and_the_sent_ledger_after_its_last_entry() {
    let (_server, store) = fresh(false).await;
    let req = manual("acme", "ret@acme.test");
    let lease = store
        .acquire_lease("acme", "ret@acme.test", "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    let mut status = MigrationStatus::pending(&req, "id", Utc::now());
    let cid = status.correlation_id.clone();
    store
        .record_sent(&lease, &cid, "uid-1", &sent_entry("<m9@x>"))
        .await
        .unwrap();
    let pttl = |key: String| {
        let mut conn = store.connection();
        async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let ledger_ttl = pttl(store.keys().sent("acme", "ret@acme.test")).await;
    let day_ms = 24 * 3600 * 1000;
    assert!(ledger_ttl > 0 && ledger_ttl <= i64::from(store.retention().sent_ledger_days) * day_ms);

    status.state = MigrationState::InProgress;
    store.write_status(&lease, &status).await.unwrap();
    assert_eq!(
        pttl(store.keys().journal("acme", &cid)).await,
        -1,
        "kept while the migration runs"
    );
    status.state = MigrationState::Succeeded;
    store.write_status(&lease, &status).await.unwrap();
    let journal_ttl = pttl(store.keys().journal("acme", &cid)).await;
    assert!(journal_ttl > 0 && journal_ttl <= i64::from(store.retention().journal_days) * day_ms);
}
