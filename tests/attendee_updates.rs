//! Every attendee gets the right update exactly once (issue 7; P4, P5, P7, D4, D5), against real
//! servers: Radicale and Xandikos as mailboxes, the embedded vdir store for hostile files, and an
//! aiosmtpd relay that enforces what real relays enforce (998-octet lines and 100 recipients per
//! transaction by default, per-recipient refusals on demand). Each failure is injected for real
//! and each test proves what reached whom: messages and envelope recipients counted at the relay,
//! status counts read from Redis.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use common::{wait_final, OrganizerEditsFirst};
use mms_cli::demo;
use mms_core::config::{
    MailConfig, MailboxConfig, MailboxOptions, MmsConfig, SchedulingMode, SmtpTls, UpdatePolicy,
};
use mms_core::{
    Mailbox, MigrationRequest, MigrationState, MigrationStatus, SourceMeetingType,
    TargetMeetingType, TenantSettings, Trigger,
};
use mms_store::Store;
use mms_testkit::caldav::{CaldavKind, CaldavServer};
use mms_testkit::proxy::FaultProxy;
use mms_testkit::redis::RedisServer;
use mms_testkit::smtp::{ReceivedMail, SinkOptions, SmtpSink};
use mms_worker::WorkerHandle;

/// A private Redis, a CalDAV server of one kind, a strict relay, and the configuration between.
struct Rig {
    _redis: RedisServer,
    caldav: CaldavServer,
    smtp: SmtpSink,
    cfg: MmsConfig,
    store: Store,
}

impl Rig {
    async fn start(kind: CaldavKind, relay: SinkOptions<'_>) -> Rig {
        let (redis, caldav, smtp) = tokio::join!(
            RedisServer::start(false),
            CaldavServer::start(kind),
            SmtpSink::start_with(relay)
        );
        let calendar_url = caldav.calendar_url_template();
        let mut cfg = config(&redis, smtp.port, calendar_url);
        if kind == CaldavKind::Xandikos {
            // Xandikos advertises `calendar-auto-schedule` but sends no iMIP to attendees outside
            // it, so MMS must mail (ARCHITECTURE.md, "Who sends the update").
            if let MailboxConfig::Caldav { options, .. } = &mut cfg.mailbox {
                options.scheduling = SchedulingMode::Mms;
            }
        }
        let store = Store::connect(&cfg.redis_url, &cfg.namespace)
            .await
            .unwrap();
        Rig {
            _redis: redis,
            caldav,
            smtp,
            cfg,
            store,
        }
    }

    /// Tenant, bridge, the domain of `users` and the users in the directory; an empty calendar each.
    async fn seed(&self, tenant: &str, users: &[String]) {
        seed_directory(&self.store, tenant, users).await;
        for user in users {
            self.caldav.create_calendar(user).await;
        }
    }
}

fn config(redis: &RedisServer, smtp_port: u16, calendar_url: String) -> MmsConfig {
    let mut cfg = MmsConfig {
        redis_url: redis.url(),
        namespace: "updates".into(),
        service_address: "mms@service.example".into(),
        metrics_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
        api_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
        ..MmsConfig::default()
    };
    cfg.mailbox = MailboxConfig::Caldav {
        calendar_url,
        username: None,
        password: None,
        timeout_secs: 30,
        ca_file: None,
        options: MailboxOptions::default(),
    };
    cfg.mail = smtp_config(smtp_port);
    cfg.queue.coalesce_delay_ms = 0;
    cfg.queue.block_ms = 50;
    cfg.lease.ttl_ms = 10_000;
    cfg.queue.claim_idle_ms = 10_000;
    cfg.retry.schedule_secs = vec![1];
    cfg.retry.max_retries = 1;
    cfg
}

fn smtp_config(port: u16) -> MailConfig {
    MailConfig::Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        timeout_secs: 60,
        ca_file: None,
        connections: 2,
        updates: UpdatePolicy::default(),
    }
}

