//! `mmsctl`: the admin CLI, one subcommand per cmdlet of the vendor's meeting migration, plus the
//! directory and event commands. It talks to the control API only (never to Redis), so it works
//! against any MMS deployment it can reach with a token.
//!
//! Output is an aligned table for people, or `--output json` (the API's JSON as is) for scripts.
//! Errors from the API print as `error: <code>: <message>` and exit with status 1; `--watch`
//! exits 2 when a watched migration failed and 3 when its `--timeout` ran out.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

/// Seconds between two redraws of `--watch`.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Longest wait for one API reply: a hung connection fails the command instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit status of `--watch` when a watched migration ended Failed.
pub const EXIT_MIGRATION_FAILED: u8 = 2;

/// Exit status of `--watch` when `--timeout` ran out before every migration was final.
pub const EXIT_WATCH_TIMEOUT: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "mmsctl",
    version,
    about = "Administer MMS, the Meeting Migration Service, through its HTTP API"
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
    StartMeetingMigration {
        /// UPN or SIP address.
        #[arg(long)]
        identity: String,
        /// All (default), SfB or Teams.
        #[arg(long)]
        source_meeting_type: Option<String>,
        /// Current (default) or Teams.
        #[arg(long)]
        target_meeting_type: Option<String>,
        /// Show what would change (each meeting's outcome and new online-meeting block) without
        /// saving, sending or queueing anything.
        #[arg(long)]
        what_if: bool,
    },
    /// Get-CsMeetingMigrationStatus.
    GetMeetingMigrationStatus {
        #[arg(long)]
        identity: Option<String>,
        /// Counts of users per state (and per migration type) instead of rows.
        #[arg(long, conflicts_with = "watch")]
        summary_only: bool,
        /// Pending, InProgress, Failed or Succeeded.
        #[arg(long)]
        state: Option<String>,
        /// SfbToTeams, TeamsToTeams, AllToTeams or ToSameType.
        #[arg(long)]
        migration_type: Option<String>,
        /// Created at or after (RFC 3339).
        #[arg(long)]
        start_time: Option<String>,
        /// Created at or before (RFC 3339).
        #[arg(long)]
        end_time: Option<String>,
        /// Redraw progress (meetings done / total per user) until every migration is final; exits
        /// 2 when one of them ended Failed.
        #[arg(long)]
        watch: bool,
        /// With --watch: give up after this many seconds and exit 3 (0: wait as long as it takes).
        #[arg(long, value_name = "SECS", default_value_t = 0, requires = "watch")]
        timeout: u64,
    },
    /// Get-CsMeetingMigrationTransactionHistory.
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
    /// Create a tenant (operator token).
    CreateTenant,
    /// Mint a tenant-admin token for --tenant (operator token); printed once, with its id.
    CreateToken,
    /// List the stored tokens by id, role and tenant (operator token); tokens are never shown.
    ListTokens,
    /// Revoke a token by the id create-token printed or list-tokens shows (operator token).
    RevokeToken {
        #[arg(long)]
        id: String,
    },
    /// Import users from a CSV (header row of field names) or JSON file, all or nothing.
    ImportUsers {
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Show one user's directory record.
    GetUser {
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
        #[arg(long)]
        mode: String,
        #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
        migrate_meetings_to_teams: bool,
    },
    /// Event: an audio-conferencing change of a user (T2a–T2d, conference id).
    AudioConferencingChange {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        change: AudioChange,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MoveTarget {
    Cloud,
    OnPremises,
}

/// Exactly one change per command.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct AudioChange {
    /// Licence assigned (true) or removed (false): T2a.
    #[arg(long)]
    license_assigned: Option<bool>,
    /// Microsoft or ThirdParty: T2b.
    #[arg(long)]
    provider: Option<String>,
    /// Audio conferencing enabled or disabled: T2c.
    #[arg(long)]
    enabled: Option<bool>,
    /// Moved to this bridge: T2d.
    #[arg(long)]
    bridge: Option<String>,
    /// Conference id changed or reset to this value.
    #[arg(long)]
    conference_id: Option<String>,
}

/// A failure to report: the API's code and message, or a local problem.
#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    fn local(code: &str, message: impl Into<String>) -> Self {
        Failure {
            code: code.to_string(),
            message: message.into(),
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
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&cli)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}: {}", failure.code, failure.message);
            ExitCode::FAILURE
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Value, Failure> {
        let url = format!("{}{}", self.base.trim_end_matches('/'), path);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(Body::Json(value)) => request.json(&value),
            Some(Body::Raw {
                content_type,
                bytes,
            }) => request.header("content-type", content_type).body(bytes),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            Failure::local(
                "unreachable",
                format!("{url}: {e} (is MMS running? set --api-url / MMS_API_URL)"),
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::local("unreachable", format!("{url}: {e}")))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(value)
        } else {
            let code = value["Code"]
                .as_str()
                .unwrap_or(status.as_str())
                .to_string();
            let message = value["Message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            let mut failure = Failure { code, message };
            if let Some(errors) = value["Errors"].as_array() {
                for e in errors {
                    let _ = write!(
                        failure.message,
                        "\n  row {}: {}: {}",
                        e["Row"],
                        text_of(&e["Field"]),
                        text_of(&e["Problem"])
                    );
                }
            }
            Err(failure)
        }
    }
}

