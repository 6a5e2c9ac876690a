//! Process configuration: defaults, then a TOML file, then `MMS_*` environment variables.
//!
//! Nested keys use a double underscore in the environment: `MMS_REDIS_URL`,
//! `MMS_MAILBOX__KIND=caldav`, `MMS_QUEUE__COALESCE_DELAY_MS=0`. With no file and no variables the
//! defaults describe the embedded set-up `make run` starts: a vdir mailbox and a Maildir outbox
//! under `./var`, Redis on localhost.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::meeting_service::MeetingTemplates;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmsConfig {
    pub redis_url: String,
    /// Prefix of every Redis key, so that several deployments (or test runs) share one Redis.
    pub namespace: String,
    /// Address the service sends as (`Sender:` and envelope sender; the organizer is `From:`).
    pub service_address: String,
    /// Name of this worker in the consumer group; defaults to host name + pid.
    pub worker_name: Option<String>,
    pub metrics_addr: String,
    pub api_addr: String,
    pub mailbox: MailboxConfig,
    pub mail: MailConfig,
    pub queue: QueueConfig,
    pub retry: RetryConfig,
    pub concurrency: ConcurrencyConfig,
    pub lease: LeaseConfig,
    pub meetings: MeetingTemplates,
    pub api: ApiConfig,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MailboxConfig {
    /// One folder per user, one `.ics` per event (the embedded store).
    Vdir {
        root: PathBuf,
        /// Limits and scheduling (`mailbox.max_resource_bytes`, ...), at this same level.
        #[serde(flatten)]
        options: MailboxOptions,
    },
    /// A CalDAV server; `calendar_url` may hold `{user}` (the UPN).
    Caldav {
        calendar_url: String,
        username: Option<String>,
        password: Option<String>,
        /// Seconds before a request is abandoned as unavailable.
        timeout_secs: u64,
        /// PEM file of CA certificates trusted for an `https://` server, besides the public
        /// roots: for a server whose certificate a private (organisation) CA signed.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Limits, quick retries and scheduling (`mailbox.max_resource_bytes`, ...), at this
        /// same level.
        #[serde(flatten)]
        options: MailboxOptions,
    },
}

/// Keys of the `[mailbox]` section shared by both connectors; each has a default, so a file
/// names only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxOptions {
    /// Largest calendar resource read, bytes; a larger one is reported as unreadable (too large)
    /// for its meeting, and its body is never read past this many bytes.
    #[serde(default = "default_max_resource_bytes")]
    pub max_resource_bytes: u64,
    /// Most bytes of calendar text one search page holds (a page is also cut at
    /// `concurrency.search_page_size` items). Must be at least `max_resource_bytes`.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: u64,
    /// CalDAV: quick retries of one request answered 423 / 429 / 502 / 503 / 504, reset or timed
    /// out, before the error surfaces as unavailable (and the slow `retry` schedule takes over).
    #[serde(default = "default_request_retries")]
    pub request_retries: u32,
    /// CalDAV: first quick-retry delay, milliseconds; doubled per retry, jittered, capped at
    /// 5 s (a server's `Retry-After` is honoured up to the same cap).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Who mails the attendees' update when a meeting is saved (RFC 6638 implicit scheduling).
    #[serde(default)]
    pub scheduling: SchedulingMode,
}

impl Default for MailboxOptions {
    fn default() -> Self {
        MailboxOptions {
            max_resource_bytes: default_max_resource_bytes(),
            max_page_bytes: default_max_page_bytes(),
            request_retries: default_request_retries(),
            retry_base_ms: default_retry_base_ms(),
            scheduling: SchedulingMode::default(),
        }
    }
}

fn default_max_resource_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_max_page_bytes() -> u64 {
    32 * 1024 * 1024
}

fn default_request_retries() -> u32 {
    4
}

fn default_retry_base_ms() -> u64 {
    200
}

