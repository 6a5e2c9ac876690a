//! Reading the process configuration: defaults, then a TOML file, then `MMS_*` environment
//! variables, then [`MmsConfig::validate`], once, at start-up.
//!
//! Nested keys use a double underscore in the environment: `MMS_REDIS_URL`,
//! `MMS_MAILBOX__KIND=caldav`, `MMS_QUEUE__COALESCE_DELAY_MS=0`. Every section refuses keys it
//! does not know, from the file and from the environment alike, so `MMS_QUEUE__BATCHES=4` is an
//! error naming `queue.batches` and the known keys, not a silent default. The few `MMS_*`
//! variables that are not configuration keys are listed in [`NON_CONFIG_VARIABLES`] and skipped.
//!
//! This is the I/O half of `mms_core::config` (which holds no I/O): it lives with the binaries.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use mms_core::config::{InvalidConfig, MmsConfig};

/// `MMS_*` variables that are not configuration keys, read by other parts of MMS (and its tests)
/// and skipped when the configuration is read: `MMS_CONFIG` (the file, read by `mms --config`),
/// `MMS_TOKEN`, `MMS_TENANT` and `MMS_API_URL` (mmsctl's defaults), `MMS_LOG` and
/// `MMS_LOG_FORMAT` (logging), `MMS_VENV` (where the test servers live), `MMS_BLESS` (rewrite
/// golden files in tests). `MMS_API_ADDR` is not among them: it is the `api_addr` key.
pub const NON_CONFIG_VARIABLES: &[&str] = &[
    "MMS_CONFIG",
    "MMS_TOKEN",
    "MMS_TENANT",
    "MMS_API_URL",
    "MMS_LOG",
    "MMS_LOG_FORMAT",
    "MMS_VENV",
    "MMS_BLESS",
];

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing or not TOML, a key is unknown, or a value has the wrong type; the
    /// message names the key and where it came from (file or variable).
    #[error("configuration: {0}")]
    Read(Box<figment::Error>),
    /// Every value has its type, but some break a rule (a range, a cross-field rule).
    #[error(transparent)]
    Invalid(#[from] InvalidConfig),
}

/// Defaults, then `file` (if given), then `MMS_*` variables; validated.
pub fn load(file: Option<&Path>) -> Result<MmsConfig, ConfigError> {
    let config: MmsConfig = figment(file)
        .extract()
        .map_err(|e| ConfigError::Read(Box::new(e)))?;
    config.validate()?;
    Ok(config)
}

