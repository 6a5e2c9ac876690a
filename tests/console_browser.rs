//! The web console in a real browser (issue 9, item 1, "Must show"; M1, M2, M3, M4): a real
//! `mms all --demo` process (embedded vdir mailboxes, a Maildir outbox, a private Redis) and
//! Debian's headless Chromium rendering `/console` against it. The test reads the DOM the page
//! drew, as a person would see it: the three demo users Succeeded, one user's meetings with their
//! outcomes and history, and a tenant admin who never sees another tenant's data (only a clear
//! refusal when they ask for it). Screenshots of a laptop and a phone window are kept under
//! `target/console-screenshots/` as test artifacts.
//!
//! Chromium runs with a fresh profile and everything that would reach the internet switched off;
//! the page itself loads nothing but its own embedded assets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mms_core::config::MmsConfig;
use mms_testkit::redis::RedisServer;
use serde_json::{json, Value};

const OPERATOR: &str = "operator-token-for-the-console-browser-test";
const DEMO_USERS: [&str; 3] = [
    "user1@demo.example",
    "user2@demo.example",
    "user3@demo.example",
];
/// A tenant the demo's admin must never see, with a user whose UPN must appear nowhere.
const RIVAL: &str = "rival";
const RIVAL_USER: &str = "hidden.person@rival.example";

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long (virtual time) the page may run before the DOM is read: enough for its API calls;
/// Chromium pauses virtual time while a fetch is in flight.
const VIRTUAL_TIME_BUDGET_MS: u32 = 10_000;

/// Headless Chromium, found where `make deps` installs it.
struct Chromium {
    binary: PathBuf,
}

/// A browser window size, in CSS pixels.
#[derive(Clone, Copy)]
struct Window {
    width: u32,
    height: u32,
}

const LAPTOP: Window = Window {
    width: 1280,
    height: 800,
};
const PHONE: Window = Window {
    width: 390,
    height: 844,
};

