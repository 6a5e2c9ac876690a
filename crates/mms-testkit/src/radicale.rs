//! A private Radicale 3 CalDAV server, storage in a temp dir, for mailbox tests.
//!
//! [`Radicale::start`] accepts anyone (`auth type = none`, `rights type = authenticated`), so a
//! test creates `/<user>/calendar/` and writes events without credentials.
//! [`Radicale::start_with_users`] checks Basic credentials against a plain htpasswd file and lets
//! each user touch only their own collections (`owner_only`), to test refused credentials.
//! [`Radicale::start_tls`] and [`Radicale::start_tls_with_users`] serve the same over HTTPS with
//! a given certificate (see [`crate::tls::TestCertificates`]).
//!
//! The helpers write through HTTP (as a mail client would) but [`Radicale::list_events`] reads the
//! storage folder directly, so a test checks what the server really holds, independently of the
//! CalDAV client under test. Keep fixtures small: Radicale re-reads a calendar on every query.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The unreserved characters of RFC 3986 stay as they are in a path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

use crate::process::ServerProcess;
use crate::{free_port, venv};

/// The certificate and key files an HTTPS Radicale serves with.
struct ServerCertificate<'a> {
    cert_file: &'a Path,
    key_file: &'a Path,
}

pub struct Radicale {
    pub port: u16,
    /// `http` or `https`.
    scheme: &'static str,
    dir: tempfile::TempDir,
    passwords: HashMap<String, String>,
    http: reqwest::Client,
    _process: ServerProcess,
}

impl Radicale {
    /// A server that accepts every request without credentials.
    pub async fn start() -> Radicale {
        Self::launch(&[], None).await
    }

    /// A server that requires Basic auth with one of `users` (name, plain password); each user
    /// may read and write only below `/<name>/`.
    pub async fn start_with_users(users: &[(&str, &str)]) -> Radicale {
        Self::launch(users, None).await
    }

    /// Like [`Radicale::start`], but HTTPS only, serving the PEM certificate `cert_file` (for
    /// `127.0.0.1`) with its private key `key_file`.
    pub async fn start_tls(cert_file: &Path, key_file: &Path) -> Radicale {
        Self::launch(
            &[],
            Some(ServerCertificate {
                cert_file,
                key_file,
            }),
        )
        .await
    }

    /// Like [`Radicale::start_with_users`], but HTTPS only (see [`Radicale::start_tls`]).
    pub async fn start_tls_with_users(
        cert_file: &Path,
        key_file: &Path,
        users: &[(&str, &str)],
    ) -> Radicale {
        Self::launch(
            users,
            Some(ServerCertificate {
                cert_file,
                key_file,
            }),
        )
        .await
    }

    async fn launch(users: &[(&str, &str)], tls: Option<ServerCertificate<'_>>) -> Radicale {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let storage = dir.path().join("collections");
        let (auth, rights) = if users.is_empty() {
            ("type = none".to_string(), "authenticated")
        } else {
            let htpasswd = dir.path().join("htpasswd");
            let lines: String = users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
            std::fs::write(&htpasswd, lines).expect("write htpasswd");
            let auth = format!(
                "type = htpasswd\nhtpasswd_filename = {}\nhtpasswd_encryption = plain\ndelay = 0",
                htpasswd.display()
            );
            (auth, "owner_only")
        };
        let ssl = match &tls {
            None => "ssl = False".to_string(),
            Some(server) => format!(
                "ssl = True\ncertificate = {}\nkey = {}",
                server.cert_file.display(),
                server.key_file.display()
            ),
        };
        let config = format!(
            "[server]\nhosts = 127.0.0.1:{port}\nmax_connections = 32\ndelay_on_error = 0\n{ssl}\n\
             [auth]\n{auth}\n\
             [rights]\ntype = {rights}\n\
             [storage]\nfilesystem_folder = {}\n\
             [web]\ntype = none\n\
             [logging]\nlevel = info\n",
            storage.display()
        );
        let config_path = dir.path().join("config");
        std::fs::write(&config_path, config).expect("write radicale config");
        let mut cmd = Command::new(venv().join("bin").join("radicale"));
        cmd.arg("--config").arg(&config_path);
        let process =
            ServerProcess::spawn(cmd, "radicale", port, &dir.path().join("radicale.log")).await;
        // The fixture helpers below set up and inspect calendars; they must work whatever trust
        // configuration the client under test gets, so they do not verify the test certificate.
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(tls.is_some())
            .build()
            .expect("fixture HTTP client");
        Radicale {
            port,
            scheme: if tls.is_some() { "https" } else { "http" },
            passwords: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            dir,
            http,
            _process: process,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS server), no trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
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

    fn request(&self, method: &str, url: &str, user: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("http method");
        let req = self.http.request(method, url);
        match self.passwords.get(user) {
            Some(password) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }

    /// MKCOL the principal `/<user>/` (unless it exists), then MKCALENDAR `/<user>/calendar/`.
    pub async fn create_calendar(&self, user: &str) {
        let principal = format!(
            "{}/{}/",
            self.base_url(),
            utf8_percent_encode(user, PATH_SEGMENT)
        );
        let resp = self
            .request("MKCOL", &principal, user)
            .send()
            .await
            .expect("MKCOL");
        // 405: the principal exists already (Radicale makes it on a user's first login).
        assert!(
            resp.status().is_success() || resp.status() == 405,
            "MKCOL {principal}: {}",
            resp.status()
        );
        let resp = self
            .request("MKCALENDAR", &self.calendar_url(user), user)
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
            .request("PUT", &url, user)
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
        let resp = self
            .request("GET", &url, user)
            .send()
            .await
            .expect("GET event");
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        resp.text().await.expect("event body")
    }

    /// Every event file of the user's calendar, (name, content), sorted by name, read from disk.
    pub fn list_events(&self, user: &str) -> Vec<(String, String)> {
        let folder = self
            .storage_folder()
            .join("collection-root")
            .join(user)
            .join("calendar");
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return Vec::new();
        };
        let mut events: Vec<(String, String)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                (!name.starts_with('.'))
                    .then(|| (name, std::fs::read_to_string(e.path()).unwrap_or_default()))
            })
            .collect();
        events.sort();
        events
    }

    /// Write `bytes` as the file `name` straight into the user's calendar folder, bypassing the
    /// server (which would refuse to store them): to play a file another tool left there.
    pub fn write_raw_file(&self, user: &str, name: &str, bytes: &[u8]) {
        let folder = self
            .storage_folder()
            .join("collection-root")
            .join(user)
            .join("calendar");
        std::fs::write(folder.join(name), bytes).expect("write a raw file into Radicale's storage");
    }

    fn storage_folder(&self) -> PathBuf {
        self.dir.path().join("collections")
    }
}
