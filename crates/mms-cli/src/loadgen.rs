//! The load generator and benchmark (issue 11 point 7, D8, P6): `mms loadgen`, run by `make bench`.
//!
//! For each mailbox size (`--sizes`, 100 … 50,000 meetings) it builds seeded mailboxes with a
//! realistic mix ([`mix`]) in the embedded vdir store, starts `--workers` SEPARATE `mms worker`
//! processes (this binary) against a private `redis-server` and the strict aiosmtpd sink of
//! `mms-testkit`, queues one migration per user, and measures from outside: per-user time
//! (p50/p95/p99), queue wait (the user's `Queued` → `Started` history lines), peak RSS of each
//! worker (`VmHWM` of `/proc/<pid>/status`), Redis commands per meeting (`INFO commandstats`
//! before and after, its own polling subtracted), bytes sent to Redis, and the bytes the run
//! leaves in Redis per user and per meeting (`MEMORY USAGE`).
//!
//! In the same run it measures each backend's limit for the same work ([`baseline`]): the same
//! file reads and writes on the vdir folders by a plain Python loop (1 and 4 threads), the same
//! messages over one SMTP connection with `smtplib`, and, for a small CalDAV case on Radicale,
//! the same GET + PUT If-Match at MMS's per-mailbox concurrency. Every figure is printed as a
//! ratio to its limit: this machine is shared and noisy, so absolute times vary, ratios much less.
//!
//! It writes `results.json` and `chart.svg` (per-user time and RSS against mailbox size) under
//! `--out-dir` (default `target/bench`), and shows progress when stdout is a terminal.

mod baseline;
mod chart;
mod mix;
mod redis_stats;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use mms_core::config::MmsConfig;
use mms_core::{
    HistoryEventKind, MigrationRequest, MigrationState, MigrationStatus, SourceMeetingType,
    TargetMeetingType, TenantSettings, Trigger,
};
use mms_store::{StatusFilter, Store};
use mms_testkit::radicale::Radicale;
use mms_testkit::redis::RedisServer;
use mms_testkit::smtp::SmtpSink;
use serde::Serialize;

use crate::demo;
use redis_stats::RedisCounters;

#[derive(clap::Args, Debug)]
pub struct LoadgenArgs {
    /// Mailbox sizes (meetings per user) to measure, comma-separated; each is one workload.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,50000")]
    pub sizes: Vec<usize>,
    /// Users (mailboxes) per size, fewer where `--meetings-budget` says so (at least one).
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// Most meetings in one size's workload: users = min(--users, budget / size).
    #[arg(long, default_value_t = 100_000)]
    pub meetings_budget: usize,
    /// Separate `mms worker` processes per workload.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Events of the CalDAV (Radicale) case; 0 skips it.
    #[arg(long, default_value_t = 300)]
    pub caldav_events: usize,
    /// Seed of the mailbox mix: one seed, the same mailboxes.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Where results.json, chart.svg and the worker logs go.
    #[arg(long, default_value = "target/bench")]
    pub out_dir: PathBuf,
    /// Give up on one workload after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
}

const TENANT: &str = "bench";

/// Nearest-rank percentiles of a sample.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| -> f64 {
            if values.is_empty() {
                return 0.0;
            }
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i]
        };
        Percentiles {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: values.last().copied().unwrap_or_default(),
        }
    }
}

/// What Redis did for one workload.
#[derive(Debug, Serialize)]
struct RedisFigures {
    /// Every command Redis ran, those inside Lua scripts included, the benchmark's own left out.
    commands: u64,
    commands_per_meeting: f64,
    /// EVAL / EVALSHA / FCALL calls: each is one round trip running many commands.
    script_calls_per_meeting: f64,
    bytes_sent_to_redis: u64,
    bytes_sent_per_meeting: f64,
    /// `MEMORY USAGE` of every key the run left, summed.
    bytes_kept: u64,
    keys_kept: u64,
    bytes_kept_per_user: f64,
    bytes_kept_per_meeting: f64,
    used_memory_growth: i64,
    commands_by_name: BTreeMap<String, u64>,
}

/// One backend's limit next to MMS doing the same work.
#[derive(Debug, Serialize)]
struct Ratio {
    what: String,
    mms_per_second: f64,
    limit_per_second: f64,
    /// mms / limit: 1.0 is the backend's own rate.
    ratio: f64,
}