impl Chromium {
    /// The browser, or a failure saying how to install it (never a silent skip: the console's
    /// only end-to-end check would vanish).
    fn find() -> Chromium {
        let candidates = [PathBuf::from(CHROMIUM)].into_iter().chain(
            std::env::var_os("PATH")
                .map(|path| {
                    std::env::split_paths(&path)
                        .map(|dir| dir.join("chromium"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        for binary in candidates {
            if binary.is_file() {
                return Chromium { binary };
            }
        }
        panic!(
            "headless Chromium is missing (looked for {CHROMIUM} and `chromium` on PATH): \
             `make deps` installs it (Debian's chromium package, target chromium-bin)"
        );
    }

    /// A Chromium command with a fresh profile in `profile` and nothing reaching out.
    fn command(&self, profile: &Path, window: Window) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={},{}", window.width, window.height))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
            .stdin(Stdio::null());
        command
    }

    /// The DOM after the page at `url` has run: what a person would see, as HTML.
    fn dom(&self, url: &str) -> String {
        let profile = tempfile::tempdir().unwrap();
        let mut command = self.command(profile.path(), LAPTOP);
        command.arg("--dump-dom").arg(url);
        let (stdout, stderr) = run(command, "chromium --dump-dom");
        assert!(
            stdout.contains("</html>"),
            "chromium printed no DOM for {url}: {stderr}"
        );
        stdout
    }

    /// A PNG of the page at `url` in `window`, written to `path`.
    fn screenshot(&self, url: &str, window: Window, path: &Path) {
        let profile = tempfile::tempdir().unwrap();
        let _ = std::fs::remove_file(path);
        let mut command = self.command(profile.path(), window);
        command
            .arg(format!("--screenshot={}", path.display()))
            .arg(url);
        let (_, stderr) = run(command, "chromium --screenshot");
        let png = std::fs::read(path)
            .unwrap_or_else(|e| panic!("no screenshot at {} ({e}): {stderr}", path.display()));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            path.display()
        );
    }
}

/// Run `command` to its end; its stdout and stderr after checking it exited 0. A browser still
/// running after two minutes is killed (a guard against a hang, not a performance check).
fn run(mut command: Command, what: &str) -> (String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("poll chromium").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{what} still running after 120 s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{what} failed: {stderr}");
    (stdout, stderr)
}

/// The `mms all --demo` process; killed when dropped so that a failing test leaves nothing
/// running.
struct MmsAll {
    child: Child,
    api_url: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl MmsAll {
    /// Start `mms all --demo` in `dir` (its `var/` holds the demo mailboxes and outbox).
    fn spawn(dir: &Path, redis: &RedisServer) -> MmsAll {
        let mut cfg = MmsConfig {
            redis_url: redis.url(),
            namespace: "console-browser".into(),
            metrics_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
            api_addr: format!("127.0.0.1:{}", mms_testkit::free_port()),
            ..MmsConfig::default()
        };
        cfg.api.operator_token = Some(OPERATOR.into());
        cfg.queue.coalesce_delay_ms = 0;
        cfg.queue.block_ms = 50;
        let config = dir.join("mms.toml");
        std::fs::write(&config, toml::to_string(&cfg).unwrap()).unwrap();
        let log = dir.join("mms-all.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mms"))
            .args(["all", "--demo", "--config"])
            .arg(&config)
            .current_dir(dir)
            .env("MMS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn mms all --demo");
        MmsAll {
            child,
            api_url: format!("http://{}", cfg.api_addr),
            log,
            http: reqwest::Client::new(),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `method path` with `token`; the status and the JSON reply.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.api_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Wait until the demo's three migrations are final (the process seeds and runs them).
    async fn demo_finished(&mut self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, rows) = self
                .call("GET", "/v1/tenants/demo/migrations", OPERATOR, None)
                .await;
            if status == 200
                && rows.as_array().is_some_and(|rows| {
                    rows.len() == DEMO_USERS.len()
                        && rows
                            .iter()
                            .all(|r| r["State"] == "Succeeded" || r["State"] == "Failed")
                })
            {
                return rows;
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("mms all --demo exited ({exit}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the demo migrations never finished ({status} {rows}): {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The console's URL with `fragment` (the token and what to show; never sent to the server).
    fn console(&self, fragment: &str) -> String {
        format!("{}/console#{fragment}", self.api_url)
    }
}

impl Drop for MmsAll {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTML of the element with `id` (from its opening tag to the matching close of `tag`;
/// the console's tables and sections do not nest their own kind).
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let open = format!("<{tag} id=\"{id}\"");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag} id={id:?}> in the page: {dom}"));
    let close = format!("</{tag}>");
    let end = dom[start..]
        .find(&close)
        .unwrap_or_else(|| panic!("<{tag} id={id:?}> is not closed"));
    &dom[start..start + end + close.len()]
}

/// The rows of a table's body, as HTML.
fn body_rows(table: &str) -> Vec<&str> {
    let body = &table[table.find("<tbody>").expect("a tbody")..];
    body.split("<tr").skip(1).collect()
}

/// Whether an element's opening tag carries the `hidden` attribute.
fn is_hidden(dom: &str, tag: &str, id: &str) -> bool {
    let open = element(dom, tag, id);
    let tag_end = open.find('>').unwrap();
    open[..tag_end].contains(" hidden")
}

/// Where the screenshots go: `target/console-screenshots/` (test artifacts, not committed).
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_the_demo_migrations_and_only_their_own_tenant_in_the_browser() {
    let chromium = Chromium::find();
    let redis = RedisServer::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut mms = MmsAll::spawn(dir.path(), &redis);
    let rows = mms.demo_finished().await;

    // A second tenant with a user the demo's admin must never see; a token for the demo's admin.
    let (status, reply) = mms
        .call(
            "POST",
            "/v1/tenants",
            OPERATOR,
            Some(json!({"Tenant": RIVAL, "Domains": ["rival.example"]})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = mms
        .call(
            "PUT",
            &format!("/v1/tenants/{RIVAL}/users/{RIVAL_USER}"),
            OPERATOR,
            Some(json!({"SipAddress": RIVAL_USER, "AudioEnabled": "false"})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, minted) = mms
        .call(
            "POST",
            "/v1/tokens",
            OPERATOR,
            Some(json!({"Tenant": "demo"})),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    let admin = minted["Token"].as_str().unwrap().to_string();

    // Without a token: the sign-in form, labelled, and no data.
    let dom = chromium.dom(&mms.console(""));
    assert!(!is_hidden(&dom, "section", "sign-in"), "{dom}");
    assert!(
        dom.contains("<label for=\"token\">API token</label>"),
        "{dom}"
    );
    assert!(is_hidden(&dom, "div", "overview"), "{dom}");

    // The operator (token handed in the fragment, as `make run` prints it): both tenants in the
    // list, the summary (M1) and the three demo users Succeeded with every meeting done (M2).
    let dom = chromium.dom(&mms.console(&format!("token={OPERATOR}")));
    let tenants = element(&dom, "select", "tenant");
    assert!(
        tenants.contains(">demo</option>") && tenants.contains(&format!(">{RIVAL}</option>")),
        "the operator sees every tenant: {tenants}"
    );
    assert!(is_hidden(&dom, "section", "sign-in"), "signed in: {dom}");
    let states = element(&dom, "table", "summary-states");
    assert!(
        states.contains("<td data-label=\"Succeeded\" class=\"count\">3</td>"),
        "{states}"
    );
    let users = element(&dom, "table", "users");
    let user_rows = body_rows(users);
    assert_eq!(user_rows.len(), DEMO_USERS.len(), "{users}");
    for user in DEMO_USERS {
        let row = user_rows
            .iter()
            .find(|r| r.contains(&format!(">{user}</a>")))
            .unwrap_or_else(|| panic!("{user} is listed: {users}"));
        assert!(row.contains(">Succeeded</span>"), "{user}: {row}");
        let api_row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["UserPrincipalName"] == user)
            .unwrap();
        let total = api_row["TotalMeeting"].as_u64().unwrap();
        assert!(total > 0, "{api_row}");
        assert!(
            row.contains(&format!("<span>{total} / {total}</span>")),
            "{user}: all {total} meetings done: {row}"
        );
    }
    let live = element(&dom, "p", "progress");
    assert!(
        live.contains("aria-live=\"polite\"")
            && live.contains("All 3 migration(s) shown are final."),
        "{live}"
    );
    let switches = element(&dom, "table", "switches");
    assert!(
        switches.contains("MeetingMigrationEnabled")
            && switches.contains("AutomaticallyMigrateUserMeetings")
            && switches.matches(">On</span>").count() == 2,
        "both switches read (M3, M4): {switches}"
    );

    // The token handed in the fragment stays out of the page: not in its text, not in its links.
    assert!(!dom.contains(OPERATOR), "the token is not shown: {dom}");

    // Filters map onto the API's query parameters (M2: state, migration type, identity).
    let filtered = |fragment: &str| {
        let dom = chromium.dom(&mms.console(&format!("token={OPERATOR}&tenant=demo&{fragment}")));
        let rows: Vec<String> = body_rows(element(&dom, "table", "users"))
            .into_iter()
            .map(str::to_string)
            .collect();
        (dom, rows)
    };
    let (_, rows_shown) = filtered("state=Succeeded&identity=user2@demo.example");
    assert_eq!(rows_shown.len(), 1, "{rows_shown:?}");
    assert!(
        rows_shown[0].contains(">user2@demo.example</a>"),
        "{rows_shown:?}"
    );
    let (dom, rows_shown) = filtered("state=Failed&type=AllToTeams");
    assert!(
        rows_shown.len() == 1 && rows_shown[0].contains("No migrations match"),
        "{rows_shown:?}"
    );
    assert!(
        element(&dom, "details", "filters-box").contains("Filters (2 set)"),
        "the filters set are shown: {dom}"
    );
    // A filter the API refuses: its message, and the form still there to fix it.
    let (dom, _) = filtered("identity=nobody@demo.example");
    let alert = element(&dom, "div", "alert");
    assert!(
        !is_hidden(&dom, "div", "alert") && alert.contains("nobody@demo.example"),
        "{alert}"
    );
    assert!(!is_hidden(&dom, "div", "overview"), "{dom}");

    // One user: their migration, each meeting's outcome and reason as the API gives them, and
    // the transaction history.
    let user = DEMO_USERS[0];
    let api_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["UserPrincipalName"] == user)
        .unwrap();
    let correlation_id = api_row["CorrelationId"].as_str().unwrap();
    let (status, migration) = mms
        .call(
            "GET",
            &format!("/v1/tenants/demo/migrations/{correlation_id}"),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(status, 200, "{migration}");
    let meetings = migration["Meetings"].as_array().unwrap();
    assert!(!meetings.is_empty(), "{migration}");
    let dom = chromium.dom(&mms.console(&format!("token={OPERATOR}&tenant=demo&user={user}")));
    assert!(!is_hidden(&dom, "div", "user-view"), "{dom}");
    assert!(
        element(&dom, "h2", "meetings-title").contains(correlation_id),
        "the newest migration's meetings are shown: {dom}"
    );
    let table = element(&dom, "table", "meetings");
    let meeting_rows = body_rows(table);
    assert_eq!(meeting_rows.len(), meetings.len(), "{table}");
    for meeting in meetings {
        let summary = meeting["Summary"].as_str().unwrap();
        let row = meeting_rows
            .iter()
            .find(|r| r.contains(&format!(">{summary}</th>")))
            .unwrap_or_else(|| panic!("meeting {summary:?} is listed: {table}"));
        let outcome = meeting["Outcome"].as_str().unwrap();
        let reason = meeting["Reason"].as_str().unwrap();
        assert!(
            row.contains(&format!(">{outcome}</span>")) && row.contains(&format!(">{reason}</td>")),
            "{summary}: {outcome}, {reason}: {row}"
        );
    }
    // The demo's mailbox holds meetings that are migrated and meetings skipped by rule (past,
    // organized by someone else): the page shows both kinds, each with its reason.
    let updated = meetings
        .iter()
        .filter(|m| m["Outcome"] == "Updated")
        .count();
    assert_eq!(
        updated as u64,
        migration["SucceededMeeting"].as_u64().unwrap(),
        "{migration}"
    );
    assert!(updated > 0 && updated < meetings.len(), "{migration}");
    assert_eq!(table.matches(">Updated</span>").count(), updated, "{table}");
    assert!(table.contains(">Skipped</span>"), "{table}");
    let history = element(&dom, "table", "history");
    for event in ["Queued", "Started", "Succeeded"] {
        assert!(
            body_rows(history)
                .iter()
                .any(|r| r.contains(&format!("<td data-label=\"Event\">{event}</td>"))),
            "history shows {event}: {history}"
        );
    }
    let shots = screenshot_dir();
    let user_url = mms.console(&format!("token={OPERATOR}&tenant=demo&user={user}"));
    chromium.screenshot(&user_url, LAPTOP, &shots.join("laptop-user.png"));
    chromium.screenshot(&user_url, PHONE, &shots.join("phone-user.png"));
    let overview_url = mms.console(&format!("token={OPERATOR}&tenant=demo"));
    chromium.screenshot(&overview_url, LAPTOP, &shots.join("laptop-overview.png"));
    chromium.screenshot(&overview_url, PHONE, &shots.join("phone-overview.png"));

    // The demo's tenant admin: their tenant only, the rival's name and user nowhere.
    let dom = chromium.dom(&mms.console(&format!("token={admin}")));
    let tenants = element(&dom, "select", "tenant");
    assert!(
        tenants.contains(">demo</option>") && !tenants.contains(RIVAL),
        "{tenants}"
    );
    assert!(!dom.contains(RIVAL_USER) && !dom.contains("rival"), "{dom}");
    assert_eq!(
        body_rows(element(&dom, "table", "users")).len(),
        DEMO_USERS.len(),
        "the admin sees their own tenant's users"
    );

    // Asking for the rival tenant (a hand-edited link): a clear refusal and no data at all.
    let refused_url = mms.console(&format!("token={admin}&tenant={RIVAL}"));
    let dom = chromium.dom(&refused_url);
    let alert = element(&dom, "div", "alert");
    assert!(
        !is_hidden(&dom, "div", "alert")
            && alert.contains("This token is not allowed to see tenant \"rival\" (403 forbidden)"),
        "{alert}"
    );
    assert!(!dom.contains(RIVAL_USER), "{dom}");
    assert!(
        is_hidden(&dom, "div", "overview") && is_hidden(&dom, "div", "user-view"),
        "{dom}"
    );
    for table in ["users", "summary-states", "switches"] {
        assert!(
            body_rows(element(&dom, "table", table)).is_empty(),
            "no data beside the refusal ({table}): {dom}"
        );
    }
    chromium.screenshot(&refused_url, LAPTOP, &shots.join("laptop-refused.png"));
}