async fn seed_directory(store: &Store, tenant: &str, users: &[String]) {
    store
        .create_tenant(&TenantSettings::defaults(tenant))
        .await
        .unwrap();
    common::claim_domains_of(store, tenant, users).await;
    store.put_bridge(&demo::demo_bridge(tenant)).await.unwrap();
    for user in users {
        store
            .put_user(&demo::demo_user(tenant, user))
            .await
            .unwrap();
    }
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

async fn worker(cfg: &MmsConfig, store: &Store, mailbox: Option<Arc<dyn Mailbox>>) -> WorkerHandle {
    let mut services = mms_cli::service::services(Arc::new(cfg.clone()), store.clone())
        .await
        .unwrap();
    services.worker_name = format!("w-{}", uuid::Uuid::new_v4());
    if let Some(mailbox) = mailbox {
        services.mailbox = mailbox;
    }
    mms_worker::run_worker(services).await.unwrap()
}

/// Run one manual migration of `user` to its end with a fresh in-process worker.
async fn migrate(
    cfg: &MmsConfig,
    store: &Store,
    tenant: &str,
    user: &str,
    mailbox: Option<Arc<dyn Mailbox>>,
) -> MigrationStatus {
    let handle = worker(cfg, store, mailbox).await;
    let queued = store.enqueue(&manual(tenant, user), 0).await.unwrap();
    let status = loop {
        let rows = wait_final(store, tenant, &[user.to_string()], Duration::from_secs(300)).await;
        if rows[0].correlation_id == queued.correlation_id {
            break rows[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    handle.shutdown(Duration::from_secs(10)).await;
    status
}

/// An Outlook-style SfB meeting tomorrow organized by `organizer` with `attendees` guests
/// (`g<i>@<uid>.guests.example`), the i-th guest's PARTSTAT from `partstat(i)`.
fn meeting(
    organizer: &str,
    uid: &str,
    attendees: usize,
    partstat: impl Fn(usize) -> &'static str,
) -> String {
    let guests: Vec<String> = (0..attendees).map(|i| guest(uid, i)).collect();
    let summary = format!("Meeting {uid}");
    let ics = demo::invitation(&demo::Invitation {
        uid,
        organizer,
        attendees: &guests,
        start: Utc::now() + Span::days(1),
        block: demo::BlockKind::SfB,
        weekly_count: None,
        summary: &summary,
    });
    let index: HashMap<&str, usize> = guests
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let mut out = String::with_capacity(ics.len());
    for line in ics.split_inclusive("\r\n") {
        let attendee = line
            .strip_prefix("ATTENDEE")
            .and_then(|l| l.trim_end().rsplit_once("mailto:"))
            .and_then(|(_, address)| index.get(address));
        match attendee {
            Some(&i) => out.push_str(&line.replace(
                "PARTSTAT=NEEDS-ACTION",
                &format!("PARTSTAT={}", partstat(i)),
            )),
            None => out.push_str(line),
        }
    }
    out
}

const OLD_BLOCK: &str = "meet.contoso.com/old/";

/// The journal entry of the meeting stored as `name` (journal keys are the mailbox's hrefs).
fn by_name<'j>(
    journal: &'j HashMap<String, mms_store::JournalEntry>,
    name: &str,
) -> &'j mms_store::JournalEntry {
    journal
        .iter()
        .find(|(href, _)| href.ends_with(name))
        .map(|(_, entry)| entry)
        .unwrap_or_else(|| panic!("no journal entry for {name}: {journal:#?}"))
}

fn guest(uid: &str, i: usize) -> String {
    format!("g{i}@{uid}.guests.example")
}

fn accepted(_: usize) -> &'static str {
    "ACCEPTED"
}

/// Envelope recipients per meeting, found by the guests' domain `<uid>.guests.example`
/// (duplicates kept, so a test can find them).
fn recipients_by_meeting(mails: &[ReceivedMail]) -> HashMap<String, Vec<String>> {
    let mut by_uid: HashMap<String, Vec<String>> = HashMap::new();
    for mail in mails {
        for rcpt in &mail.rcpt_to {
            let rcpt = rcpt.to_ascii_lowercase();
            let uid = rcpt
                .split_once('@')
                .and_then(|(_, d)| d.strip_suffix(".guests.example"))
                .unwrap_or("?")
                .to_string();
            by_uid.entry(uid).or_default().push(rcpt);
        }
    }
    by_uid
}

fn assert_lines_fit(mails: &[ReceivedMail]) {
    for mail in mails {
        for line in mail.data.split(|b| *b == b'\n') {
            assert!(
                line.len() <= 1000,
                "a line of {} octets reached the relay",
                line.len()
            );
        }
    }
}

/// Meetings of 40, 60, 300, 1,500 and 10,000 attendees through a relay that takes at most 100
/// recipients per transaction and lines of at most 998 octets: every guest gets exactly one
/// update, the status counts five migrated meetings (issue 7.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_meetings_reach_every_attendee_exactly_once() {
    let rig = Rig::start(CaldavKind::Radicale, SinkOptions::default()).await;
    let organizer = "host@big.example".to_string();
    rig.seed("big", std::slice::from_ref(&organizer)).await;
    let sizes = [40usize, 60, 300, 1_500, 10_000];
    for size in sizes {
        let uid = format!("m{size}");
        let ics = meeting(&organizer, &uid, size, accepted);
        rig.caldav
            .put_event(&organizer, &format!("{uid}.ics"), &ics)
            .await;
    }
    let status = migrate(&rig.cfg, &rig.store, "big", &organizer, None).await;
    assert_eq!(status.state, MigrationState::Succeeded, "{status:#?}");
    assert_eq!(status.succeeded_meeting as usize, sizes.len());
    assert_eq!(status.failed_meeting, 0);
    assert_eq!(status.invites_update as usize, sizes.len());

    let mails = rig.smtp.messages();
    assert_lines_fit(&mails);
    let by_uid = recipients_by_meeting(&mails);
    for size in sizes {
        let uid = format!("m{size}");
        let got = &by_uid[&uid];
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(got.len(), size, "{uid}: {} deliveries", got.len());
        assert_eq!(distinct.len(), size, "{uid}: every guest exactly once");
    }
    assert!(
        mails.iter().all(|m| m.rcpt_to.len() <= 100),
        "batches respect the relay's limit"
    );
    let expected_messages: usize = sizes.iter().map(|n| n.div_ceil(100)).sum();
    assert_eq!(
        mails.len(),
        expected_messages,
        "one message per batch of 100"
    );
}

