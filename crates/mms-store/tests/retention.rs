//! Retention from configuration (issue 11.9), against a real redis-server: status rows per user
//! trimmed oldest-final-first with their journals and counters (live rows kept, summary counters
//! moved), history capped, journal and sent-ledger lifetimes as configured, bad values refused.

mod common;

use chrono::{Duration, Utc};
use common::{fresh, manual};
use mms_core::config::RetentionConfig;
use mms_core::{MigrationState, MigrationStatus};
use mms_store::{HistoryEvent, JournalEntry, MeetingStage, Store, StoreError};
use redis::AsyncCommands;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn retention(rows: u32) -> RetentionConfig {
    RetentionConfig {
        journal_days: 2,
        sent_ledger_days: 3,
        history_events: 5,
        status_rows_per_user: rows,
    }
}

async fn pttl(store: &Store, key: String) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut store.connection())
        .await
        .unwrap()
}

fn skipped() -> JournalEntry {
    JournalEntry {
        stage: MeetingStage::Skipped,
        sequence: 0,
        message_id: None,
        etag: None,
        reason: "organized by someone else".into(),
        uid: "m".into(),
        summary: "m".into(),
        recipients: 0,
        undelivered: 0,
    }
}

#[tokio::test]
async fn out_of_range_values_are_refused_naming_the_key() {
    let (_server, store) = fresh(false).await;
    let refused = store.clone().with_retention(RetentionConfig {
        sent_ledger_days: 1,
        ..RetentionConfig::default()
    });
    let Err(StoreError::Invalid(message)) = refused else {
        panic!("a one-day sent ledger is refused");
    };
    assert!(message.contains("retention.sent_ledger_days"), "{message}");
    assert!(store
        .with_retention(RetentionConfig {
            status_rows_per_user: 0,
            ..RetentionConfig::default()
        })
        .is_err());
}

/// Keep 3 rows per user: of six migrations (the oldest still Pending), the oldest final ones go,
/// with their journals and counters; the live one and the two newest stay; counters follow.
#[tokio::test]
async fn status_rows_beyond_the_limit_are_trimmed_oldest_final_first() {
    let (_server, store) = fresh(false).await;
    let store = store.with_retention(retention(3)).unwrap();
    let user = "ann@acme.test";
    let base = Utc::now() - Duration::days(10);
    let mut correlations = Vec::new();
    for day in 0..6 {
        let mut row =
            MigrationStatus::pending(&manual("acme", user), "id", base + Duration::days(day));
        let correlation = row.correlation_id.clone();
        if day > 0 {
            // Ran under a lease and journaled something, then ended.
            let lease = store
                .acquire_lease("acme", user, "w1", 30_000)
                .await
                .unwrap()
                .unwrap();
            row.state = MigrationState::InProgress;
            store.write_status(&lease, &row).await.unwrap();
            store
                .record_meeting(&lease, &correlation, "/cal/m.ics", &skipped())
                .await
                .unwrap();
            row.state = if day % 2 == 0 {
                MigrationState::Failed
            } else {
                MigrationState::Succeeded
            };
            store.write_status(&lease, &row).await.unwrap();
            store.release_lease(&lease).await.unwrap();
        } else {
            store.put_status_unfenced(&row).await.unwrap(); // stays Pending: live
        }
        correlations.push(correlation);
    }

    let kept: Vec<String> = store
        .user_statuses("acme", user)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.correlation_id)
        .collect();
    // Newest first: three rows, the live Pending one (the oldest) among them.
    assert_eq!(
        kept,
        vec![
            correlations[5].clone(),
            correlations[4].clone(),
            correlations[0].clone(),
        ]
    );
    let mut conn = store.connection();
    for trimmed in &correlations[1..4] {
        for key in [
            store.keys().status("acme", trimmed),
            store.keys().journal("acme", trimmed),
            store.keys().counts("acme", trimmed),
        ] {
            assert!(
                !conn.exists::<_, bool>(&key).await.unwrap(),
                "{key} removed"
            );
        }
    }
    assert_eq!(
        store
            .journal_counts("acme", &correlations[4])
            .await
            .unwrap()
            .skipped,
        1,
        "a kept row keeps its journal"
    );
    let summary = store.tenant_summary("acme").await.unwrap();
    assert_eq!(
        summary,
        store.recompute_tenant_summary("acme").await.unwrap()
    );
    assert_eq!(summary.total(), 3);
    assert_eq!(
        store
            .list_statuses("acme", &Default::default())
            .await
            .unwrap()
            .len(),
        3,
        "the tenant index lost the trimmed rows too"
    );

    // Idempotent: nothing more to remove (the live row is never removed).
    assert_eq!(store.trim_status_rows("acme", user).await.unwrap(), 0);
    assert_eq!(store.user_statuses("acme", user).await.unwrap().len(), 3);
}