enum Body {
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn encode(segment: &str) -> String {
    segment
        .replace('%', "%25")
        .replace('/', "%2F")
        .replace('?', "%3F")
        .replace('#', "%23")
        .replace(' ', "%20")
}

async fn execute(cli: &MmsCtl) -> Result<ExitCode, Failure> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Failure::local("http_client", format!("cannot set up HTTP: {e}")))?;
    let client = &Client {
        http,
        base: cli.api_url.clone(),
        token: cli.token.clone(),
    };
    let tenant = || {
        cli.tenant.as_deref().map(encode).ok_or_else(|| {
            Failure::local(
                "missing_tenant",
                "this command needs --tenant (or MMS_TENANT)",
            )
        })
    };
    let t =
        |rest: &str| -> Result<String, Failure> { Ok(format!("/v1/tenants/{}{rest}", tenant()?)) };
    use reqwest::Method as M;
    let event = |body: Value| async move { client_post_event(client, &t("/events")?, body).await };
    let (value, view) = match &cli.command {
        Command::StartMeetingMigration {
            identity,
            source_meeting_type,
            target_meeting_type,
            what_if,
        } => {
            let body = json!({"Identity": identity, "SourceMeetingType": source_meeting_type, "TargetMeetingType": target_meeting_type});
            let (path, view) = if *what_if {
                ("/migrations:preview", View::Preview)
            } else {
                ("/migrations", View::Fields)
            };
            (
                client
                    .send(M::POST, &t(path)?, Some(Body::Json(body)))
                    .await?,
                view,
            )
        }
        Command::GetMeetingMigrationStatus {
            identity,
            summary_only,
            state,
            migration_type,
            start_time,
            end_time,
            watch,
            timeout,
        } => {
            let mut query = String::new();
            for (name, value) in [
                ("identity", identity),
                ("state", state),
                ("migrationType", migration_type),
                ("startTime", start_time),
                ("endTime", end_time),
            ] {
                if let Some(value) = value {
                    let _ = write!(
                        query,
                        "{}{name}={}",
                        if query.is_empty() { "?" } else { "&" },
                        encode(value).replace('+', "%2B").replace('&', "%26")
                    );
                }
            }
            if *summary_only {
                (
                    client
                        .send(M::GET, &t(&format!("/migrations/summary{query}"))?, None)
                        .await?,
                    View::Summary,
                )
            } else if *watch {
                let path = t(&format!("/migrations{query}"))?;
                let fetch = || client.send(M::GET, &path, None);
                let mut stdout = std::io::stdout();
                let timeout = (*timeout > 0).then(|| Duration::from_secs(*timeout));
                let end =
                    watch_until_final(fetch, &mut stdout, cli.output, WATCH_INTERVAL, timeout)
                        .await?;
                if let Some(problem) = end.problem() {
                    eprintln!("{problem}");
                }
                return Ok(ExitCode::from(end.exit_code()));
            } else {
                (
                    client
                        .send(M::GET, &t(&format!("/migrations{query}"))?, None)
                        .await?,
                    View::Status,
                )
            }
        }
        Command::GetMeetingMigrationTransactionHistory { identity } => (
            client
                .send(
                    M::GET,
                    &t(&format!("/users/{}/history", encode(identity)))?,
                    None,
                )
                .await?,
            View::History,
        ),
        Command::GetTenantMigrationConfiguration => (
            client
                .send(M::GET, &t("/configuration/migration")?, None)
                .await?,
            View::Fields,
        ),
        Command::SetTenantMigrationConfiguration {
            meeting_migration_enabled,
        } => {
            let body = json!({"MeetingMigrationEnabled": meeting_migration_enabled});
            (
                client
                    .send(
                        M::PUT,
                        &t("/configuration/migration")?,
                        Some(Body::Json(body)),
                    )
                    .await?,
                View::Fields,
            )
        }
        Command::GetDialinConferencingTenantSettings => (
            client
                .send(M::GET, &t("/configuration/dialin")?, None)
                .await?,
            View::Fields,
        ),
        Command::SetDialinConferencingTenantSettings {
            automatically_migrate_user_meetings,
        } => {
            let body =
                json!({"AutomaticallyMigrateUserMeetings": automatically_migrate_user_meetings});
            (
                client
                    .send(M::PUT, &t("/configuration/dialin")?, Some(Body::Json(body)))
                    .await?,
                View::Fields,
            )
        }
        Command::CreateTenant => {
            let body = json!({"Tenant": cli.tenant.clone().ok_or_else(|| Failure::local("missing_tenant", "create-tenant needs --tenant"))?});
            (
                client
                    .send(M::POST, "/v1/tenants", Some(Body::Json(body)))
                    .await?,
                View::Fields,
            )
        }
        Command::CreateToken => {
            let body = json!({"Tenant": cli.tenant.clone().ok_or_else(|| Failure::local("missing_tenant", "create-token needs --tenant"))?});
            (
                client
                    .send(M::POST, "/v1/tokens", Some(Body::Json(body)))
                    .await?,
                View::Fields,
            )
        }
        Command::ListTokens => (client.send(M::GET, "/v1/tokens", None).await?, View::Tokens),
        Command::RevokeToken { id } => (
            client
                .send(M::DELETE, &format!("/v1/tokens/{}", encode(id)), None)
                .await?,
            View::Fields,
        ),
        Command::ImportUsers { file } => {
            let bytes = std::fs::read(file).map_err(|e| {
                Failure::local("unreadable_file", format!("{}: {e}", file.display()))
            })?;
            let is_json = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let content_type = if is_json {
                "application/json"
            } else {
                "text/csv"
            };
            (
                client
                    .send(
                        M::POST,
                        &t("/users:import")?,
                        Some(Body::Raw {
                            content_type,
                            bytes,
                        }),
                    )
                    .await?,
                View::Fields,
            )
        }
        Command::GetUser { identity } => (
            client
                .send(M::GET, &t(&format!("/users/{}", encode(identity)))?, None)
                .await?,
            View::Fields,
        ),
        Command::MoveUser {
            identity,
            to,
            move_to_teams,
        } => {
            let body = match to {
                MoveTarget::Cloud => {
                    json!({"Type": "UserMovedToCloud", "Identity": identity, "MoveToTeams": move_to_teams})
                }
                MoveTarget::OnPremises => {
                    json!({"Type": "UserMovedToOnPremises", "Identity": identity})
                }
            };
            (event(body).await?, View::Event)
        }
        Command::GrantUpgradePolicy {
            identity,
            tenant_wide: _,
            mode,
            migrate_meetings_to_teams,
        } => {
            let body = json!({"Type": "TeamsUpgradePolicyGranted", "Identity": identity, "Mode": mode,
                              "MigrateMeetingsToTeams": migrate_meetings_to_teams});
            (event(body).await?, View::Event)
        }
        Command::AudioConferencingChange { identity, change } => {
            let body = if let Some(assigned) = change.license_assigned {
                json!({"Type": "AudioConferencingLicenseChanged", "Identity": identity, "Assigned": assigned})
            } else if let Some(provider) = &change.provider {
                json!({"Type": "AudioProviderChanged", "Identity": identity, "Provider": provider})
            } else if let Some(enabled) = change.enabled {
                json!({"Type": "AudioConferencingEnabledChanged", "Identity": identity, "Enabled": enabled})
            } else if let Some(bridge) = &change.bridge {
                json!({"Type": "UserBridgeChanged", "Identity": identity, "Bridge": bridge})
            } else {
                json!({"Type": "ConferenceIdChanged", "Identity": identity, "ConferenceId": change.conference_id})
            };
            (event(body).await?, View::Event)
        }
        Command::SetBridge { id, name, numbers } => {
            let numbers = numbers
                .iter()
                .map(|text| dial_in_number(text))
                .collect::<Result<Vec<Value>, Failure>>()?;
            let body = json!({"Name": name, "Numbers": numbers});
            (
                client
                    .send(
                        M::PUT,
                        &t(&format!("/bridges/{}", encode(id)))?,
                        Some(Body::Json(body)),
                    )
                    .await?,
                View::Bridges,
            )
        }
        Command::GetBridge { id } => {
            let path = match id {
                Some(id) => t(&format!("/bridges/{}", encode(id)))?,
                None => t("/bridges")?,
            };
            (client.send(M::GET, &path, None).await?, View::Bridges)
        }
        Command::UnassignBridgeNumber { bridge, number } => (
            event(json!({"Type": "BridgeNumberUnassigned", "Bridge": bridge, "Number": number}))
                .await?,
            View::Event,
        ),
        Command::PostEvent { json: text } => {
            let body: Value = serde_json::from_str(text)
                .map_err(|e| Failure::local("invalid_json", format!("--json: {e}")))?;
            (event(body).await?, View::Event)
        }
    };
    print!("{}", render(&value, view, cli.output));
    Ok(ExitCode::SUCCESS)
}

