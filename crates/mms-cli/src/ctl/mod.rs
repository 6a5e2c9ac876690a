//! `mmsctl`: the admin CLI, one subcommand per cmdlet of the vendor's meeting migration, plus the
//! directory, tenant and event commands. It talks to the control API only (never to Redis), so
//! it works against any MMS deployment it can reach with a token.
//!
//! - [`args`]: the command line (and the help: import format, exit codes);
//! - [`client`]: one HTTP request, its body serialized from mms-control's own request types, so
//!   that an API change fails to compile here instead of at an admin's console;
//! - [`render`]: tables for people, the API's JSON for scripts (`--output json`);
//! - [`watch`]: `--watch` until every migration is final;
//! - one module per cmdlet group: [`migrations`], [`bulk`], [`undo`], [`tenants`], [`directory`],
//!   [`events`], [`jobs`].
//!
//! Errors print as `error: HTTP <status> <code>: <message>` (the API's code and message) or
//! `error: <code>: <message>` for a local problem; see [`args`] for the exit codes.

pub mod args;
pub mod bulk;
pub mod client;
pub mod directory;
pub mod events;
pub mod jobs;
pub mod migrations;
pub mod render;
pub mod tenants;
pub mod undo;
pub mod watch;

use std::process::ExitCode;

use serde_json::Value;

pub use args::{Command, MmsCtl, Output};
pub use client::Failure;
pub use watch::{watch_until_final, WatchEnd};

use client::{encode, Client};
use render::{render, View};

/// Exit status of a command the API refused, or of a local problem.
pub const EXIT_FAILURE: u8 = 1;

/// Exit status of `--watch` when a watched migration ended Failed.
pub const EXIT_MIGRATION_FAILED: u8 = 2;

/// Exit status of `--watch` when `--timeout` ran out before every migration was final.
pub const EXIT_WATCH_TIMEOUT: u8 = 3;

/// Exit status of a command line that does not parse (sysexits' `EX_USAGE`), distinct from the
/// `--watch` outcomes that scripts branch on.
pub const EXIT_USAGE: u8 = 64;

/// What a command has to show.
pub enum Shown {
    /// A reply, laid out by `view`; `note` goes to stderr after it (e.g. where the next page
    /// starts), so that stdout stays the reply alone.
    Reply {
        value: Value,
        view: View,
        note: Option<String>,
    },
    /// A command that decided its own exit code (`--watch`) and printed as it went.
    Exit(u8),
}

impl Shown {
    fn reply(value: Value, view: View) -> Result<Shown, Failure> {
        Ok(Shown::Reply {
            value,
            view,
            note: None,
        })
    }
}

/// What every command needs: the client, the tenant (if given) and the output format.
pub struct Ctx {
    pub client: Client,
    pub tenant: Option<String>,
    pub output: Output,
}

impl Ctx {
    /// The tenant, or a failure saying how to give it.
    pub fn tenant(&self) -> Result<&str, Failure> {
        self.tenant.as_deref().ok_or_else(|| {
            Failure::local(
                "missing_tenant",
                "this command needs --tenant (or MMS_TENANT)",
            )
        })
    }

    /// `/v1/tenants/{tenant}{rest}`, the tenant percent-encoded.
    pub fn tenant_path(&self, rest: &str) -> Result<String, Failure> {
        Ok(format!("/v1/tenants/{}{rest}", encode(self.tenant()?)))
    }
}

/// Parse the command line and run it: [`EXIT_USAGE`] when it does not parse.
pub fn main() -> ExitCode {
    match <MmsCtl as clap::Parser>::try_parse() {
        Ok(cli) => run(cli),
        Err(e) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 })
        }
    }
}

