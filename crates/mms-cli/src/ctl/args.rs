//! The command line of `mmsctl`: global options, one subcommand per cmdlet or admin task, and
//! the help that documents the import format and the exit codes.
//!
//! Values with a fixed vocabulary (meeting types, upgrade modes, homes...) are parsed here into
//! the API's own types, so that a typo fails before any request is sent and the error lists
//! the accepted spellings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mms_core::{
    AudioProvider, MailboxLocation, MigrationState, MigrationType, SourceMeetingType,
    TargetMeetingType, TeamsUpgradeMode, UserHome,
};
use serde::de::DeserializeOwned;

use super::{EXIT_FAILURE, EXIT_MIGRATION_FAILED, EXIT_USAGE, EXIT_WATCH_TIMEOUT};

/// What `mmsctl --help` ends with: the exit codes scripts branch on.
const EXIT_CODES_HELP: &str = concat!(
    "Exit codes:\n",
    "  0   success\n",
    "  1   the API refused the request or could not be reached (the error shows the HTTP status,\n",
    "      the API's code and its message), or a local problem (a file that cannot be read)\n",
    "  2   --watch: a watched migration ended Failed\n",
    "  3   --watch: --timeout ran out before every migration was final\n",
    "  64  the command line is wrong (unknown option, missing value)\n",
);

/// `mmsctl import-users --help`: the file format.
const IMPORT_HELP: &str = "\
Import users from a CSV file (header row of field names) or a JSON file (an array of objects
with the same field names), chosen by the file's extension (.json: JSON, anything else: CSV).
All or nothing: one bad row rejects the file, and every problem is listed (row, field, what
is wrong). A row creates or replaces its user. Samples: deploy/examples/users.csv, users.json.

Fields (enum values are case-insensitive):
  Upn               required: the user principal name, e.g. ada@contoso.com
  SipAddress        sip:ada@contoso.com or ada@contoso.com; unique in the tenant
  UserId            stable id; derived from tenant and UPN when absent
  Home              Cloud (default) or OnPremises
  Mailbox           Cloud (default) or ExchangeOnPremises (X1: never migrated)
  TeamsUpgradeMode  Islands (default), SfBOnly, SfBWithTeamsCollab,
                    SfBWithTeamsCollabAndMeetings or TeamsOnly
  AudioEnabled      true or false: whether the user has audio conferencing (dial-in).
                    Absent: an existing user keeps their current dial-in (only the audio
                    fields given change); a new user is refused, because defaulting to false
                    would strip the dial-in numbers from every meeting at its migration.
  AudioProvider     Microsoft (default) or ThirdParty
  Bridge            id of an existing bridge (mmsctl set-bridge)
  ConferenceId      the user's PSTN conference id
  DefaultTollNumber the bridge number shown first

Example (CSV):
  Upn,SipAddress,AudioEnabled,Bridge,ConferenceId
  ada@contoso.com,sip:ada@contoso.com,true,main,4000001
  bob@contoso.com,,false,,";