/// `mailbox.scheduling`: who sends the update of a saved meeting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulingMode {
    /// Ask the server: one that advertises `calendar-auto-schedule` (RFC 6638) in the DAV header
    /// of OPTIONS sends its own iTIP, so MMS does not mail; any other server, MMS mails.
    #[default]
    Auto,
    /// The server sends the updates; MMS never mails them.
    Server,
    /// MMS always mails the updates (a server that advertises scheduling but does not deliver
    /// outside its own users, e.g. Xandikos without `--imip-send`).
    Mms,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MailConfig {
    /// Write each message to a Maildir `new/` folder (the embedded outbox).
    Maildir { root: PathBuf },
    Smtp {
        host: String,
        port: u16,
        /// `none`, `starttls` or `tls`.
        tls: String,
        username: Option<String>,
        password: Option<String>,
        /// Seconds one whole exchange with the relay (connect, TLS, AUTH, DATA) may take before
        /// it is abandoned as transient.
        timeout_secs: u64,
        /// PEM file of CA certificates trusted for the relay (with `tls` = `starttls` or `tls`),
        /// besides the public roots: for a relay whose certificate a private CA signed.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// How long a request waits before it runs, so that a burst of changes becomes one migration.
    pub coalesce_delay_ms: u64,
    /// A pending entry idle this long belongs to a dead worker and is claimed (XAUTOCLAIM).
    pub claim_idle_ms: u64,
    /// How long one XREADGROUP blocks.
    pub block_ms: u64,
    /// Requests read per tenant per round (fairness: each tenant gets this many per round).
    pub batch: usize,
    /// How often a request held by a disabled tenant (MeetingMigrationEnabled = false) is looked
    /// at again; each look costs a few Redis commands per held request.
    #[serde(default = "default_hold_recheck_ms")]
    pub hold_recheck_ms: u64,
}

fn default_hold_recheck_ms() -> u64 {
    30_000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryConfig {
    /// Retries after the first attempt (the vendor: nine within 24 hours).
    pub max_retries: u32,
    /// Delay before retry n (1-based) is `schedule_secs[min(n, len) - 1]`.
    pub schedule_secs: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyConfig {
    /// Migration actors running at once per tenant supervisor.
    pub per_tenant: usize,
    /// Requests in flight per worker process, all tenants together.
    pub per_worker: usize,
    /// Concurrent requests to one mailbox server from one worker.
    pub per_mailbox_server: usize,
    /// Meetings of one user handled at once.
    pub meetings_per_user: usize,
    /// Events fetched per search page.
    pub search_page_size: usize,
    /// A tenant supervisor with no work for this long stops.
    pub supervisor_idle_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseConfig {
    pub ttl_ms: u64,
    /// Renew every `ttl_ms / renew_divisor`.
    pub renew_divisor: u32,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiConfig {
    /// Operator token (plain text here; stored hashed in Redis at start-up). Unset: generated and
    /// printed once at start-up.
    pub operator_token: Option<String>,
    /// Largest accepted request body, bytes (imports are the large ones).
    pub body_limit_bytes: usize,
}

/// Shown in place of a secret by the `Debug` impls below: a configuration can be logged or
/// printed in an error without leaking a password or the operator token.
const REDACTED: &str = "<redacted>";

fn redact(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| REDACTED)
}

impl std::fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailboxConfig::Vdir { root, options } => f
                .debug_struct("Vdir")
                .field("root", root)
                .field("options", options)
                .finish(),
            MailboxConfig::Caldav {
                calendar_url,
                username,
                password,
                timeout_secs,
                ca_file,
                options,
            } => f
                .debug_struct("Caldav")
                .field("calendar_url", calendar_url)
                .field("username", username)
                .field("password", &redact(password))
                .field("timeout_secs", timeout_secs)
                .field("ca_file", ca_file)
                .field("options", options)
                .finish(),
        }
    }
}

impl MailboxConfig {
    /// The keys both connectors share.
    pub fn options(&self) -> &MailboxOptions {
        match self {
            MailboxConfig::Vdir { options, .. } | MailboxConfig::Caldav { options, .. } => options,
        }
    }
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailConfig::Maildir { root } => f.debug_struct("Maildir").field("root", root).finish(),
            MailConfig::Smtp {
                host,
                port,
                tls,
                username,
                password,
                timeout_secs,
                ca_file,
            } => f
                .debug_struct("Smtp")
                .field("host", host)
                .field("port", port)
                .field("tls", tls)
                .field("username", username)
                .field("password", &redact(password))
                .field("timeout_secs", timeout_secs)
                .field("ca_file", ca_file)
                .finish(),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("operator_token", &redact(&self.operator_token))
            .field("body_limit_bytes", &self.body_limit_bytes)
            .finish()
    }
}

