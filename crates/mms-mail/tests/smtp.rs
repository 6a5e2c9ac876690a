//! SMTP delivery against the real aiosmtpd sink of the test kit (P5).

use std::time::Duration;

use mms_core::config::MailConfig;
use mms_core::{OutgoingMessage, SendError, Sender};
use mms_mail::{sender_from_config, SmtpSender, SmtpTls};
use mms_testkit::smtp::{SinkMode, SmtpSink};

fn message() -> OutgoingMessage {
    let raw = "From: Alice <alice@example.com>\r\nSender: mms@example.com\r\nTo: bob@example.com, carol@example.com\r\n\
Message-ID: <upd-1@mms.example.com>\r\nSubject: Updated: weekly\r\nMIME-Version: 1.0\r\n\
Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n\
SUMMARY:R\u{e9}union \u{2014} .dot line follows\r\n.\r\nEND:VCALENDAR\r\n";
    OutgoingMessage::from_raw(
        "upd-1@mms.example.com",
        "mms@example.com",
        vec!["bob@example.com".into(), "carol@example.com".into()],
        raw.as_bytes().to_vec(),
    )
}

fn sender(port: u16) -> SmtpSender {
    SmtpSender::new(
        "127.0.0.1",
        port,
        SmtpTls::None,
        None,
        Duration::from_secs(10),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn the_message_arrives_byte_for_byte_with_its_envelope() {
    let sink = SmtpSink::start().await;
    let cfg = MailConfig::Smtp {
        host: "127.0.0.1".into(),
        port: sink.port,
        tls: mms_core::config::SmtpTls::None,
        username: None,
        password: None,
        timeout_secs: 10,
        ca_file: None,
        connections: 4,
        updates: Default::default(),
    };
    let sender = sender_from_config(&cfg).unwrap();
    let msg = message();
    sender.send(&msg).await.unwrap();
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].mail_from, "mms@example.com");
    assert_eq!(
        received[0].rcpt_to,
        vec!["bob@example.com", "carol@example.com"]
    );
    assert_eq!(
        received[0].data,
        msg.raw(),
        "the relay must get the message exactly as built"
    );
}

#[tokio::test]
async fn a_550_is_permanent_and_a_451_transient() {
    let reject = SmtpSink::start_in_mode(SinkMode::Reject).await;
    let err = sender(reject.port).send(&message()).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent(m) if m.contains("550")),
        "{err:?}"
    );

    let defer = SmtpSink::start_in_mode(SinkMode::Defer).await;
    let err = sender(defer.port).send(&message()).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Transient(m) if m.contains("451")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_relay_is_transient() {
    let err = sender(mms_testkit::free_port())
        .send(&message())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Transient(m) if m.contains("127.0.0.1")),
        "{err:?}"
    );
}

/// An address that is not one is refused for that recipient alone (as a relay's 5xx would
/// be); a message with no recipient at all is a permanent error and nothing is sent.
#[tokio::test]
async fn a_bad_address_is_refused_alone_and_no_recipient_is_permanent() {
    let sink = SmtpSink::start().await;
    let mut bad = message();
    bad.recipients.push("not an address".into());
    let report = sender(sink.port).send(&bad).await.unwrap();
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].recipient, "not an address");
    assert!(report.refused[0].permanent);
    assert!(report.refused[0].reply.contains("not a valid mail address"));
    assert_eq!(
        sink.messages()[0].rcpt_to,
        vec!["bob@example.com", "carol@example.com"]
    );

    let mut none = message();
    none.recipients.clear();
    assert!(matches!(
        sender(sink.port).send(&none).await,
        Err(SendError::Permanent(_))
    ));
    let mut only_bad = message();
    only_bad.recipients = vec!["still not one".into()];
    let report = sender(sink.port).send(&only_bad).await.unwrap();
    assert_eq!(report.refused.len(), 1);
    assert_eq!(sink.messages().len(), 1, "nothing more was sent");
}

#[test]
fn a_bad_configuration_says_what_to_fix() {
    let cfg = |tls: &str, user: Option<&str>| MailConfig::Smtp {
        host: "relay.example.com".into(),
        port: 25,
        tls: tls.parse().unwrap(),
        username: user.map(str::to_string),
        password: None,
        timeout_secs: 10,
        ca_file: None,
        connections: 4,
        updates: Default::default(),
    };
    let err = "ssl".parse::<SmtpTls>().unwrap_err();
    assert!(err.to_string().contains("mail.tls"), "{err}");
    let err = sender_from_config(&cfg("starttls", Some("u")))
        .err()
        .unwrap();
    assert!(err.to_string().contains("mail.password"), "{err}");
    assert!(sender_from_config(&cfg("tls", None)).is_ok());
}
