//! Process configuration: its shape, its defaults and its rules ([`MmsConfig::validate`]).
//!
//! Reading it (defaults, then a TOML file, then `MMS_*` environment variables) is I/O and lives
//! with the binaries (`mms-cli`'s `config` module); this module only says what a configuration
//! is and when one is valid, so that every crate can trust a loaded [`MmsConfig`] without
//! clamping its values again. With no file and no variables the defaults describe the embedded
//! set-up `make run` starts: a vdir mailbox and a Maildir outbox under `./var`, Redis on localhost.
//!
//! Every section refuses keys it does not know (`deny_unknown_fields`): a mistyped key is an
//! error that names it and the known ones, instead of silently keeping its default.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::meeting_service::MeetingTemplates;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmsConfig {
    pub redis_url: String,
    /// Nodes of a Redis Cluster (`redis://host:port`, a few are enough: the client discovers the
    /// rest). When set, the store uses the cluster and `redis_url` is ignored. In the environment:
    /// `MMS_REDIS_CLUSTER_NODES=redis://a:7000,redis://b:7001`.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub redis_cluster_nodes: Vec<String>,
    /// Prefix of every Redis key, so that several deployments (or test runs) share one Redis.
    pub namespace: String,
    /// Address the service sends as (`Sender:` and envelope sender; the organizer is `From:`).
    pub service_address: String,
    /// Name of this worker in the consumer group; defaults to host name + pid.
    pub worker_name: Option<String>,
    pub metrics_addr: String,
    pub api_addr: String,
    /// Absent: the embedded vdir store under `var/mailboxes`.
    #[serde(default = "MailboxConfig::embedded")]
    pub mailbox: MailboxConfig,
    /// Absent: the embedded Maildir outbox under `var/outbox`.
    #[serde(default = "MailConfig::embedded")]
    pub mail: MailConfig,
    pub queue: QueueConfig,
    pub retry: RetryConfig,
    pub concurrency: ConcurrencyConfig,
    pub lease: LeaseConfig,
    pub meetings: MeetingTemplates,
    pub api: ApiConfig,
    /// How long the store keeps what a migration leaves behind (journals, sent ledgers, history,
    /// status rows), so that Redis memory per user is bounded.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// What the process logs and how (`[log]`); `RUST_LOG` overrides the level.
    #[serde(default)]
    pub log: LogConfig,
}

/// Logging: the level filter and the line format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, or per module `info,mms_worker=debug`. `RUST_LOG`, when set,
    /// wins over it.
    pub level: String,
    /// `text` (one readable line per event; coloured only on a terminal) or `json` (one JSON
    /// object per line, for log collectors).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// The line format of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
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
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MailConfig {
    /// Write each message to a Maildir `new/` folder (the embedded outbox).
    Maildir {
        root: PathBuf,
        /// Who gets an update and how many recipients share one message.
        #[serde(flatten, default)]
        updates: UpdatePolicy,
    },
    Smtp {
        host: String,
        port: u16,
        /// `none`, `starttls` or `tls`.
        tls: SmtpTls,
        username: Option<String>,
        password: Option<String>,
        /// Seconds one whole exchange with the relay (connect, TLS, AUTH, DATA) may take before
        /// it is abandoned as transient.
        timeout_secs: u64,
        /// PEM file of CA certificates trusted for the relay (with `tls` = `starttls` or `tls`),
        /// besides the public roots: for a relay whose certificate a private CA signed.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Connections kept open to the relay and used at once by one process (`mail.connections`,
        /// default 4). Each carries one message at a time; a broken one is re-opened.
        #[serde(default = "default_mail_connections")]
        connections: usize,
        /// Who gets an update and how many recipients share one message.
        #[serde(flatten, default)]
        updates: UpdatePolicy,
    },
}

fn default_mail_connections() -> usize {
    4
}

