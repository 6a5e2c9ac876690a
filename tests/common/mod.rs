//! The end-to-end harness: a private Redis, a Radicale CalDAV server and an SMTP sink per test,
//! `mms worker` processes (the real binary) configured against them, seeding and waiting helpers.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_cli::demo;
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_core::{Mailbox, MailboxError, MailboxItem, SearchPage};
use mms_core::{MigrationStatus, TenantSettings};
use mms_store::{StatusFilter, Store};
use mms_testkit::radicale::Radicale;
use mms_testkit::redis::RedisServer;
use mms_testkit::smtp::SmtpSink;

pub struct Stack {
    pub redis: RedisServer,
    pub radicale: Radicale,
    pub smtp: SmtpSink,
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start(aof: bool) -> Stack {
        let (redis, radicale, smtp) = tokio::join!(
            RedisServer::start(aof),
            Radicale::start(),
            SmtpSink::start()
        );
        Stack {
            redis,
            radicale,
            smtp,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A configuration for tests: CalDAV on Radicale (or `caldav_base`, e.g. a fault proxy), SMTP
    /// to the sink, no coalescing delay, short lease / claim times, retries in seconds.
    pub fn config(&self, caldav_base: Option<&str>) -> MmsConfig {
        let mut cfg = MmsConfig {
            redis_url: self.redis.url(),
            namespace: "e2e".into(),
            service_address: "mms@service.example".into(),
            metrics_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
            api_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
            ..MmsConfig::default()
        };
        let base = caldav_base
            .map(str::to_string)
            .unwrap_or_else(|| self.radicale.base_url());
        cfg.mailbox = MailboxConfig::Caldav {
            calendar_url: format!("{base}/{{user}}/calendar/"),
            username: None,
            password: None,
            timeout_secs: 10,
            ca_file: None,
            options: Default::default(),
        };
        cfg.mail = MailConfig::Smtp {
            host: "127.0.0.1".into(),
            port: self.smtp.port,
            tls: mms_core::config::SmtpTls::None,
            username: None,
            password: None,
            timeout_secs: 10,
            ca_file: None,
            connections: 4,
            updates: Default::default(),
        };
        cfg.queue.coalesce_delay_ms = 0;
        cfg.queue.claim_idle_ms = 3_000;
        cfg.queue.block_ms = 50;
        cfg.queue.hold_recheck_ms = 500;
        cfg.lease.ttl_ms = 3_000;
        cfg.retry.schedule_secs = vec![1];
        cfg.concurrency.supervisor_idle_secs = 5;
        cfg
    }

    pub fn write_config(&self, cfg: &MmsConfig, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml::to_string(cfg).expect("config to TOML")).unwrap();
        path
    }

    pub async fn store(&self, cfg: &MmsConfig) -> Store {
        Store::connect(&cfg.redis_url, &cfg.namespace)
            .await
            .expect("store")
    }

    /// Tenant, bridge and users in the directory; a Radicale calendar per user with `meetings`
    /// demo meetings. Returns, per user, the event names MMS should migrate.
    pub async fn seed_tenant(
        &self,
        store: &Store,
        tenant: &str,
        users: &[String],
        meetings: usize,
    ) -> HashMap<String, Vec<String>> {
        store
            .create_tenant(&TenantSettings::defaults(tenant))
            .await
            .unwrap();
        claim_domains_of(store, tenant, users).await;
        store.put_bridge(&demo::demo_bridge(tenant)).await.unwrap();
        let now = Utc::now();
        let mut expected = HashMap::new();
        for upn in users {
            store.put_user(&demo::demo_user(tenant, upn)).await.unwrap();
            self.radicale.create_calendar(upn).await;
            let mut migrating = Vec::new();
            for m in demo::demo_meetings(upn, meetings, now) {
                let name = format!("{}.ics", m.uid);
                self.radicale.put_event(upn, &name, &m.ics).await;
                if m.migrates {
                    migrating.push(name);
                }
            }
            expected.insert(upn.clone(), migrating);
        }
        expected
    }
}

/// A `mms worker` process; SIGKILLed when dropped.
pub struct WorkerProcess {
    pub child: Child,
    pub name: String,
    /// Where this process serves `/metrics`.
    pub metrics_port: u16,
}

impl WorkerProcess {
    pub fn spawn(config: &std::path::Path, name: &str) -> WorkerProcess {
        let log = std::fs::File::create(config.with_file_name(format!("{name}.log"))).unwrap();
        let metrics_port = mms_testkit::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_mms"))
            .arg("worker")
            .arg("--config")
            .arg(config)
            .env("MMS_WORKER_NAME", name)
            .env("MMS_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("MMS_LOG", "info,mms_worker=debug")
            .env("MMS_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mms worker");
        WorkerProcess {
            child,
            name: name.to_string(),
            metrics_port,
        }
    }

    /// What the process has logged so far (JSON lines, `MMS_LOG_FORMAT=json`).
    pub fn log(&self, config: &std::path::Path) -> String {
        std::fs::read_to_string(config.with_file_name(format!("{}.log", self.name)))
            .unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no cleanup, leases and stream entries left behind.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The Prometheus text a worker process serves.
pub async fn scrape(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    reqwest::get(&url)
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Wait until every listed user of `tenant` has a migration in a final state.
pub async fn wait_final(
    store: &Store,
    tenant: &str,
    users: &[String],
    timeout: Duration,
) -> Vec<MigrationStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut rows = Vec::new();
        let mut all_final = true;
        for user in users {
            match store.user_statuses(tenant, user).await {
                Ok(statuses) if statuses.first().is_some_and(|s| s.state.is_final()) => {
                    rows.push(statuses[0].clone())
                }
                _ => all_final = false,
            }
        }
        if all_final {
            return rows;
        }
        if Instant::now() > deadline {
            match store.list_statuses(tenant, &StatusFilter::default()).await {
                Ok(all) => panic!(
                    "migrations of {tenant} not final after {timeout:?}: {:#?}",
                    all.iter()
                        .map(|s| (&s.user_principal_name, s.state, &s.last_message))
                        .collect::<Vec<_>>()
                ),
                Err(error) => panic!(
                    "migrations of {tenant} not final after {timeout:?}, and their statuses \
                     cannot be read: {error}"
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of a property (first occurrence, unfolded) in an iCalendar text.
pub fn property(ics: &str, name: &str) -> Option<String> {
    let unfolded = ics.replace("\r\n ", "").replace("\n ", "");
    unfolded.lines().find_map(|l| {
        let (head, value) = l.split_once(':')?;
        let prop = head.split(';').next()?;
        prop.eq_ignore_ascii_case(name)
            .then(|| value.trim_end_matches('\r').to_string())
    })
}

/// The Message-ID header of a raw message.
pub fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Message-ID:")
                .or_else(|| l.strip_prefix("Message-Id:"))
        })
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Give `tenant` the mail domains of `users` (the operator's step that lets a tenant reach those
/// mailboxes at all, mms_store::domains).
pub async fn claim_domains_of(store: &Store, tenant: &str, users: &[String]) {
    let domains: Vec<mms_store::domains::MailDomain> = users
        .iter()
        .filter_map(|u| mms_store::domains::MailDomain::of_upn(u))
        .collect();
    store
        .claim_domains(tenant, &domains)
        .await
        .unwrap()
        .expect("test domains are free");
}

/// A real CalDAV mailbox whose first save of one meeting (`target`, the end of its href) is
/// preceded by the organizer's own edit of it, made through the server with a plain PUT to
/// `event_url` (no If-Match): the server then answers 412 to our If-Match for real. With
/// [`OrganizerEditsFirst::deleting`], the organizer also deletes the meeting right after our
/// refused save, before we read it again.
pub struct OrganizerEditsFirst {
    inner: Arc<dyn Mailbox>,
    client: reqwest::Client,
    event_url: String,
    target: String,
    /// The organizer's edit: the first text becomes the second.
    edit: (&'static str, &'static str),
    delete_too: bool,
    done: AtomicBool,
}

impl OrganizerEditsFirst {
    pub fn new(
        inner: Arc<dyn Mailbox>,
        event_url: String,
        target: impl Into<String>,
        edit: (&'static str, &'static str),
    ) -> OrganizerEditsFirst {
        OrganizerEditsFirst {
            inner,
            client: reqwest::Client::new(),
            event_url,
            target: target.into(),
            edit,
            delete_too: false,
            done: AtomicBool::new(false),
        }
    }

    /// The organizer deletes the meeting too.
    pub fn deleting(mut self, delete_too: bool) -> OrganizerEditsFirst {
        self.delete_too = delete_too;
        self
    }

    /// Whether the edit was made.
    pub fn edited(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Mailbox for OrganizerEditsFirst {
    async fn search(
        &self,
        user: &str,
        from: DateTime<Utc>,
        cursor: Option<String>,
        page_size: usize,
    ) -> Result<SearchPage, MailboxError> {
        self.inner.search(user, from, cursor, page_size).await
    }
    async fn get(&self, user: &str, href: &str) -> Result<MailboxItem, MailboxError> {
        self.inner.get(user, href).await
    }
    async fn put(
        &self,
        user: &str,
        href: &str,
        ics: &str,
        if_match: &str,
    ) -> Result<String, MailboxError> {
        if !href.ends_with(&self.target) || self.done.swap(true, Ordering::SeqCst) {
            return self.inner.put(user, href, ics, if_match).await;
        }
        let current = self.inner.get(user, href).await?;
        let edited = current.ics.replace(self.edit.0, self.edit.1);
        assert_ne!(
            edited, current.ics,
            "the organizer's edit changes the meeting"
        );
        let resp = self
            .client
            .put(&self.event_url)
            .header("Content-Type", "text/calendar")
            .body(edited)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "the organizer's edit: {}",
            resp.status()
        );
        let result = self.inner.put(user, href, ics, if_match).await;
        if self.delete_too {
            let resp = self.client.delete(&self.event_url).send().await.unwrap();
            assert!(
                resp.status().is_success(),
                "the organizer's delete: {}",
                resp.status()
            );
        }
        result
    }
    async fn server_sends_updates(&self, user: &str) -> Result<bool, MailboxError> {
        self.inner.server_sends_updates(user).await
    }
}

/// Wait until `done` meetings of the migration are journaled, then return the lease's value
/// (`<token>:<owner>`): which worker is in the middle of the mailbox.
pub async fn lease_holder_once_under_way(
    store: &Store,
    tenant: &str,
    user: &str,
    correlation: &str,
    done: usize,
) -> String {
    let mut conn = store.connection();
    let lease_key = store.keys().lease(tenant, user);
    let journal_key = store.keys().journal(tenant, correlation);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let journaled: usize = redis::cmd("HLEN")
            .arg(&journal_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let lease: Option<String> = redis::cmd("GET")
            .arg(&lease_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let (true, Some(lease)) = (journaled >= done, lease) {
            return lease;
        }
        assert!(
            Instant::now() < deadline,
            "migration of {user} never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