#[derive(Debug, Parser)]
#[command(
    name = "mmsctl",
    version,
    about = "Administer MMS, the Meeting Migration Service, through its HTTP API",
    after_help = EXIT_CODES_HELP
)]
pub struct MmsCtl {
    /// Base URL of the MMS control API.
    #[arg(
        long,
        env = "MMS_API_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api_url: String,
    /// Bearer token (operator, or the tenant's admin token).
    #[arg(long, env = "MMS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Tenant the command applies to.
    #[arg(long, env = "MMS_TENANT", global = true)]
    pub tenant: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start-CsExMeetingMigration: queue a migration for one user (runs at once).
    StartMeetingMigration(StartArgs),
    /// Start migrations for many users (--identity repeated, --identities-file) or --all-users,
    /// as one background job; shows the job (follow it with get-job --watch).
    StartBulkMeetingMigration(BulkStartArgs),
    /// Get-CsMeetingMigrationStatus: migrations (or their summary), filtered; --watch follows them.
    GetMeetingMigrationStatus(StatusArgs),
    /// One migration by correlation id, with every meeting's outcome and reason.
    GetMeetingMigration {
        #[arg(long)]
        correlation_id: String,
    },
    /// Undo a migration of one user (MMS's own; no cmdlet has it): every meeting it saved gets
    /// its previous online block back, the organizer's later edits kept, and one update per
    /// meeting. Without --correlation-id: the user's latest Succeeded migration. --what-if shows
    /// what the undo would do and queues nothing. The undo is a migration of its own
    /// (MigrationType Undo, its own correlation id): follow it with get-meeting-migration.
    UndoMeetingMigration(UndoArgs),
    /// Get-CsMeetingMigrationTransactionHistory: every trigger, step and outcome of one user.
    GetMeetingMigrationTransactionHistory {
        #[arg(long)]
        identity: String,
    },
    /// Get-CsTenantMigrationConfiguration.
    GetTenantMigrationConfiguration,
    /// Set-CsTenantMigrationConfiguration.
    SetTenantMigrationConfiguration {
        #[arg(long, action = clap::ArgAction::Set)]
        meeting_migration_enabled: bool,
    },
    /// Get-CsOnlineDialInConferencingTenantSettings.
    GetDialinConferencingTenantSettings,
    /// Set-CsOnlineDialInConferencingTenantSettings.
    SetDialinConferencingTenantSettings {
        #[arg(long, action = clap::ArgAction::Set)]
        automatically_migrate_user_meetings: bool,
    },
    /// Create the tenant --tenant with its two switches (operator token; both on unless given).
    CreateTenant {
        /// Set-CsTenantMigrationConfiguration -MeetingMigrationEnabled.
        #[arg(long, action = clap::ArgAction::Set)]
        meeting_migration_enabled: Option<bool>,
        /// Set-CsOnlineDialInConferencingTenantSettings -AutomaticallyMigrateUserMeetings.
        #[arg(long, action = clap::ArgAction::Set)]
        automatically_migrate_user_meetings: Option<bool>,
        /// A verified mail domain of the tenant (repeatable): only its users can be migrated.
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// Give --tenant more verified mail domains (operator token); a domain has one owner.
    SetTenantDomains {
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
    },
    /// The tenants this token may see (all for the operator).
    ListTenants,
    /// Mint a tenant-admin token for --tenant (operator token); printed once, with its id.
    CreateToken,
    /// List the stored tokens by id, role and tenant (operator token); tokens are never shown.
    ListTokens,
    /// A background job's progress (a tenant-wide fan-out posted as a job); --watch follows it
    /// until it ends (exit 2 when it failed).
    GetJob {
        #[arg(long)]
        id: String,
        #[arg(long)]
        watch: bool,
    },
    /// The tenant's background jobs, newest first.
    ListJobs {
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        offset: Option<usize>,
    },
    /// Revoke a token by the id create-token printed or list-tokens shows (operator token).
    RevokeToken {
        #[arg(long)]
        id: String,
    },
    /// Import users from a CSV or JSON file, all or nothing (see --help for the format).
    #[command(long_about = IMPORT_HELP)]
    ImportUsers {
        #[arg(long)]
        file: PathBuf,
    },
    /// The tenant's users, filtered, one page at a time.
    ListUsers(ListUsersArgs),
    /// Show one user's directory record.
    GetUser {
        #[arg(long)]
        identity: String,
    },
    /// Create a user or change the fields given (the others keep their values). A new user
    /// needs --audio-enabled.
    SetUser(SetUserArgs),
    /// Remove a user from the directory (their history is kept).
    RemoveUser {
        #[arg(long)]
        identity: String,
    },
    /// Event: the user was moved on-premises -> cloud (T1) or cloud -> on-premises (X2).
    MoveUser {
        #[arg(long)]
        identity: String,
        #[arg(long, value_enum)]
        to: MoveTarget,
        /// Move-CsUser -MoveToTeams (T1a).
        #[arg(long)]
        move_to_teams: bool,
    },
    /// Event: TeamsUpgradePolicy granted (T3) to one user (--identity) or to every user of the
    /// tenant (--tenant-wide): one of the two is required, so a forgotten --identity cannot
    /// migrate a whole tenant.
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["identity", "tenant_wide"])))]
    GrantUpgradePolicy {
        #[arg(long)]
        identity: Option<String>,
        /// Grant to every user of the tenant (each user whose mode it changes is migrated).
        #[arg(long)]
        tenant_wide: bool,
        /// Islands, SfBOnly, SfBWithTeamsCollab, SfBWithTeamsCollabAndMeetings or TeamsOnly.
        #[arg(long, value_parser = vendor_enum::<TeamsUpgradeMode>)]
        mode: TeamsUpgradeMode,
        #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
        migrate_meetings_to_teams: bool,
    },
    /// Event: an audio-conferencing change of a user (T2a–T2d, conference id): one per command.
    AudioConferencingChange {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        change: AudioChange,
    },
    /// Event (T2-no): the user's SIP address changed; recorded in their history, nothing queued.
    ChangeSipAddress {
        #[arg(long)]
        identity: String,
        /// The new address, with or without `sip:`.
        #[arg(long)]
        sip_address: String,
    },
    /// Event (T2-no): the organization's meeting URL changed; recorded in every user's
    /// history, nothing queued.
    ChangeOrganizationMeetingUrl {
        #[arg(long)]
        url: String,
    },
    /// Create or replace an audio-conferencing bridge and its dial-in numbers.
    SetBridge {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// `NUMBER|LABEL` or `NUMBER|LABEL|tollfree`; repeat for each number.
        #[arg(long = "number", required = true)]
        numbers: Vec<String>,
    },
    /// Show one bridge (--id) or every bridge of the tenant.
    GetBridge {
        #[arg(long)]
        id: Option<String>,
    },
    /// Event: a phone number was unassigned from a bridge (T2e, fans out).
    UnassignBridgeNumber {
        #[arg(long)]
        bridge: String,
        #[arg(long)]
        number: String,
    },
    /// Post any event given as JSON (see /openapi.json, schema Event).
    PostEvent {
        #[arg(long)]
        json: String,
    },
}