/// How one meeting's update is addressed (the `mail` keys both transports share).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatePolicy {
    /// Recipients per message (`mail.max_recipients_per_message`, default 100). A larger
    /// meeting's update goes out as several messages, each to a batch of this many attendees:
    /// relays cap the recipients of one transaction (Postfix's `smtpd_recipient_limit` is 1,000,
    /// many services take 100 or 500), and each batch's `To:` header stays readable.
    #[serde(default = "default_max_recipients_per_message")]
    pub max_recipients_per_message: usize,
    /// Whether attendees who declined the meeting get the update (`mail.notify_declined`,
    /// default false: re-inviting people who said no is the vendor's most-heard complaint).
    /// Their PARTSTAT is kept either way, and the meeting's outcome lists them as not notified.
    #[serde(default)]
    pub notify_declined: bool,
}

fn default_max_recipients_per_message() -> usize {
    100
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            max_recipients_per_message: default_max_recipients_per_message(),
            notify_declined: false,
        }
    }
}

impl MailConfig {
    /// The update policy, whatever the transport.
    pub fn updates(&self) -> &UpdatePolicy {
        match self {
            MailConfig::Maildir { updates, .. } | MailConfig::Smtp { updates, .. } => updates,
        }
    }
}

/// How the connection to the SMTP relay is protected (`mail.tls`), read by serde at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a test sink.
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    #[serde(rename = "starttls")]
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    /// The spelling in a configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

impl fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `mail.tls` given as text that is none of the three modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail.tls is {given:?}: use \"none\", \"starttls\" or \"tls\"")]
pub struct UnknownSmtpTls {
    pub given: String,
}

impl FromStr for SmtpTls {
    type Err = UnknownSmtpTls;

    /// `none`, `starttls` or `tls`, in any case.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Tls]
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| UnknownSmtpTls {
                given: value.to_string(),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt (the vendor: nine within 24 hours).
    pub max_retries: u32,
    /// Delay before retry n (1-based) is `schedule_secs[min(n, len) - 1]`.
    pub schedule_secs: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    pub ttl_ms: u64,
    /// Renew every `ttl_ms / renew_divisor`.
    pub renew_divisor: u32,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Operator token (plain text here; stored hashed in Redis at start-up). Unset: generated and
    /// printed once at start-up.
    pub operator_token: Option<String>,
    /// Largest accepted request body, bytes (imports are the large ones).
    pub body_limit_bytes: usize,
}

/// How long the store keeps each kind of record (`[retention]`); every value at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// Days a migration's journal (and its per-stage counters) is kept once the migration is
    /// final; before that it is kept whatever its age, because a resume needs it.
    pub journal_days: u32,
    /// Days a user's sent-message ledger is kept after its last entry. It must outlive every
    /// retry of a migration (about 24 hours with the default schedule), or an update could be
    /// sent twice: at least 2.
    pub sent_ledger_days: u32,
    /// Events kept in a user's transaction history (the oldest are dropped).
    pub history_events: u32,
    /// Status rows kept per user: past this, the oldest final rows are removed together with
    /// their journals and counters. Rows still Pending or InProgress are never removed.
    pub status_rows_per_user: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            journal_days: 30,
            sent_ledger_days: 90,
            history_events: 1_000,
            status_rows_per_user: 100,
        }
    }
}

impl MailboxConfig {
    /// The embedded store `make run` uses: one folder per user under `var/mailboxes`.
    pub fn embedded() -> Self {
        MailboxConfig::Vdir {
            root: "var/mailboxes".into(),
            options: MailboxOptions::default(),
        }
    }
}

impl RetentionConfig {
    /// The first value that is out of range, as a message naming the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let at_least = |key: &str, value: u32, min: u32, why: &str| {
            if value < min {
                Err(format!(
                    "retention.{key} = {value} is too small: set it to {min} or more ({why})"
                ))
            } else {
                Ok(())
            }
        };
        at_least(
            "journal_days",
            self.journal_days,
            1,
            "a final migration's journal is what support reads",
        )?;
        at_least(
            "sent_ledger_days",
            self.sent_ledger_days,
            2,
            "the ledger must outlive a migration's retries, or an update is sent twice",
        )?;
        at_least(
            "history_events",
            self.history_events,
            1,
            "the history must hold at least the latest event",
        )?;
        at_least(
            "status_rows_per_user",
            self.status_rows_per_user,
            1,
            "the latest migration's row must be kept",
        )
    }
}

