//! Redis resilience: with AOF on, a Redis restart mid-run loses no queued request, and the same
//! Store handle carries on once Redis is back (its ConnectionManager reconnects; the scripts are
//! reloaded on NOSCRIPT).

mod common;

use common::{fresh, manual, with_retries};
use mms_core::MigrationState;

#[tokio::test]
async fn queued_requests_survive_a_redis_restart_and_the_store_reconnects() {
    let (mut server, store) = fresh(true).await;
    let delivered_before = manual("acme", "ann@acme.test");
    store.enqueue(&delivered_before, 0).await.unwrap();
    let in_flight = store.read_ready("w1", 10, usize::MAX).await.unwrap();
    let waiting: Vec<_> = (0..3)
        .map(|i| manual("acme", &format!("u{i}@acme.test")))
        .collect();
    for req in &waiting {
        store.enqueue(req, 0).await.unwrap();
    }

    server.restart().await;

    let claimed = with_retries(|| store.claim_stale("w2", 0, 10, usize::MAX)).await;
    assert_eq!(
        claimed.len(),
        1,
        "the entry delivered before the restart is still pending"
    );
    assert_eq!(claimed[0].stream_id, in_flight[0].stream_id);
    let after: Vec<String> = store
        .read_ready("w2", 10, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.request.correlation_id)
        .collect();
    assert_eq!(
        after,
        waiting
            .iter()
            .map(|r| r.correlation_id.clone())
            .collect::<Vec<_>>()
    );

    // Scripts run again after the restart emptied Redis's script cache.
    let lease = store
        .acquire_lease("acme", "ann@acme.test", "w2", 30_000)
        .await
        .unwrap()
        .expect("free");
    let mut row = store
        .status("acme", &delivered_before.correlation_id)
        .await
        .unwrap()
        .expect("row kept");
    row.state = MigrationState::InProgress;
    store.write_status(&lease, &row).await.unwrap();
    store.ack(&claimed[0]).await.unwrap();
}