impl Ratio {
    fn new(what: impl Into<String>, mms_per_second: f64, limit_per_second: f64) -> Ratio {
        Ratio {
            what: what.into(),
            mms_per_second,
            limit_per_second,
            ratio: if limit_per_second > 0.0 {
                mms_per_second / limit_per_second
            } else {
                0.0
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct SizeResult {
    backend: &'static str,
    meetings_per_user: usize,
    users: usize,
    workers: usize,
    mix: mix::MixCounts,
    seconds: f64,
    meetings_per_second: f64,
    meetings_migrated: u64,
    updates_sent: u64,
    messages_received_by_sink: usize,
    succeeded_users: usize,
    failed_users: usize,
    /// Per user, from the request's creation to its final state.
    user_seconds: Percentiles,
    /// Per user, from `Queued` to `Started` in the user's history, in milliseconds.
    queue_wait_ms: Percentiles,
    /// `VmHWM` of each worker process, MiB.
    worker_peak_rss_mib: Vec<f64>,
    redis: RedisFigures,
    ratios: Vec<Ratio>,
}

pub async fn run(base: MmsConfig, args: LoadgenArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(args.out_dir.join("logs"))
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let exe = std::env::current_exe().context("finding the mms binary")?;
    let redis = RedisServer::start(false).await;
    let progress = Progress::new();
    let mut results = Vec::new();
    for &size in &args.sizes {
        let users = args.users.min(args.meetings_budget / size.max(1)).max(1);
        let result = run_vdir(&exe, &args, &redis, size.max(1), users, &progress).await?;
        progress.done(&summary_line(&result));
        results.push(result);
    }
    if args.caldav_events > 0 {
        let result = run_caldav(&exe, &base, &args, &redis, &progress).await?;
        progress.done(&summary_line(&result));
        results.push(result);
    }
    let chart_points: Vec<chart::ChartPoint> = results
        .iter()
        .filter(|r| r.backend == "vdir")
        .map(|r| chart::ChartPoint {
            meetings: r.meetings_per_user,
            user_seconds_p50: r.user_seconds.p50,
            peak_rss_mib: r.worker_peak_rss_mib.iter().copied().fold(0.0, f64::max),
        })
        .collect();
    let report = serde_json::json!({
        "generated_at": Utc::now().to_rfc3339(),
        "seed": args.seed,
        "workers_per_workload": args.workers,
        "note": "ratios are MMS's rate over the backend's own rate for the same work, measured in this run; \
                 the vdir and SMTP ratios divide the whole migration's rate (which does both, and Redis) by \
                 one backend's limit, so they are lower bounds for that backend's share",
        "workloads": results,
    });
    let json_path = args.out_dir.join("results.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let svg_path = args.out_dir.join("chart.svg");
    std::fs::write(&svg_path, chart::svg(&chart_points))
        .with_context(|| format!("writing {}", svg_path.display()))?;
    println!(
        "results: {}\nchart:   {}",
        json_path.display(),
        svg_path.display()
    );
    Ok(())
}

fn summary_line(r: &SizeResult) -> String {
    let ratios: Vec<String> = r
        .ratios
        .iter()
        .map(|x| format!("{} {:.2}", x.what, x.ratio))
        .collect();
    format!(
        "{} {} meetings x {} users, {} workers: {:.2}s, user p50/p95/p99 {:.2}/{:.2}/{:.2}s, \
         queue wait p50 {:.0} ms, peak RSS {:.1} MiB, Redis {:.2} commands ({:.2} scripts) and {:.0} bytes kept per meeting; \
         ratios to the limit: {}",
        r.backend,
        r.meetings_per_user,
        r.users,
        r.workers,
        r.seconds,
        r.user_seconds.p50,
        r.user_seconds.p95,
        r.user_seconds.p99,
        r.queue_wait_ms.p50,
        r.worker_peak_rss_mib.iter().copied().fold(0.0, f64::max),
        r.redis.commands_per_meeting,
        r.redis.script_calls_per_meeting,
        r.redis.bytes_kept_per_meeting,
        ratios.join(", ")
    )
}

/// The mailbox and outbox a worker process is given, as `MMS_*` variables.
enum WorkerBackends<'a> {
    Vdir { root: &'a Path },
    Caldav { calendar_url: String },
}

/// `mms worker` processes of one workload, killed when dropped.
struct Workers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Workers {
    fn spawn(
        exe: &Path,
        count: usize,
        redis_url: &str,
        namespace: &str,
        backends: &WorkerBackends<'_>,
        smtp_port: u16,
        log_dir: &Path,
    ) -> anyhow::Result<Workers> {
        let mut workers = Workers {
            children: Vec::new(),
            logs: Vec::new(),
        };
        for n in 0..count {
            let log = log_dir.join(format!("{namespace}-worker-{n}.log"));
            let log_file = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let mut cmd = Command::new(exe);
            cmd.arg("worker")
                .env_remove("MMS_CONFIG")
                .env("MMS_REDIS_URL", redis_url)
                .env("MMS_NAMESPACE", namespace)
                .env("MMS_WORKER_NAME", format!("{namespace}-worker-{n}"))
                .env(
                    "MMS_METRICS_ADDR",
                    format!("127.0.0.1:{}", mms_testkit::free_port()),
                )
                .env("MMS_QUEUE__COALESCE_DELAY_MS", "0")
                .env("MMS_MAIL__KIND", "smtp")
                .env("MMS_MAIL__HOST", "127.0.0.1")
                .env("MMS_MAIL__PORT", smtp_port.to_string())
                .env("MMS_MAIL__TLS", "none")
                .env("MMS_MAIL__TIMEOUT_SECS", "30")
                .env("MMS_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log_file);
            match backends {
                WorkerBackends::Vdir { root } => {
                    cmd.env("MMS_MAILBOX__KIND", "vdir")
                        .env("MMS_MAILBOX__ROOT", root);
                }
                WorkerBackends::Caldav { calendar_url } => {
                    cmd.env("MMS_MAILBOX__KIND", "caldav")
                        .env("MMS_MAILBOX__CALENDAR_URL", calendar_url)
                        .env("MMS_MAILBOX__TIMEOUT_SECS", "30");
                }
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {} worker", exe.display()))?;
            workers.children.push(child);
            workers.logs.push(log);
        }
        Ok(workers)
    }

    /// An error naming the log of a worker that has exited, if one has.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (child, log) in self.children.iter_mut().zip(&self.logs) {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "worker process {} exited ({status}) during the run; see {}",
                    child.id(),
                    log.display()
                );
            }
        }
        Ok(())
    }

    /// `VmHWM` (peak resident set) of each worker, MiB.
    fn peak_rss_mib(&self) -> anyhow::Result<Vec<f64>> {
        self.children
            .iter()
            .map(|child| {
                let path = format!("/proc/{}/status", child.id());
                let status =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                vm_hwm_kib(&status)
                    .map(|kib| kib as f64 / 1024.0)
                    .with_context(|| format!("no VmHWM line in {path}"))
            })
            .collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `VmHWM:   12345 kB` line of `/proc/<pid>/status`, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A fresh store namespace on the private Redis, with the bench tenant, its bridge and `users`.
async fn seed_store(
    redis: &RedisServer,
    namespace: &str,
    users: &[String],
) -> anyhow::Result<Store> {
    let store = Store::connect(&redis.url(), namespace).await?;
    store
        .create_tenant(&TenantSettings::defaults(TENANT))
        .await?;
    // The benchmark tenant owns its users' domain (mms_store::domains), as an operator would set it.
    let domain = mms_store::domains::MailDomain::parse("bench.example")?;
    if let Err(taken) = store.claim_domains(TENANT, &[domain]).await? {
        anyhow::bail!("bench.example belongs to tenant {}", taken.owner);
    }
    store.put_bridge(&demo::demo_bridge(TENANT)).await?;
    for upn in users {
        store.put_user(&demo::demo_user(TENANT, upn)).await?;
    }
    Ok(store)
}

/// One measured run: its users seeded in a namespace of their own, worker processes on one
/// backend, a fresh SMTP sink.
struct Workload<'a> {
    exe: &'a Path,
    args: &'a LoadgenArgs,
    redis: &'a RedisServer,
    namespace: &'a str,
    users: &'a [String],
    progress: &'a Progress,
    label: &'a str,
}

impl Workload<'_> {
    /// Seed, start `workers` processes on `backends`, migrate every user and stop the workers;
    /// the store, the measurement and the sink holding what was sent.
    async fn run(
        &self,
        workers: usize,
        backends: &WorkerBackends<'_>,
    ) -> anyhow::Result<(Store, Measured, SmtpSink)> {
        let store = seed_store(self.redis, self.namespace, self.users).await?;
        let sink = SmtpSink::start().await;
        let mut processes = Workers::spawn(
            self.exe,
            workers,
            &self.redis.url(),
            self.namespace,
            backends,
            sink.port,
            &self.args.out_dir.join("logs"),
        )?;
        let measured = migrate_all(
            &store,
            self.users,
            &mut processes,
            Duration::from_secs(self.args.timeout_secs),
            self.progress,
            self.label,
        )
        .await?;
        drop(processes);
        Ok((store, measured, sink))
    }
}

/// Queue one migration per user, wait until every one is final, and measure it.
struct Measured {
    seconds: f64,
    rows: Vec<MigrationStatus>,
    queue_wait_ms: Vec<f64>,
    peak_rss_mib: Vec<f64>,
    before: RedisCounters,
    after: RedisCounters,
    poll_calls: BTreeMap<String, u64>,
}

async fn migrate_all(
    store: &Store,
    users: &[String],
    workers: &mut Workers,
    timeout: Duration,
    progress: &Progress,
    label: &str,
) -> anyhow::Result<Measured> {
    let mut conn = store.connection();
    // What one poll costs Redis, so the polling can be taken out of the figures.
    let probe_before = RedisCounters::read(&mut conn).await?;
    store.tenant_summary(TENANT).await?;
    let probe_after = RedisCounters::read(&mut conn).await?;
    let per_poll = probe_before.calls_since(&probe_after);
    let before = RedisCounters::read(&mut conn).await?;
    let started = Instant::now();
    for upn in users {
        let request = MigrationRequest::new(
            TENANT,
            upn,
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        store.enqueue(&request, 0).await?;
    }
    let mut polls = 0u64;
    loop {
        workers.check_alive()?;
        let summary = store.tenant_summary(TENANT).await?;
        polls += 1;
        let finished =
            summary.in_state(MigrationState::Succeeded) + summary.in_state(MigrationState::Failed);
        progress.show(&format!(
            "{label}: {finished}/{} users done, {:.1}s",
            users.len(),
            started.elapsed().as_secs_f64()
        ));
        if finished as usize >= users.len() {
            break;
        }
        if started.elapsed() > timeout {
            bail!(
                "{label} did not finish in {}s (worker logs: {})",
                timeout.as_secs(),
                workers
                    .logs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_mib = workers.peak_rss_mib()?;
    let after = RedisCounters::read(&mut conn).await?;
    let poll_calls = per_poll
        .into_iter()
        .map(|(name, n)| (name, n * polls))
        .collect();
    let rows = store
        .list_statuses(TENANT, &StatusFilter::default())
        .await?;
    let mut queue_wait_ms = Vec::new();
    for upn in users {
        let history = store.history(TENANT, upn).await?;
        let at = |kind: HistoryEventKind| -> Option<DateTime<Utc>> {
            history.iter().find(|e| e.event == kind).map(|e| e.at)
        };
        if let (Some(queued), Some(started)) =
            (at(HistoryEventKind::Queued), at(HistoryEventKind::Started))
        {
            queue_wait_ms.push((started - queued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    Ok(Measured {
        seconds,
        rows,
        queue_wait_ms,
        peak_rss_mib,
        before,
        after,
        poll_calls,
    })
}

/// Redis's figures for a workload of `meetings` meetings of `users` users.
async fn redis_figures(
    store: &Store,
    namespace: &str,
    m: &Measured,
    meetings: usize,
    users: usize,
) -> anyhow::Result<RedisFigures> {
    // The benchmark's own reads (INFO, its polling) are not the service's work.
    let mut calls = m.before.calls_since(&m.after);
    calls.remove("info");
    for (name, n) in &m.poll_calls {
        if let Some(c) = calls.get_mut(name) {
            *c = c.saturating_sub(*n);
        }
    }
    calls.retain(|_, n| *n > 0);
    let commands: u64 = calls.values().sum();
    let scripts: u64 = [
        "eval",
        "evalsha",
        "fcall",
        "eval_ro",
        "evalsha_ro",
        "fcall_ro",
    ]
    .iter()
    .filter_map(|n| calls.get(*n))
    .sum();
    let mut conn = store.connection();
    let (bytes_kept, keys_kept) =
        redis_stats::namespace_bytes(&mut conn, &format!("{{{namespace}*")).await?;
    let per = |v: f64, n: usize| if n > 0 { v / n as f64 } else { 0.0 };
    let sent = m
        .after
        .net_input_bytes
        .saturating_sub(m.before.net_input_bytes);
    Ok(RedisFigures {
        commands,
        commands_per_meeting: per(commands as f64, meetings),
        script_calls_per_meeting: per(scripts as f64, meetings),
        bytes_sent_to_redis: sent,
        bytes_sent_per_meeting: per(sent as f64, meetings),
        bytes_kept,
        keys_kept,
        bytes_kept_per_user: per(bytes_kept as f64, users),
        bytes_kept_per_meeting: per(bytes_kept as f64, meetings),
        used_memory_growth: m.after.used_memory as i64 - m.before.used_memory as i64,
        commands_by_name: calls,
    })
}

fn counts_of(rows: &[MigrationStatus]) -> (u64, u64, usize, usize) {
    (
        rows.iter().map(|s| u64::from(s.succeeded_meeting)).sum(),
        rows.iter().map(|s| u64::from(s.invites_update)).sum(),
        rows.iter()
            .filter(|s| s.state == MigrationState::Succeeded)
            .count(),
        rows.iter()
            .filter(|s| s.state == MigrationState::Failed)
            .count(),
    )
}

fn user_seconds(rows: &[MigrationStatus]) -> Percentiles {
    Percentiles::of(
        rows.iter()
            .map(|s| (s.modified_date - s.create_date).num_milliseconds() as f64 / 1000.0)
            .collect(),
    )
}

async fn run_vdir(
    exe: &Path,
    args: &LoadgenArgs,
    redis: &RedisServer,
    size: usize,
    user_count: usize,
    progress: &Progress,
) -> anyhow::Result<SizeResult> {
    let label = format!("vdir {size} meetings x {user_count} users");
    progress.show(&format!("{label}: building mailboxes"));
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("mailboxes");
    let now = Utc::now();
    let users: Vec<String> = (0..user_count)
        .map(|i| format!("user{i}@bench.example"))
        .collect();
    let mut mix = mix::MixCounts::default();
    for (i, upn) in users.iter().enumerate() {
        mix.add(&mix::write_mailbox(
            &root,
            upn,
            size,
            args.seed.wrapping_add(i as u64),
            now,
        )?);
    }
    let namespace = format!("bench-vdir-{size}");
    let workload = Workload {
        exe,
        args,
        redis,
        namespace: &namespace,
        users: &users,
        progress,
        label: &label,
    };
    let backends = WorkerBackends::Vdir { root: &root };
    let (store, measured, sink) = workload.run(args.workers.max(1), &backends).await?;
    let meetings = size * user_count;
    let redis_figures = redis_figures(&store, &namespace, &measured, meetings, user_count).await?;
    let (migrated, updates, succeeded, failed) = counts_of(&measured.rows);
    let messages = baseline::message_count(&sink.mail_dir());
    let mms_meetings_per_s = meetings as f64 / measured.seconds;
    let mms_messages_per_s = messages as f64 / measured.seconds;

    progress.show(&format!("{label}: measuring the backends' limits"));
    let changed = baseline::changed_files(&root, &users, size, args.seed, now)?;
    let vdir1 = baseline::vdir(&changed, 1, dir.path())?;
    let vdir4 = baseline::vdir(&changed, 4, dir.path())?;
    let smtp_sink = SmtpSink::start().await;
    let smtp = baseline::smtp(&sink.mail_dir(), smtp_sink.port, 2_000)?;
    let ratios = vec![
        Ratio::new(
            "vdir (1-thread loop)",
            mms_meetings_per_s,
            vdir1.per_second(),
        ),
        Ratio::new(
            "vdir (4-thread loop)",
            mms_meetings_per_s,
            vdir4.per_second(),
        ),
        Ratio::new(
            "smtp (smtplib, one connection)",
            mms_messages_per_s,
            smtp.per_second(),
        ),
    ];
    redis
        .client()
        .get_multiplexed_async_connection()
        .await?
        .send_packed_command(&redis::cmd("FLUSHALL"))
        .await?;
    Ok(SizeResult {
        backend: "vdir",
        meetings_per_user: size,
        users: user_count,
        workers: args.workers.max(1),
        mix,
        seconds: measured.seconds,
        meetings_per_second: mms_meetings_per_s,
        meetings_migrated: migrated,
        updates_sent: updates,
        messages_received_by_sink: messages,
        succeeded_users: succeeded,
        failed_users: failed,
        user_seconds: user_seconds(&measured.rows),
        queue_wait_ms: Percentiles::of(measured.queue_wait_ms.clone()),
        worker_peak_rss_mib: measured.peak_rss_mib.clone(),
        redis: redis_figures,
        ratios,
    })
}

/// The small CalDAV case: one mailbox of `--caldav-events` events on Radicale, one worker, and
/// the raw GET + PUT If-Match client on an identical second calendar as the limit.
async fn run_caldav(
    exe: &Path,
    base: &MmsConfig,
    args: &LoadgenArgs,
    redis: &RedisServer,
    progress: &Progress,
) -> anyhow::Result<SizeResult> {
    let size = args.caldav_events;
    let label = format!("caldav {size} events x 1 user");
    progress.show(&format!("{label}: filling Radicale"));
    let radicale = Radicale::start().await;
    let upn = "caldav@bench.example".to_string();
    let raw_user = "raw@bench.example";
    let now = Utc::now();
    let (events, mix) = mix::meetings(&upn, size, args.seed, now);
    radicale.create_calendar(&upn).await;
    radicale.create_calendar(raw_user).await;
    for (name, ics) in &events {
        radicale.put_event(&upn, name, ics).await;
        radicale.put_event(raw_user, name, ics).await;
    }
    let users = vec![upn.clone()];
    let namespace = format!("bench-caldav-{size}");
    let workload = Workload {
        exe,
        args,
        redis,
        namespace: &namespace,
        users: &users,
        progress,
        label: &label,
    };
    let backends = WorkerBackends::Caldav {
        calendar_url: radicale.calendar_url_template(),
    };
    let (store, measured, sink) = workload.run(1, &backends).await?;
    let redis_figures = redis_figures(&store, &namespace, &measured, size, 1).await?;
    let (migrated, updates, succeeded, failed) = counts_of(&measured.rows);
    let messages = baseline::message_count(&sink.mail_dir());

    progress.show(&format!("{label}: measuring Radicale's limit"));
    // The events MMS rewrote are those whose stored text differs from the untouched copy.
    let migrated_events: Vec<(String, String)> = radicale.list_events(&upn);
    let untouched: BTreeMap<String, String> = radicale.list_events(raw_user).into_iter().collect();
    let base_url = radicale.base_url();
    let raw_calendar = radicale.calendar_url(raw_user);
    let raw_path = raw_calendar
        .strip_prefix(&base_url)
        .unwrap_or(&raw_calendar);
    let work: Vec<(String, bool)> = migrated_events
        .iter()
        .map(|(name, text)| {
            let changed = untouched.get(name).is_some_and(|orig| orig != text);
            (format!("{raw_path}{name}"), changed)
        })
        .collect();
    let port: u16 = base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("Radicale's port")?;
    let raw = baseline::caldav(
        port,
        &work,
        base.concurrency.meetings_per_user.max(1),
        tempfile::tempdir()?.path(),
    )?;
    let mms_events_per_s = size as f64 / measured.seconds;
    let ratios = vec![Ratio::new(
        format!(
            "caldav (raw GET + PUT If-Match, {} at once)",
            base.concurrency.meetings_per_user.max(1)
        ),
        mms_events_per_s,
        raw.per_second(),
    )];
    Ok(SizeResult {
        backend: "caldav",
        meetings_per_user: size,
        users: 1,
        workers: 1,
        mix,
        seconds: measured.seconds,
        meetings_per_second: mms_events_per_s,
        meetings_migrated: migrated,
        updates_sent: updates,
        messages_received_by_sink: messages,
        succeeded_users: succeeded,
        failed_users: failed,
        user_seconds: user_seconds(&measured.rows),
        queue_wait_ms: Percentiles::of(measured.queue_wait_ms.clone()),
        worker_peak_rss_mib: measured.peak_rss_mib.clone(),
        redis: redis_figures,
        ratios,
    })
}

/// One status line, rewritten in place on a terminal; plain lines only for the results otherwise.
struct Progress {
    tty: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stdout().is_terminal(),
        }
    }

    fn show(&self, line: &str) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K{line}");
            let _ = out.flush();
        }
    }

    fn done(&self, line: &str) {
        if self.tty {
            print!("\r\x1b[2K");
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        let one = Percentiles::of(vec![3.0]);
        assert_eq!((one.p50, one.p99), (3.0, 3.0));
        assert_eq!(Percentiles::of(Vec::new()).max, 0.0);
    }

    #[test]
    fn vm_hwm_is_read_from_proc_status() {
        assert_eq!(
            vm_hwm_kib("Name:\tmms\nVmHWM:\t   18432 kB\nVmRSS: 1 kB\n"),
            Some(18432)
        );
        assert_eq!(vm_hwm_kib("Name:\tmms\n"), None);
    }
}