/// The relay refuses one attendee (550 on RCPT): the others get the update, the refused one is
/// named, the meeting is not counted as migrated and the migration fails. A later manual start,
/// through a relay that takes the address, sends the owed update to that attendee alone, with
/// the same Message-ID, although the meeting's text is already rewritten (issue 7.1). A declined
/// attendee gets nothing, and the outcome says so (issue 7.10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_attendee_is_named_and_a_later_run_sends_it_the_owed_update() {
    let refused = guest("r60", 7);
    let refuse = [refused.as_str()];
    let rig = Rig::start(
        CaldavKind::Radicale,
        SinkOptions {
            refuse: &refuse,
            ..SinkOptions::default()
        },
    )
    .await;
    let organizer = "host@refuse.example".to_string();
    rig.seed("refuse", std::slice::from_ref(&organizer)).await;
    let declined = |i| if i == 5 { "DECLINED" } else { "ACCEPTED" };
    rig.caldav
        .put_event(
            &organizer,
            "r60.ics",
            &meeting(&organizer, "r60", 60, declined),
        )
        .await;
    let status = migrate(&rig.cfg, &rig.store, "refuse", &organizer, None).await;
    assert_eq!(status.state, MigrationState::Failed, "{status:#?}");
    assert_eq!(status.succeeded_meeting, 0);
    assert_eq!(status.failed_meeting, 1);
    assert_eq!(status.invites_update, 0, "not every attendee got it");
    assert!(
        status.last_message.contains(&refused),
        "{}",
        status.last_message
    );
    let journal = rig
        .store
        .journal("refuse", &status.correlation_id)
        .await
        .unwrap();
    let outcome = by_name(&journal, "r60.ics");
    assert!(outcome.reason.contains(&refused), "{}", outcome.reason);
    assert!(
        outcome.reason.contains("550"),
        "the relay's reply: {}",
        outcome.reason
    );
    assert!(
        outcome.reason.contains(&guest("r60", 5)) && outcome.reason.contains("declined"),
        "the declined attendee is named as not notified: {}",
        outcome.reason
    );
    let first = rig.smtp.messages();
    let got: HashSet<String> = first.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    assert_eq!(
        got.len(),
        58,
        "60 guests less the declined and the refused one"
    );
    assert!(!got.contains(&refused) && !got.contains(&guest("r60", 5)));
    let saved = rig.caldav.get_event(&organizer, "r60.ics").await;
    assert!(saved.contains("SEQUENCE:1"), "saved once:\n{saved}");

    // The admin fixes the relay (here: another relay that takes the address) and starts again.
    let fixed = SmtpSink::start().await;
    let mut cfg = rig.cfg.clone();
    cfg.mail = smtp_config(fixed.port);
    let again = migrate(&cfg, &rig.store, "refuse", &organizer, None).await;
    assert_eq!(again.state, MigrationState::Succeeded, "{again:#?}");
    assert_eq!(again.invites_update, 1, "{again:#?}");
    let resent = fixed.messages();
    assert_eq!(resent.len(), 1, "one message");
    assert_eq!(
        resent[0].rcpt_to,
        vec![refused.clone()],
        "to the owed attendee alone"
    );
    assert_eq!(
        common::message_id(&resent[0].data),
        common::message_id(&first[0].data),
        "the same message as the first batch"
    );
    let saved_again = rig.caldav.get_event(&organizer, "r60.ics").await;
    assert!(saved_again.contains("SEQUENCE:1"), "not saved again");
    // A third run owes nothing and sends nothing.
    let third = migrate(&cfg, &rig.store, "refuse", &organizer, None).await;
    assert_eq!(third.state, MigrationState::Succeeded);
    assert_eq!(fixed.messages().len(), 1, "nothing sent twice");
}

