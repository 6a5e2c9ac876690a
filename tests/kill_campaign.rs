//! A kill campaign (issue 7, point 8): how many updates does a SIGKILL of the lease holder cause
//! to be sent twice? A measurement, not a pass/fail test: it prints the rate (resends per kill)
//! and asserts only what must always hold (every migrated meeting updated, nothing lost, every
//! resend carrying the same Message-ID). Run it with
//! `cargo test --release --test kill_campaign -- --ignored --nocapture` (KILLS=N to change the
//! number of kills, 12 by default).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{message_id, wait_final, Stack, WorkerProcess};
use mms_core::{MigrationRequest, MigrationState, SourceMeetingType, TargetMeetingType, Trigger};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn resends_per_kill_of_the_lease_holder() {
    let kills: usize = std::env::var("KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(12);
    let meetings = 40;
    let stack = Stack::start(false).await;
    let cfg = stack.config(None);
    let path = stack.write_config(&cfg, "campaign");
    let store = stack.store(&cfg).await;
    let users: Vec<String> = (0..kills)
        .map(|i| format!("victim{i}@campaign.example"))
        .collect();
    let expected = stack
        .seed_tenant(&store, "campaign", &users, meetings)
        .await;
    let mut workers = vec![
        WorkerProcess::spawn(&path, "campaign-0"),
        WorkerProcess::spawn(&path, "campaign-1"),
    ];
    let mut spawned = 2;
    let mut killed = 0;
    for (round, user) in users.iter().enumerate() {
        let request = MigrationRequest::new(
            "campaign",
            user,
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        let queued = store.enqueue(&request, 0).await.unwrap();
        // Kill at a different depth each round: 3 to 30 meetings journaled.
        let depth = 3 + (round * 7) % 28;
        let holder = common::lease_holder_once_under_way(
            &store,
            "campaign",
            user,
            &queued.correlation_id,
            depth,
        )
        .await;
        if let Some(victim) = workers.iter().position(|w| holder.contains(&w.name)) {
            workers[victim].kill9();
            workers.remove(victim);
            killed += 1;
            workers.push(WorkerProcess::spawn(&path, &format!("campaign-{spawned}")));
            spawned += 1;
        }
        wait_final(
            &store,
            "campaign",
            std::slice::from_ref(user),
            Duration::from_secs(120),
        )
        .await;
    }
    let rows = wait_final(&store, "campaign", &users, Duration::from_secs(120)).await;
    let mails = stack.smtp.messages();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *per_id.entry(message_id(&m.data)).or_default() += 1;
    }
    let migrated: usize = users.iter().map(|u| expected[u].len()).sum();
    for row in &rows {
        assert_eq!(row.state, MigrationState::Succeeded, "{row:#?}");
    }
    assert!(
        per_id.len() >= migrated,
        "every migrated meeting got its update: {} distinct ids for {migrated} meetings",
        per_id.len()
    );
    let resends: usize = per_id.values().map(|n| n - 1).sum();
    println!(
        "kill campaign: {killed} kills of the lease holder, {migrated} meetings, {} messages, {resends} same-Message-ID resends, {:.2} resends per kill",
        mails.len(),
        resends as f64 / killed.max(1) as f64
    );
}