impl Default for MmsConfig {
    fn default() -> Self {
        MmsConfig {
            redis_url: "redis://127.0.0.1:6379/".into(),
            namespace: "mms".into(),
            service_address: "mms@localhost".into(),
            worker_name: None,
            metrics_addr: "127.0.0.1:9464".into(),
            api_addr: "127.0.0.1:8080".into(),
            mailbox: MailboxConfig::Vdir {
                root: "var/mailboxes".into(),
                options: MailboxOptions::default(),
            },
            mail: MailConfig::Maildir {
                root: "var/outbox".into(),
            },
            queue: QueueConfig {
                coalesce_delay_ms: 5_000,
                claim_idle_ms: 30_000,
                block_ms: 1_000,
                batch: 8,
                hold_recheck_ms: default_hold_recheck_ms(),
            },
            retry: RetryConfig {
                max_retries: 9,
                // Nine retries spread over about 24 hours, as the vendor does.
                schedule_secs: vec![60, 300, 900, 1_800, 3_600, 7_200, 14_400, 21_600, 36_000],
            },
            concurrency: ConcurrencyConfig {
                per_tenant: 4,
                per_worker: 16,
                per_mailbox_server: 16,
                meetings_per_user: 4,
                search_page_size: 100,
                supervisor_idle_secs: 60,
            },
            lease: LeaseConfig {
                ttl_ms: 30_000,
                renew_divisor: 3,
            },
            meetings: MeetingTemplates::default(),
            api: ApiConfig {
                operator_token: None,
                body_limit_bytes: 16 * 1024 * 1024,
            },
        }
    }
}