/// `start-meeting-migration`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// UPN or SIP address.
    #[arg(long)]
    pub identity: String,
    /// All (default), SfB or Teams.
    #[arg(long, value_parser = text_enum::<SourceMeetingType>)]
    pub source_meeting_type: Option<SourceMeetingType>,
    /// Current (default) or Teams.
    #[arg(long, value_parser = text_enum::<TargetMeetingType>)]
    pub target_meeting_type: Option<TargetMeetingType>,
    /// Show what would change (each meeting's outcome and new online-meeting block) without
    /// saving, sending or queueing anything.
    #[arg(long)]
    pub what_if: bool,
}

/// `start-bulk-meeting-migration`.
#[derive(Debug, Args)]
pub struct BulkStartArgs {
    /// UPN or SIP address; repeat for more users.
    #[arg(long)]
    pub identity: Vec<String>,
    /// A file with one UPN or SIP address per line (blank lines and `#` comments skipped).
    #[arg(long)]
    pub identities_file: Option<PathBuf>,
    /// Every user of the tenant.
    #[arg(long, conflicts_with_all = ["identity", "identities_file"])]
    pub all_users: bool,
    /// All (default), SfB or Teams.
    #[arg(long, value_parser = text_enum::<SourceMeetingType>)]
    pub source_meeting_type: Option<SourceMeetingType>,
    /// Current (default) or Teams.
    #[arg(long, value_parser = text_enum::<TargetMeetingType>)]
    pub target_meeting_type: Option<TargetMeetingType>,
}

/// `undo-meeting-migration`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// UPN or SIP address of the user whose migration is undone.
    #[arg(long)]
    pub identity: String,
    /// The migration to undo (default: the user's latest Succeeded one).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Show what the undo would do to each meeting without saving, sending or queueing anything.
    #[arg(long)]
    pub what_if: bool,
}

/// `get-meeting-migration-status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub identity: Option<String>,
    /// Counts of users per state (and per migration type) instead of rows.
    #[arg(long, conflicts_with = "watch")]
    pub summary_only: bool,
    /// Pending, InProgress, Failed or Succeeded.
    #[arg(long, value_parser = text_enum::<MigrationState>)]
    pub state: Option<MigrationState>,
    /// SfbToTeams, TeamsToTeams, AllToTeams or ToSameType.
    #[arg(long, value_parser = text_enum::<MigrationType>)]
    pub migration_type: Option<MigrationType>,
    /// Created at or after (RFC 3339).
    #[arg(long)]
    pub start_time: Option<String>,
    /// Created at or before (RFC 3339).
    #[arg(long)]
    pub end_time: Option<String>,
    /// Redraw progress (meetings done / total per user) until every migration is final; exits
    /// 2 when one of them ended Failed.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: give up after this many seconds and exit 3 (0: wait as long as it takes).
    #[arg(long, value_name = "SECS", default_value_t = 0, requires = "watch")]
    pub timeout: u64,
}