/// On both real servers: a migration, then a second run, then a run after the server re-spelled
/// the stored meetings: the later runs send nothing and raise no SEQUENCE (issue 7.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_sends_nothing_on_either_server() {
    for kind in CaldavKind::ALL {
        let rig = Rig::start(kind, SinkOptions::default()).await;
        let organizer = format!("owner@rerun-{kind:?}.example").to_ascii_lowercase();
        rig.seed("rerun", std::slice::from_ref(&organizer)).await;
        let mut migrating = Vec::new();
        for m in demo::demo_meetings(&organizer, 10, Utc::now()) {
            let name = format!("{}.ics", m.uid);
            rig.caldav.put_event(&organizer, &name, &m.ics).await;
            if m.migrates {
                migrating.push(name);
            }
        }
        let first = migrate(&rig.cfg, &rig.store, "rerun", &organizer, None).await;
        assert_eq!(
            first.state,
            MigrationState::Succeeded,
            "{kind:?}: {first:#?}"
        );
        assert_eq!(first.invites_update as usize, migrating.len(), "{kind:?}");
        let sent = rig.smtp.messages().len();
        assert_eq!(
            sent,
            migrating.len(),
            "{kind:?}: one message per migrated meeting"
        );
        let stored: Vec<String> = futures::future::join_all(
            migrating
                .iter()
                .map(|name| rig.caldav.get_event(&organizer, name)),
        )
        .await;

        let second = migrate(&rig.cfg, &rig.store, "rerun", &organizer, None).await;
        assert_eq!(second.state, MigrationState::Succeeded, "{kind:?}");
        assert_eq!(second.invites_update, 0, "{kind:?}: {second:#?}");
        assert_eq!(
            rig.smtp.messages().len(),
            sent,
            "{kind:?}: the re-run sent nothing"
        );
        for (name, before) in migrating.iter().zip(&stored) {
            let after = rig.caldav.get_event(&organizer, name).await;
            assert_eq!(
                common::property(&after, "SEQUENCE"),
                common::property(before, "SEQUENCE"),
                "{kind:?} {name}: SEQUENCE not raised"
            );
        }
    }
}