/// One `--number` of set-bridge: `NUMBER|LABEL` or `NUMBER|LABEL|tollfree`, as the API's
/// `DialInNumber`.
fn dial_in_number(text: &str) -> Result<Value, Failure> {
    let bad = |why: &str| {
        Failure::local(
            "malformed_number",
            format!("--number {text:?}: {why}; write NUMBER|LABEL or NUMBER|LABEL|tollfree, e.g. \"+1 206-555-0100|United States, Seattle (Toll)\""),
        )
    };
    let mut parts = text.split('|').map(str::trim);
    let number = parts
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("the number is empty"))?;
    let label = parts
        .next()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("the label is missing"))?;
    let toll_free = match parts.next() {
        None => false,
        Some(flag)
            if flag.eq_ignore_ascii_case("tollfree") || flag.eq_ignore_ascii_case("toll-free") =>
        {
            true
        }
        Some(other) => return Err(bad(&format!("the third part is {other:?}, not tollfree"))),
    };
    if parts.next().is_some() {
        return Err(bad("too many '|'-separated parts"));
    }
    Ok(json!({"number": number, "label": label, "toll_free": toll_free}))
}

async fn client_post_event(client: &Client, path: &str, body: Value) -> Result<Value, Failure> {
    client
        .send(reqwest::Method::POST, path, Some(Body::Json(body)))
        .await
}

