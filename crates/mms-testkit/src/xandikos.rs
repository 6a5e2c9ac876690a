//! A private Xandikos CalDAV server (a second real server, written by other people than
//! Radicale's), storage in a temp dir, for mailbox tests.
//!
//! Xandikos keeps each collection in a git repository, reorders and normalises what it stores
//! (issue 7.2), answers `423 Locked` to concurrent writes in one calendar (issue 7.7) and
//! advertises RFC 6638 `calendar-auto-schedule` (issue 7.9); outbound iMIP is off unless started
//! with `--imip-send`, so this server delivers no update to anyone outside itself.
//!
//! [`Xandikos::start`] serves `xandikos serve --autocreate` on a free loopback port with no
//! authentication (Xandikos's own Basic auth requires its self-signed TLS). A test creates
//! `/<user>/calendar/` with [`Xandikos::create_calendar`] and writes events through HTTP, as a
//! mail client would.

use std::process::Command;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::process::ServerProcess;
use crate::{free_port, venv};

/// The unreserved characters of RFC 3986 stay as they are in a path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub struct Xandikos {
    pub port: u16,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    _process: ServerProcess,
}

impl Xandikos {
    /// A server that accepts every request without credentials.
    pub async fn start() -> Xandikos {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new(venv().join("bin").join("xandikos"));
        cmd.arg("serve")
            .arg("--directory")
            .arg(dir.path().join("root"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--autocreate")
            .arg("--no-detect-systemd")
            .arg("--listen-address")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string());
        let process =
            ServerProcess::spawn(cmd, "xandikos", port, &dir.path().join("xandikos.log")).await;
        Xandikos {
            port,
            dir,
            http: reqwest::Client::new(),
            _process: process,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The value for `MailboxConfig::Caldav::calendar_url`.
    pub fn calendar_url_template(&self) -> String {
        format!("{}/{{user}}/calendar/", self.base_url())
    }

    /// The calendar collection of `user`, the user percent-encoded as the mailbox does.
    pub fn calendar_url(&self, user: &str) -> String {
        format!(
            "{}/{}/calendar/",
            self.base_url(),
            utf8_percent_encode(user, PATH_SEGMENT)
        )
    }

    /// Where the server's log is, to read after a surprising answer.
    pub fn log_file(&self) -> std::path::PathBuf {
        self.dir.path().join("xandikos.log")
    }

    fn request(&self, method: &str, url: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("http method");
        self.http.request(method, url)
    }

    /// MKCOL the principal `/<user>/` (unless it exists), then MKCALENDAR `/<user>/calendar/`.
    pub async fn create_calendar(&self, user: &str) {
        let principal = format!(
            "{}/{}/",
            self.base_url(),
            utf8_percent_encode(user, PATH_SEGMENT)
        );
        let resp = self
            .request("MKCOL", &principal)
            .send()
            .await
            .expect("MKCOL");
        // 405: the principal exists already.
        assert!(
            resp.status().is_success() || resp.status() == 405,
            "MKCOL {principal}: {}",
            resp.status()
        );
        let resp = self
            .request("MKCALENDAR", &self.calendar_url(user))
            .send()
            .await
            .expect("MKCALENDAR");
        assert!(
            resp.status().is_success(),
            "MKCALENDAR for {user}: {}",
            resp.status()
        );
    }

    /// PUT an event as `<name>` in the user's calendar; returns its ETag.
    pub async fn put_event(&self, user: &str, name: &str, ics: &str) -> String {
        let url = format!("{}{}", self.calendar_url(user), name);
        let resp = self
            .request("PUT", &url)
            .header("Content-Type", "text/calendar; charset=utf-8")
            .body(ics.to_string())
            .send()
            .await
            .expect("PUT event");
        assert!(
            resp.status().is_success(),
            "PUT {url}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        resp.headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// GET an event's body as the server serves it.
    pub async fn get_event(&self, user: &str, name: &str) -> String {
        let url = format!("{}{}", self.calendar_url(user), name);
        let resp = self.request("GET", &url).send().await.expect("GET event");
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        resp.text().await.expect("event body")
    }
}