/// On both servers: the organizer edits a meeting between our read and our write (a real 412):
/// their edit is kept and the block replaced, one update sent. When they delete it right after,
/// the meeting is skipped, not retried (issue 7.2, 7.11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_edit_or_delete_under_us_on_either_server() {
    for kind in CaldavKind::ALL {
        for delete_too in [false, true] {
            let rig = Rig::start(kind, SinkOptions::default()).await;
            let organizer = "editor@edit.example".to_string();
            rig.seed("edit", std::slice::from_ref(&organizer)).await;
            let ics = meeting(&organizer, "e1", 3, accepted);
            rig.caldav.put_event(&organizer, "e1.ics", &ics).await;
            let inner = mms_mailbox::mailbox_from_config(&rig.cfg.mailbox, 4).unwrap();
            let mailbox = Arc::new(
                OrganizerEditsFirst::new(
                    inner,
                    format!("{}e1.ics", rig.caldav.calendar_url(&organizer)),
                    "e1.ics",
                    ("SUMMARY:", "SUMMARY:EDITED BY ORGANIZER "),
                )
                .deleting(delete_too),
            );
            let status = migrate(
                &rig.cfg,
                &rig.store,
                "edit",
                &organizer,
                Some(mailbox.clone()),
            )
            .await;
            assert!(mailbox.edited(), "the edit was injected");
            assert_eq!(
                status.state,
                MigrationState::Succeeded,
                "{kind:?}: {status:#?}"
            );
            assert_eq!(status.retry_count, 0, "{kind:?}: no retry of the mailbox");
            let journal = rig
                .store
                .journal("edit", &status.correlation_id)
                .await
                .unwrap();
            let outcome = journal.values().next().unwrap();
            if delete_too {
                assert!(
                    outcome.reason.contains("deleted by its organizer"),
                    "{kind:?}: {outcome:?}"
                );
                assert!(
                    rig.smtp.messages().is_empty(),
                    "{kind:?}: nothing to tell anyone"
                );
            } else {
                let stored = rig.caldav.get_event(&organizer, "e1.ics").await;
                let unfolded = stored.replace("\r\n ", "").replace("\n ", "");
                assert!(
                    unfolded.contains("EDITED BY ORGANIZER"),
                    "{kind:?}: edit kept"
                );
                assert!(!unfolded.contains(OLD_BLOCK), "{kind:?}: block replaced");
                assert_eq!(rig.smtp.messages().len(), 1, "{kind:?}: one update");
            }
        }
    }
}

/// Tenant A holds a user record with tenant B's UPN (written straight into A's directory, as no
/// API lets it in): A's migration of it touches nothing of B's and mails nobody (issue 7.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_migrate_another_tenants_mailbox() {
    let rig = Rig::start(CaldavKind::Radicale, SinkOptions::default()).await;
    let victim = "ceo@fabrikam.example".to_string();
    rig.seed("fabrikam", std::slice::from_ref(&victim)).await;
    for m in demo::demo_meetings(&victim, 5, Utc::now()) {
        rig.caldav
            .put_event(&victim, &format!("{}.ics", m.uid), &m.ics)
            .await;
    }
    let names: Vec<String> = (0..5)
        .map(|i| format!("{victim}-meeting-{i}.ics"))
        .collect();
    let before: Vec<String> =
        futures::future::join_all(names.iter().map(|n| rig.caldav.get_event(&victim, n))).await;
    // Tenant contoso, with its own domain, smuggles fabrikam's UPN into its directory.
    seed_directory(
        &rig.store,
        "contoso",
        &["admin@contoso.example".to_string()],
    )
    .await;
    rig.store
        .put_user(&demo::demo_user("contoso", &victim))
        .await
        .unwrap();
    let status = migrate(&rig.cfg, &rig.store, "contoso", &victim, None).await;
    assert_eq!(status.state, MigrationState::Failed, "{status:#?}");
    assert!(
        status.last_message.contains("does not own the mail domain"),
        "{}",
        status.last_message
    );
    let after: Vec<String> =
        futures::future::join_all(names.iter().map(|n| rig.caldav.get_event(&victim, n))).await;
    assert_eq!(before, after, "fabrikam's meetings untouched");
    assert!(
        rig.smtp.messages().is_empty(),
        "no update mailed from fabrikam's user"
    );
    // The owner itself still migrates the same mailbox.
    let own = migrate(&rig.cfg, &rig.store, "fabrikam", &victim, None).await;
    assert_eq!(own.state, MigrationState::Succeeded, "{own:#?}");
}

