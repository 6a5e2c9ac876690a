//! Failure modes of the cluster (issue 3), each injected for real: a worker process killed with
//! SIGKILL mid-mailbox, Redis restarted (AOF) mid-run, the mailbox answering 503 for a while and
//! for good, the organizer editing a meeting between our read and our write, a disabled tenant.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{message_id, property, wait_final, OrganizerEditsFirst, Stack, WorkerProcess};
use mms_core::config::MmsConfig;
use mms_core::{
    Mailbox, MailboxError, MailboxItem, MigrationRequest, MigrationState, SearchPage,
    SourceMeetingType, TargetMeetingType, Trigger,
};
use mms_store::Store;
use mms_testkit::proxy::FaultProxy;
use mms_worker::WorkerHandle;

async fn in_process_worker(
    cfg: &MmsConfig,
    store: &Store,
    name: &str,
    mailbox: Option<Arc<dyn Mailbox>>,
) -> WorkerHandle {
    let mut services = mms_cli::service::services(Arc::new(cfg.clone()), store.clone())
        .await
        .unwrap();
    services.worker_name = name.into();
    if let Some(mailbox) = mailbox {
        services.mailbox = mailbox;
    }
    mms_worker::run_worker(services).await.unwrap()
}

fn manual(tenant: &str, user: &str) -> MigrationRequest {
    MigrationRequest::new(
        tenant,
        user,
        SourceMeetingType::All,
        TargetMeetingType::Teams,
        Trigger::Manual,
    )
}