impl MailConfig {
    /// The embedded outbox `make run` uses: a Maildir under `var/outbox`.
    pub fn embedded() -> Self {
        MailConfig::Maildir {
            root: "var/outbox".into(),
            updates: UpdatePolicy::default(),
        }
    }
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
            MailConfig::Maildir { root, updates } => f
                .debug_struct("Maildir")
                .field("root", root)
                .field("updates", updates)
                .finish(),
            MailConfig::Smtp {
                host,
                port,
                tls,
                username,
                password,
                timeout_secs,
                ca_file,
                connections,
                updates,
            } => f
                .debug_struct("Smtp")
                .field("host", host)
                .field("port", port)
                .field("tls", tls)
                .field("username", username)
                .field("password", &redact(password))
                .field("timeout_secs", timeout_secs)
                .field("ca_file", ca_file)
                .field("connections", connections)
                .field("updates", updates)
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
            redis_cluster_nodes: Vec::new(),
            namespace: "mms".into(),
            service_address: "mms@localhost".into(),
            worker_name: None,
            // Reachable from outside a container, where Prometheus and KEDA scrape it; `make run`
            // binds it to 127.0.0.1.
            metrics_addr: "0.0.0.0:9464".into(),
            api_addr: "127.0.0.1:8080".into(),
            mailbox: MailboxConfig::embedded(),
            mail: MailConfig::embedded(),
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
            retention: RetentionConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// A list given either as a TOML array or as one comma-separated string (how an environment
/// variable carries it); blank items are dropped.
fn list_or_comma_separated<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    let items = match ListOrText::deserialize(deserializer)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

impl MmsConfig {
    /// Delay before retry number `retry` (1-based). The schedule is never empty in a validated
    /// configuration; an empty one (built in code, unvalidated) means "at once".
    pub fn retry_delay_secs(&self, retry: u32) -> u64 {
        let s = &self.retry.schedule_secs;
        if s.is_empty() {
            return 0;
        }
        s[(retry.max(1) as usize).min(s.len()) - 1]
    }

    /// How often a worker renews a mailbox lease (and so resets its stream entry's idle time).
    pub fn lease_renew_every_ms(&self) -> u64 {
        self.lease.ttl_ms / u64::from(self.lease.renew_divisor.max(1))
    }

    /// Check every range and cross-field rule, listing every problem at once (each names its
    /// key and what to write instead). Called once, when the configuration is loaded; code that
    /// receives an `MmsConfig` may then rely on these rules instead of clamping values itself.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, text: String| {
            problems.push(ConfigProblem {
                key: key.to_string(),
                problem: text,
            })
        };
        let at_least_one = |problem: &mut dyn FnMut(&str, String), key: &str, value: u64| {
            if value == 0 {
                problem(key, "is 0: it must be at least 1".to_string());
            }
        };

