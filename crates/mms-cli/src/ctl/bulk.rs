//! `start-bulk-meeting-migration`: start migrations for many users (or all) as one background
//! job, over the API's own [`BulkStart`] request (`POST .../migrations:bulk`).

use std::path::Path;

use mms_control::routes::bulk::BulkStart;

use super::args::BulkStartArgs;
use super::client::{Body, Failure};
use super::{jobs, Ctx, Shown};

/// Submit the bulk start; the reply waits a little for the job, then shows it.
pub async fn start(ctx: &Ctx, args: BulkStartArgs) -> Result<Shown, Failure> {
    let mut identities = args.identity;
    if let Some(file) = &args.identities_file {
        identities.extend(read_identities(file)?);
    }
    if identities.is_empty() && !args.all_users {
        return Err(Failure::local(
            "no_users",
            "say whom to migrate: --identity U (repeat it), --identities-file F (one per line), or --all-users",
        ));
    }
    let body = BulkStart {
        identities: (!args.all_users).then_some(identities),
        all_users: args.all_users,
        source_meeting_type: args.source_meeting_type.map(|t| t.to_string()),
        target_meeting_type: args.target_meeting_type.map(|t| t.to_string()),
    };
    let value = ctx
        .client
        .post_waiting_for_job(&ctx.tenant_path("/migrations:bulk")?, Body::json(&body)?)
        .await?;
    jobs::job_reply(&value).ok_or_else(|| {
        Failure::local(
            "unexpected_reply",
            format!("the bulk start's reply is not a job: {value}"),
        )
    })
}

/// One identity per line; blank lines and `#` comments skipped.
fn read_identities(file: &Path) -> Result<Vec<String>, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::local(
            "unreadable_file",
            format!("--identities-file {}: {e}", file.display()),
        )
    })?;
    Ok(identities_of(&text))
}

fn identities_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identities_file_skips_blank_lines_and_comments() {
        let text = "# wave 1\nann@acme.example\n\n  sip:bob@acme.example  \n# done\n";
        assert_eq!(
            identities_of(text),
            ["ann@acme.example", "sip:bob@acme.example"]
        );
    }
}