/// Messages per Message-ID, and the migrated events' SEQUENCE values.
fn assert_each_meeting_updated_once(
    stack: &Stack,
    user: &str,
    migrating: &[String],
    max_same_id_resends: usize,
) {
    for (name, ics) in stack.radicale.list_events(user) {
        if migrating.contains(&name) {
            assert_eq!(
                property(&ics, "SEQUENCE").as_deref(),
                Some("1"),
                "{name} updated exactly once"
            );
        }
    }
    let mails = stack.smtp.messages();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *per_id.entry(message_id(&m.data)).or_default() += 1;
    }
    assert_eq!(
        per_id.len(),
        migrating.len(),
        "one distinct update per migrated meeting"
    );
    let resends: usize = per_id.values().map(|n| n - 1).sum();
    assert!(
        resends <= max_same_id_resends,
        "{resends} resends (allowed {max_same_id_resends}): {per_id:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_mailbox_is_finished_by_the_other_without_double_updates() {
    let stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    cfg.concurrency.meetings_per_user = 1;
    let path = stack.write_config(&cfg, "kill");
    let store = stack.store(&cfg).await;
    let user = "big@kill.example".to_string();
    let expected = stack
        .seed_tenant(&store, "kill", std::slice::from_ref(&user), 150)
        .await;
    let mut workers = [
        WorkerProcess::spawn(&path, "worker-a"),
        WorkerProcess::spawn(&path, "worker-b"),
    ];
    let queued = store.enqueue(&manual("kill", &user), 0).await.unwrap();

    // Wait until the migration is well into the mailbox, then SIGKILL whoever holds the lease.
    let holder =
        common::lease_holder_once_under_way(&store, "kill", &user, &queued.correlation_id, 20)
            .await;
    let mut conn = store.connection();
    let journal_key = store.keys().journal("kill", &queued.correlation_id);
    let victim = workers
        .iter()
        .position(|w| holder.contains(&w.name))
        .expect("lease names a worker");
    workers[victim].kill9();
    let done_at_kill: usize = redis::cmd("HLEN")
        .arg(&journal_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(done_at_kill < 150, "killed in the middle of the mailbox");

    let rows = wait_final(
        &store,
        "kill",
        std::slice::from_ref(&user),
        Duration::from_secs(120),
    )
    .await;
    let status = &rows[0];
    assert_eq!(status.state, MigrationState::Succeeded, "{status:#?}");
    let migrating = &expected[&user];
    assert_eq!(status.succeeded_meeting as usize, migrating.len());
    assert_eq!(status.invites_update as usize, migrating.len());
    assert_eq!(
        status.retry_count, 1,
        "the dead worker's attempt counts toward the retry limit"
    );
    let history = store.history("kill", &user).await.unwrap();
    assert!(history.iter().any(|e| e.event == "Resumed"), "{history:#?}");
    // The one window SIGKILL can hit (SMTP accepted, ledger not yet written) resends with the same Message-ID.
    assert_each_meeting_updated_once(&stack, &user, migrating, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_everything_still_completes() {
    let mut stack = Stack::start(true).await;
    let cfg = stack.config(None);
    let path = stack.write_config(&cfg, "restart");
    let store = stack.store(&cfg).await;
    let users: Vec<String> = (1..=3)
        .map(|i| format!("user{i}@restart.example"))
        .collect();
    let expected = stack.seed_tenant(&store, "restart", &users, 40).await;
    let _w1 = WorkerProcess::spawn(&path, "worker-1");
    let _w2 = WorkerProcess::spawn(&path, "worker-2");
    for user in &users {
        store.enqueue(&manual("restart", user), 0).await.unwrap();
    }
    // Restart once some meetings are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = stack.smtp.messages().len();
        if sent >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "migration never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.redis.restart().await;

    let rows = wait_final(&store, "restart", &users, Duration::from_secs(120)).await;
    for status in &rows {
        let migrating = &expected[&status.user_principal_name];
        assert_eq!(status.state, MigrationState::Succeeded, "{status:#?}");
        assert_eq!(status.succeeded_meeting as usize, migrating.len());
        assert_eq!(status.invites_update as usize, migrating.len());
    }
    for user in &users {
        for (name, ics) in stack.radicale.list_events(user) {
            if expected[user].contains(&name) {
                assert_eq!(
                    property(&ics, "SEQUENCE").as_deref(),
                    Some("1"),
                    "{user}/{name}"
                );
            }
        }
    }
    let mails = stack.smtp.messages();
    let ids: HashSet<String> = mails.iter().map(|m| message_id(&m.data)).collect();
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(ids.len(), total, "every migrated meeting's update went out");
    assert!(
        mails.len() - ids.len() <= 1,
        "a resend only in the documented window, with the same Message-ID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_answering_503_for_a_while_is_retried_until_it_succeeds() {
    let stack = Stack::start(false).await;
    let proxy = FaultProxy::start(stack.radicale.port).await;
    let cfg = stack.config(Some(&proxy.base_url()));
    let store = stack.store(&cfg).await;
    let user = "flaky@faults.example".to_string();
    let expected = stack
        .seed_tenant(&store, "faults", std::slice::from_ref(&user), 10)
        .await;
    proxy.set_failing(true);
    let worker = in_process_worker(&cfg, &store, "worker-503", None).await;
    let queued = store.enqueue(&manual("faults", &user), 0).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = store
            .status("faults", &queued.correlation_id)
            .await
            .unwrap()
            .unwrap();
        if status.retry_count >= 2 {
            assert_eq!(status.state, MigrationState::Pending);
            assert!(
                status.last_message.contains("503"),
                "{}",
                status.last_message
            );
            break;
        }
        assert!(Instant::now() < deadline, "no retries seen: {status:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.set_failing(false);
    let rows = wait_final(
        &store,
        "faults",
        std::slice::from_ref(&user),
        Duration::from_secs(60),
    )
    .await;
    let status = &rows[0];
    assert_eq!(status.state, MigrationState::Succeeded, "{status:#?}");
    assert!(status.retry_count >= 2 && status.retry_count < 9);
    assert_eq!(status.succeeded_meeting as usize, expected[&user].len());
    assert!(proxy.refused_count() > 0);
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_answering_503_for_good_fails_after_exactly_nine_retries() {
    let stack = Stack::start(false).await;
    let proxy = FaultProxy::start(stack.radicale.port).await;
    let mut cfg = stack.config(Some(&proxy.base_url()));
    cfg.retry.schedule_secs = vec![0];
    let store = stack.store(&cfg).await;
    let user = "down@faults.example".to_string();
    stack
        .seed_tenant(&store, "down", std::slice::from_ref(&user), 5)
        .await;
    proxy.set_failing(true);
    let worker = in_process_worker(&cfg, &store, "worker-down", None).await;
    store.enqueue(&manual("down", &user), 0).await.unwrap();
    let rows = wait_final(
        &store,
        "down",
        std::slice::from_ref(&user),
        Duration::from_secs(90),
    )
    .await;
    let status = &rows[0];
    assert_eq!(status.state, MigrationState::Failed);
    assert_eq!(status.retry_count, 9, "exactly nine retries");
    assert!(
        status.last_message.starts_with("Failed after 9 retries"),
        "{}",
        status.last_message
    );
    assert!(
        status.last_message.contains("503"),
        "the last message names the cause: {}",
        status.last_message
    );
    let history = store.history("down", &user).await.unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|e| e.event == "RetryScheduled")
            .count(),
        9
    );
    assert!(stack.smtp.messages().is_empty(), "nothing sent");
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_edit_between_read_and_write_survives_and_the_block_is_replaced() {
    let stack = Stack::start(false).await;
    let cfg = stack.config(None);
    let store = stack.store(&cfg).await;
    let user = "editor@edit.example".to_string();
    stack
        .seed_tenant(&store, "edit", std::slice::from_ref(&user), 3)
        .await;
    let target = format!("{user}-meeting-0.ics");
    let inner = mms_mailbox::mailbox_from_config(&cfg.mailbox, 4).unwrap();
    let mailbox = Arc::new(OrganizerEditsFirst::new(
        inner,
        format!("{}{}", stack.radicale.calendar_url(&user), target),
        "-meeting-0.ics",
        (
            "Agenda: review the quarter.",
            "Agenda: review the quarter. EDITED BY ORGANIZER: bring the budget.",
        ),
    ));
    let worker = in_process_worker(&cfg, &store, "worker-edit", Some(mailbox.clone())).await;
    store.enqueue(&manual("edit", &user), 0).await.unwrap();
    let rows = wait_final(
        &store,
        "edit",
        std::slice::from_ref(&user),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(rows[0].state, MigrationState::Succeeded, "{:#?}", rows[0]);
    assert!(mailbox.edited(), "the edit was injected");
    let ics = stack.radicale.get_event(&user, &target).await;
    let unfolded = ics.replace("\r\n ", "");
    assert!(
        unfolded.contains("EDITED BY ORGANIZER: bring the budget."),
        "the organizer's edit survives"
    );
    assert!(
        unfolded.contains("teams.example.net/l/meetup-join/"),
        "the block is replaced"
    );
    assert!(
        !unfolded.contains("meeting_OLD"),
        "no old block left:\n{unfolded}"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_tenant_runs_nothing_until_it_is_enabled_again() {
    let stack = Stack::start(false).await;
    let cfg = stack.config(None);
    let store = stack.store(&cfg).await;
    let user = "held@off.example".to_string();
    let expected = stack
        .seed_tenant(&store, "off", std::slice::from_ref(&user), 5)
        .await;
    let mut settings = store.tenant_settings("off").await.unwrap().unwrap();
    settings.meeting_migration_enabled = false;
    store.put_tenant_settings(&settings).await.unwrap();
    let before = stack.radicale.list_events(&user);
    let worker = in_process_worker(&cfg, &store, "worker-off", None).await;
    let automatic = MigrationRequest::new(
        "off",
        &user,
        SourceMeetingType::All,
        TargetMeetingType::Current,
        Trigger::AudioConferencing {
            change: "T2d bridge moved".into(),
        },
    );
    let queued = store.enqueue(&automatic, 0).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let status = store
            .status("off", &queued.correlation_id)
            .await
            .unwrap()
            .unwrap();
        if status.held_reason.is_some() {
            break status;
        }
        assert!(Instant::now() < deadline, "never held: {status:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(held.state, MigrationState::Pending);
    assert!(
        held.last_message
            .contains("MeetingMigrationEnabled is false"),
        "{}",
        held.last_message
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stack.radicale.list_events(&user),
        before,
        "nothing of a disabled tenant runs"
    );
    assert!(stack.smtp.messages().is_empty());
    assert_eq!(
        store
            .status("off", &queued.correlation_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        MigrationState::Pending
    );

    settings.meeting_migration_enabled = true;
    store.put_tenant_settings(&settings).await.unwrap();
    let rows = wait_final(
        &store,
        "off",
        std::slice::from_ref(&user),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(rows[0].state, MigrationState::Succeeded, "{:#?}", rows[0]);
    assert_eq!(rows[0].invites_update as usize, expected[&user].len());
    assert_eq!(stack.smtp.messages().len(), expected[&user].len());
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A mailbox connector with a bug: it panics. The attempt is caught like any failed attempt, so the
/// migration follows the retry policy to Failed instead of looping or leaving InProgress behind.
struct PanickingMailbox;

#[async_trait]
impl Mailbox for PanickingMailbox {
    async fn search(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: Option<String>,
        _: usize,
    ) -> Result<SearchPage, MailboxError> {
        panic!("connector bug: index out of range")
    }
    async fn get(&self, _: &str, _: &str) -> Result<MailboxItem, MailboxError> {
        panic!("connector bug")
    }
    async fn put(&self, _: &str, _: &str, _: &str, _: &str) -> Result<String, MailboxError> {
        panic!("connector bug")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_an_attempt_is_a_failed_attempt_under_the_retry_limit() {
    let stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    cfg.retry.schedule_secs = vec![0];
    let store = stack.store(&cfg).await;
    let user = "buggy@panic.example".to_string();
    stack
        .seed_tenant(&store, "panic", std::slice::from_ref(&user), 1)
        .await;
    let worker = in_process_worker(
        &cfg,
        &store,
        "worker-panic",
        Some(Arc::new(PanickingMailbox)),
    )
    .await;
    store.enqueue(&manual("panic", &user), 0).await.unwrap();
    let rows = wait_final(
        &store,
        "panic",
        std::slice::from_ref(&user),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(rows[0].state, MigrationState::Failed);
    assert_eq!(rows[0].retry_count, 9);
    assert!(
        rows[0]
            .last_message
            .contains("internal error: connector bug: index out of range"),
        "{}",
        rows[0].last_message
    );
    let mut conn = store.connection();
    let lease: Option<String> = redis::cmd("GET")
        .arg(store.keys().lease("panic", &user))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(lease, None, "the lease was released");
    worker.shutdown(Duration::from_secs(5)).await;
}

/// D4: a worker frozen (SIGSTOP) past its lease while holding a mailbox is replaced; when it wakes
/// up it finds its lease gone and writes nothing: no status, journal or meeting of the finished
/// migration changes afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_past_its_lease_wakes_up_and_writes_nothing() {
    let stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    cfg.concurrency.meetings_per_user = 1;
    let path = stack.write_config(&cfg, "freeze");
    let store = stack.store(&cfg).await;
    let user = "frozen@freeze.example".to_string();
    let expected = stack
        .seed_tenant(&store, "freeze", std::slice::from_ref(&user), 120)
        .await;
    let workers = [
        WorkerProcess::spawn(&path, "worker-a"),
        WorkerProcess::spawn(&path, "worker-b"),
    ];
    let queued = store.enqueue(&manual("freeze", &user), 0).await.unwrap();

    let holder =
        common::lease_holder_once_under_way(&store, "freeze", &user, &queued.correlation_id, 15)
            .await;
    let mut conn = store.connection();
    let journal_key = store.keys().journal("freeze", &queued.correlation_id);
    let frozen = workers
        .iter()
        .find(|w| holder.contains(&w.name))
        .expect("lease names a worker");
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .arg(sig)
            .arg(frozen.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig}");
    };
    signal("-STOP");

    let rows = wait_final(
        &store,
        "freeze",
        std::slice::from_ref(&user),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(rows[0].state, MigrationState::Succeeded, "{:#?}", rows[0]);
    let journal_before: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&journal_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let events_before = stack.radicale.list_events(&user);
    let mails_before = stack.smtp.messages().len();

    signal("-CONT");
    // Give the woken worker time to try whatever it was about to do.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = store
        .status("freeze", &queued.correlation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, rows[0], "the stale worker did not touch the status");
    let journal_after: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&journal_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal_after, journal_before, "nor the journal");
    assert_eq!(
        stack.radicale.list_events(&user),
        events_before,
        "nor a meeting"
    );
    let mails_after = stack.smtp.messages().len();
    assert!(
        mails_after - mails_before <= 1,
        "at most the one update it was already sending when frozen"
    );
    assert_each_meeting_updated_once(&stack, &user, &expected[&user], 1);
}
