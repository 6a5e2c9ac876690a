//! A real SMTP server for tests: aiosmtpd running `py/smtp_sink.py` from the venv.
//!
//! In [`SinkMode::Accept`] it stores each message with its envelope, read back with
//! [`SmtpSink::messages`]; [`SinkMode::Reject`] answers `550` to DATA and [`SinkMode::Defer`]
//! answers `451`, so a sender's permanent / transient error classes can be tested against a real
//! SMTP conversation.

use std::path::PathBuf;
use std::process::Command;

use crate::process::ServerProcess;
use crate::{free_port, venv};

/// How the sink answers DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    Accept,
    /// `550 5.7.1`: a permanent refusal.
    Reject,
    /// `451 4.3.0`: a transient refusal.
    Defer,
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

    pub async fn start_in_mode(mode: SinkMode) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).expect("create sink mail dir");
        let port = free_port();
        let mode_arg = match mode {
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
