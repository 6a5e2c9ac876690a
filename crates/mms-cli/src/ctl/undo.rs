//! `undo-meeting-migration` (issue 9.2): queue the undo of one migration of a user, or show what
//! it would do (`--what-if`, the what-if's table). Without `--correlation-id` the user's latest
//! Succeeded migration (not itself an undo) is undone.

use mms_control::routes::migrations::StatusQuery;
use reqwest::Method;
use serde_json::Value;

use super::args::UndoArgs;
use super::client::{encode, params, Failure};
use super::render::View;
use super::{Ctx, Shown};

/// `undo-meeting-migration --identity U [--correlation-id C] [--what-if]`.
pub async fn undo(ctx: &Ctx, args: UndoArgs) -> Result<Shown, Failure> {
    let correlation = match args.correlation_id {
        Some(correlation) => {
            let path = ctx.tenant_path(&format!("/migrations/{}", encode(&correlation)))?;
            let row = ctx.client.get(&path).await?;
            check_owner(&row, &args.identity, &correlation)?;
            correlation
        }
        None => latest_succeeded(ctx, &args.identity).await?,
    };
    let mut path = ctx.tenant_path(&format!("/migrations/{}:undo", encode(&correlation)))?;
    let view = if args.what_if {
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

/// The correlation id of the user's newest Succeeded migration that is not an undo.
async fn latest_succeeded(ctx: &Ctx, identity: &str) -> Result<String, Failure> {
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
    rows.as_array()
        .into_iter()
        .flatten()
        .find(|row| row["MigrationType"] != "Undo")
        .and_then(|row| row["CorrelationId"].as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::local(
                "nothing_to_undo",
                format!(
                    "{identity} has no Succeeded migration to undo: list them with mmsctl get-meeting-migration-status --identity {identity}, then give --correlation-id"
                ),
            )
        })
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
