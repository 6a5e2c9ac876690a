//! A real SMTP server for tests: aiosmtpd running `py/smtp_sink.py` from the venv.
//!
//! In [`SinkMode::Accept`] it stores each message with its envelope, read back with
//! [`SmtpSink::messages`]; [`SinkMode::Reject`] answers `550` to DATA and [`SinkMode::Defer`]
//! answers `451`, so a sender's permanent / transient error classes can be tested against a real
//! SMTP conversation.
//!
//! Like a real relay, the sink is strict by default ([`SinkOptions::default`]): a DATA line
//! over 998 octets is answered `500 5.5.2 Line too long` and the message is not stored (RFC 5321
//! §4.5.3.1.6), and a RCPT past the 100th of a transaction gets `452 4.5.3 Too many recipients`
//! (many relays take 100 per message). [`SinkOptions::refuse`] names mailboxes that get
//! `550 5.1.1 mailbox unavailable`. Every test that delivers through the sink therefore proves
//! that what MMS sends passes those limits.
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

/// The line limit of RFC 5321 §4.5.3.1.6 (octets, without the CRLF).
pub const STRICT_MAX_LINE: usize = 998;

/// Recipients per transaction the default sink takes, as many relays do.
pub const STRICT_MAX_RECIPIENTS: usize = 100;

/// Everything a sink can be asked to do; `Default` is a plain sink that accepts every message
/// within the strict limits ([`STRICT_MAX_LINE`], [`STRICT_MAX_RECIPIENTS`]).
#[derive(Debug, Clone, Copy)]
pub struct SinkOptions<'a> {
    pub mode: SinkMode,
    pub tls: SinkTls,
    /// The PEM certificate and private key files served with TLS (required unless `tls` is
    /// [`SinkTls::None`]), e.g. from [`crate::tls::TestCertificates`].
    pub certificate: Option<(&'a Path, &'a Path)>,
    /// (user name, password) that AUTH must present before MAIL; other credentials get `535`.
    pub auth: Option<(&'a str, &'a str)>,
    /// Longest DATA line accepted, in octets without CRLF (`None`: no limit).
    pub max_line: Option<usize>,
    /// Recipients accepted per transaction; further RCPTs get `452` (`None`: no limit).
    pub max_recipients: Option<usize>,
    /// Addresses (case-insensitive) whose RCPT gets `550 5.1.1 mailbox unavailable`.
    pub refuse: &'a [&'a str],
    /// Seconds after which an idle connection is closed with `421` (`None`: aiosmtpd's 300).
    pub idle_timeout_secs: Option<f64>,
}

impl Default for SinkOptions<'_> {
    fn default() -> Self {
        SinkOptions {
            mode: SinkMode::Accept,
            tls: SinkTls::None,
            certificate: None,
            auth: None,
            max_line: Some(STRICT_MAX_LINE),
            max_recipients: Some(STRICT_MAX_RECIPIENTS),
            refuse: &[],
            idle_timeout_secs: None,
        }
    }
}

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA bytes as they arrived (dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
    /// The client's `address:port` of the connection that carried it.
    pub peer: String,
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _process: ServerProcess,
}

impl SmtpSink {
    /// A sink that accepts and stores every message within the strict limits.
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
        cmd.arg("--max-line")
            .arg(options.max_line.unwrap_or(0).to_string())
            .arg("--max-recipients")
            .arg(options.max_recipients.unwrap_or(0).to_string());
        if let Some(secs) = options.idle_timeout_secs {
            cmd.arg("--idle-timeout").arg(secs.to_string());
        }
        if !options.refuse.is_empty() {
            // A file rather than arguments: a test may refuse thousands of addresses.
            let list = dir.path().join("refused.txt");
            std::fs::write(&list, options.refuse.join("\n")).expect("write refused addresses");
            cmd.arg("--refuse-file").arg(&list);
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
                    peer: meta["peer"].as_str().unwrap_or_default().to_string(),
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

/// The address of attendee `i` in [`meeting_with_attendees`].
pub fn attendee_address(i: usize) -> String {
    format!("attendee{i:05}@fabrikam.example")
}

/// A one-VEVENT calendar organized by `organizer` with `attendees` ATTENDEE lines, for delivery
/// tests of large meetings: attendee `i` is [`attendee_address`]`(i)`, and the display names
/// cycle through the three forms a header must handle (plain atoms, a comma that needs quoting,
/// non-ASCII that needs encoded words). Lines are folded at 75 octets (RFC 5545 §3.1).
pub fn meeting_with_attendees(uid: &str, organizer: &str, attendees: usize) -> String {
    let mut ics = String::with_capacity(200 * attendees + 1024);
    let mut line = |text: &str| ics.push_str(&fold_ical(text));
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//MMS tests//large meeting//EN");
    line("BEGIN:VEVENT");
    line(&format!("UID:{uid}"));
    line("SEQUENCE:1");
    line("DTSTAMP:20250301T120000Z");
    line("DTSTART:20300601T150000Z");
    line("DTEND:20300601T160000Z");
    line("SUMMARY:All-hands \u{2014} Gesamtbetriebsversammlung \u{4e88}\u{7b97}\u{4f1a}\u{8b70}");
    line(
        "DESCRIPTION:Agenda:\\n1. Results\\n2. Questions\\n\\nJoin Microsoft Teams Meeting\\n\
         https://teams.example.net/l/meetup-join/contoso/482913657201\\n+1 206-555-0134\\,\\,731204558#",
    );
    line(&format!("ORGANIZER;CN=Joni Sherman:mailto:{organizer}"));
    for i in 0..attendees {
        let name = match i % 3 {
            0 => format!("Attendee {i}"),
            1 => format!("\"Doe, John {i}\""),
            _ => format!("S\u{f8}ren \u{c6}r\u{f8} {i}"),
        };
        line(&format!(
            "ATTENDEE;CN={name};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{}",
            attendee_address(i)
        ));
    }
    line("END:VEVENT");
    line("END:VCALENDAR");
    ics
}

/// `text` folded at 75 octets without splitting a character, CRLF after every physical line.
fn fold_ical(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 70 * 3 + 2);
    let mut rest = text;
    let mut budget = 75;
    while rest.len() > budget {
        let mut cut = budget;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        budget = 74;
    }
    out.push_str(rest);
    out.push_str("\r\n");
    out
}
