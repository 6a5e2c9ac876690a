//! SMTP over STARTTLS and implicit TLS, with AUTH, against the real aiosmtpd sink serving a
//! certificate from a private CA generated in the test (issue 3 item 8: "SMTP with lettre
//! (STARTTLS/TLS, auth)"; P5 delivery, P7 error classes).

use std::path::Path;
use std::sync::Arc;

use mms_core::config::MailConfig;
use mms_core::{OutgoingMessage, SendError, Sender};
use mms_mail::sender_from_config;
use mms_testkit::smtp::{SinkOptions, SinkTls, SmtpSink};
use mms_testkit::tls::TestCertificates;

const USER: &str = "mms-relay-user";
const PASSWORD: &str = "relay-password-1";

fn message() -> OutgoingMessage {
    let raw = "From: Alice <alice@example.com>\r\nSender: mms@example.com\r\nTo: bob@example.com\r\n\
Message-ID: <tls-1@mms.example.com>\r\nSubject: Updated: weekly\r\nMIME-Version: 1.0\r\n\
Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n\
SUMMARY:R\u{e9}union \u{2014} .dot line follows\r\n.\r\nEND:VCALENDAR\r\n";
    OutgoingMessage::from_raw(
        "tls-1@mms.example.com",
        "mms@example.com",
        vec!["bob@example.com".into(), "carol@example.com".into()],
        raw.as_bytes().to_vec(),
    )
}

/// A sink with `tls`, serving `certs`, requiring AUTH as USER / PASSWORD.
async fn sink(tls: SinkTls, certs: &TestCertificates) -> SmtpSink {
    SmtpSink::start_with(SinkOptions {
        tls,
        certificate: Some((&certs.cert_file, &certs.key_file)),
        auth: Some((USER, PASSWORD)),
        ..SinkOptions::default()
    })
    .await
}

/// The sender a deployment would build from its `[mail]` section.
fn sender(port: u16, tls: &str, password: &str, ca_file: Option<&Path>) -> Arc<dyn Sender> {
    let cfg = MailConfig::Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: tls.parse().unwrap(),
        username: Some(USER.into()),
        password: Some(password.into()),
        timeout_secs: 10,
        ca_file: ca_file.map(Path::to_path_buf),
        connections: 4,
        updates: Default::default(),
    };
    sender_from_config(&cfg).unwrap()
}

fn assert_delivered_as_sent(sink: &SmtpSink, sent: &OutgoingMessage) {
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].mail_from, sent.envelope_from);
    assert_eq!(received[0].rcpt_to, sent.recipients);
    assert_eq!(
        received[0].data,
        sent.raw(),
        "the relay must get the message exactly as built"
    );
}

/// STARTTLS + AUTH (a submission relay on 587): the sink refuses MAIL before both, so a
/// delivery proves the upgrade and the login happened.
#[tokio::test]
async fn starttls_with_auth_delivers_the_message_and_envelope_as_sent() {
    let certs = TestCertificates::generate();
    let sink = sink(SinkTls::StartTls, &certs).await;
    let msg = message();
    sender(sink.port, "starttls", PASSWORD, Some(&certs.ca_file))
        .send(&msg)
        .await
        .unwrap();
    assert_delivered_as_sent(&sink, &msg);
}

/// Implicit TLS + AUTH (SMTPS on 465).
#[tokio::test]
async fn implicit_tls_with_auth_delivers_the_message_and_envelope_as_sent() {
    let certs = TestCertificates::generate();
    let sink = sink(SinkTls::Implicit, &certs).await;
    let msg = message();
    sender(sink.port, "tls", PASSWORD, Some(&certs.ca_file))
        .send(&msg)
        .await
        .unwrap();
    assert_delivered_as_sent(&sink, &msg);
}

/// A wrong password gets 535, a 5xx: permanent; the password is not in the error.
#[tokio::test]
async fn a_wrong_password_is_permanent_and_not_shown() {
    let certs = TestCertificates::generate();
    let sink = sink(SinkTls::StartTls, &certs).await;
    let err = sender(
        sink.port,
        "starttls",
        "wrong-password-2",
        Some(&certs.ca_file),
    )
    .send(&message())
    .await
    .unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent(m) if m.contains("535")),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-password-2"), "{shown}");
    assert!(sink.messages().is_empty());
}