        if !["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|scheme| self.redis_url.starts_with(scheme))
        {
            problem(
                "redis_url",
                format!(
                    "{:?} is not a Redis URL: write redis://host:6379/ (rediss:// for TLS)",
                    self.redis_url
                ),
            );
        }
        let namespace_ok = (1..=64).contains(&self.namespace.len())
            && self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !namespace_ok {
            problem(
                "namespace",
                format!(
                    "{:?} is not a namespace: use 1 to 64 characters among a-z, A-Z, 0-9, '-', '_' and '.' \
                     (it goes inside every Redis key's hash tag)",
                    self.namespace
                ),
            );
        }
        if !self.service_address.contains('@') {
            problem(
                "service_address",
                format!(
                    "{:?} is not a mail address: write e.g. mms@contoso.example",
                    self.service_address
                ),
            );
        }
        for (key, addr) in [
            ("metrics_addr", &self.metrics_addr),
            ("api_addr", &self.api_addr),
        ] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                problem(
                    key,
                    format!("{addr:?} is not host:port with a numeric host: write e.g. 127.0.0.1:8080 or 0.0.0.0:8080"),
                );
            }
        }

        match &self.mailbox {
            MailboxConfig::Vdir { root, .. } => {
                if root.as_os_str().is_empty() {
                    problem(
                        "mailbox.root",
                        "is empty: give the folder of the embedded mailboxes, e.g. var/mailboxes"
                            .into(),
                    );
                }
            }
            MailboxConfig::Caldav {
                calendar_url,
                username,
                password,
                timeout_secs,
                ..
            } => {
                if !(calendar_url.starts_with("http://") || calendar_url.starts_with("https://")) {
                    problem(
                        "mailbox.calendar_url",
                        format!("{calendar_url:?} is not an http:// or https:// URL: write e.g. https://dav.contoso.example/{{user}}/calendar/"),
                    );
                }
                if username.is_some() != password.is_some() {
                    problem(
                        "mailbox.password",
                        "mailbox.username and mailbox.password go together: set both or neither"
                            .into(),
                    );
                }
                at_least_one(&mut problem, "mailbox.timeout_secs", *timeout_secs);
            }
        }
        match &self.mail {
            MailConfig::Maildir { root, .. } => {
                if root.as_os_str().is_empty() {
                    problem(
                        "mail.root",
                        "is empty: give the Maildir folder of the outbox, e.g. var/outbox".into(),
                    );
                }
            }
            MailConfig::Smtp {
                host,
                port,
                tls,
                username,
                password,
                timeout_secs,
                ca_file,
                connections,
                ..
            } => {
                if host.trim().is_empty() {
                    problem("mail.host", "is empty: give the relay's host name".into());
                }
                at_least_one(&mut problem, "mail.port", u64::from(*port));
                if username.is_some() != password.is_some() {
                    problem(
                        "mail.password",
                        "mail.username and mail.password go together: set both or neither".into(),
                    );
                }
                if ca_file.is_some() && *tls == SmtpTls::None {
                    problem(
                        "mail.ca_file",
                        "is set but mail.tls is \"none\": a CA file only applies with tls = \"starttls\" or \"tls\"".into(),
                    );
                }
                at_least_one(&mut problem, "mail.timeout_secs", *timeout_secs);
                at_least_one(&mut problem, "mail.connections", *connections as u64);
            }
        }
        at_least_one(
            &mut problem,
            "mail.max_recipients_per_message",
            self.mail.updates().max_recipients_per_message as u64,
        );

        if let Err(text) = self.retention.validate() {
            problem("retention", text);
        }
        let q = &self.queue;
        at_least_one(&mut problem, "queue.block_ms", q.block_ms);
        at_least_one(&mut problem, "queue.batch", q.batch as u64);
        at_least_one(&mut problem, "queue.hold_recheck_ms", q.hold_recheck_ms);
        let l = &self.lease;
        at_least_one(&mut problem, "lease.ttl_ms", l.ttl_ms);
        if l.renew_divisor < 2 {
            problem(
                "lease.renew_divisor",
                format!(
                    "is {}: it must be at least 2, so that a lease is renewed before the worker counts it lost \
                     (three quarters of lease.ttl_ms without a confirmed renewal)",
                    l.renew_divisor
                ),
            );
        }
        if q.claim_idle_ms <= self.lease_renew_every_ms() {
            problem(
                "queue.claim_idle_ms",
                format!(
                    "is {} ms, not more than the lease renewal period ({} ms = lease.ttl_ms / lease.renew_divisor): \
                     a live worker's requests would be claimed by others; raise it above {} ms",
                    q.claim_idle_ms,
                    self.lease_renew_every_ms(),
                    self.lease_renew_every_ms()
                ),
            );
        }

        let r = &self.retry;
        if r.schedule_secs.is_empty() {
            problem(
                "retry.schedule_secs",
                "is empty: give at least one delay in seconds, e.g. [60, 300, 900]".into(),
            );
        }

        let c = &self.concurrency;
        for (key, value) in [
            ("concurrency.per_tenant", c.per_tenant),
            ("concurrency.per_worker", c.per_worker),
            ("concurrency.per_mailbox_server", c.per_mailbox_server),
            ("concurrency.meetings_per_user", c.meetings_per_user),
            ("concurrency.search_page_size", c.search_page_size),
        ] {
            at_least_one(&mut problem, key, value as u64);
        }
        at_least_one(
            &mut problem,
            "concurrency.supervisor_idle_secs",
            c.supervisor_idle_secs,
        );
        at_least_one(
            &mut problem,
            "api.body_limit_bytes",
            self.api.body_limit_bytes as u64,
        );

        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidConfig { problems })
        }
    }
}

