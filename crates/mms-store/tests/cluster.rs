//! The store on a real Redis Cluster (three masters, three replicas, from mms-testkit), shared by
//! the tests of this file, each in its own namespace: every queue script, the lease with its
//! fencing, fenced progress writes and the wake stream run through the cluster client, so a key
//! outside its script's slot or a command the client cannot route fails here (D3, D4, D7).

mod common;

use common::{manual, now_ms};
use mms_core::{MigrationState, MigrationStatus, SourceMeetingType as S, TargetMeetingType as T};
use mms_store::{JournalEntry, MeetingStage, Store, StoreError};
use mms_testkit::cluster::RedisCluster;
use std::time::Duration;

/// A store on the shared cluster, in a namespace of its own.
async fn store(namespace: &str) -> Store {
    let cluster = RedisCluster::shared().await;
    Store::connect_cluster(&cluster.node_urls(), namespace)
        .await
        .expect("connect to the test cluster")
}

/// The tenants used below land on different masters, so a cross-slot mistake cannot hide.
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// P1, D3 on a cluster: enqueue (create and merge), read, mark started, ack, for tenants spread
/// over the masters; the namespace-wide indexes live in their own slot.
#[tokio::test]
async fn queue_round_trip_on_a_cluster() {
    let store = store("cq-round").await;
    let cluster = RedisCluster::shared().await;
    let mut masters = std::collections::HashSet::new();
    for tenant in TENANTS {
        let slot = cluster.slot_of(&store.keys().stream(tenant)).await;
        masters.insert(cluster.master_of(slot).await);
    }
    assert!(
        masters.len() >= 2,
        "the test tenants share one master: pick others"
    );

    for tenant in TENANTS {
        let first = common::request(tenant, "ann@x.test", S::SfB, T::Current);
        store.enqueue(&first, 0).await.unwrap();
        let second = common::request(tenant, "ann@x.test", S::Teams, T::Teams);
        let merged = store.enqueue(&second, 0).await.unwrap();
        assert!(merged.merged, "{tenant}: second trigger merged");
    }
    assert_eq!(store.active_tenants().await.unwrap(), TENANTS.to_vec());
    let got = store.read_ready("w1", 10, usize::MAX).await.unwrap();
    assert_eq!(got.len(), TENANTS.len());
    for delivery in &got {
        let running = store.mark_started(delivery).await.unwrap();
        assert_eq!((running.source, running.target), (S::All, T::Teams));
        store.ack(delivery).await.unwrap();
    }
    let depth = store.queue_depth().await.unwrap();
    assert!(depth
        .iter()
        .all(|d| (d.ready, d.pending, d.delayed) == (0, 0, 0)));
    store.promote_round(now_ms()).await.unwrap();
    assert!(store.active_tenants().await.unwrap().is_empty(), "all idle");
}

/// P7, D3 on a cluster: requeue into the delayed set, promotion when due, a claim of a dead
/// consumer's entry, the dead-letter move.
#[tokio::test]
async fn requeue_promote_claim_and_dead_letter_on_a_cluster() {
    let store = store("cq-requeue").await;
    let req = manual("globex", "bob@x.test");
    store.enqueue(&req, 0).await.unwrap();
    let got = store.read_ready("dead", 10, usize::MAX).await.unwrap();
    assert_eq!(got.len(), 1);
    let claimed = store.claim_stale("live", 0, 10, usize::MAX).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_count, 2);
    store.touch(&claimed[0], "live").await.unwrap();

    let due = now_ms() + 60_000;
    store.requeue_at(&claimed[0], due).await.unwrap();
    let round = store.promote_round(due - 1).await.unwrap();
    assert_eq!((round.moved, round.next_due_ms), (0, Some(due)));
    assert_eq!(store.promote_due(due).await.unwrap(), 1);
    let again = store.read_ready("live", 10, usize::MAX).await.unwrap();
    assert_eq!(again[0].request.correlation_id, req.correlation_id);
    store.ack(&again[0]).await.unwrap();

    // An entry nobody can decode goes to the dead letters, on the tenant's slot.
    let mut conn = store.connection();
    let _: String = redis::cmd("XADD")
        .arg(store.keys().stream("globex"))
        .arg("*")
        .arg("cid")
        .arg("junk")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store
        .read_ready("live", 10, usize::MAX)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.dead_letters("globex").await.unwrap().len(), 1);
}

/// D4 on a cluster: the lease is exclusive, tokens grow, and a stale holder's fenced writes are
/// refused while the holder's go through.
#[tokio::test]
async fn leases_and_fenced_writes_on_a_cluster() {
    let store = store("cq-lease").await;
    let req = manual("initech", "cy@x.test");
    store.enqueue(&req, 0).await.unwrap();
    let first = store
        .acquire_lease("initech", "cy@x.test", "w1", 30_000)
        .await
        .unwrap()
        .expect("free");
    assert!(store
        .acquire_lease("initech", "cy@x.test", "w2", 30_000)
        .await
        .unwrap()
        .is_none());
    assert!(store.renew_lease(&first, 30_000).await.unwrap());
    store.release_lease(&first).await.unwrap();
    let second = store
        .acquire_lease("initech", "cy@x.test", "w2", 30_000)
        .await
        .unwrap()
        .expect("released");
    assert!(second.token > first.token);

    let mut status: MigrationStatus = store
        .status("initech", &req.correlation_id)
        .await
        .unwrap()
        .expect("pending row");
    status.state = MigrationState::InProgress;
    assert!(matches!(
        store.write_status(&first, &status).await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.write_status(&second, &status).await.unwrap();
    let entry = JournalEntry {
        stage: MeetingStage::Sent,
        sequence: 1,
        message_id: Some("<m1@x>".into()),
        etag: None,
        reason: String::new(),
        uid: "uid-1".into(),
        summary: "Sync".into(),
        recipients: 1,
        undelivered: 0,
    };
    store
        .record_sent(&second, &req.correlation_id, "uid-1.ics", &entry)
        .await
        .unwrap();
    assert!(store
        .was_sent("initech", "cy@x.test", "<m1@x>")
        .await
        .unwrap());
}

/// D7 on a cluster: a wake-up announced by an enqueue reaches a listener blocked on the wake
/// stream, and a listener that saw it does not see it again.
#[tokio::test]
async fn an_enqueue_wakes_a_listener_on_a_cluster() {
    let store = store("cq-wake").await;
    let mut listener = store.wake_listener();
    assert!(
        !listener.wait(Duration::from_millis(50)).await.unwrap(),
        "nothing yet"
    );
    let writer = store.clone();
    let enqueue = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer
            .enqueue(&manual("acme", "dee@x.test"), 0)
            .await
            .unwrap();
    });
    assert!(
        listener.wait(Duration::from_secs(2)).await.unwrap(),
        "woken"
    );
    enqueue.await.unwrap();
    assert!(
        !listener.wait(Duration::from_millis(50)).await.unwrap(),
        "seen once"
    );
}
