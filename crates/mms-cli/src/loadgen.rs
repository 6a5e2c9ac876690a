//! The load generator (D8): builds large mailboxes in the embedded vdir store, migrates them with
//! in-process workers against the configured Redis, and writes the figures to a results file.
//!
//! It runs the same workload once per entry of `--workers` (e.g. `1,2`) in one invocation, so the
//! report can state a ratio measured on one machine in one run (this machine is shared and noisy:
//! absolute figures vary, ratios much less).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_core::{MigrationRequest, SourceMeetingType, TargetMeetingType, TenantSettings, Trigger};
use mms_store::{StatusFilter, Store};
use serde::Serialize;

use crate::demo;

#[derive(clap::Args, Debug)]
pub struct LoadgenArgs {
    /// Users (mailboxes) to migrate.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Meetings per mailbox (7 in 10 are future meetings with an online block).
    #[arg(long, default_value_t = 500)]
    pub meetings: usize,
    /// Worker counts to measure, comma-separated; each runs the whole workload.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Where the results go (JSON).
    #[arg(long, default_value = "bench-results.json")]
    pub out: PathBuf,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

#[derive(Debug, Serialize)]
struct RunResult {
    workers: usize,
    users: usize,
    meetings_per_user: usize,
    seconds: f64,
    meetings_per_second: f64,
    updates_sent: u64,
    succeeded_users: usize,
    failed_users: usize,
    /// Per user, from the request's creation to its final state (P6: the vendor needs up to two hours).
    user_seconds_p50: f64,
    user_seconds_max: f64,
}

pub async fn run(base: MmsConfig, args: LoadgenArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &workers in &args.workers {
        let result = run_once(&base, &args, workers.max(1)).await?;
        println!(
            "workers={} users={} meetings/user={} -> {:.2}s, {:.0} meetings/s, {} updates sent",
            result.workers,
            result.users,
            result.meetings_per_user,
            result.seconds,
            result.meetings_per_second,
            result.updates_sent
        );
        results.push(result);
    }
    let ratio = match (results.first(), results.last()) {
        (Some(a), Some(b)) if results.len() > 1 && a.seconds > 0.0 => {
            Some(b.meetings_per_second / a.meetings_per_second)
        }
        _ => None,
    };
    let report = serde_json::json!({
        "generated_at": Utc::now().to_rfc3339(),
        "runs": results,
        "throughput_ratio_last_vs_first": ratio,
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("results written to {}", args.out.display());
    Ok(())
}

async fn run_once(
    base: &MmsConfig,
    args: &LoadgenArgs,
    workers: usize,
) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let mut config = base.clone();
    config.namespace = format!(
        "loadgen-{}-{}",
        std::process::id(),
        Utc::now().timestamp_millis()
    );
    config.mailbox = MailboxConfig::Vdir {
        root: dir.path().join("mailboxes"),
        options: Default::default(),
    };
    config.mail = MailConfig::Maildir {
        root: dir.path().join("outbox"),
        updates: Default::default(),
    };
    config.queue.coalesce_delay_ms = 0;
    config.queue.block_ms = 20;
    let config = Arc::new(config);
    let store = Store::connect(&config.redis_url, &config.namespace).await?;
    let tenant = "loadgen";
    store
        .create_tenant(&TenantSettings::defaults(tenant))
        .await?;
    let domain = mms_store::domains::MailDomain::parse("loadgen.example")?;
    if let Err(taken) = store.claim_domains(tenant, &[domain]).await? {
        anyhow::bail!("loadgen.example belongs to tenant {}", taken.owner);
    }
    store.put_bridge(&demo::demo_bridge(tenant)).await?;
    let root = dir.path().join("mailboxes");
    let now = Utc::now();
    let users: Vec<String> = (0..args.users)
        .map(|i| format!("load{i}@loadgen.example"))
        .collect();
    for upn in &users {
        store.put_user(&demo::demo_user(tenant, upn)).await?;
        demo::write_mailbox(&root, upn, args.meetings, now)?;
    }
    let mut handles = Vec::new();
    for w in 0..workers {
        let mut services = crate::service::services(config.clone(), store.clone()).await?;
        services.worker_name = format!("loadgen-worker-{w}");
        handles.push(mms_worker::run_worker(services).await?);
    }
    let started = Instant::now();
    for upn in &users {
        let request = MigrationRequest::new(
            tenant,
            upn,
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        store.enqueue(&request, 0).await?;
    }
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let rows = loop {
        let rows = store
            .list_statuses(tenant, &StatusFilter::default())
            .await?;
        if rows.len() == users.len() && rows.iter().all(|s| s.state.is_final()) {
            break rows;
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "load run with {workers} workers did not finish in {}s",
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    for handle in handles {
        handle.shutdown(Duration::from_secs(5)).await;
    }
    purge_namespace(&store, &config.namespace).await?;
    let mut per_user: Vec<f64> = rows
        .iter()
        .map(|s| (s.modified_date - s.create_date).num_milliseconds() as f64 / 1000.0)
        .collect();
    per_user.sort_by(f64::total_cmp);
    let total = (args.users * args.meetings) as f64;
    Ok(RunResult {
        workers,
        users: args.users,
        meetings_per_user: args.meetings,
        seconds,
        meetings_per_second: total / seconds,
        updates_sent: rows.iter().map(|s| u64::from(s.invites_update)).sum(),
        succeeded_users: rows
            .iter()
            .filter(|s| s.state == mms_core::MigrationState::Succeeded)
            .count(),
        failed_users: rows
            .iter()
            .filter(|s| s.state == mms_core::MigrationState::Failed)
            .count(),
        user_seconds_p50: per_user
            .get(per_user.len() / 2)
            .copied()
            .unwrap_or_default(),
        user_seconds_max: per_user.last().copied().unwrap_or_default(),
    })
}

/// A load run leaves nothing behind in the shared Redis: every key of its namespace is deleted.
async fn purge_namespace(store: &Store, namespace: &str) -> anyhow::Result<()> {
    let mut conn = store.connection();
    let pattern = format!("{{{namespace}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