/// Run one mmsctl invocation.
pub fn run(cli: MmsCtl) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn execute(cli: MmsCtl) -> Result<ExitCode, Failure> {
    let ctx = Ctx {
        client: Client::new(&cli.api_url, cli.token)?,
        tenant: cli.tenant,
        output: cli.output,
    };
    let shown = match cli.command {
        Command::StartMeetingMigration(args) => migrations::start(&ctx, args).await?,
        Command::StartBulkMeetingMigration(args) => bulk::start(&ctx, args).await?,
        Command::GetMeetingMigrationStatus(args) => migrations::status(&ctx, args).await?,
        Command::GetMeetingMigration { correlation_id } => {
            migrations::get_one(&ctx, &correlation_id).await?
        }
        Command::UndoMeetingMigration(args) => undo::undo(&ctx, args).await?,
        Command::GetMeetingMigrationTransactionHistory { identity } => {
            migrations::history(&ctx, &identity).await?
        }
        Command::GetTenantMigrationConfiguration => tenants::get_migration(&ctx).await?,
        Command::SetTenantMigrationConfiguration {
            meeting_migration_enabled,
        } => tenants::set_migration(&ctx, meeting_migration_enabled).await?,
        Command::GetDialinConferencingTenantSettings => tenants::get_dialin(&ctx).await?,
        Command::SetDialinConferencingTenantSettings {
            automatically_migrate_user_meetings,
        } => tenants::set_dialin(&ctx, automatically_migrate_user_meetings).await?,
        Command::CreateTenant {
            meeting_migration_enabled,
            automatically_migrate_user_meetings,
            domains,
        } => {
            tenants::create(
                &ctx,
                meeting_migration_enabled,
                automatically_migrate_user_meetings,
                domains,
            )
            .await?
        }
        Command::SetTenantDomains { domains } => tenants::set_domains(&ctx, domains).await?,
        Command::ListTenants => tenants::list(&ctx).await?,
        Command::CreateToken => tenants::create_token(&ctx).await?,
        Command::ListTokens => tenants::list_tokens(&ctx).await?,
        Command::RevokeToken { id } => tenants::revoke_token(&ctx, &id).await?,
        Command::ImportUsers { file } => directory::import(&ctx, &file).await?,
        Command::ListUsers(args) => directory::list_users(&ctx, args).await?,
        Command::GetUser { identity } => directory::get_user(&ctx, &identity).await?,
        Command::SetUser(args) => directory::set_user(&ctx, args).await?,
        Command::RemoveUser { identity } => directory::remove_user(&ctx, &identity).await?,
        Command::SetBridge { id, name, numbers } => {
            directory::set_bridge(&ctx, &id, name, &numbers).await?
        }
        Command::GetBridge { id } => directory::get_bridge(&ctx, id.as_deref()).await?,
        Command::MoveUser {
            identity,
            to,
            move_to_teams,
        } => events::move_user(&ctx, identity, to, move_to_teams).await?,
        Command::GrantUpgradePolicy {
            identity,
            tenant_wide: _,
            mode,
            migrate_meetings_to_teams,
        } => events::grant_upgrade_policy(&ctx, identity, mode, migrate_meetings_to_teams).await?,
        Command::AudioConferencingChange { identity, change } => {
            events::audio_change(&ctx, identity, change).await?
        }
        Command::ChangeSipAddress {
            identity,
            sip_address,
        } => events::change_sip_address(&ctx, identity, sip_address).await?,
        Command::ChangeOrganizationMeetingUrl { url } => {
            events::change_organization_meeting_url(&ctx, url).await?
        }
        Command::UnassignBridgeNumber { bridge, number } => {
            events::unassign_bridge_number(&ctx, bridge, number).await?
        }
        Command::PostEvent { json } => events::post_json(&ctx, &json).await?,
        Command::GetJob { id, watch } => jobs::get_job(&ctx, &id, watch).await?,
        Command::ListJobs { limit, offset } => jobs::list_jobs(&ctx, limit, offset).await?,
    };
    match shown {
        Shown::Reply { value, view, note } => {
            print!("{}", render(&value, view, ctx.output));
            if let Some(note) = note {
                eprintln!("{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Shown::Exit(code) => Ok(ExitCode::from(code)),
    }
}