/// A mailbox server that schedules implicitly (RFC 6638, `calendar-auto-schedule` in its DAV
/// header, added here by a header-rewriting proxy in front of real Radicale): MMS saves the
/// meetings and mails nothing; with `mailbox.scheduling = "mms"` it mails again (issue 7.9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_schedules_itself_gets_no_second_update_from_mms() {
    let rig = Rig::start(CaldavKind::Radicale, SinkOptions::default()).await;
    let proxy = FaultProxy::start(rig.caldav.port()).await;
    proxy.add_dav_capability(Some("calendar-auto-schedule"));
    let organizer = "sched@sched.example".to_string();
    rig.seed("sched", std::slice::from_ref(&organizer)).await;
    rig.caldav
        .put_event(
            &organizer,
            "s1.ics",
            &meeting(&organizer, "s1", 4, accepted),
        )
        .await;
    let mut cfg = rig.cfg.clone();
    cfg.mailbox = MailboxConfig::Caldav {
        calendar_url: format!("{}/{{user}}/calendar/", proxy.base_url()),
        username: None,
        password: None,
        timeout_secs: 30,
        ca_file: None,
        options: MailboxOptions::default(),
    };
    let status = migrate(&cfg, &rig.store, "sched", &organizer, None).await;
    assert_eq!(status.state, MigrationState::Succeeded, "{status:#?}");
    let saved = rig.caldav.get_event(&organizer, "s1.ics").await;
    assert!(saved.contains("SEQUENCE:1"), "saved");
    assert!(
        rig.smtp.messages().is_empty(),
        "the server sends the update, not MMS"
    );
    let journal = rig
        .store
        .journal("sched", &status.correlation_id)
        .await
        .unwrap();
    let outcome = by_name(&journal, "s1.ics");
    assert!(outcome.reason.contains("RFC 6638"), "{outcome:?}");
}

/// A vdir mailbox holding one binary file, one 50 MB file and three good meetings: the three are
/// migrated, the two are failed meetings with their reasons, nothing else stops (issue 7.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_files_are_per_meeting_outcomes() {
    let redis = RedisServer::start(false).await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&redis, smtp.port, String::new());
    cfg.mailbox = MailboxConfig::Vdir {
        root: dir.path().to_path_buf(),
        options: MailboxOptions::default(),
    };
    let store = Store::connect(&cfg.redis_url, &cfg.namespace)
        .await
        .unwrap();
    let organizer = "files@files.example".to_string();
    seed_directory(&store, "files", std::slice::from_ref(&organizer)).await;
    let folder = dir.path().join(&organizer);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..3 {
        let uid = format!("good{i}");
        std::fs::write(
            folder.join(format!("{uid}.ics")),
            meeting(&organizer, &uid, 2, accepted),
        )
        .unwrap();
    }
    std::fs::write(
        folder.join("binary.ics"),
        [0xffu8, 0xfe, 0x00, 0x81, 0x9c, 0x00],
    )
    .unwrap();
    let mut huge = meeting(&organizer, "huge", 2, accepted);
    huge.insert_str(
        huge.find("END:VEVENT").unwrap(),
        &format!("X-PADDING:{}\r\n", "x".repeat(50 * 1024 * 1024)),
    );
    std::fs::write(folder.join("huge.ics"), huge).unwrap();
    let status = migrate(&cfg, &store, "files", &organizer, None).await;
    assert_eq!(status.succeeded_meeting, 3, "{status:#?}");
    assert_eq!(status.failed_meeting, 2, "{status:#?}");
    assert_eq!(status.invites_update, 3);
    let journal = store
        .journal("files", &status.correlation_id)
        .await
        .unwrap();
    let reason = |name: &str| journal[name].reason.to_ascii_lowercase();
    assert!(
        reason("binary.ics").contains("utf-8"),
        "{}",
        reason("binary.ics")
    );
    assert!(
        reason("huge.ics").contains("large") || reason("huge.ics").contains("bytes"),
        "{}",
        reason("huge.ics")
    );
    assert_eq!(smtp.messages().len(), 3);
    for i in 0..3 {
        let text = std::fs::read_to_string(folder.join(format!("good{i}.ics"))).unwrap();
        assert!(!text.contains(OLD_BLOCK), "good{i} migrated");
    }
    assert!(Path::new(&folder.join("binary.ics")).exists());
}