impl MmsConfig {
    /// Defaults, then `file` (if given), then `MMS_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(MmsConfig::default()));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        fig.merge(Env::prefixed("MMS_").split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// Delay before retry number `retry` (1-based).
    pub fn retry_delay_secs(&self, retry: u32) -> u64 {
        let s = &self.retry.schedule_secs;
        if s.is_empty() {
            return 0;
        }
        s[(retry.max(1) as usize).min(s.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_defaults_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("mms-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mms.toml");
        std::fs::write(
            &file,
            "namespace = \"t1\"\n[mailbox]\nkind = \"caldav\"\ncalendar_url = \"http://x/{user}/cal/\"\ntimeout_secs = 5\n",
        )
        .unwrap();
        let cfg = MmsConfig::load(Some(&file)).unwrap();
        assert_eq!(cfg.namespace, "t1");
        assert!(
            matches!(cfg.mailbox, MailboxConfig::Caldav { ref calendar_url, .. } if calendar_url == "http://x/{user}/cal/")
        );
        assert_eq!(cfg.retry.max_retries, 9);
    }

    /// `ca_file` is optional in both connector sections: absent is `None`, present is a path.
    #[test]
    fn ca_file_is_read_when_given_and_none_when_absent() {
        let dir = tempfile_dir("ca-file");
        let with = dir.join("with.toml");
        std::fs::write(
            &with,
            "[mailbox]\nkind = \"caldav\"\ncalendar_url = \"https://x/{user}/\"\ntimeout_secs = 5\n\
             ca_file = \"/etc/mms/ca.pem\"\n\
             [mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 465\ntls = \"tls\"\ntimeout_secs = 5\n\
             ca_file = \"/etc/mms/relay-ca.pem\"\n",
        )
        .unwrap();
        let cfg = MmsConfig::load(Some(&with)).unwrap();
        assert!(
            matches!(cfg.mailbox, MailboxConfig::Caldav { ref ca_file, .. } if ca_file.as_deref() == Some(Path::new("/etc/mms/ca.pem")))
        );
        assert!(
            matches!(cfg.mail, MailConfig::Smtp { ref ca_file, .. } if ca_file.as_deref() == Some(Path::new("/etc/mms/relay-ca.pem")))
        );

        let without = dir.join("without.toml");
        std::fs::write(
            &without,
            "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"none\"\ntimeout_secs = 5\n",
        )
        .unwrap();
        let cfg = MmsConfig::load(Some(&without)).unwrap();
        assert!(matches!(cfg.mail, MailConfig::Smtp { ca_file: None, .. }));
    }

    /// The shared `[mailbox]` keys sit beside `kind`; absent ones take their defaults.
    #[test]
    fn mailbox_limits_retries_and_scheduling_are_read_beside_the_kind() {
        let dir = tempfile_dir("mailbox-options");
        let file = dir.join("mms.toml");
        std::fs::write(
            &file,
            "[mailbox]\nkind = \"caldav\"\ncalendar_url = \"https://x/{user}/\"\ntimeout_secs = 5\n\
             max_resource_bytes = 1000\nrequest_retries = 2\nscheduling = \"mms\"\n",
        )
        .unwrap();
        let cfg = MmsConfig::load(Some(&file)).unwrap();
        let options = cfg.mailbox.options();
        assert_eq!(options.max_resource_bytes, 1000);
        assert_eq!(options.request_retries, 2);
        assert_eq!(options.scheduling, SchedulingMode::Mms);
        assert_eq!(options.max_page_bytes, 32 * 1024 * 1024);
        assert_eq!(options.retry_base_ms, 200);

        let vdir = dir.join("vdir.toml");
        std::fs::write(&vdir, "[mailbox]\nkind = \"vdir\"\nroot = \"/srv/mail\"\n").unwrap();
        let cfg = MmsConfig::load(Some(&vdir)).unwrap();
        assert_eq!(cfg.mailbox.options(), &MailboxOptions::default());

        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[mailbox]\nkind = \"vdir\"\nroot = \"/m\"\nscheduling = \"maybe\"\n",
        )
        .unwrap();
        let err = MmsConfig::load(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("maybe"), "{err}");
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mms-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut cfg = MmsConfig::default();
        cfg.api.operator_token = Some("operator-secret-token".into());
        cfg.mailbox = MailboxConfig::Caldav {
            calendar_url: "https://dav/{user}/".into(),
            username: Some("svc".into()),
            password: Some("dav-password".into()),
            timeout_secs: 5,
            ca_file: None,
            options: MailboxOptions::default(),
        };
        cfg.mail = MailConfig::Smtp {
            host: "smtp".into(),
            port: 587,
            tls: "starttls".into(),
            username: Some("svc".into()),
            password: Some("smtp-password".into()),
            timeout_secs: 5,
            ca_file: None,
        };
        let shown = format!("{cfg:?}");
        for secret in ["operator-secret-token", "dav-password", "smtp-password"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("<redacted>") && shown.contains("svc"));
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let err = MmsConfig::load(Some(Path::new("/nonexistent/mms.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/mms.toml"), "{err}");
    }

    #[test]
    fn retry_delays_follow_the_schedule_and_repeat_its_last_step() {
        let cfg = MmsConfig::default();
        assert_eq!(cfg.retry_delay_secs(1), 60);
        assert_eq!(cfg.retry_delay_secs(9), 36_000);
        assert_eq!(cfg.retry_delay_secs(12), 36_000);
        assert!(cfg.retry.schedule_secs.iter().sum::<u64>() <= 24 * 3600);
    }
}
