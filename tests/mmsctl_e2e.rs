//! The control plane end to end (issue 4, "Must show"; M1–M5, T2e, T3, P4): a real `mms all`
//! process (embedded vdir mailboxes, a private Redis, SMTP to a real sink) driven only through the
//! `mmsctl` binary, as an admin would: tenant, bridge, user import, a what-if, a TeamsOnly grant,
//! a number unassigned from the bridge, `--watch` until everything is final, then the summary,
//! a user's history and the mail that went out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use mms_cli::demo;
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_testkit::redis::RedisServer;
use mms_testkit::smtp::SmtpSink;
use serde_json::{json, Value};

const OPERATOR: &str = "operator-token-for-the-mmsctl-e2e";
const TENANT: &str = "acme";
const USERS: [&str; 3] = ["ann@acme.example", "bob@acme.example", "cy@acme.example"];
/// Demo meetings per mailbox; 7 in every 10 are future meetings of the owner with an online block.
const MEETINGS: usize = 10;
const MIGRATING: usize = 7;

/// The `mms all` process; killed when dropped so that a failing test leaves nothing running.
struct MmsAll {
    child: Child,
    api_url: String,
    log: PathBuf,
}

impl MmsAll {
    fn spawn(config: &Path, api_url: String) -> MmsAll {
        let log = config.with_file_name("mms-all.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mms"))
            .arg("all")
            .arg("--config")
            .arg(config)
            .env("MMS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn mms all");
        MmsAll {
            child,
            api_url,
            log,
        }
    }

    /// Wait until the API answers /healthz (the process connects Redis and binds first).
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.api_url);
        loop {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("mms all exited ({exit}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "mms all never served /healthz: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An `mmsctl` invocation against this process: API URL, operator token and tenant by env.
    fn ctl(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mmsctl"));
        command
            .args(args)
            .env("MMS_API_URL", &self.api_url)
            .env("MMS_TOKEN", OPERATOR)
            .env("MMS_TENANT", TENANT)
            .stdin(Stdio::null());
        command
    }

    /// Run `mmsctl args`; its stdout, after checking it exited 0.
    fn run(&self, args: &[&str]) -> String {
        let output = self.ctl(args).output().expect("run mmsctl");
        stdout_of(args, &output)
    }

    /// Run `mmsctl --output json args`; the JSON it printed.
    fn json(&self, args: &[&str]) -> Value {
        let args = [&["--output", "json"], args].concat();
        let text = self.run(&args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {text}"))
    }

    /// `mmsctl get-meeting-migration-status --watch [extra]` as a process: it must exit 0 by
    /// itself once every migration listed is final. Returns what it drew.
    fn watch(&self, extra: &[&str]) -> String {
        let args = [&["get-meeting-migration-status", "--watch"], extra].concat();
        let mut child = self
            .ctl(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mmsctl --watch");
        // A guard against a watch that never ends, not a performance assertion.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().expect("poll mmsctl").is_some() {
                return stdout_of(&args, &child.wait_with_output().unwrap());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "mmsctl --watch still running after 120 s: {}\nmms log:\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for MmsAll {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout_of(args: &[&str], output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "mmsctl {args:?} failed ({}): {}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn config(redis: &RedisServer, smtp: &SmtpSink, mailboxes: &Path) -> MmsConfig {
    let mut cfg = MmsConfig {
        redis_url: redis.url(),
        namespace: "ctl-e2e".into(),
        service_address: "mms@service.example".into(),
        metrics_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
        api_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
        mailbox: MailboxConfig::Vdir {
            root: mailboxes.to_path_buf(),
            options: Default::default(),
        },
        mail: MailConfig::Smtp {
            host: "127.0.0.1".into(),
            port: smtp.port,
            tls: mms_core::config::SmtpTls::None,
            username: None,
            password: None,
            timeout_secs: 10,
            ca_file: None,
            connections: 4,
            updates: Default::default(),
        },
        ..MmsConfig::default()
    };
    cfg.api.operator_token = Some(OPERATOR.into());
    cfg.queue.coalesce_delay_ms = 0;
    cfg.queue.block_ms = 50;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_drives_a_whole_migration_with_mmsctl_alone() {
    let (redis, smtp) = tokio::join!(RedisServer::start(false), SmtpSink::start());
    let dir = tempfile::tempdir().unwrap();
    let mailboxes = dir.path().join("mailboxes");
    let now = Utc::now();
    for user in USERS {
        demo::write_mailbox(&mailboxes, user, MEETINGS, now).unwrap();
    }
    let cfg = config(&redis, &smtp, &mailboxes);
    let config_path = dir.path().join("mms.toml");
    std::fs::write(&config_path, toml::to_string(&cfg).unwrap()).unwrap();
    let mut mms = MmsAll::spawn(&config_path, format!("http://{}", cfg.api_addr));
    mms.ready().await;

    // Tenant, bridge (three numbers), users from a CSV file: all on the bridge, audio on.
    assert_eq!(
        mms.json(&["create-tenant", "--domain", "acme.example"])["Tenant"],
        TENANT
    );
    let bridge = mms.json(&[
        "set-bridge",
        "--id",
        "main",
        "--name",
        "Main bridge",
        "--number",
        "+1 206-555-0142|United States, Seattle (Toll)",
        "--number",
        "+1 866-555-0199|United States|tollfree",
        "--number",
        "+44 20 5555 0100|United Kingdom, London (Toll)",
    ]);
    assert_eq!(bridge["Numbers"].as_array().unwrap().len(), 3, "{bridge}");
    assert_eq!(bridge["Numbers"][1]["toll_free"], true, "{bridge}");
    let table = mms.run(&["get-bridge", "--id", "main"]);
    assert!(
        table.contains("+44 20 5555 0100  United Kingdom, London (Toll)"),
        "{table}"
    );
    let csv = dir.path().join("users.csv");
    let mut rows = String::from("Upn,SipAddress,AudioEnabled,Bridge,ConferenceId\n");
    for (i, user) in USERS.iter().enumerate() {
        rows.push_str(&format!("{user},sip:{user},true,main,{}\n", 4_000_000 + i));
    }
    std::fs::write(&csv, rows).unwrap();
    let imported = mms.json(&["import-users", "--file", csv.to_str().unwrap()]);
    assert_eq!(imported["Imported"], USERS.len(), "{imported}");

    // Tokens: an admin token minted, listed by id (never in clear), revoked by id.
    let minted = mms.json(&["create-token"]);
    let id = minted["Id"].as_str().unwrap().to_string();
    let listed = mms.json(&["list-tokens"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Id"] == id.as_str()),
        "{listed}"
    );
    let revoked = mms.json(&["revoke-token", "--id", &id]);
    assert_eq!(revoked["Role"], "TenantAdmin", "{revoked}");
    let table = mms.run(&["list-tokens"]);
    assert!(
        table.starts_with("Id ") && table.contains("Operator") && !table.contains(&id),
        "{table}"
    );

    // What-if for bob: the meetings that would change, and nothing queued by asking.
    let what_if = mms.run(&[
        "start-meeting-migration",
        "--identity",
        "bob@acme.example",
        "--target-meeting-type",
        "Teams",
        "--what-if",
    ]);
    assert_eq!(
        what_if.matches("WouldUpdate").count(),
        MIGRATING,
        "{what_if}"
    );
    assert!(what_if.contains("nothing was saved or sent"), "{what_if}");
    assert!(what_if.contains("New block of Demo meeting 0"), "{what_if}");
    assert!(
        what_if.contains("+44 20 5555 0100   United Kingdom, London (Toll)"),
        "the new block lists the bridge's numbers: {what_if}"
    );
    assert_eq!(
        mms.json(&["get-meeting-migration-status"]),
        json!([]),
        "a what-if queues nothing"
    );

    // T3: TeamsOnly granted to Ann migrates her meetings to Teams.
    let granted = mms.json(&[
        "grant-upgrade-policy",
        "--identity",
        "ann@acme.example",
        "--mode",
        "TeamsOnly",
    ]);
    assert_eq!(
        (
            &granted["Outcomes"][0]["Rule"],
            &granted["Outcomes"][0]["Result"]
        ),
        (&json!("T3"), &json!("Queued")),
        "{granted}"
    );
    let drawn = mms.watch(&["--identity", "ann@acme.example"]);
    assert!(drawn.ends_with("1 of 1 migrations final\n"), "{drawn}");

    // T2e: the London number leaves the bridge; every organizer on it is migrated again.
    let unassigned = mms.json(&[
        "unassign-bridge-number",
        "--bridge",
        "main",
        "--number",
        "+44 20 5555 0100",
    ]);
    // A fan-out is a background job; mmsctl waits a little for it and shows it ended.
    assert_eq!(unassigned["Kind"], "BridgeNumberUnassigned", "{unassigned}");
    assert_eq!(unassigned["State"], "Succeeded", "{unassigned}");
    assert_eq!(
        (&unassigned["UsersTotal"], &unassigned["Queued"]),
        (&json!(USERS.len()), &json!(USERS.len())),
        "fans out to every organizer on the bridge: {unassigned}"
    );
    let job = mms.json(&["get-job", "--id", unassigned["Id"].as_str().unwrap()]);
    assert_eq!(job["Queued"], json!(USERS.len()), "{job}");
    let drawn = mms.watch(&[]);
    assert!(drawn.ends_with("4 of 4 migrations final\n"), "{drawn}");
    let bridge = mms.json(&["get-bridge", "--id", "main"]);
    assert_eq!(bridge["Numbers"].as_array().unwrap().len(), 2, "{bridge}");

    // M1: users per state and per migration type.
    let summary = mms.json(&["get-meeting-migration-status", "--summary-only"]);
    assert_eq!(
        summary,
        json!({
            "States": [
                {"State": "Pending", "UserCount": 0},
                {"State": "InProgress", "UserCount": 0},
                {"State": "Failed", "UserCount": 0},
                {"State": "Succeeded", "UserCount": 3},
            ],
            // Each user counts once, by their newest migration: Ann's T3 (AllToTeams) is
            // followed by her T2e (ToSameType).
            "ByMigrationType": [
                {"State": "Succeeded", "MigrationType": "ToSameType", "UserCount": 3},
            ],
        }),
        "{summary:#}"
    );

    // M2: every migration counted its meetings; Ann's history tells both triggers in order.
    let rows = mms.json(&["get-meeting-migration-status"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert_eq!(
            (
                &row["TotalMeeting"],
                &row["SucceededMeeting"],
                &row["InvitesUpdate"]
            ),
            (&json!(MIGRATING), &json!(MIGRATING), &json!(MIGRATING)),
            "{row:#}"
        );
    }
    let history = mms.json(&[
        "get-meeting-migration-transaction-history",
        "--identity",
        "ann@acme.example",
    ]);
    let lines: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["Event"].as_str().unwrap().to_string(),
                l["Message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let triggered: Vec<&str> = lines
        .iter()
        .filter(|(event, _)| event == "Triggered")
        .map(|(_, message)| message.split(':').next().unwrap())
        .collect();
    assert_eq!(triggered, ["T3", "T2e"], "{history:#}");
    assert_eq!(
        lines
            .iter()
            .filter(|(event, _)| event == "Succeeded")
            .count(),
        2,
        "{history:#}"
    );
    let table = mms.run(&[
        "get-meeting-migration-transaction-history",
        "--identity",
        "ann@acme.example",
    ]);
    assert!(table.starts_with("At "), "{table}");

    // P5: one update per migrated meeting per migration, from the service, with the new number
    // set in the last ones.
    let mails = smtp.messages();
    assert_eq!(
        mails.len(),
        4 * MIGRATING,
        "one update per migrated meeting"
    );
    assert!(mails.iter().all(|m| m.mail_from == "mms@service.example"));
    let last_to_bob = mails
        .iter()
        .rev()
        .find(|m| String::from_utf8_lossy(&m.data).contains("bob@acme.example"))
        .expect("bob's meetings were updated");
    let text = String::from_utf8_lossy(&last_to_bob.data).replace("\r\n ", "");
    assert!(
        text.contains("206-555-0142"),
        "the remaining number is offered"
    );
    assert!(!text.contains("5555 0100"), "the unassigned number is gone");
}

impl MmsAll {
    /// Run `mmsctl args` expecting it to fail: its exit code and stderr.
    fn fail(&self, args: &[&str]) -> (i32, String) {
        self.fail_with(self.ctl(args), args)
    }

    fn fail_with(&self, mut command: Command, args: &[&str]) -> (i32, String) {
        let output = command.output().expect("run mmsctl");
        assert!(
            !output.status.success(),
            "mmsctl {args:?} succeeded: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The `Event` column of a user's transaction history.
    /// `COMMAND --identity USER --what-if` (a start or an undo): how many meetings it would
    /// update, and its table.
    fn would_update(&self, command: &str, user: &str) -> (usize, String) {
        let table = self.run(&[command, "--identity", user, "--what-if"]);
        (table.matches("WouldUpdate").count(), table)
    }

    fn history_events(&self, user: &str) -> Vec<String> {
        let history = self.json(&[
            "get-meeting-migration-transaction-history",
            "--identity",
            user,
        ]);
        history
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["Event"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Issue 9 ("Must show"): a whole admin session with `mmsctl` only, from a tenant created with
/// both switches to one migration looked up by its correlation id and undone (what-if first),
/// importing the sample CSV shipped under `deploy/examples/`, a bulk start, and every error
/// showing its HTTP status and the API's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_session_with_mmsctl_alone() {
    const SAMPLE_USERS: [&str; 3] = ["ann@acme.example", "bob@acme.example", "cy@acme.example"];
    let (redis, smtp) = tokio::join!(RedisServer::start(false), SmtpSink::start());
    let dir = tempfile::tempdir().unwrap();
    let mailboxes = dir.path().join("mailboxes");
    for user in SAMPLE_USERS {
        demo::write_mailbox(&mailboxes, user, MEETINGS, Utc::now()).unwrap();
    }
    let mut cfg = config(&redis, &smtp, &mailboxes);
    cfg.namespace = "ctl-session".into();
    let config_path = dir.path().join("mms.toml");
    std::fs::write(&config_path, toml::to_string(&cfg).unwrap()).unwrap();
    let mut mms = MmsAll::spawn(&config_path, format!("http://{}", cfg.api_addr));
    mms.ready().await;

    // A tenant with both switches given: migrations on, automatic T2 migrations off (M3, M4).
    let created = mms.json(&[
        "create-tenant",
        "--domain",
        "acme.example",
        "--meeting-migration-enabled",
        "true",
        "--automatically-migrate-user-meetings",
        "false",
    ]);
    assert_eq!(
        (
            &created["MeetingMigrationEnabled"],
            &created["AutomaticallyMigrateUserMeetings"]
        ),
        (&json!(true), &json!(false)),
        "{created}"
    );
    assert_eq!(mms.json(&["list-tenants"]), json!([TENANT]));
    let dialin = mms.json(&["get-dialin-conferencing-tenant-settings"]);
    assert_eq!(
        dialin["AutomaticallyMigrateUserMeetings"], false,
        "{dialin}"
    );

    // The sample CSV as shipped, after the bridge it names.
    mms.run(&[
        "set-bridge",
        "--id",
        "main",
        "--name",
        "Main bridge",
        "--number",
        "+1 206-555-0142|United States, Seattle (Toll)",
    ]);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/users.csv");
    let imported = mms.json(&["import-users", "--file", sample.to_str().unwrap()]);
    assert_eq!(imported["Imported"], 3, "{imported}");

    // list-users: a table, a filter, and paging that says where the next page starts.
    let table = mms.run(&["list-users"]);
    assert!(table.starts_with("Upn "), "{table}");
    for user in SAMPLE_USERS {
        assert!(table.contains(user), "{user}: {table}");
    }
    let without_audio = mms.json(&["list-users", "--audio-enabled", "false"]);
    let listed: Vec<&str> = without_audio
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Upn"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["cy@acme.example"]);
    let output = mms.ctl(&["list-users", "--limit", "2"]).output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--offset 2"), "{stderr}");

    // set-user changes only what it is given; a new user must say whether they dial in.
    let cy = mms.json(&[
        "set-user",
        "--identity",
        "cy@acme.example",
        "--teams-upgrade-mode",
        "TeamsOnly",
    ]);
    assert_eq!(cy["TeamsUpgradeMode"], "TeamsOnly", "{cy}");
    assert_eq!(cy["SipAddress"], "cy@acme.example", "kept: {cy}");
    let (code, stderr) = mms.fail(&["set-user", "--identity", "dee@acme.example"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("error: HTTP 400 invalid_import") && stderr.contains("AudioEnabled"),
        "{stderr}"
    );

    // What-if, then the start, watched until final.
    let (would_update, what_if) = mms.would_update("start-meeting-migration", "bob@acme.example");
    assert_eq!(would_update, MIGRATING, "{what_if}");
    let started = mms.json(&["start-meeting-migration", "--identity", "bob@acme.example"]);
    let correlation_id = started["CorrelationId"].as_str().unwrap().to_string();
    let drawn = mms.watch(&["--identity", "bob@acme.example"]);
    assert!(drawn.ends_with("1 of 1 migrations final\n"), "{drawn}");

    // The migration by its correlation id, with every meeting's outcome.
    let migration = mms.json(&["get-meeting-migration", "--correlation-id", &correlation_id]);
    assert_eq!(migration["State"], "Succeeded", "{migration:#}");
    let updated = migration["Meetings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Outcome"] == "Updated")
        .count();
    assert_eq!(updated, MIGRATING, "{migration:#}");
    let table = mms.run(&["get-meeting-migration", "--correlation-id", &correlation_id]);
    assert!(table.contains("Updated"), "{table}");
    let history = mms.history_events("bob@acme.example");
    for step in ["Triggered", "Queued", "Started", "Succeeded"] {
        assert!(history.iter().any(|e| e == step), "{step}: {history:?}");
    }

    // Undo (issue 9.2): the what-if changes and sends nothing; the undo restores every meeting
    // the migration saved, one update each; a second undo finds nothing left to change.
    let sent_before = smtp.messages().len();
    let (would_update, what_if) = mms.would_update("undo-meeting-migration", "bob@acme.example");
    assert_eq!(would_update, MIGRATING, "{what_if}");
    assert_eq!(
        smtp.messages().len(),
        sent_before,
        "a what-if sends nothing"
    );
    let undo = mms.json(&["undo-meeting-migration", "--identity", "bob@acme.example"]);
    let undo_id = undo["CorrelationId"].as_str().unwrap().to_string();
    assert_ne!(undo_id, correlation_id, "an undo is a migration of its own");
    let drawn = mms.watch(&["--identity", "bob@acme.example"]);
    assert!(drawn.ends_with("2 of 2 migrations final\n"), "{drawn}");
    let undone = mms.json(&["get-meeting-migration", "--correlation-id", &undo_id]);
    assert_eq!(
        (&undone["State"], &undone["MigrationType"]),
        (&json!("Succeeded"), &json!("Undo")),
        "{undone:#}"
    );
    let restored = undone["Meetings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Outcome"] == "Updated")
        .count();
    assert_eq!(restored, MIGRATING, "{undone:#}");
    assert_eq!(
        smtp.messages().len(),
        sent_before + MIGRATING,
        "one update per restored meeting"
    );
    let again = mms.json(&[
        "undo-meeting-migration",
        "--identity",
        "bob@acme.example",
        "--correlation-id",
        &correlation_id,
    ]);
    let again_id = again["CorrelationId"].as_str().unwrap().to_string();
    let drawn = mms.watch(&["--identity", "bob@acme.example"]);
    assert!(drawn.ends_with("3 of 3 migrations final\n"), "{drawn}");
    let again = mms.json(&["get-meeting-migration", "--correlation-id", &again_id]);
    assert_eq!(again["State"], "Succeeded", "{again:#}");
    assert_eq!(
        smtp.messages().len(),
        sent_before + MIGRATING,
        "a second undo sends nothing"
    );
    let history = mms.history_events("bob@acme.example");
    assert!(
        history.iter().filter(|e| *e == "Succeeded").count() == 3,
        "the migration and both undos are in the history: {history:?}"
    );
    // Migrated again, then a re-run that finds everything migrated and saves nothing: an undo
    // without --correlation-id passes over the re-run and offers the migration before it.
    mms.json(&["start-meeting-migration", "--identity", "bob@acme.example"]);
    let drawn = mms.watch(&["--identity", "bob@acme.example"]);
    assert!(drawn.ends_with("4 of 4 migrations final\n"), "{drawn}");
    mms.json(&["start-meeting-migration", "--identity", "bob@acme.example"]);
    let drawn = mms.watch(&["--identity", "bob@acme.example"]);
    assert!(drawn.ends_with("5 of 5 migrations final\n"), "{drawn}");
    let (would_update, what_if) = mms.would_update("undo-meeting-migration", "bob@acme.example");
    assert_eq!(would_update, MIGRATING, "{what_if}");

    // T2-no: a SIP address change and an organization URL change queue nothing and leave a
    // history line.
    let changed = mms.json(&[
        "change-sip-address",
        "--identity",
        "cy@acme.example",
        "--sip-address",
        "sip:cy.new@acme.example",
    ]);
    assert_eq!(
        (
            &changed["Outcomes"][0]["Rule"],
            &changed["Outcomes"][0]["Result"]
        ),
        (&json!("T2-no"), &json!("NotTriggered")),
        "{changed}"
    );
    assert_eq!(
        mms.history_events("cy@acme.example"),
        ["NotTriggered"],
        "one line, nothing queued"
    );
    let url = mms.json(&[
        "change-organization-meeting-url",
        "--url",
        "https://meet.acme.example/new",
    ]);
    assert_eq!(
        (&url["State"], &url["Skipped"]),
        (&json!("Succeeded"), &json!(3)),
        "a fan-out job that migrates no one: {url}"
    );
    assert!(url["Note"].as_str().unwrap().starts_with("T2-no"), "{url}");
    assert_eq!(
        mms.history_events("ann@acme.example"),
        ["NotTriggered"],
        "every organizer's history has the line"
    );
    assert_eq!(
        mms.json(&["get-meeting-migration-status"])
            .as_array()
            .unwrap()
            .len(),
        5,
        "only bob's three migrations and his two undos exist"
    );

    // A bulk start (T4 for many users, one job): a file of identities with a comment.
    let list = dir.path().join("wave1.txt");
    std::fs::write(&list, "# wave 1\nann@acme.example\n\ncy@acme.example\n").unwrap();
    let bulk = mms.json(&[
        "start-bulk-meeting-migration",
        "--identities-file",
        list.to_str().unwrap(),
    ]);
    assert_eq!(
        (&bulk["Kind"], &bulk["State"], &bulk["Queued"]),
        (&json!("BulkStart"), &json!("Succeeded"), &json!(2)),
        "{bulk}"
    );
    assert_eq!(
        mms.json(&["get-meeting-migration-status"])
            .as_array()
            .unwrap()
            .len(),
        7,
        "ann's and cy's migrations join bob's five"
    );

    // Errors: the HTTP status and the API's code, one "not found" rule, no misleading hint.
    let (code, stderr) = mms.fail(&["get-user", "--identity", "nobody@acme.example"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: HTTP 404 user_not_found: "),
        "{stderr}"
    );
    let (_, stderr) = mms.fail(&[
        "start-meeting-migration",
        "--identity",
        "nobody@acme.example",
    ]);
    assert!(
        stderr.starts_with("error: HTTP 404 user_not_found: "),
        "{stderr}"
    );
    let (_, stderr) = mms.fail(&["get-meeting-migration", "--correlation-id", "no-such-id"]);
    assert!(
        stderr.starts_with("error: HTTP 404 migration_not_found: "),
        "{stderr}"
    );
    let (_, stderr) = mms.fail(&["--tenant", "nowhere", "list-users"]);
    assert!(
        stderr.starts_with("error: HTTP 404 tenant_not_found: "),
        "{stderr}"
    );
    let mut short_token = mms.ctl(&["list-users"]);
    short_token.env("MMS_TOKEN", "short");
    let (code, stderr) = mms.fail_with(short_token, &["list-users"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: HTTP 401 "), "{stderr}");
    assert!(
        stderr.contains("MMS_TOKEN") && !stderr.contains("api_addr"),
        "{stderr}"
    );
    let (code, _) = mms.fail(&["get-user"]);
    assert_eq!(code, 64, "a usage error has its own exit code");

    // remove-user: gone from the directory, history kept.
    mms.run(&["remove-user", "--identity", "cy@acme.example"]);
    let (_, stderr) = mms.fail(&["get-user", "--identity", "cy@acme.example"]);
    assert!(stderr.contains("HTTP 404 user_not_found"), "{stderr}");
    assert_eq!(
        mms.history_events("cy@acme.example")[..4],
        ["NotTriggered", "NotTriggered", "Triggered", "Queued"],
        "the two T2-no lines and the bulk start's trigger are kept"
    );
}