/// How to lay out a reply as a table.
#[derive(Clone, Copy)]
enum View {
    /// One object: `Field  Value` lines.
    Fields,
    Status,
    Summary,
    History,
    Event,
    /// A what-if: the meetings' outcomes, then each new block.
    Preview,
    /// One bridge or a list of them: a row per dial-in number.
    Bridges,
    /// The token listing: id, role, tenant.
    Tokens,
}

fn render(value: &Value, view: View, output: Output) -> String {
    if output == Output::Json {
        return format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
    let rows = |items: &Value, cols: &[&str]| -> Vec<Vec<String>> {
        items
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| cols.iter().map(|c| text_of(&item[*c])).collect())
            .collect()
    };
    match view {
        View::Fields => {
            let pairs: Vec<Vec<String>> = value
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| vec![k.clone(), text_of(v)])
                .collect();
            table(&["Field", "Value"], &pairs)
        }
        View::Status => {
            let cols = [
                "UserPrincipalName",
                "CorrelationId",
                "State",
                "MigrationType",
                "TotalMeeting",
                "SucceededMeeting",
                "FailedMeeting",
                "InvitesUpdate",
                "RetryCount",
                "CreateDate",
                "LastMessage",
            ];
            table(&cols, &rows(value, &cols))
        }
        View::Summary => {
            let mut out = table(
                &["State", "UserCount"],
                &rows(&value["States"], &["State", "UserCount"]),
            );
            out.push('\n');
            out + &table(
                &["State", "MigrationType", "UserCount"],
                &rows(
                    &value["ByMigrationType"],
                    &["State", "MigrationType", "UserCount"],
                ),
            )
        }
        View::History => table(
            &["At", "CorrelationId", "Event", "Message"],
            &rows(value, &["At", "CorrelationId", "Event", "Message"]),
        ),
        View::Event => {
            let mut out = table(
                &["User", "Rule", "Result", "CorrelationId", "Message"],
                &rows(
                    &value["Outcomes"],
                    &["User", "Rule", "Result", "CorrelationId", "Message"],
                ),
            );
            if let Some(note) = value["Note"].as_str() {
                let _ = writeln!(out, "{note}");
            }
            out
        }
        View::Preview => render_preview(value),
        View::Tokens => table(
            &["Id", "Role", "Tenant"],
            &rows(value, &["Id", "Role", "Tenant"]),
        ),
        View::Bridges => {
            let bridges = match value {
                Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            let mut lines = Vec::new();
            for bridge in &bridges {
                for number in bridge["Numbers"].as_array().into_iter().flatten() {
                    lines.push(vec![
                        text_of(&bridge["Id"]),
                        text_of(&bridge["Name"]),
                        text_of(&number["number"]),
                        text_of(&number["label"]),
                        if number["toll_free"] == true {
                            "yes"
                        } else {
                            ""
                        }
                        .to_string(),
                    ]);
                }
            }
            table(&["Bridge", "Name", "Number", "Label", "TollFree"], &lines)
        }
    }
}

