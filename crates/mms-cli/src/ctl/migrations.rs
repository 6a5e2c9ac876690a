//! Migration cmdlets: Start-CsExMeetingMigration (and its what-if), Get-CsMeetingMigrationStatus
//! (rows, summary, `--watch`), one migration by correlation id, and the transaction history.

use mms_control::routes::migrations::{StartMigration, StatusQuery};
use reqwest::Method;

use super::args::{StartArgs, StatusArgs};
use super::client::{encode, params, Failure};
use super::render::View;
use super::watch::{watch_until_final, WATCH_INTERVAL};
use super::{Ctx, Shown};

/// `start-meeting-migration [--what-if]`.
pub async fn start(ctx: &Ctx, args: StartArgs) -> Result<Shown, Failure> {
    let body = StartMigration {
        identity: args.identity,
        source_meeting_type: args.source_meeting_type.map(|t| t.to_string()),
        target_meeting_type: args.target_meeting_type.map(|t| t.to_string()),
    };
    let (path, view) = if args.what_if {
        ("/migrations:preview", View::Preview)
    } else {
        ("/migrations", View::Fields)
    };
    let value = ctx
        .client
        .send_json(Method::POST, &ctx.tenant_path(path)?, &body)
        .await?;
    Shown::reply(value, view)
}

/// `get-meeting-migration-status`: rows, `--summary-only`, or `--watch`.
pub async fn status(ctx: &Ctx, args: StatusArgs) -> Result<Shown, Failure> {
    let query = params(&StatusQuery {
        identity: args.identity,
        state: args.state.map(|s| s.to_string()),
        migration_type: args.migration_type.map(|t| t.to_string()),
        start_time: args.start_time,
        end_time: args.end_time,
    })?;
    if args.summary_only {
        let path = ctx.tenant_path("/migrations/summary")?;
        let reply = ctx.client.get_query(&path, &query).await?;
        return Shown::reply(reply.value, View::Summary);
    }
    let path = ctx.tenant_path("/migrations")?;
    if args.watch {
        let fetch = || async { Ok::<_, Failure>(ctx.client.get_query(&path, &query).await?.value) };
        let timeout = (args.timeout > 0).then(|| std::time::Duration::from_secs(args.timeout));
        let end = watch_until_final(
            fetch,
            &mut std::io::stdout(),
            ctx.output,
            WATCH_INTERVAL,
            timeout,
        )
        .await?;
        if let Some(problem) = end.problem() {
            eprintln!("{problem}");
        }
        return Ok(Shown::Exit(end.exit_code()));
    }
    let reply = ctx.client.get_query(&path, &query).await?;
    Shown::reply(reply.value, View::Status)
}

/// `get-meeting-migration --correlation-id`: the row and every meeting's outcome.
pub async fn get_one(ctx: &Ctx, correlation_id: &str) -> Result<Shown, Failure> {
    let path = ctx.tenant_path(&format!("/migrations/{}", encode(correlation_id)))?;
    Shown::reply(ctx.client.get(&path).await?, View::Migration)
}

/// `get-meeting-migration-transaction-history --identity`.
pub async fn history(ctx: &Ctx, identity: &str) -> Result<Shown, Failure> {
    let path = ctx.tenant_path(&format!("/users/{}/history", encode(identity)))?;
    Shown::reply(ctx.client.get(&path).await?, View::History)
}
