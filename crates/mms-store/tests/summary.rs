//! The tenant summary (M1) from counters, against a real redis-server: after a mixed sequence of
//! row writes through every path (the queue's enqueue, unfenced holds and cancellations, fenced
//! writes, a stale writer refused by the fence, an unfenced write refused by a live lease, the
//! retention trim) the counters equal a recount of the rows (issue 11.5). Status rows are stored
//! without their per-meeting list, and old rows that carry one still read (issue 11.4).

mod common;

use chrono::Utc;
use common::{fresh, manual, request};
use mms_core::{
    MeetingOutcome, MeetingOutcomeKind, MigrationState, MigrationStatus, MigrationType,
    SourceMeetingType, TargetMeetingType,
};
use mms_store::{Store, StoreError, TenantSummary};
use redis::AsyncCommands;

use MigrationState::{Failed, InProgress, Pending, Succeeded};

async fn assert_consistent(store: &Store, tenant: &str) -> TenantSummary {
    let counted = store.tenant_summary(tenant).await.unwrap();
    let recomputed = store.recompute_tenant_summary(tenant).await.unwrap();
    assert_eq!(counted, recomputed, "counters vs rows of {tenant}");
    counted
}

async fn row(store: &Store, tenant: &str, correlation: &str) -> MigrationStatus {
    store.status(tenant, correlation).await.unwrap().unwrap()
}