/// Run `request` to its end with a fresh in-process worker.
async fn run_request(
    cfg: &MmsConfig,
    store: &Store,
    request: &MigrationRequest,
) -> MigrationStatus {
    let handle = worker(cfg, store, None).await;
    let queued = store.enqueue(request, 0).await.unwrap();
    let status = loop {
        let rows = wait_final(
            store,
            &request.tenant,
            std::slice::from_ref(&request.user),
            Duration::from_secs(300),
        )
        .await;
        if rows[0].correlation_id == queued.correlation_id {
            break rows[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    handle.shutdown(Duration::from_secs(10)).await;
    status
}

fn unfold(ics: &str) -> String {
    ics.replace("\r\n ", "")
        .replace("\n ", "")
        .replace("\r\n\t", "")
}

/// Issue 9.2 on both servers: migrate, the organizer edits one meeting's agenda (outside the
/// block) and another meeting's block, then undo. The first gets its original block back with
/// the agenda edit kept, the second is skipped with the reason, one update goes out per undone
/// meeting (Message-IDs new), a what-if of the undo changes nothing, and a second undo sends
/// nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_puts_the_old_blocks_back_and_keeps_the_organizers_edits_on_either_server() {
    for kind in CaldavKind::ALL {
        let rig = Rig::start(kind, SinkOptions::default()).await;
        let organizer = format!("owner@undo-{kind:?}.example").to_ascii_lowercase();
        rig.seed("undo", std::slice::from_ref(&organizer)).await;
        let mut migrating = Vec::new();
        for m in demo::demo_meetings(&organizer, 10, Utc::now()) {
            let name = format!("{}.ics", m.uid);
            rig.caldav.put_event(&organizer, &name, &m.ics).await;
            if m.migrates {
                migrating.push((name, m.ics.clone()));
            }
        }
        assert!(
            migrating.len() >= 3,
            "{kind:?}: the demo mailbox migrates several meetings"
        );
        let migration = migrate(&rig.cfg, &rig.store, "undo", &organizer, None).await;
        assert_eq!(
            migration.state,
            MigrationState::Succeeded,
            "{kind:?}: {migration:#?}"
        );
        let migration_ids: HashSet<String> = rig
            .smtp
            .messages()
            .iter()
            .map(|m| common::message_id(&m.data))
            .collect();
        assert_eq!(migration_ids.len(), migrating.len(), "{kind:?}");

        // The organizer's edits, saved through the server.
        let (agenda_name, agenda_original) = &migrating[0];
        let (block_name, _) = &migrating[1];
        let stored = unfold(&rig.caldav.get_event(&organizer, agenda_name).await);
        let edited: String = stored
            .lines()
            .map(|l| {
                if l.starts_with("DESCRIPTION") {
                    l.replacen("Agenda:", "Agenda v2 (edited):", 1)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        assert!(edited.contains("Agenda v2 (edited):"), "{kind:?}: {stored}");
        rig.caldav.put_event(&organizer, agenda_name, &edited).await;
        let stored = unfold(&rig.caldav.get_event(&organizer, block_name).await);
        let marker = mms_ical::render::MMS_MARKER;
        assert!(stored.contains(marker), "{kind:?}");
        let edited = stored.replace(marker, "Dial in with the room phone instead");
        rig.caldav.put_event(&organizer, block_name, &edited).await;

        let undo_request = MigrationRequest::new(
            "undo",
            organizer.clone(),
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Undo {
                of: migration.correlation_id.clone(),
            },
        );

        // What-if first: nothing saved, nothing sent.
        let before_what_if: Vec<String> = futures::future::join_all(
            migrating
                .iter()
                .map(|(name, _)| rig.caldav.get_event(&organizer, name)),
        )
        .await;
        let services = mms_cli::service::services(Arc::new(rig.cfg.clone()), rig.store.clone())
            .await
            .unwrap();
        let profile = rig.store.user("undo", &organizer).await.unwrap().unwrap();
        let preview = mms_core::preview::Previewer::preview_undo(
            &mms_worker::preview::MailboxPreviewer::new(services),
            &profile,
            &migration.correlation_id,
        )
        .await
        .unwrap();
        let would = |outcome| {
            preview
                .items
                .iter()
                .filter(|i| i.outcome == outcome)
                .count()
        };
        assert_eq!(
            would(mms_core::preview::PreviewOutcome::WouldUpdate),
            migrating.len() - 1,
            "{kind:?}: {preview:#?}"
        );
        assert_eq!(
            would(mms_core::preview::PreviewOutcome::Skipped),
            1,
            "{kind:?}"
        );
        let after_what_if: Vec<String> = futures::future::join_all(
            migrating
                .iter()
                .map(|(name, _)| rig.caldav.get_event(&organizer, name)),
        )
        .await;
        assert_eq!(
            before_what_if, after_what_if,
            "{kind:?}: the what-if changed nothing"
        );
        assert_eq!(
            rig.smtp.messages().len(),
            migrating.len(),
            "{kind:?}: and sent nothing"
        );

        let undo = run_request(&rig.cfg, &rig.store, &undo_request).await;
        assert_eq!(undo.state, MigrationState::Succeeded, "{kind:?}: {undo:#?}");
        assert_eq!(undo.migration_type, mms_core::MigrationType::Undo);
        assert_ne!(undo.correlation_id, migration.correlation_id);
        assert_eq!(
            undo.invites_update as usize,
            migrating.len() - 1,
            "{kind:?}: {undo:#?}"
        );

        // The agenda edit is kept and the original block is back.
        let undone = unfold(&rig.caldav.get_event(&organizer, agenda_name).await);
        assert!(undone.contains("Agenda v2 (edited):"), "{kind:?}: {undone}");
        assert!(
            !undone.contains(marker),
            "{kind:?}: MMS's block is gone: {undone}"
        );
        let old_url = ["meetup-join/19%3ameeting_OLD", "meet.contoso.com/old/"]
            .into_iter()
            .find(|u| agenda_original.contains(u))
            .expect("the demo meeting has an old block");
        assert!(
            undone.contains(old_url),
            "{kind:?}: the old block is back: {undone}"
        );
        // The meeting whose block the organizer changed is left as they made it.
        let journal = rig
            .store
            .journal("undo", &undo.correlation_id)
            .await
            .unwrap();
        // Journal keys are hrefs, percent-encoded.
        let skipped = journal
            .iter()
            .find(|(href, _)| {
                href.ends_with(&block_name.replace('@', "%40"))
                    || href.ends_with(block_name.as_str())
            })
            .map(|(_, entry)| entry)
            .unwrap_or_else(|| panic!("{kind:?}: no journal entry for {block_name}: {journal:#?}"));
        assert_eq!(skipped.stage, mms_store::MeetingStage::Skipped, "{kind:?}");
        assert!(
            skipped.reason.contains("changed the online-meeting block"),
            "{kind:?}: {}",
            skipped.reason
        );
        let kept = unfold(&rig.caldav.get_event(&organizer, block_name).await);
        assert!(
            kept.contains("Dial in with the room phone instead"),
            "{kind:?}"
        );

        // One update per undone meeting, each a new Message-ID.
        let mails = rig.smtp.messages();
        assert_eq!(
            mails.len(),
            migrating.len() + migrating.len() - 1,
            "{kind:?}"
        );
        let undo_ids: HashSet<String> = mails[migrating.len()..]
            .iter()
            .map(|m| common::message_id(&m.data))
            .collect();
        assert_eq!(undo_ids.len(), migrating.len() - 1, "{kind:?}");
        assert!(
            undo_ids.is_disjoint(&migration_ids),
            "{kind:?}: the undo's Message-IDs are its own"
        );

        // A second undo finds every meeting as before: nothing more is sent.
        let mut again = undo_request.clone();
        again.correlation_id = uuid::Uuid::new_v4().to_string();
        let second = run_request(&rig.cfg, &rig.store, &again).await;
        assert_eq!(
            second.state,
            MigrationState::Succeeded,
            "{kind:?}: {second:#?}"
        );
        assert_eq!(second.invites_update, 0, "{kind:?}");
        assert_eq!(
            rig.smtp.messages().len(),
            mails.len(),
            "{kind:?}: the second undo sent nothing"
        );
    }
}
