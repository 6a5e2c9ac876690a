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
    Vdir { root: PathBuf },
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
    },
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
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
            MailboxConfig::Vdir { root } => f.debug_struct("Vdir").field("root", root).finish(),
            MailboxConfig::Caldav {
                calendar_url,
                username,
                password,
                timeout_secs,
                ca_file,
            } => f
                .debug_struct("Caldav")
                .field("calendar_url", calendar_url)
                .field("username", username)
                .field("password", &redact(password))
                .field("timeout_secs", timeout_secs)
                .field("ca_file", ca_file)
                .finish(),
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
            metrics_addr: "127.0.0.1:9464".into(),
            api_addr: "127.0.0.1:8080".into(),
            mailbox: MailboxConfig::Vdir {
                root: "var/mailboxes".into(),
            },
            mail: MailConfig::Maildir {
                root: "var/outbox".into(),
                updates: UpdatePolicy::default(),
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

    /// The update policy and the pool size have defaults, and a file or the environment
    /// overrides them under `[mail]` whatever the transport.
    #[test]
    fn mail_policy_keys_default_and_override() {
        let cfg = MmsConfig::default();
        assert_eq!(cfg.mail.updates().max_recipients_per_message, 100);
        assert!(!cfg.mail.updates().notify_declined);

        let dir = tempfile_dir("mail-policy");
        let file = dir.join("mms.toml");
        std::fs::write(
            &file,
            "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"none\"\ntimeout_secs = 5\n\
             connections = 2\nmax_recipients_per_message = 50\nnotify_declined = true\n",
        )
        .unwrap();
        let cfg = MmsConfig::load(Some(&file)).unwrap();
        assert!(matches!(cfg.mail, MailConfig::Smtp { connections: 2, .. }));
        assert_eq!(cfg.mail.updates().max_recipients_per_message, 50);
        assert!(cfg.mail.updates().notify_declined);

        let file = dir.join("smtp-defaults.toml");
        std::fs::write(
            &file,
            "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"none\"\ntimeout_secs = 5\n",
        )
        .unwrap();
        let cfg = MmsConfig::load(Some(&file)).unwrap();
        assert!(matches!(cfg.mail, MailConfig::Smtp { connections: 4, .. }));
        assert_eq!(cfg.mail.updates(), &UpdatePolicy::default());
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mms-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `redis_cluster_nodes` reads as a TOML array and as one comma-separated string (the form
    /// `MMS_REDIS_CLUSTER_NODES` takes); absent means a single server.
    #[test]
    fn cluster_nodes_read_as_a_list_or_comma_separated() {
        let dir = tempfile_dir("cluster-nodes");
        let list = dir.join("list.toml");
        std::fs::write(&list, "redis_cluster_nodes = [\"redis://a:7000\", \"redis://b:7001\"]\n").unwrap();
        let text = dir.join("text.toml");
        std::fs::write(&text, "redis_cluster_nodes = \"redis://a:7000, redis://b:7001,\"\n").unwrap();
        let expected = vec!["redis://a:7000".to_string(), "redis://b:7001".to_string()];
        assert_eq!(MmsConfig::load(Some(&list)).unwrap().redis_cluster_nodes, expected);
        assert_eq!(MmsConfig::load(Some(&text)).unwrap().redis_cluster_nodes, expected);
        assert!(MmsConfig::default().redis_cluster_nodes.is_empty());
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
        };
        cfg.mail = MailConfig::Smtp {
            host: "smtp".into(),
            port: 587,
            tls: "starttls".into(),
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