#[tokio::test]
async fn summary_counters_match_a_recount_after_every_kind_of_write() {
    let (_server, store) = fresh(false).await;
    let tenant = "acme";

    // Five users queued (the queue's create script: Pending rows), two of them SfB -> Teams.
    let mut requests = Vec::new();
    for i in 0..5 {
        let user = format!("u{i}@acme.test");
        let req = if i < 2 {
            request(
                tenant,
                &user,
                SourceMeetingType::SfB,
                TargetMeetingType::Teams,
            )
        } else {
            manual(tenant, &user)
        };
        store.enqueue(&req, 0).await.unwrap();
        requests.push(req);
    }
    // Another tenant's rows never count here.
    store
        .enqueue(&manual("other", "z@other.test"), 0)
        .await
        .unwrap();
    let summary = assert_consistent(&store, tenant).await;
    assert_eq!(summary.get(Pending, MigrationType::SfbToTeams), 2);
    assert_eq!(summary.get(Pending, MigrationType::AllToTeams), 3);
    assert_eq!(summary.total(), 5);

    // u0 runs and succeeds under its lease.
    let lease0 = store
        .acquire_lease(tenant, &requests[0].user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    let mut r0 = row(&store, tenant, &requests[0].correlation_id).await;
    r0.state = InProgress;
    store.write_status(&lease0, &r0).await.unwrap();
    store.write_status(&lease0, &r0).await.unwrap(); // rewritten after every page: no double count
    assert_consistent(&store, tenant).await;
    r0.state = Succeeded;
    store.write_status(&lease0, &r0).await.unwrap();

    // u1 runs, loses its lease to another worker; the stale writer's Failed is refused.
    let stale = store
        .acquire_lease(tenant, &requests[1].user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    let mut r1 = row(&store, tenant, &requests[1].correlation_id).await;
    r1.state = InProgress;
    store.write_status(&stale, &r1).await.unwrap();
    let mut conn = store.connection();
    conn.del::<_, ()>(store.keys().lease(tenant, &requests[1].user))
        .await
        .unwrap();
    let fresh_lease = store
        .acquire_lease(tenant, &requests[1].user, "w2", 30_000)
        .await
        .unwrap()
        .unwrap();
    let mut stale_row = r1.clone();
    stale_row.state = Failed;
    assert!(matches!(
        store.write_status(&stale, &stale_row).await,
        Err(StoreError::LeaseLost { .. })
    ));
    // ... and the queue side may not cancel it while the new holder runs it.
    assert!(matches!(
        store.put_status_unfenced(&stale_row).await,
        Err(StoreError::InProgress { .. })
    ));
    let summary = assert_consistent(&store, tenant).await;
    assert_eq!(summary.get(InProgress, MigrationType::SfbToTeams), 1);
    r1.retry_count = 1;
    r1.state = Pending; // a retry scheduled by the new holder
    store.write_status(&fresh_lease, &r1).await.unwrap();

    // u2 is held by the disabled tenant (unfenced, still Pending), u3 cancelled (unfenced Failed).
    let mut r2 = row(&store, tenant, &requests[2].correlation_id).await;
    r2.held_reason = Some("MeetingMigrationEnabled is false".into());
    store.put_status_unfenced(&r2).await.unwrap();
    let mut r3 = row(&store, tenant, &requests[3].correlation_id).await;
    r3.state = Failed;
    store.put_status_unfenced(&r3).await.unwrap();
    // A row of a type the tenant had none of, written directly by the queue side.
    let mut same_type = MigrationStatus::pending(
        &request(
            tenant,
            "u9@acme.test",
            SourceMeetingType::All,
            TargetMeetingType::Current,
        ),
        "id9",
        Utc::now(),
    );
    store.put_status_unfenced(&same_type).await.unwrap();
    same_type.state = Succeeded;
    store.put_status_unfenced(&same_type).await.unwrap();

    let summary = assert_consistent(&store, tenant).await;
    assert_eq!(summary.get(Succeeded, MigrationType::AllToTeams), 0);
    assert_eq!(summary.get(Succeeded, MigrationType::SfbToTeams), 1);
    assert_eq!(summary.get(Pending, MigrationType::SfbToTeams), 1);
    assert_eq!(summary.get(Pending, MigrationType::AllToTeams), 2);
    assert_eq!(summary.get(Failed, MigrationType::AllToTeams), 1);
    assert_eq!(summary.get(Succeeded, MigrationType::ToSameType), 1);
    assert_eq!(summary.in_state(Pending), 3);
    assert_eq!(summary.total(), 6);
    assert_eq!(
        store.tenant_summary("other").await.unwrap().total(),
        1,
        "the other tenant counts its own row"
    );
}

/// Rows are stored without their per-meeting list; a row written before (with one) still reads,
/// and its first rewrite moves its counters like any other.
#[tokio::test]
async fn rows_are_stored_without_meetings_and_old_rows_still_read() {
    let (_server, store) = fresh(false).await;
    let req = manual("acme", "old@acme.test");
    let mut status = MigrationStatus::pending(&req, "id", Utc::now());
    status.meetings = (0..3)
        .map(|i| MeetingOutcome {
            uid: format!("m{i}"),
            href: format!("/cal/m{i}.ics"),
            summary: "Weekly".into(),
            outcome: MeetingOutcomeKind::Updated,
            reason: String::new(),
            sequence: Some(1),
            recipients: 2,
        })
        .collect();

    // An old row, as the code before this change stored it (meetings included), counted by it.
    let key = store.keys().status("acme", &req.correlation_id);
    let mut conn = store.connection();
    conn.set::<_, _, ()>(&key, serde_json::to_string(&status).unwrap())
        .await
        .unwrap();
    let read = row(&store, "acme", &req.correlation_id).await;
    assert_eq!(read.meetings.len(), 3, "old rows keep their list when read");

    let lease = store
        .acquire_lease("acme", &req.user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    status.state = InProgress;
    store.write_status(&lease, &status).await.unwrap();
    let stored: String = conn.get(&key).await.unwrap();
    assert!(
        stored.contains("\"Meetings\":[]"),
        "stored without the list: {stored}"
    );
    let read = row(&store, "acme", &req.correlation_id).await;
    assert!(read.meetings.is_empty());
    assert_eq!(read.state, InProgress);
    let summary = store.tenant_summary("acme").await.unwrap();
    assert_eq!(summary.get(InProgress, MigrationType::AllToTeams), 1);
    assert_eq!(summary.total(), 1);

    // Another old row, never rewritten, is counted by the upgrade's rebuild.
    let other = MigrationStatus::pending(&manual("acme", "older@acme.test"), "id", Utc::now());
    conn.set::<_, _, ()>(
        store.keys().status("acme", &other.correlation_id),
        serde_json::to_string(&other).unwrap(),
    )
    .await
    .unwrap();
    conn.zadd::<_, _, _, ()>(store.keys().statuses("acme"), &other.correlation_id, 1)
        .await
        .unwrap();
    assert_eq!(store.tenant_summary("acme").await.unwrap().total(), 1);
    let rebuilt = store.rebuild_tenant_summary("acme").await.unwrap();
    assert_eq!(rebuilt.total(), 2);
    assert_eq!(rebuilt, store.tenant_summary("acme").await.unwrap());
    assert_consistent(&store, "acme").await;
}
