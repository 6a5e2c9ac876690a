//! The tenant supervisor's duties (D1, D2), observed from outside: at most `per_tenant` migrations
//! of a tenant run at once (and the worker holds no more deliveries than that, D3), a supervisor
//! exists only while its tenant has work, and a burst of triggers for one user becomes one
//! migration (P1 merge).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_core::{
    MigrationRequest, MigrationState, SourceMeetingType, TargetMeetingType, TenantSettings, Trigger,
};
use mms_store::{StatusFilter, Store};
use mms_testkit::redis::RedisServer;

struct Embedded {
    _redis: RedisServer,
    dir: tempfile::TempDir,
    cfg: MmsConfig,
    store: Store,
}

/// Redis, a vdir mailbox per user and a Maildir outbox: the embedded set-up of `make run`.
async fn embedded(tenant: &str, users: &[String], meetings: usize, per_tenant: usize) -> Embedded {
    let redis = RedisServer::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = MmsConfig {
        redis_url: redis.url(),
        mailbox: MailboxConfig::Vdir {
            root: dir.path().join("mailboxes"),
            options: Default::default(),
        },
        mail: MailConfig::Maildir {
            root: dir.path().join("outbox"),
            updates: Default::default(),
        },
        ..MmsConfig::default()
    };
    cfg.queue.coalesce_delay_ms = 0;
    cfg.queue.block_ms = 20;
    cfg.concurrency.per_tenant = per_tenant;
    cfg.concurrency.meetings_per_user = 1;
    cfg.concurrency.supervisor_idle_secs = 1;
    let store = Store::connect(&cfg.redis_url, &cfg.namespace)
        .await
        .unwrap();
    store
        .create_tenant(&TenantSettings::defaults(tenant))
        .await
        .unwrap();
    common::claim_domains_of(&store, tenant, users).await;
    store
        .put_bridge(&mms_cli::demo::demo_bridge(tenant))
        .await
        .unwrap();
    for upn in users {
        store
            .put_user(&mms_cli::demo::demo_user(tenant, upn))
            .await
            .unwrap();
        mms_cli::demo::write_mailbox(&dir.path().join("mailboxes"), upn, meetings, Utc::now())
            .unwrap();
    }
    Embedded {
        _redis: redis,
        dir,
        cfg,
        store,
    }
}

