//! `mms status`: a user's migrations or the summary, read straight from Redis (M1, M2).
//!
//! For operators on the worker hosts; admins use `mmsctl get-meeting-migration-status`, which goes
//! through the API and its tokens.

use mms_control::routes::migrations::summarize;
use mms_core::config::MmsConfig;
use mms_core::MigrationStatus;
use mms_store::{StatusFilter, Store};

use crate::ctl::render::{render, View};
use crate::ctl::Output;

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
    // Newest first, as the API lists them (the summary counts each user's newest migration).
    let mut rows: Vec<MigrationStatus> = match &args.identity {
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
    rows.sort_by(|a, b| b.create_date.cmp(&a.create_date));
    let output = if args.json {
        Output::Json
    } else {
        Output::Table
    };
    // The API's own summary and tables: `mms status` and `mmsctl` show the same shapes.
    let (value, view) = if args.summary_only {
        (serde_json::to_value(summarize(&rows))?, View::Summary)
    } else {
        (serde_json::to_value(&rows)?, View::Status)
    };
    print!("{}", render(&value, view, output));
    Ok(())
}