/// `list-users`: the API's filters and paging.
#[derive(Debug, Args)]
pub struct ListUsersArgs {
    /// Cloud or OnPremises.
    #[arg(long, value_parser = vendor_enum::<UserHome>)]
    pub home: Option<UserHome>,
    /// Cloud or ExchangeOnPremises.
    #[arg(long, value_parser = vendor_enum::<MailboxLocation>)]
    pub mailbox: Option<MailboxLocation>,
    /// Islands, SfBOnly, SfBWithTeamsCollab, SfBWithTeamsCollabAndMeetings or TeamsOnly.
    #[arg(long, value_parser = vendor_enum::<TeamsUpgradeMode>)]
    pub teams_upgrade_mode: Option<TeamsUpgradeMode>,
    /// Users on this bridge.
    #[arg(long)]
    pub bridge: Option<String>,
    /// true: with audio conferencing; false: without.
    #[arg(long, action = clap::ArgAction::Set)]
    pub audio_enabled: Option<bool>,
    /// Users per page (1 to 10,000).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Users to skip first (the previous page says where the next one starts).
    #[arg(long)]
    pub offset: Option<usize>,
}

/// `set-user`: the fields of an import row, each optional.
#[derive(Debug, Args)]
pub struct SetUserArgs {
    /// The user's UPN.
    #[arg(long)]
    pub identity: String,
    #[arg(long)]
    pub sip_address: Option<String>,
    #[arg(long)]
    pub user_id: Option<String>,
    /// Cloud or OnPremises.
    #[arg(long, value_parser = vendor_enum::<UserHome>)]
    pub home: Option<UserHome>,
    /// Cloud or ExchangeOnPremises.
    #[arg(long, value_parser = vendor_enum::<MailboxLocation>)]
    pub mailbox: Option<MailboxLocation>,
    /// Islands, SfBOnly, SfBWithTeamsCollab, SfBWithTeamsCollabAndMeetings or TeamsOnly.
    #[arg(long, value_parser = vendor_enum::<TeamsUpgradeMode>)]
    pub teams_upgrade_mode: Option<TeamsUpgradeMode>,
    /// Whether the user has audio conferencing (required for a new user).
    #[arg(long, action = clap::ArgAction::Set)]
    pub audio_enabled: Option<bool>,
    /// Microsoft or ThirdParty.
    #[arg(long, value_parser = vendor_enum::<AudioProvider>)]
    pub audio_provider: Option<AudioProvider>,
    /// Id of an existing bridge.
    #[arg(long)]
    pub bridge: Option<String>,
    #[arg(long)]
    pub conference_id: Option<String>,
    #[arg(long)]
    pub default_toll_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MoveTarget {
    Cloud,
    OnPremises,
}

/// Exactly one change per command.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AudioChange {
    /// Licence assigned (true) or removed (false): T2a.
    #[arg(long)]
    pub license_assigned: Option<bool>,
    /// Microsoft or ThirdParty: T2b.
    #[arg(long, value_parser = vendor_enum::<AudioProvider>)]
    pub provider: Option<AudioProvider>,
    /// Audio conferencing enabled or disabled: T2c.
    #[arg(long)]
    pub enabled: Option<bool>,
    /// Moved to this bridge: T2d.
    #[arg(long)]
    pub bridge: Option<String>,
    /// Conference id changed or reset to this value.
    #[arg(long)]
    pub conference_id: Option<String>,
}

/// A value of one of mms-core's text enums (`FromStr`, case-insensitive, naming the accepted
/// values when it fails).
fn text_enum<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse::<T>().map_err(|e| e.to_string())
}

/// A value of a directory enum, spelled as the API serializes it (case-insensitive here).
fn vendor_enum<T: DeserializeOwned + serde::Serialize>(text: &str) -> Result<T, String> {
    serde_json::from_value::<T>(serde_json::Value::from(text)).or_else(|e| {
        // serde's message lists the variants: retry with the one that matches regardless of case.
        let message = e.to_string();
        let listed = message
            .split('`')
            .skip(3)
            .step_by(2)
            .find(|variant| variant.eq_ignore_ascii_case(text));
        match listed {
            Some(variant) => serde_json::from_value::<T>(serde_json::Value::from(variant))
                .map_err(|e| e.to_string()),
            None => Err(message),
        }
    })
}