/// The what-if table (meeting, outcome, reason), the summary line, then every new block.
fn render_preview(value: &Value) -> String {
    let items: Vec<&Value> = value["Items"].as_array().into_iter().flatten().collect();
    let meeting = |item: &Value| {
        let summary = text_of(&item["Summary"]);
        if summary.is_empty() {
            text_of(&item["Href"])
        } else {
            summary
        }
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            vec![
                meeting(item),
                text_of(&item["Outcome"]),
                text_of(&item["Reason"]),
            ]
        })
        .collect();
    let mut out = table(&["Meeting", "Outcome", "Reason"], &rows);
    let _ = writeln!(out, "\n{}", text_of(&value["Message"]));
    for item in items {
        if let Some(block) = item["NewBlock"].as_str() {
            let _ = writeln!(
                out,
                "\nNew block of {} ({}):\n{block}",
                meeting(item),
                text_of(&item["Uid"])
            );
        }
    }
    out
}

/// Columns padded to their widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    out += &line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// How a `--watch` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// Every migration is final; `failed` names those that ended Failed (user, correlation id,
    /// last message).
    AllFinal { draws: usize, failed: Vec<String> },
    /// The timeout ran out first.
    TimedOut { draws: usize, waited: Duration },
}

impl WatchEnd {
    /// 0 when all succeeded, [`EXIT_MIGRATION_FAILED`] when one failed, [`EXIT_WATCH_TIMEOUT`].
    pub fn exit_code(&self) -> u8 {
        match self {
            WatchEnd::AllFinal { failed, .. } if failed.is_empty() => 0,
            WatchEnd::AllFinal { .. } => EXIT_MIGRATION_FAILED,
            WatchEnd::TimedOut { .. } => EXIT_WATCH_TIMEOUT,
        }
    }

    /// What to tell the admin on stderr when the watch did not end in success.
    pub fn problem(&self) -> Option<String> {
        match self {
            WatchEnd::AllFinal { failed, .. } if failed.is_empty() => None,
            WatchEnd::AllFinal { failed, .. } => Some(format!(
                "error: {} migration(s) failed (see get-meeting-migration-transaction-history --identity <user>):\n  {}",
                failed.len(),
                failed.join("\n  ")
            )),
            WatchEnd::TimedOut { waited, .. } => Some(format!(
                "error: timeout: not every migration was final after {} s; they go on running: watch again, or raise --timeout",
                waited.as_secs()
            )),
        }
    }
}