async fn worker(e: &Embedded) -> mms_worker::WorkerHandle {
    let services = mms_cli::service::services(Arc::new(e.cfg.clone()), e.store.clone())
        .await
        .unwrap();
    mms_worker::run_worker(services).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_runs_at_most_per_tenant_migrations_at_once_and_its_supervisor_stops_when_idle() {
    let users: Vec<String> = (0..4).map(|i| format!("u{i}@limit.example")).collect();
    let e = embedded("limit", &users, 40, 1).await;
    let handle = worker(&e).await;
    for upn in &users {
        let req = MigrationRequest::new(
            "limit",
            upn,
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        e.store.enqueue(&req, 0).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut max_running = 0;
    let mut max_pending = 0;
    let mut saw_supervisor = false;
    loop {
        // D3: the worker takes off the stream only what it can start now; the rest stays ready
        // for any worker (pending = delivered to a worker and not settled).
        let pending: u64 = e
            .store
            .queue_depth()
            .await
            .unwrap()
            .iter()
            .map(|d| d.pending)
            .sum();
        max_pending = max_pending.max(pending);
        let rows = e
            .store
            .list_statuses("limit", &StatusFilter::default())
            .await
            .unwrap();
        let running = rows
            .iter()
            .filter(|s| s.state == MigrationState::InProgress)
            .count();
        max_running = max_running.max(running);
        saw_supervisor |= handle.supervised_tenants().await == vec!["limit".to_string()];
        if rows.len() == users.len() && rows.iter().all(|s| s.state.is_final()) {
            assert!(
                rows.iter().all(|s| s.state == MigrationState::Succeeded),
                "{rows:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not done: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        saw_supervisor,
        "a supervisor for the tenant was spawned on demand"
    );
    assert_eq!(
        max_running, 1,
        "per_tenant = 1: one migration of the tenant at a time"
    );
    assert_eq!(
        max_pending, 1,
        "per_tenant = 1: the worker holds one delivery, the other requests stay on the stream"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    while !handle.supervised_tenants().await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the idle supervisor was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outbox = std::fs::read_dir(e.dir.path().join("outbox").join("new"))
        .unwrap()
        .count();
    let updates: u32 = e
        .store
        .list_statuses("limit", &StatusFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|s| s.invites_update)
        .sum();
    assert_eq!(
        outbox, updates as usize,
        "one Maildir message per update counted in the status"
    );
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_triggers_for_one_user_during_the_coalescing_hold_is_one_migration() {
    let users = vec!["burst@coalesce.example".to_string()];
    let mut e = embedded("coalesce", &users, 10, 4).await;
    e.cfg.queue.coalesce_delay_ms = 1_500;
    let handle = worker(&e).await;
    let mut ids = Vec::new();
    for change in ["LicenseAssigned", "BridgeChanged", "ConferenceIdReset"] {
        let req = MigrationRequest::new(
            "coalesce",
            &users[0],
            SourceMeetingType::All,
            TargetMeetingType::Current,
            Trigger::AudioConferencing {
                change: change.into(),
            },
        );
        ids.push(
            e.store
                .enqueue(&req, e.cfg.queue.coalesce_delay_ms)
                .await
                .unwrap(),
        );
    }
    assert!(!ids[0].merged && ids[1].merged && ids[2].merged, "{ids:?}");
    assert!(ids
        .iter()
        .all(|q| q.correlation_id == ids[0].correlation_id));
    let rows = common::wait_final(&e.store, "coalesce", &users, Duration::from_secs(60)).await;
    assert_eq!(rows[0].state, MigrationState::Succeeded);
    let all = e.store.user_statuses("coalesce", &users[0]).await.unwrap();
    assert_eq!(all.len(), 1, "three triggers, one migration");
    handle.shutdown(Duration::from_secs(5)).await;
}

/// D3 fairness at the cluster level: a tenant with twenty queued users does not make a tenant
/// with one wait for all twenty. With room for one migration at a time, tenants take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_tenant_is_not_starved_by_a_big_one() {
    let big: Vec<String> = (0..20).map(|i| format!("b{i}@big.example")).collect();
    let mut e = embedded("big", &big, 10, 1).await;
    e.cfg.concurrency.per_worker = 1;
    let small = vec!["only@small.example".to_string()];
    e.store
        .create_tenant(&TenantSettings::defaults("small"))
        .await
        .unwrap();
    common::claim_domains_of(&e.store, "small", &small).await;
    e.store
        .put_bridge(&mms_cli::demo::demo_bridge("small"))
        .await
        .unwrap();
    e.store
        .put_user(&mms_cli::demo::demo_user("small", &small[0]))
        .await
        .unwrap();
    mms_cli::demo::write_mailbox(&e.dir.path().join("mailboxes"), &small[0], 10, Utc::now())
        .unwrap();
    for upn in &big {
        let req = MigrationRequest::new(
            "big",
            upn,
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        e.store.enqueue(&req, 0).await.unwrap();
    }
    let req = MigrationRequest::new(
        "small",
        &small[0],
        SourceMeetingType::All,
        TargetMeetingType::Teams,
        Trigger::Manual,
    );
    e.store.enqueue(&req, 0).await.unwrap();
    let handle = worker(&e).await;
    let small_done = common::wait_final(&e.store, "small", &small, Duration::from_secs(60)).await;
    let big_rows = common::wait_final(&e.store, "big", &big, Duration::from_secs(120)).await;
    let small_at = small_done[0].modified_date;
    let big_before = big_rows
        .iter()
        .filter(|s| s.modified_date < small_at)
        .count();
    assert!(
        big_before <= 3,
        "the small tenant waited for {big_before} of the big tenant's 20 migrations"
    );
    handle.shutdown(Duration::from_secs(5)).await;
}