#[tokio::test]
async fn history_journal_and_ledger_follow_the_configured_retention() {
    let (_server, store) = fresh(false).await;
    let store = store.with_retention(retention(100)).unwrap();
    let user = "bob@acme.test";
    for i in 0..8 {
        store
            .append_history(
                "acme",
                user,
                &HistoryEvent::now(
                    "c1",
                    mms_core::history::HistoryEventKind::Started,
                    format!("{i}"),
                ),
            )
            .await
            .unwrap();
    }
    let messages: Vec<String> = store
        .history("acme", user)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(messages, vec!["3", "4", "5", "6", "7"], "the newest 5 kept");

    let lease = store
        .acquire_lease("acme", user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    let mut row = MigrationStatus::pending(&manual("acme", user), "id", Utc::now());
    let sent = JournalEntry {
        stage: MeetingStage::Sent,
        message_id: Some("<m@acme.test>".into()),
        ..skipped()
    };
    store
        .record_sent(&lease, &row.correlation_id, "/cal/m.ics", &sent)
        .await
        .unwrap();
    let ledger = pttl(&store, store.keys().sent("acme", user)).await;
    assert!(ledger > 2 * DAY_MS && ledger <= 3 * DAY_MS, "{ledger}");

    row.state = MigrationState::Succeeded;
    store.write_status(&lease, &row).await.unwrap();
    for key in [
        store.keys().journal("acme", &row.correlation_id),
        store.keys().counts("acme", &row.correlation_id),
    ] {
        let ttl = pttl(&store, key.clone()).await;
        assert!(ttl > DAY_MS && ttl <= 2 * DAY_MS, "{key}: {ttl}");
    }
}

/// A trim that fails (here: a damaged older row Redis cannot read as a string) does not fail the
/// write that triggered it: the new final row is stored, the damaged one left for an admin, and
/// an explicit trim reports the error.
#[tokio::test]
async fn a_failed_trim_does_not_fail_the_row_write() {
    let (_server, store) = fresh(false).await;
    let store = store.with_retention(retention(1)).unwrap();
    let user = "cy@acme.test";
    let base = Utc::now() - Duration::days(2);
    let mut old = MigrationStatus::pending(&manual("acme", user), "id", base);
    old.state = MigrationState::Failed;
    store.put_status_unfenced(&old).await.unwrap();
    let damaged = store.keys().status("acme", &old.correlation_id);
    let mut conn = store.connection();
    conn.del::<_, ()>(&damaged).await.unwrap();
    conn.hset::<_, _, _, ()>(&damaged, "not", "a row")
        .await
        .unwrap();

    let mut new = MigrationStatus::pending(&manual("acme", user), "id", base + Duration::days(1));
    new.state = MigrationState::Succeeded;
    store.put_status_unfenced(&new).await.unwrap();
    assert_eq!(
        store
            .status("acme", &new.correlation_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        MigrationState::Succeeded
    );
    assert!(matches!(
        store.trim_status_rows("acme", user).await,
        Err(StoreError::Redis(_))
    ));
}
