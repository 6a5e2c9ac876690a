//! `mms status`: a user's migrations or the summary, read straight from Redis (M1, M2).
//!
//! For operators on the worker hosts; admins use `mmsctl get-meeting-migration-status`, which goes
//! through the API and its tokens.

use std::collections::BTreeMap;

use mms_core::config::MmsConfig;
use mms_core::MigrationStatus;
use mms_store::{StatusFilter, Store};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Tenant id.
    #[arg(long, env = "MMS_TENANT", default_value = "demo")]
    pub tenant: String,
    /// User principal name; without it, every migration of the tenant.
    #[arg(long)]
    pub identity: Option<String>,
    /// Counts by State (and by MigrationType) only.
    #[arg(long)]
    pub summary_only: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: MmsConfig, args: StatusArgs) -> anyhow::Result<()> {
    let store = Store::from_config(&config).await?;
    let rows = match &args.identity {
        Some(user) => {
            store
                .user_statuses(&args.tenant, &user.to_ascii_lowercase())
                .await?
        }
        None => {
            store
                .list_statuses(&args.tenant, &StatusFilter::default())
                .await?
        }
    };
    if args.summary_only {
        let summary = summarize(&rows);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            println!("{:<12} {:>9}", "State", "UserCount");
            for (state, n) in &summary.by_state {
                println!("{state:<12} {n:>9}");
            }
            println!();
            println!("{:<14} {:>9}", "MigrationType", "UserCount");
            for (kind, n) in &summary.by_migration_type {
                println!("{kind:<14} {n:>9}");
            }
        }
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<32} {:<11} {:<13} {:>5} {:>5} {:>5} {:>6} {:>5}  LastMessage",
        "UserPrincipalName", "State", "MigrationType", "Total", "OK", "Fail", "Invite", "Retry"
    );
    for s in &rows {
        println!(
            "{:<32} {:<11} {:<13} {:>5} {:>5} {:>5} {:>6} {:>5}  {}",
            s.user_principal_name,
            s.state.to_string(),
            s.migration_type.to_string(),
            s.total_meeting,
            s.succeeded_meeting,
            s.failed_meeting,
            s.invites_update,
            s.retry_count,
            s.last_message
        );
    }
    Ok(())
}

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    by_state: BTreeMap<String, usize>,
    by_migration_type: BTreeMap<String, usize>,
}

/// The vendor's `-SummaryOnly` table: users per State, counting each user's latest migration.
fn summarize(rows: &[MigrationStatus]) -> Summary {
    let mut latest: BTreeMap<&str, &MigrationStatus> = BTreeMap::new();
    for s in rows {
        latest
            .entry(&s.user_principal_name)
            .and_modify(|cur| {
                if s.create_date > cur.create_date {
                    *cur = s
                }
            })
            .or_insert(s);
    }
    let mut summary = Summary {
        by_state: BTreeMap::new(),
        by_migration_type: BTreeMap::new(),
    };
    for s in latest.values() {
        *summary.by_state.entry(s.state.to_string()).or_default() += 1;
        *summary
            .by_migration_type
            .entry(s.migration_type.to_string())
            .or_default() += 1;
    }
    summary
}