/// One broken rule of a configuration: the key (dotted, as in the file: `queue.batch`) and
/// what is wrong with it and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {problem}")]
pub struct ConfigProblem {
    pub key: String,
    pub problem: String,
}

/// A configuration that breaks rules of [`MmsConfig::validate`]; lists every broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidConfig {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the configuration has {} problem(s); fix them in the file or the MMS_* variable of that key:",
            self.problems.len()
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl InvalidConfig {
    /// The keys named, in order: what tests and scripts check.
    pub fn keys(&self) -> Vec<&str> {
        self.problems.iter().map(|p| p.key.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules a test breaks one at a time: each must be refused naming exactly its key.
    fn broken(edit: impl FnOnce(&mut MmsConfig)) -> Vec<String> {
        let mut cfg = MmsConfig::default();
        edit(&mut cfg);
        match cfg.validate() {
            Ok(()) => Vec::new(),
            Err(invalid) => invalid.keys().into_iter().map(str::to_string).collect(),
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(MmsConfig::default().validate(), Ok(()));
    }

    /// The update policy has defaults whatever the transport.
    #[test]
    fn mail_policy_defaults() {
        let cfg = MmsConfig::default();
        assert_eq!(cfg.mail.updates().max_recipients_per_message, 100);
        assert!(!cfg.mail.updates().notify_declined);
    }

    #[test]
    fn each_range_rejects_zero_naming_its_key() {
        let cases: Vec<(&str, Box<dyn FnOnce(&mut MmsConfig)>)> = vec![
            (
                "queue.batch",
                Box::new(|c: &mut MmsConfig| c.queue.batch = 0),
            ),
            (
                "queue.block_ms",
                Box::new(|c: &mut MmsConfig| c.queue.block_ms = 0),
            ),
            (
                "queue.hold_recheck_ms",
                Box::new(|c: &mut MmsConfig| c.queue.hold_recheck_ms = 0),
            ),
            (
                "concurrency.per_tenant",
                Box::new(|c: &mut MmsConfig| c.concurrency.per_tenant = 0),
            ),
            (
                "concurrency.per_worker",
                Box::new(|c: &mut MmsConfig| c.concurrency.per_worker = 0),
            ),
            (
                "concurrency.per_mailbox_server",
                Box::new(|c: &mut MmsConfig| c.concurrency.per_mailbox_server = 0),
            ),
            (
                "concurrency.meetings_per_user",
                Box::new(|c: &mut MmsConfig| c.concurrency.meetings_per_user = 0),
            ),
            (
                "concurrency.search_page_size",
                Box::new(|c: &mut MmsConfig| c.concurrency.search_page_size = 0),
            ),
            (
                "concurrency.supervisor_idle_secs",
                Box::new(|c: &mut MmsConfig| c.concurrency.supervisor_idle_secs = 0),
            ),
            (
                "api.body_limit_bytes",
                Box::new(|c: &mut MmsConfig| c.api.body_limit_bytes = 0),
            ),
            (
                "retry.schedule_secs",
                Box::new(|c: &mut MmsConfig| c.retry.schedule_secs.clear()),
            ),
            (
                "lease.renew_divisor",
                // (claim_idle_ms raised so that only the divisor's own rule breaks)
                Box::new(|c: &mut MmsConfig| {
                    c.lease.renew_divisor = 1;
                    c.queue.claim_idle_ms = 60_000;
                }),
            ),
            (
                "namespace",
                Box::new(|c: &mut MmsConfig| c.namespace = "a}b".into()),
            ),
            (
                "redis_url",
                Box::new(|c: &mut MmsConfig| c.redis_url = "localhost".into()),
            ),
            (
                "api_addr",
                Box::new(|c: &mut MmsConfig| c.api_addr = "localhost".into()),
            ),
            (
                "service_address",
                Box::new(|c: &mut MmsConfig| c.service_address = "mms".into()),
            ),
        ];
        for (key, edit) in cases {
            assert_eq!(broken(edit), vec![key.to_string()], "{key}");
        }
    }

    #[test]
    fn claim_idle_must_exceed_the_lease_renewal_period() {
        // ttl 30 s / 3 = a renewal every 10 s: claiming after 10 s or less takes live work.
        assert_eq!(
            broken(|c| c.queue.claim_idle_ms = 10_000),
            vec!["queue.claim_idle_ms"]
        );
        assert!(broken(|c| c.queue.claim_idle_ms = 10_001).is_empty());
        let message = {
            let mut cfg = MmsConfig::default();
            cfg.lease.ttl_ms = 90_000;
            cfg.validate().unwrap_err().to_string()
        };
        assert!(
            message.contains("queue.claim_idle_ms") && message.contains("30000 ms"),
            "names the key and the period: {message}"
        );
    }

    #[test]
    fn connector_sections_pair_credentials_and_need_timeouts() {
        let smtp = |tls, ca_file: Option<PathBuf>, username: Option<String>| MailConfig::Smtp {
            host: "relay".into(),
            port: 25,
            tls,
            username,
            password: None,
            timeout_secs: 0,
            ca_file,
            connections: 4,
            updates: UpdatePolicy::default(),
        };
        assert_eq!(
            broken(|c| c.mail = smtp(SmtpTls::None, Some("ca.pem".into()), Some("u".into()))),
            vec!["mail.password", "mail.ca_file", "mail.timeout_secs"]
        );
        assert_eq!(
            broken(|c| {
                c.mailbox = MailboxConfig::Caldav {
                    calendar_url: "dav.example/{user}".into(),
                    username: None,
                    password: None,
                    timeout_secs: 5,
                    ca_file: None,
                    options: MailboxOptions::default(),
                }
            }),
            vec!["mailbox.calendar_url"]
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let mut cfg = MmsConfig::default();
        cfg.queue.batch = 0;
        cfg.concurrency.per_tenant = 0;
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.keys(), vec!["queue.batch", "concurrency.per_tenant"]);
        assert!(err
            .to_string()
            .contains("queue.batch is 0: it must be at least 1"));
    }

    #[test]
    fn smtp_tls_is_read_in_any_case_and_a_wrong_mode_names_the_key() {
        assert_eq!("STARTTLS".parse::<SmtpTls>(), Ok(SmtpTls::StartTls));
        let err = "ssl".parse::<SmtpTls>().unwrap_err();
        assert!(err.to_string().contains("mail.tls"), "{err}");
        assert_eq!(serde_json::to_value(SmtpTls::StartTls).unwrap(), "starttls");
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
            tls: SmtpTls::StartTls,
            username: Some("svc".into()),
            password: Some("smtp-password".into()),
            timeout_secs: 5,
            ca_file: None,
            connections: 4,
            updates: UpdatePolicy::default(),
        };
        let shown = format!("{cfg:?}");
        for secret in ["operator-secret-token", "dav-password", "smtp-password"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("<redacted>") && shown.contains("svc"));
    }

    #[test]
    fn retry_delays_follow_the_schedule_and_repeat_its_last_step() {
        let cfg = MmsConfig::default();
        assert_eq!(cfg.retry_delay_secs(1), 60);
        assert_eq!(cfg.retry_delay_secs(9), 36_000);
        assert_eq!(cfg.retry_delay_secs(12), 36_000);
        assert!(cfg.retry.schedule_secs.iter().sum::<u64>() <= 24 * 3600);
    }

    /// Out-of-range retention values are refused by `validate` with the key named.
    #[test]
    fn retention_validate_names_the_key() {
        assert_eq!(RetentionConfig::default().validate(), Ok(()));
        let bad = RetentionConfig {
            history_events: 0,
            ..RetentionConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("retention.history_events"));
    }
}