/// The exit codes in one place, for the help text and for tests.
pub const EXIT_CODES: [(u8, &str); 5] = [
    (0, "success"),
    (
        EXIT_FAILURE,
        "the API refused the request or could not be reached",
    ),
    (
        EXIT_MIGRATION_FAILED,
        "--watch: a watched migration ended Failed",
    ),
    (EXIT_WATCH_TIMEOUT, "--watch: --timeout ran out"),
    (EXIT_USAGE, "the command line is wrong"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cmdlet_subcommands_parse_into_typed_values() {
        let cli = MmsCtl::try_parse_from([
            "mmsctl",
            "--tenant",
            "acme",
            "get-meeting-migration-status",
            "--summary-only",
            "--state",
            "failed",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::GetMeetingMigrationStatus(StatusArgs {
                summary_only: true,
                state: Some(MigrationState::Failed),
                ..
            })
        ));
        let cli = MmsCtl::try_parse_from([
            "mmsctl",
            "set-tenant-migration-configuration",
            "--meeting-migration-enabled",
            "false",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::SetTenantMigrationConfiguration {
                meeting_migration_enabled: false
            }
        ));
        assert!(
            MmsCtl::try_parse_from([
                "mmsctl",
                "audio-conferencing-change",
                "--identity",
                "a@b.com"
            ])
            .is_err(),
            "one change required"
        );
        let error = MmsCtl::try_parse_from([
            "mmsctl",
            "start-meeting-migration",
            "--identity",
            "a@b.com",
            "--source-meeting-type",
            "Zoom",
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("All SfB Teams"), "{error}");
    }

    #[test]
    fn directory_enums_parse_in_any_case_and_a_wrong_one_lists_the_accepted() {
        assert_eq!(
            vendor_enum::<TeamsUpgradeMode>("teamsonly"),
            Ok(TeamsUpgradeMode::TeamsOnly)
        );
        assert_eq!(
            vendor_enum::<UserHome>("OnPremises"),
            Ok(UserHome::OnPremises)
        );
        let error = vendor_enum::<MailboxLocation>("Moon").unwrap_err();
        assert!(error.contains("ExchangeOnPremises"), "{error}");
    }

    #[test]
    fn watch_refuses_summary_only_and_the_policy_grant_needs_a_scope() {
        let parse = |args: &[&str]| MmsCtl::try_parse_from([&["mmsctl"], args].concat());
        let error = parse(&["get-meeting-migration-status", "--watch", "--summary-only"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot be used with"), "{error}");
        assert!(parse(&["get-meeting-migration-status", "--timeout", "5"]).is_err());
        assert!(parse(&["get-meeting-migration-status", "--watch", "--timeout", "5"]).is_ok());

        let error = parse(&["grant-upgrade-policy", "--mode", "TeamsOnly"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--identity") && error.contains("--tenant-wide"),
            "names both choices: {error}"
        );
        let grant = |extra: &[&str]| {
            parse(&[&["grant-upgrade-policy", "--mode", "TeamsOnly"], extra].concat())
        };
        assert!(grant(&["--tenant-wide"]).is_ok());
        assert!(grant(&["--identity", "a@b.com"]).is_ok());
        assert!(grant(&["--identity", "a@b.com", "--tenant-wide"]).is_err());
        assert!(parse(&["revoke-token", "--id", "0123456789ab"]).is_ok());
        assert!(parse(&["list-tokens"]).is_ok());
        assert!(parse(&[
            "create-tenant",
            "--meeting-migration-enabled",
            "false",
            "--automatically-migrate-user-meetings",
            "true"
        ])
        .is_ok());
    }

    #[test]
    fn the_help_documents_the_exit_codes_and_the_import_format() {
        use clap::CommandFactory;
        let mut command = MmsCtl::command();
        let help = command.render_long_help().to_string();
        for (code, _) in EXIT_CODES {
            assert!(help.contains(&format!("  {code} ")), "exit {code}: {help}");
        }
        let import = command
            .find_subcommand_mut("import-users")
            .unwrap()
            .render_long_help()
            .to_string();
        for field in [
            "Upn",
            "SipAddress",
            "AudioEnabled",
            "Bridge",
            "deploy/examples/users.csv",
        ] {
            assert!(import.contains(field), "{field}: {import}");
        }
    }
}