/// Without the private CA (or with an unrelated one), in both TLS modes: transient (see the
/// class chosen in `mms_mail`'s smtp module), and the message says to set `mail.ca_file`.
#[tokio::test]
async fn an_untrusted_certificate_is_transient_and_says_to_set_ca_file() {
    let certs = TestCertificates::generate();
    let unrelated = TestCertificates::generate();
    for (sink_tls, tls) in [(SinkTls::StartTls, "starttls"), (SinkTls::Implicit, "tls")] {
        let sink = sink(sink_tls, &certs).await;
        for ca_file in [None, Some(unrelated.ca_file.as_path())] {
            let err = sender(sink.port, tls, PASSWORD, ca_file)
                .send(&message())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, SendError::Transient(m)
                    if m.contains("certificate is not trusted") && m.contains("mail.ca_file")),
                "{tls} with ca_file {ca_file:?}: {err}"
            );
            assert!(!err.to_string().contains(PASSWORD), "{err}");
        }
        assert!(sink.messages().is_empty());
    }
}

/// `mail.tls = "tls"` against a port that expects STARTTLS: the handshake meets a plain-text
/// greeting, and the error points at `mail.tls`.
#[tokio::test]
async fn implicit_tls_against_a_starttls_port_says_to_check_mail_tls() {
    let certs = TestCertificates::generate();
    let sink = sink(SinkTls::StartTls, &certs).await;
    let err = sender(sink.port, "tls", PASSWORD, Some(&certs.ca_file))
        .send(&message())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Transient(m) if m.contains("TLS handshake failed") && m.contains("mail.tls")),
        "{err}"
    );
}

#[test]
fn a_bad_ca_file_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let build = |tls: &str, ca_file: &Path| {
        sender_from_config(&MailConfig::Smtp {
            host: "relay.example.com".into(),
            port: 587,
            tls: tls.parse().unwrap(),
            username: None,
            password: None,
            timeout_secs: 10,
            ca_file: Some(ca_file.to_path_buf()),
            connections: 4,
            updates: Default::default(),
        })
    };
    let missing = dir.path().join("missing.pem");
    let err = build("starttls", &missing).err().unwrap().to_string();
    assert!(
        err.contains("mail.ca_file") && err.contains("missing.pem"),
        "{err}"
    );

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let err = build("tls", &not_pem).err().unwrap().to_string();
    assert!(
        err.contains("mail.ca_file") && err.contains("BEGIN CERTIFICATE"),
        "{err}"
    );

    let certs = TestCertificates::generate();
    let err = build("none", &certs.ca_file).err().unwrap().to_string();
    assert!(
        err.contains("mail.ca_file") && err.contains("mail.tls"),
        "{err}"
    );
    assert!(build("starttls", &certs.ca_file).is_ok());
}

/// `mail.tls = "starttls"` against a port that speaks TLS from the first byte: each end waits
/// for the other to speak, and the exchange is abandoned after `mail.timeout_secs` as transient,
/// with a pointer to `mail.tls`.
#[tokio::test]
async fn starttls_against_an_implicit_tls_port_is_abandoned_as_transient() {
    let certs = TestCertificates::generate();
    let sink = sink(SinkTls::Implicit, &certs).await;
    let cfg = MailConfig::Smtp {
        host: "127.0.0.1".into(),
        port: sink.port,
        tls: mms_core::config::SmtpTls::StartTls,
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
        timeout_secs: 1,
        ca_file: Some(certs.ca_file.clone()),
        connections: 4,
        updates: Default::default(),
    };
    let err = sender_from_config(&cfg)
        .unwrap()
        .send(&message())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Transient(m) if m.contains("mail.timeout_secs") && m.contains("mail.tls")),
        "{err}"
    );
    assert!(sink.messages().is_empty());
}
