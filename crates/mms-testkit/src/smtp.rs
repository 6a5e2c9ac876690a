//! A real SMTP server for tests: aiosmtpd running `py/smtp_sink.py` from the venv.
//!
//! In [`SinkMode::Accept`] it stores each message with its envelope, read back with
//! [`SmtpSink::messages`]; [`SinkMode::Reject`] answers `550` to DATA and [`SinkMode::Defer`]
//! answers `451`, so a sender's permanent / transient error classes can be tested against a real
//! SMTP conversation.
//!
//! [`SmtpSink::start_with`] adds transport security ([`SinkTls`]: STARTTLS required, or TLS from
//! the first byte) and required AUTH with one fixed user name and password, so that a sender's
//! TLS trust and credentials are tested against a real server too.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::ServerProcess;
use crate::{free_port, venv};

/// How the sink answers DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkMode {
    #[default]
    Accept,
    /// `550 5.7.1`: a permanent refusal.
    Reject,
    /// `451 4.3.0`: a transient refusal.
    Defer,
}

/// How the sink protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS offered and required before MAIL (a submission relay on port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
}

/// Everything a sink can be asked to do; `Default` is a plain sink that accepts everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkOptions<'a> {
    pub mode: SinkMode,
    pub tls: SinkTls,
    /// The PEM certificate and private key files served with TLS (required unless `tls` is
    /// [`SinkTls::None`]), e.g. from [`crate::tls::TestCertificates`].
    pub certificate: Option<(&'a Path, &'a Path)>,
    /// (user name, password) that AUTH must present before MAIL; other credentials get `535`.
    pub auth: Option<(&'a str, &'a str)>,
}

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA bytes as they arrived (dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _process: ServerProcess,
}

impl SmtpSink {
    /// A sink that accepts and stores everything.
    pub async fn start() -> SmtpSink {
        Self::start_in_mode(SinkMode::Accept).await
    }

    /// A plain sink that answers DATA as `mode` says.
    pub async fn start_in_mode(mode: SinkMode) -> SmtpSink {
        Self::start_with(SinkOptions {
            mode,
            ..SinkOptions::default()
        })
        .await
    }

    /// A sink as `options` describe. Panics if TLS is asked for without a certificate.
    pub async fn start_with(options: SinkOptions<'_>) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).expect("create sink mail dir");
        let port = free_port();
        let mode_arg = match options.mode {
            SinkMode::Accept => "accept",
            SinkMode::Reject => "reject",
            SinkMode::Defer => "defer",
        };
        let mut cmd = Command::new(venv().join("bin").join("python"));
        cmd.arg(script_path())
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&mail_dir)
            .arg("--mode")
            .arg(mode_arg);
        let tls_arg = match options.tls {
            SinkTls::None => "none",
            SinkTls::StartTls => "starttls",
            SinkTls::Implicit => "implicit",
        };
        cmd.arg("--tls").arg(tls_arg);
        match (options.tls, options.certificate) {
            (SinkTls::None, _) => {}
            (_, Some((cert_file, key_file))) => {
                cmd.arg("--cert").arg(cert_file).arg("--key").arg(key_file);
            }
            (tls, None) => panic!("SinkTls::{tls:?} needs SinkOptions::certificate"),
        }
        if let Some((user, password)) = options.auth {
            cmd.arg("--auth-user")
                .arg(user)
                .arg("--auth-password")
                .arg(password);
        }
        let process =
            ServerProcess::spawn(cmd, "smtp sink", port, &dir.path().join("smtp_sink.log")).await;
        SmtpSink {
            port,
            dir,
            _process: process,
        }
    }

    /// Every message stored so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mail_dir = self.dir.path().join("mail");
        let mut numbers: Vec<u64> = std::fs::read_dir(&mail_dir)
            .expect("read sink mail dir")
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        numbers
            .into_iter()
            .map(|n| {
                let meta =
                    std::fs::read(mail_dir.join(format!("{n}.json"))).expect("read envelope");
                let meta: serde_json::Value = serde_json::from_slice(&meta).expect("envelope json");
                ReceivedMail {
                    mail_from: meta["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_to: meta["rcpt_to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|r| r.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    data: std::fs::read(mail_dir.join(format!("{n}.eml"))).expect("read message"),
                }
            })
            .collect()
    }
}

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("smtp_sink.py")
}
