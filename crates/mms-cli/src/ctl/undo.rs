//! `undo-meeting-migration` (issue 9.2): queue the undo of one migration of a user, or show what
//! it would do (`--what-if`, the what-if's table). Without `--correlation-id` the user's latest
//! Succeeded migration (not itself an undo) that saved something is undone.

use mms_control::routes::migrations::StatusQuery;
use reqwest::Method;
use serde_json::Value;

use super::args::UndoArgs;
use super::client::{encode, params, Failure};
use super::render::View;
use super::{Ctx, Shown};

/// `undo-meeting-migration --identity U [--correlation-id C] [--what-if]`.
pub async fn undo(ctx: &Ctx, args: UndoArgs) -> Result<Shown, Failure> {
    if let Some(correlation) = &args.correlation_id {
        let path = ctx.tenant_path(&format!("/migrations/{}", encode(correlation)))?;
        let row = ctx.client.get(&path).await?;
        check_owner(&row, &args.identity, correlation)?;
        return post_undo(ctx, correlation, args.what_if).await;
    }
    // Newest first; one that saved nothing (a re-run that found every meeting migrated) is
    // passed over for the one before it, so "the latest migration" means the latest that
    // changed something.
    let candidates = succeeded_migrations(ctx, &args.identity).await?;
    for correlation in &candidates {
        match post_undo(ctx, correlation, args.what_if).await {
            Err(failure) if failure.status == Some(409) && failure.code == "nothing_to_undo" => {
                continue
            }
            done => return done,
        }
    }
    Err(Failure::local(
        "nothing_to_undo",
        format!(
            "none of the {} Succeeded migrations of {} saved a meeting that can still be undone (or their journals expired): list them with mmsctl get-meeting-migration-status --identity {}",
            candidates.len(),
            args.identity,
            args.identity
        ),
    ))
}

/// `POST .../migrations/{C}:undo`, or its what-if.
async fn post_undo(ctx: &Ctx, correlation: &str, what_if: bool) -> Result<Shown, Failure> {
    let mut path = ctx.tenant_path(&format!("/migrations/{}:undo", encode(correlation)))?;
    let view = if what_if {
        path.push_str("?whatIf=true");
        View::Preview
    } else {
        View::Fields
    };
    let value = ctx
        .client
        .send_json(Method::POST, &path, &serde_json::json!({}))
        .await?;
    Shown::reply(value, view)
}

/// The correlation ids of the user's Succeeded migrations that are not undos, newest first.
async fn succeeded_migrations(ctx: &Ctx, identity: &str) -> Result<Vec<String>, Failure> {
    let query = params(&StatusQuery {
        identity: Some(identity.to_string()),
        state: Some("Succeeded".into()),
        ..StatusQuery::default()
    })?;
    let rows = ctx
        .client
        .get_query(&ctx.tenant_path("/migrations")?, &query)
        .await?
        .value;
    let candidates: Vec<String> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["MigrationType"] != "Undo")
        .filter_map(|row| row["CorrelationId"].as_str().map(str::to_string))
        .collect();
    if candidates.is_empty() {
        return Err(Failure::local(
            "nothing_to_undo",
            format!(
                "{identity} has no Succeeded migration to undo: list them with mmsctl get-meeting-migration-status --identity {identity}, then give --correlation-id"
            ),
        ));
    }
    Ok(candidates)
}

/// A given correlation id must be a migration of the given user (a UPN is compared; a SIP
/// address is left to the API, which resolves it).
fn check_owner(row: &Value, identity: &str, correlation: &str) -> Result<(), Failure> {
    let owner = row["UserPrincipalName"].as_str().unwrap_or_default();
    let is_upn = !identity.to_ascii_lowercase().starts_with("sip:");
    if is_upn && !owner.eq_ignore_ascii_case(identity) {
        return Err(Failure::local(
            "wrong_identity",
            format!("migration {correlation} is of {owner}, not {identity}: give that user's --identity, or leave --correlation-id out to undo the latest migration of {identity}"),
        ));
    }
    Ok(())
}
