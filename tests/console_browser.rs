//! The web console in a real browser (issue 9, item 1, "Must show"; M1, M2, M3, M4): a real
//! `mms all --demo` process (embedded vdir mailboxes, a Maildir outbox, a private Redis) and
//! Debian's headless Chromium rendering `/console` against it. The test reads the DOM the page
//! drew, as a person would see it: the three demo users Succeeded, one user's meetings with their
//! outcomes and history, and a tenant admin who never sees another tenant's data (only a clear
//! refusal when they ask for it). Screenshots of a laptop and a phone window are kept under
//! `target/console-screenshots/` as test artifacts.
//!
//! Undo on the page (issue 9, item 2): `--dump-dom` shows the "Undo…" button on a demo user's
//! Succeeded migration; clicking it needs a browser that can be driven, so the test also runs
//! Chromium under the DevTools protocol over `--remote-debugging-pipe` ([`DevTools`], a few
//! lines of JSON over two pipes, no crate) and clicks like a person: a mouse press on the button
//! where it is drawn, the what-if dialog (Cancel focused), Cancel, again, confirm; then the undo
//! must appear in the list and end Succeeded, checked through the API and on the page.
//!
//! Chromium runs with a fresh profile and everything that would reach the internet switched off;
//! the page itself loads nothing but its own embedded assets.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
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

    /// The flags of every run: a fresh profile in `profile`, a `window`, nothing reaching out.
    fn flags(profile: &Path, window: Window) -> Vec<String> {
        [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={},{}", window.width, window.height),
        ])
        .collect()
    }

    /// A one-shot Chromium command (`--dump-dom`, `--screenshot`): it runs the page for
    /// [`VIRTUAL_TIME_BUDGET_MS`] of virtual time.
    fn command(&self, profile: &Path, window: Window) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(Self::flags(profile, window))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
            .stdin(Stdio::null());
        command
    }

    /// A browser to drive over the DevTools protocol, showing `url` in `window`.
    fn drive(&self, url: &str, window: Window) -> DevTools {
        DevTools::open(&self.binary, url, window)
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

/// How long one DevTools command or one awaited page state may take before the test gives up:
/// a guard against a hang, not a performance check.
const DEVTOOLS_PATIENCE: Duration = Duration::from_secs(90);

/// Headless Chromium driven over the DevTools protocol (CDP) through `--remote-debugging-pipe`:
/// the browser reads commands from its fd 3 and writes answers and events to its fd 4, each a JSON
/// message ended by a NUL byte. `sh` hands our stdin and stdout pipes to the browser as fds 3 and
/// 4 (`3<&0 4>&1`), so no unsafe code and no websocket crate is needed. Commands go to one page
/// (a target attached in flat mode, addressed by its session id); the browser is killed when
/// this is dropped.
struct DevTools {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl DevTools {
    fn open(binary: &Path, url: &str, window: Window) -> DevTools {
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromium.log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(binary)
            .args(Chromium::flags(&profile.path().join("profile"), window))
            .args(["--remote-debugging-pipe", "about:blank"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start chromium --remote-debugging-pipe");
        let to_browser = child.stdin.take().unwrap();
        let mut pipe = child.stdout.take().unwrap();
        let (sender, from_browser) = mpsc::channel();
        // Messages are cut at NUL bytes; the thread ends when the browser closes its end.
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            while let Ok(read) = pipe.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                pending.extend_from_slice(&chunk[..read]);
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    match serde_json::from_slice(&message[..end]) {
                        Ok(value) => {
                            if sender.send(value).is_err() {
                                return;
                            }
                        }
                        Err(e) => panic!("chromium sent a message that is not JSON: {e}"),
                    }
                }
            }
        });
        let mut tools = DevTools {
            child,
            to_browser,
            from_browser,
            next_id: 0,
            session: String::new(),
            log,
            _profile: profile,
        };
        let target = tools.browser_call("Target.createTarget", json!({ "url": url }));
        let attached = tools.browser_call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        tools.session = attached["sessionId"].as_str().unwrap().to_string();
        tools
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send `method` (to the page when `to_page`) and wait for its answer; events on the way are
    /// not needed and dropped. A protocol error fails the test with the browser's message.
    fn send(&mut self, method: &str, params: Value, to_page: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if to_page {
            message["sessionId"] = Value::String(self.session.clone());
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .and_then(|()| self.to_browser.flush())
            .unwrap_or_else(|e| panic!("chromium stopped reading ({e}): {}", self.log_text()));
        let deadline = Instant::now() + DEVTOOLS_PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer to {method} ({e}): {}", self.log_text()));
            if answer["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                panic!("chromium refused {method}: {error}");
            }
            return answer["result"].clone();
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    /// The value of the JavaScript `expression` in the page (promises awaited); an exception
    /// fails the test with its text.
    fn eval(&mut self, expression: &str) -> Value {
        let answer = self.send(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            true,
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("the page threw on {expression}: {exception}");
        }
        answer["result"]["value"].clone()
    }

    /// Wait until `expression` is true in the page (the page draws from API calls and refreshes
    /// by itself); `what` names the awaited state in the failure, with the page's text.
    fn wait_for(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + DEVTOOLS_PATIENCE;
        while self.eval(expression) != Value::Bool(true) {
            if Instant::now() > deadline {
                let text = self.eval("document.body.innerText");
                panic!("the page never showed {what} ({expression}): {text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element `selector` finds as a person would: scroll it into view, then press and
    /// release the mouse at its centre. Whatever is drawn there receives the click, so a hidden or
    /// covered button fails here (checked first: the topmost element there must be it).
    fn click(&mut self, selector: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null;
               e.scrollIntoView({{ block: 'center' }}); const r = e.getBoundingClientRect();
               const x = r.left + r.width / 2, y = r.top + r.height / 2;
               const top = document.elementFromPoint(x, y);
               return {{ x, y, hit: !!top && (top === e || e.contains(top)) }}; }})()"
        ));
        assert!(
            found.is_object(),
            "nothing on the page matches {selector}: {}",
            self.eval("document.body.innerText")
        );
        assert_eq!(
            found["hit"], true,
            "{selector} is covered where it is drawn"
        );
        let (x, y) = (found["x"].clone(), found["y"].clone());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.send(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
                true,
            );
        }
    }

    /// A PNG of what the page shows now (an open dialog included), written to `path`.
    fn screenshot(&mut self, path: &Path) {
        let shot = self.send("Page.captureScreenshot", json!({ "format": "png" }), true);
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for DevTools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (RFC 4648, with padding), as `Page.captureScreenshot` sends its PNG; written
/// out here rather than adding a dependency for one call.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .unwrap_or_else(|| panic!("{:?} is not base64", byte as char));
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
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
    // Its Succeeded migration offers an undo (issue 9.2): a real button, named for the migration.
    let user_migrations = element(&dom, "table", "user-migrations");
    let migration_rows = body_rows(user_migrations);
    assert_eq!(migration_rows.len(), 1, "{user_migrations}");
    assert!(
        migration_rows[0].contains(&format!("<button type=\"button\" class=\"secondary\" aria-label=\"Undo… migration {}\" data-undo=\"{correlation_id}\">Undo…</button>", &correlation_id[..8])),
        "the Succeeded migration has its Undo… button: {user_migrations}"
    );
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

    // Undo on the page (issue 9.2), clicked in a driven browser: the what-if in a dialog, then
    // the undo, a migration of its own that appears in the list and ends Succeeded.
    let user = DEMO_USERS[1];
    let undone = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["UserPrincipalName"] == user)
        .unwrap()["CorrelationId"]
        .as_str()
        .unwrap()
        .to_string();
    let undo_path = format!("/v1/tenants/demo/migrations/{undone}:undo");
    // What the dialog must show: the API's own what-if (asking it changes nothing).
    let (status, what_if) = mms
        .call("POST", &format!("{undo_path}?whatIf=true"), OPERATOR, None)
        .await;
    assert_eq!(status, 200, "{what_if}");
    let restored = what_if["WouldUpdate"].as_u64().unwrap();
    let listed = what_if["Items"].as_array().unwrap().len();
    assert!(restored > 0, "the demo migration saved meetings: {what_if}");
    let user_url = mms.console(&format!("token={OPERATOR}&tenant=demo&user={user}"));
    let mut page = chromium.drive(&user_url, LAPTOP);
    let button = format!("#user-migrations button[data-undo=\"{undone}\"]");
    page.wait_for(
        &format!(
            "!!document.querySelector('{button}') && !document.querySelector('{button}').disabled"
        ),
        "the Undo… button",
    );
    let dialog_open = "document.getElementById('undo-confirm').open";
    // Cancel: the dialog closes, nothing is queued, the keyboard is back on the button.
    page.click(&button);
    page.wait_for(dialog_open, "the undo dialog");
    assert_eq!(
        page.eval("document.activeElement.id"),
        "undo-cancel",
        "Cancel has the focus: Enter alone never undoes"
    );
    page.screenshot(&shots.join("laptop-undo-dialog.png"));
    page.click("#undo-cancel");
    page.wait_for(&format!("!{dialog_open}"), "the dialog closed");
    page.wait_for(
        &format!("document.activeElement.dataset.undo === '{undone}'"),
        "the focus back on the Undo… button",
    );
    let (_, mine) = mms
        .call(
            "GET",
            &format!("/v1/tenants/demo/migrations?identity={user}"),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "Cancel queued nothing: {mine}"
    );
    // Again, and confirm.
    page.click(&button);
    page.wait_for(dialog_open, "the undo dialog");
    let text = page.eval("document.getElementById('undo-text').textContent");
    assert!(
        text.as_str().unwrap().contains(&format!(
            "{restored} meeting(s) would get their previous online block back"
        )),
        "the dialog says what the what-if says: {text} / {what_if}"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#undo-meetings tbody tr').length"),
        listed,
        "every meeting of the what-if is listed: {what_if}"
    );
    page.click("#undo-ok");
    // The undo is queued: through the API, a migration of type Undo of this user, which ends
    // Succeeded having restored what the what-if said.
    let deadline = Instant::now() + Duration::from_secs(120);
    let undo = loop {
        let (_, mine) = mms
            .call(
                "GET",
                &format!("/v1/tenants/demo/migrations?identity={user}"),
                OPERATOR,
                None,
            )
            .await;
        let found = mine
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["MigrationType"] == "Undo")
            .cloned();
        if let Some(undo) = found.filter(|u| u["State"] == "Succeeded" || u["State"] == "Failed") {
            break undo;
        }
        assert!(Instant::now() < deadline, "no final undo migration: {mine}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(undo["State"], "Succeeded", "{undo}");
    assert_eq!(undo["SucceededMeeting"].as_u64(), Some(restored), "{undo}");
    let undo_id = undo["CorrelationId"].as_str().unwrap();
    // On the page: the undo, shown below as the current migration, Succeeded once its refresh
    // has run, with no Undo… button of its own; the status line names its correlation id.
    page.wait_for(
        &format!(
            "(() => {{ const link = document.querySelector('#user-migrations a[title=\"{undo_id}\"]');
               if (!link) return false; const row = link.closest('tr');
               return link.getAttribute('aria-current') === 'true'
                 && row.querySelector('.badge').textContent === 'Succeeded'
                 && row.cells[2].textContent === 'Undo' && !row.querySelector('button'); }})()"
        ),
        "the undo migration Succeeded in the list",
    );
    let status_line = page.eval("document.getElementById('status').textContent");
    assert!(
        status_line.as_str().unwrap().contains(undo_id),
        "{status_line}"
    );
    page.screenshot(&shots.join("laptop-undo-done.png"));
    drop(page);

    // On a phone the row is a card and the dialog fits the screen: the button is still there
    // to press (the click above fails on anything hidden or covered); Cancel leaves it all be.
    let user = DEMO_USERS[2];
    let undone = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["UserPrincipalName"] == user)
        .unwrap()["CorrelationId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut page = chromium.drive(
        &mms.console(&format!("token={OPERATOR}&tenant=demo&user={user}")),
        PHONE,
    );
    let button = format!("#user-migrations button[data-undo=\"{undone}\"]");
    page.wait_for(
        &format!("!!document.querySelector('{button}')"),
        "the Undo… button on a phone",
    );
    page.click(&button);
    page.wait_for(dialog_open, "the undo dialog on a phone");
    page.screenshot(&shots.join("phone-undo-dialog.png"));
    page.click("#undo-cancel");
    page.wait_for(&format!("!{dialog_open}"), "the dialog closed");
    drop(page);

    // A refusal is shown with the API's status, code and message, and no dialog opens: a second
    // migration of a user whose meetings are already on the target saves nothing, so its undo
    // answers 409 nothing_to_undo.
    let user = DEMO_USERS[0];
    let (status, started) = mms
        .call(
            "POST",
            "/v1/tenants/demo/migrations",
            OPERATOR,
            Some(json!({ "Identity": user })),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let again = started["CorrelationId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, row) = mms
            .call(
                "GET",
                &format!("/v1/tenants/demo/migrations/{again}"),
                OPERATOR,
                None,
            )
            .await;
        if row["State"] == "Succeeded" {
            assert_eq!(
                row["InvitesUpdate"], 0,
                "the second migration changed nothing: {row}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline && row["State"] != "Failed",
            "the second migration never succeeded: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut page = chromium.drive(
        &mms.console(&format!("token={OPERATOR}&tenant=demo&user={user}")),
        LAPTOP,
    );
    let button = format!("#user-migrations button[data-undo=\"{again}\"]");
    page.wait_for(
        &format!("!!document.querySelector('{button}')"),
        "the Undo… button",
    );
    page.click(&button);
    page.wait_for(
        "!document.getElementById('alert').hidden",
        "the refusal of the undo",
    );
    let alert = page.eval("document.getElementById('alert').textContent");
    assert!(
        alert.as_str().unwrap().starts_with(&format!(
            "The undo of migration {again} was refused (409 nothing_to_undo): migration {again} saved no meeting"
        )),
        "{alert}"
    );
    assert_eq!(
        page.eval(dialog_open),
        false,
        "no dialog for a refused what-if"
    );
    page.wait_for(
        &format!(
            "document.activeElement.dataset.undo === '{again}' && !document.activeElement.disabled"
        ),
        "the focus back on the Undo… button",
    );
    page.screenshot(&shots.join("laptop-undo-refused.png"));
}
