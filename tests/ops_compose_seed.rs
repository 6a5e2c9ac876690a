//! The compose demo's seed (deploy/compose/seed.py) against the real parts it talks to in the
//! compose stack, run here as processes instead of containers: an `mms api` and an `mms worker`
//! on Radicale (no authentication, as deploy/compose/radicale.conf) and an SMTP sink. The seeded
//! tenant's migrations must all succeed with their meetings updated and the updates sent: what
//! `docker compose up` shows, minus the containers (no images can be pulled here).

mod common;
mod ops_common;

use std::process::Command;
use std::time::Duration;

use common::{wait_final, Stack};
use mms_core::MigrationState;
use ops_common::{root, wait_status, MmsProcess};

const TOKEN: &str = "demo-operator-token-change-me-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_seed_migrates_the_demo_tenant() {
    let stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    cfg.api.operator_token = Some(TOKEN.into());
    let path = stack.write_config(&cfg, "seed");
    let store = stack.store(&cfg).await;
    let api = MmsProcess::spawn(&path, "api", "api", &[]);
    let worker = MmsProcess::spawn(&path, "worker", "worker-1", &[]);
    wait_status(
        &api.api_url("/readyz"),
        200,
        Duration::from_secs(60),
        || api.log(),
    )
    .await;
    wait_status(
        &worker.metrics_url("/readyz"),
        200,
        Duration::from_secs(60),
        || worker.log(),
    )
    .await;

    let seeded = Command::new("python3")
        .arg(root().join("deploy/compose/seed.py"))
        .env("MMS_API", api.api_url(""))
        .env("MMS_TOKEN", TOKEN)
        .env("RADICALE", stack.radicale.base_url())
        .output()
        .expect("python3");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&seeded.stdout),
        String::from_utf8_lossy(&seeded.stderr)
    );
    assert!(
        seeded.status.success(),
        "seed.py failed:\n{said}\napi log:\n{}",
        api.log()
    );

    let users: Vec<String> = ["adele", "lee", "joni"]
        .iter()
        .map(|u| format!("{u}@demo.example"))
        .collect();
    let rows = wait_final(&store, "demo", &users, Duration::from_secs(120)).await;
    for status in &rows {
        assert_eq!(
            status.state,
            MigrationState::Succeeded,
            "{status:#?}\n{said}"
        );
        // Two Teams meetings and one Skype meeting rewritten for Teams; the lunch (no online
        // block) is not one of them.
        assert_eq!(
            (status.total_meeting, status.succeeded_meeting),
            (3, 3),
            "{status:#?}"
        );
    }
    let sent = stack.smtp.messages();
    assert!(
        sent.len() >= 3 * users.len(),
        "the updates went to the relay: {} messages\n{said}\nworker log:\n{}",
        sent.len(),
        worker.log()
    );
}