/// `--watch`: fetch the migrations with `fetch` and draw their progress (meetings done / total per
/// user) on `out` until every one is final (Succeeded or Failed), sleeping `interval` between two
/// draws, or until `timeout` (if any) has passed since the start. Tables redraw in place (the
/// screen is cleared first); `--output json` writes one JSON array per line instead, for scripts
/// that follow along.
pub async fn watch_until_final<F, Fut, W>(
    mut fetch: F,
    out: &mut W,
    output: Output,
    interval: Duration,
    timeout: Option<Duration>,
) -> Result<WatchEnd, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, Failure>>,
    W: std::io::Write,
{
    let started = tokio::time::Instant::now();
    let mut draws = 0;
    loop {
        let rows = fetch().await?;
        let rows: &[Value] = rows.as_array().map(Vec::as_slice).unwrap_or_default();
        let finals = rows
            .iter()
            .filter(|r| matches!(r["State"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        let frame = if output == Output::Json {
            format!("{}\n", Value::from(rows.to_vec()))
        } else {
            let progress: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let done = r["SucceededMeeting"].as_u64().unwrap_or(0)
                        + r["FailedMeeting"].as_u64().unwrap_or(0);
                    vec![
                        text_of(&r["UserPrincipalName"]),
                        text_of(&r["State"]),
                        format!("{done}/{}", text_of(&r["TotalMeeting"])),
                        text_of(&r["LastMessage"]),
                    ]
                })
                .collect();
            // Clear the screen and go home, so that the table redraws in place.
            format!(
                "\x1b[2J\x1b[H{}{finals} of {} migrations final\n",
                table(
                    &["UserPrincipalName", "State", "Meetings", "LastMessage"],
                    &progress
                ),
                rows.len()
            )
        };
        out.write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::local("output", format!("cannot write the progress: {e}")))?;
        draws += 1;
        if finals == rows.len() {
            let failed = rows
                .iter()
                .filter(|r| r["State"] == "Failed")
                .map(|r| {
                    format!(
                        "{} ({}): {}",
                        text_of(&r["UserPrincipalName"]),
                        text_of(&r["CorrelationId"]),
                        text_of(&r["LastMessage"])
                    )
                })
                .collect();
            return Ok(WatchEnd::AllFinal { draws, failed });
        }
        let waited = started.elapsed();
        let pause = match timeout {
            Some(timeout) if waited >= timeout => return Ok(WatchEnd::TimedOut { draws, waited }),
            Some(timeout) => interval.min(timeout - waited),
            None => interval,
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let out = table(
            &["State", "UserCount"],
            &[
                vec!["InProgress".into(), "3".into()],
                vec!["Failed".into(), "12".into()],
            ],
        );
        assert_eq!(
            out,
            "State       UserCount\n----------  ---------\nInProgress  3\nFailed      12\n"
        );
    }

    #[test]
    fn the_cmdlet_subcommands_parse() {
        let cli = MmsCtl::try_parse_from([
            "mmsctl",
            "--tenant",
            "acme",
            "get-meeting-migration-status",
            "--summary-only",
            "--state",
            "Failed",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::GetMeetingMigrationStatus {
                summary_only: true,
                ..
            }
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
    }

    fn row(user: &str, state: &str, done: u64) -> Value {
        json!({"UserPrincipalName": user, "State": state, "SucceededMeeting": done, "FailedMeeting": 0,
               "TotalMeeting": done, "LastMessage": ""})
    }

    #[tokio::test]
    async fn watch_redraws_until_every_migration_is_final() {
        let frames = [
            json!([
                row("a@x.com", "Pending", 0),
                row("b@x.com", "InProgress", 2)
            ]),
            json!([
                row("a@x.com", "InProgress", 1),
                row("b@x.com", "Succeeded", 4)
            ]),
            json!([row("a@x.com", "Failed", 3), row("b@x.com", "Succeeded", 4)]),
            json!([row("never@x.com", "Pending", 0)]),
        ];
        let mut next = frames.iter();
        let fetch = || {
            let frame = next.next().cloned();
            async move { frame.ok_or_else(|| Failure::local("test", "fetched after all were final")) }
        };
        let mut out = Vec::new();
        let end = watch_until_final(fetch, &mut out, Output::Table, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(
            end,
            WatchEnd::AllFinal {
                draws: 3,
                failed: vec!["a@x.com (): ".into()]
            },
            "stops at the first draw where all are final"
        );
        assert_eq!(end.exit_code(), EXIT_MIGRATION_FAILED, "a@x.com failed");
        assert!(end.problem().unwrap().contains("a@x.com"));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.matches("\x1b[2J").count(),
            3,
            "each draw clears the screen"
        );
        assert!(text.contains("0 of 2 migrations final"));
        assert!(text.ends_with("2 of 2 migrations final\n"), "{text}");
        assert!(text.contains("b@x.com            Succeeded  4/4"), "{text}");
    }

    #[tokio::test]
    async fn watch_passes_on_a_failed_fetch_and_writes_json_lines() {
        let mut calls = 0;
        let fetch = || {
            calls += 1;
            let reply = if calls == 1 {
                Ok(json!([row("a@x.com", "InProgress", 0)]))
            } else {
                Err(Failure::local("unreachable", "gone"))
            };
            async move { reply }
        };
        let mut out = Vec::new();
        let failure = watch_until_final(fetch, &mut out, Output::Json, Duration::ZERO, None)
            .await
            .unwrap_err();
        assert_eq!(failure.code, "unreachable");
        let text = String::from_utf8(out).unwrap();
        let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line[0]["State"], "InProgress");
    }

    #[tokio::test]
    async fn watch_exits_0_when_all_succeeded_and_3_when_the_timeout_runs_out() {
        let done = json!([row("a@x.com", "Succeeded", 2)]);
        let fetch = || {
            let frame = done.clone();
            async move { Ok(frame) }
        };
        let end = watch_until_final(fetch, &mut Vec::new(), Output::Json, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!((end.exit_code(), end.problem()), (0, None));

        let mut fetched = 0;
        let fetch = || {
            fetched += 1;
            async { Ok(json!([row("a@x.com", "InProgress", 1)])) }
        };
        let end = watch_until_final(
            fetch,
            &mut Vec::new(),
            Output::Json,
            Duration::ZERO,
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
        assert!(
            matches!(end, WatchEnd::TimedOut { draws: 1, .. }),
            "{end:?}"
        );
        assert_eq!(end.exit_code(), EXIT_WATCH_TIMEOUT);
        assert!(end.problem().unwrap().contains("--timeout"));
        assert_eq!(fetched, 1);
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
        assert!(parse(&[
            "grant-upgrade-policy",
            "--mode",
            "TeamsOnly",
            "--tenant-wide"
        ])
        .is_ok());
        assert!(parse(&[
            "grant-upgrade-policy",
            "--mode",
            "TeamsOnly",
            "--identity",
            "a@b.com"
        ])
        .is_ok());
        assert!(parse(&[
            "grant-upgrade-policy",
            "--mode",
            "TeamsOnly",
            "--identity",
            "a@b.com",
            "--tenant-wide"
        ])
        .is_err());
        assert!(parse(&["revoke-token", "--id", "0123456789ab"]).is_ok());
        assert!(parse(&["list-tokens"]).is_ok());
    }

    #[test]
    fn bridge_numbers_parse_with_an_optional_toll_free_flag() {
        assert_eq!(
            dial_in_number("+1 206-555-0100|United States, Seattle (Toll)").unwrap(),
            json!({"number": "+1 206-555-0100", "label": "United States, Seattle (Toll)", "toll_free": false})
        );
        assert_eq!(
            dial_in_number("+1 866-555-0199 | US | TollFree").unwrap()["toll_free"],
            true
        );
        for bad in ["", "+1 206", "|label", "+1|US|free", "+1|US|tollfree|x"] {
            let failure = dial_in_number(bad).unwrap_err();
            assert_eq!(failure.code, "malformed_number", "{bad}");
            assert!(
                failure.message.contains("NUMBER|LABEL"),
                "{}",
                failure.message
            );
        }
    }

    #[test]
    fn a_preview_prints_its_table_then_each_new_block() {
        let reply = json!({"Message": "What-if for a@x.com: 1 meeting(s) would be updated",
        "Items": [
            {"Href": "m1.ics", "Uid": "u1", "Summary": "Weekly sync", "Outcome": "WouldUpdate",
             "Reason": "the Teams block would be replaced", "NewBlock": "____\nMicrosoft Teams meeting\n____"},
            {"Href": "m2.ics", "Uid": "u2", "Summary": "", "Outcome": "Skipped", "Reason": "organized by b@x.com"}
        ]});
        let text = render(&reply, View::Preview, Output::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Meeting      Outcome      Reason");
        assert_eq!(
            lines[2],
            "Weekly sync  WouldUpdate  the Teams block would be replaced"
        );
        assert_eq!(lines[3], "m2.ics       Skipped      organized by b@x.com");
        assert!(text.contains("What-if for a@x.com"));
        assert!(
            text.ends_with("New block of Weekly sync (u1):\n____\nMicrosoft Teams meeting\n____\n"),
            "{text}"
        );
    }
}