/// The layered sources, before extraction.
///
/// The defaults leave out the two connector sections (`mailbox`, `mail`): figment merges
/// dictionaries key by key, so a file's `[mailbox] kind = "caldav"` would otherwise inherit the
/// default vdir section's `root` and be refused as an unknown key. An absent section takes its
/// default from serde instead (`MmsConfig`'s `#[serde(default)]`), and a given one stands alone.
fn figment(file: Option<&Path>) -> Figment {
    let mut defaults =
        serde_json::to_value(MmsConfig::default()).expect("the default configuration serializes");
    if let Some(sections) = defaults.as_object_mut() {
        sections.remove("mailbox");
        sections.remove("mail");
    }
    let mut fig = Figment::from(Serialized::defaults(defaults));
    if let Some(path) = file {
        fig = fig.merge(Toml::file_exact(path));
    }
    let env = Env::prefixed("MMS_")
        .filter(|key| {
            !NON_CONFIG_VARIABLES
                .iter()
                .any(|name| key.as_str().eq_ignore_ascii_case(&name["MMS_".len()..]))
        })
        .split("__");
    fig.merge(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;
    use mms_core::config::{MailConfig, MailboxConfig, SmtpTls};

    /// Run `body` with a fresh directory as the working directory and the environment given
    /// (figment's `Jail` serializes such tests, so variables set here do not leak into others).
    fn jail(body: impl FnOnce(&mut Jail) -> Result<(), figment::Error>) {
        Jail::expect_with(|jail| {
            jail.clear_env();
            body(jail)
        });
    }

    #[test]
    fn a_file_overrides_defaults_and_keeps_the_rest() {
        jail(|jail| {
            jail.create_file(
                "mms.toml",
                "namespace = \"t1\"\n[mailbox]\nkind = \"caldav\"\ncalendar_url = \"http://x/{user}/cal/\"\ntimeout_secs = 5\n",
            )?;
            let cfg = load(Some(Path::new("mms.toml"))).unwrap();
            assert_eq!(cfg.namespace, "t1");
            assert!(
                matches!(cfg.mailbox, MailboxConfig::Caldav { ref calendar_url, .. } if calendar_url == "http://x/{user}/cal/")
            );
            assert_eq!(cfg.retry.max_retries, 9);
            Ok(())
        });
    }

    #[test]
    fn ca_file_and_tls_are_read_as_typed_values() {
        jail(|jail| {
            jail.create_file(
                "with.toml",
                "[mailbox]\nkind = \"caldav\"\ncalendar_url = \"https://x/{user}/\"\ntimeout_secs = 5\n\
                 ca_file = \"/etc/mms/ca.pem\"\n\
                 [mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 465\ntls = \"tls\"\ntimeout_secs = 5\n\
                 ca_file = \"/etc/mms/relay-ca.pem\"\n",
            )?;
            let cfg = load(Some(Path::new("with.toml"))).unwrap();
            assert!(
                matches!(cfg.mailbox, MailboxConfig::Caldav { ref ca_file, .. } if ca_file.as_deref() == Some(Path::new("/etc/mms/ca.pem")))
            );
            assert!(
                matches!(cfg.mail, MailConfig::Smtp { tls: SmtpTls::Tls, ref ca_file, .. } if ca_file.as_deref() == Some(Path::new("/etc/mms/relay-ca.pem")))
            );
            jail.create_file(
                "without.toml",
                "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"none\"\ntimeout_secs = 5\n",
            )?;
            let cfg = load(Some(Path::new("without.toml"))).unwrap();
            assert!(matches!(cfg.mail, MailConfig::Smtp { ca_file: None, .. }));
            Ok(())
        });
    }

    #[test]
    fn a_wrong_tls_mode_is_refused_at_load_naming_the_key() {
        jail(|jail| {
            jail.create_file(
                "mms.toml",
                "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"ssl\"\ntimeout_secs = 5\n",
            )?;
            let err = load(Some(Path::new("mms.toml"))).unwrap_err().to_string();
            assert!(
                err.contains("ssl") && err.contains("starttls") && err.contains("mail.tls"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_naming_it_and_the_known_keys() {
        jail(|jail| {
            jail.create_file("mms.toml", "[queue]\nbatches = 4\n")?;
            let err = load(Some(Path::new("mms.toml"))).unwrap_err().to_string();
            assert!(
                err.contains("batches") && err.contains("claim_idle_ms"),
                "names the key and the known ones: {err}"
            );
            jail.create_file("top.toml", "redis_uri = \"redis://x/\"\n")?;
            let err = load(Some(Path::new("top.toml"))).unwrap_err().to_string();
            assert!(
                err.contains("redis_uri") && err.contains("redis_url"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_variable_is_an_error_and_the_non_config_ones_are_skipped() {
        jail(|jail| {
            for name in NON_CONFIG_VARIABLES {
                jail.set_env(name, "anything");
            }
            jail.set_env("MMS_QUEUE__BATCH", "3");
            let cfg = load(None).unwrap();
            assert_eq!(cfg.queue.batch, 3, "a nested key set by variable");
            jail.set_env("MMS_QUEUE__BATCHES", "4");
            let err = load(None).unwrap_err().to_string();
            assert!(err.contains("batches"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_broken_rule_is_refused_at_load_naming_the_key() {
        jail(|jail| {
            jail.set_env("MMS_CONCURRENCY__PER_TENANT", "0");
            match load(None) {
                Err(ConfigError::Invalid(invalid)) => {
                    assert_eq!(invalid.keys(), vec!["concurrency.per_tenant"])
                }
                other => panic!("expected a broken rule, got {other:?}"),
            }
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let err = load(Some(Path::new("/nonexistent/mms.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/mms.toml"), "{err}");
    }

    /// `redis_cluster_nodes` reads as a TOML array and as one comma-separated string (the form
    /// `MMS_REDIS_CLUSTER_NODES` takes); absent means a single server.
    #[test]
    fn cluster_nodes_read_as_a_list_or_comma_separated() {
        jail(|jail| {
            jail.create_file(
                "list.toml",
                "redis_cluster_nodes = [\"redis://a:7000\", \"redis://b:7001\"]\n",
            )?;
            jail.create_file(
                "text.toml",
                "redis_cluster_nodes = \"redis://a:7000, redis://b:7001,\"\n",
            )?;
            let expected = vec!["redis://a:7000".to_string(), "redis://b:7001".to_string()];
            assert_eq!(
                load(Some(Path::new("list.toml")))
                    .unwrap()
                    .redis_cluster_nodes,
                expected
            );
            assert_eq!(
                load(Some(Path::new("text.toml")))
                    .unwrap()
                    .redis_cluster_nodes,
                expected
            );
            jail.set_env("MMS_REDIS_CLUSTER_NODES", "redis://c:7002,redis://d:7003");
            assert_eq!(load(None).unwrap().redis_cluster_nodes.len(), 2);
            Ok(())
        });
    }

    /// `[retention]` may name only some keys (the rest keep their defaults); an out-of-range
    /// value fails the load naming the key.
    #[test]
    fn retention_keys_default_one_by_one_and_are_validated_at_load() {
        jail(|jail| {
            jail.create_file("mms.toml", "[retention]\njournal_days = 7\n")?;
            let cfg = load(Some(Path::new("mms.toml"))).unwrap();
            assert_eq!(cfg.retention.journal_days, 7);
            assert_eq!(
                cfg.retention.sent_ledger_days,
                mms_core::config::RetentionConfig::default().sent_ledger_days
            );
            jail.create_file("bad.toml", "[retention]\nsent_ledger_days = 1\n")?;
            let err = load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(
                err.to_string().contains("retention.sent_ledger_days"),
                "{err}"
            );
            Ok(())
        });
    }

    /// The update policy and the pool size under `[mail]`, whatever the transport.
    #[test]
    fn mail_policy_keys_are_read_under_mail() {
        jail(|jail| {
            jail.create_file(
                "mms.toml",
                "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"none\"\ntimeout_secs = 5\n\
                 connections = 2\nmax_recipients_per_message = 50\nnotify_declined = true\n",
            )?;
            let cfg = load(Some(Path::new("mms.toml"))).unwrap();
            assert!(matches!(cfg.mail, MailConfig::Smtp { connections: 2, .. }));
            assert_eq!(cfg.mail.updates().max_recipients_per_message, 50);
            assert!(cfg.mail.updates().notify_declined);
            jail.create_file(
                "typo.toml",
                "[mail]\nkind = \"smtp\"\nhost = \"relay\"\nport = 25\ntls = \"none\"\ntimeout_secs = 5\n\
                 max_recipient_per_message = 50\n",
            )?;
            assert!(
                load(Some(Path::new("typo.toml"))).is_err(),
                "a mistyped mail key is refused"
            );
            Ok(())
        });
    }

    /// The shared `[mailbox]` keys sit beside `kind`; absent ones take their defaults.
    #[test]
    fn mailbox_limits_retries_and_scheduling_are_read_beside_the_kind() {
        use mms_core::config::{MailboxOptions, SchedulingMode};
        jail(|jail| {
            jail.create_file(
                "mms.toml",
                "[mailbox]\nkind = \"caldav\"\ncalendar_url = \"https://x/{user}/\"\ntimeout_secs = 5\n\
                 max_resource_bytes = 1000\nrequest_retries = 2\nscheduling = \"mms\"\n",
            )?;
            let cfg = load(Some(Path::new("mms.toml"))).unwrap();
            let options = cfg.mailbox.options();
            assert_eq!(options.max_resource_bytes, 1000);
            assert_eq!(options.request_retries, 2);
            assert_eq!(options.scheduling, SchedulingMode::Mms);
            assert_eq!(options.max_page_bytes, 32 * 1024 * 1024);
            jail.create_file(
                "vdir.toml",
                "[mailbox]\nkind = \"vdir\"\nroot = \"/srv/mail\"\n",
            )?;
            let cfg = load(Some(Path::new("vdir.toml"))).unwrap();
            assert_eq!(cfg.mailbox.options(), &MailboxOptions::default());
            jail.create_file(
                "bad.toml",
                "[mailbox]\nkind = \"vdir\"\nroot = \"/m\"\nscheduling = \"maybe\"\n",
            )?;
            let err = load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("maybe"), "{err}");
            Ok(())
        });
    }
}
