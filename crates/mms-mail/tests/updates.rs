//! Large meetings delivered through `SmtpSender` to the strict aiosmtpd relay of the test kit
//! (lines over 998 octets refused with `500 5.5.2`, at most 100 recipients per transaction,
//! named mailboxes refused with `550 5.1.1`): issue 7 point 1 and issue 11 point 4 (P5).
//!
//! The messages are built from real iCalendar (a VEVENT with N ATTENDEE lines) by
//! `mms_ical::build_updates`, exactly as the worker builds them.

use std::collections::HashSet;
use std::time::Duration;

use mms_core::{OutgoingMessage, SendError, SendReport, Sender};
use mms_ical::{build_updates, UpdateContext, UpdatePlan};
use mms_mail::{SmtpSender, SmtpTls};
use mms_testkit::smtp::{
    attendee_address, meeting_with_attendees, SinkOptions, SmtpSink, STRICT_MAX_LINE,
};

const ORGANIZER: &str = "joni.sherman@contoso.com";

fn context(max_recipients_per_message: usize) -> UpdateContext<'static> {
    UpdateContext {
        tenant: "t1",
        organizer: ORGANIZER,
        service_address: "mms@contoso.com",
        max_recipients_per_message,
        notify_declined: false,
        date: "2025-03-03T12:00:00Z".parse().unwrap(),
    }
}

fn updates(attendees: usize, max_recipients_per_message: usize) -> UpdatePlan {
    let ics = meeting_with_attendees(&format!("meeting-{attendees}"), ORGANIZER, attendees);
    build_updates(&ics, &context(max_recipients_per_message)).expect("the update builds")
}

fn sender(port: u16, connections: usize) -> SmtpSender {
    SmtpSender::with_connections(
        "127.0.0.1",
        port,
        SmtpTls::None,
        None,
        Duration::from_secs(60),
        None,
        connections,
    )
    .unwrap()
}

/// Sends every batch at once (the pool lets `connections` of them run) and returns the
/// reports in batch order.
async fn send_all(sender: &SmtpSender, batches: &[OutgoingMessage]) -> Vec<SendReport> {
    futures::future::join_all(batches.iter().map(|b| sender.send(b)))
        .await
        .into_iter()
        .map(|r| r.expect("the relay takes every batch"))
        .collect()
}

/// Every attendee got exactly one message: envelope recipients counted across all stored
/// messages, each stored line within the relay's limit.
async fn assert_each_attendee_once(attendees: usize) {
    let sink = SmtpSink::start().await;
    let plan = updates(attendees, 100);
    let reports = send_all(&sender(sink.port, 4), &plan.batches).await;
    assert!(reports.iter().all(SendReport::all_accepted), "{reports:?}");

    let received = sink.messages();
    assert_eq!(
        received.len(),
        attendees.div_ceil(100),
        "one message per batch"
    );
    let mut seen = HashSet::new();
    for mail in &received {
        assert_eq!(mail.mail_from, "mms@contoso.com");
        assert!(mail.rcpt_to.len() <= 100);
        for recipient in &mail.rcpt_to {
            assert!(
                seen.insert(recipient.to_lowercase()),
                "{recipient} got two messages"
            );
        }
        for line in mail.data.split(|b| *b == b'\n') {
            assert!(
                line.len() <= STRICT_MAX_LINE + 1,
                "stored line of {} octets",
                line.len()
            );
        }
    }
    let expected: HashSet<String> = (0..attendees).map(attendee_address).collect();
    assert_eq!(seen, expected, "every attendee, none twice, no one else");
    let ids: HashSet<String> = received.iter().map(|m| message_id_of(&m.data)).collect();
    assert_eq!(ids.len(), received.len(), "each batch its own Message-ID");
}

fn message_id_of(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("a Message-ID")
        .to_string()
}

#[tokio::test]
async fn a_meeting_of_40_reaches_each_attendee_once() {
    assert_each_attendee_once(40).await;
}

#[tokio::test]
async fn a_meeting_of_60_reaches_each_attendee_once() {
    assert_each_attendee_once(60).await;
}

#[tokio::test]
async fn a_meeting_of_300_reaches_each_attendee_once() {
    assert_each_attendee_once(300).await;
}

#[tokio::test]
async fn a_meeting_of_1500_reaches_each_attendee_once() {
    assert_each_attendee_once(1_500).await;
}

#[tokio::test]
async fn a_meeting_of_10000_reaches_each_attendee_once() {
    assert_each_attendee_once(10_000).await;
}

#[tokio::test]
async fn one_refused_attendee_leaves_the_others_delivered_and_shows_the_reply() {
    let refused = attendee_address(123);
    let sink = SmtpSink::start_with(SinkOptions {
        refuse: &[refused.as_str()],
        ..SinkOptions::default()
    })
    .await;
    let plan = updates(300, 100);
    let reports = send_all(&sender(sink.port, 2), &plan.batches).await;
    let refusals: Vec<_> = reports.iter().flat_map(|r| r.refused.iter()).collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].recipient, refused);
    assert!(refusals[0].permanent);
    assert!(
        refusals[0].reply.starts_with("550") && refusals[0].reply.contains("mailbox unavailable"),
        "the relay's own reply: {}",
        refusals[0].reply
    );
    let delivered: Vec<String> = sink
        .messages()
        .into_iter()
        .flat_map(|m| m.rcpt_to)
        .collect();
    assert_eq!(delivered.len(), 299);
    assert!(!delivered.contains(&refused));
}

/// A relay that takes fewer recipients per message than MMS was configured for answers `452`
/// past its limit: those recipients are refused transiently (a later attempt, in a smaller
/// batch, can reach them), the first ones still get the message.
#[tokio::test]
async fn too_many_recipients_is_a_transient_refusal_of_the_excess() {
    let sink = SmtpSink::start_with(SinkOptions {
        max_recipients: Some(10),
        ..SinkOptions::default()
    })
    .await;
    let plan = updates(25, 25);
    let report = sender(sink.port, 1).send(&plan.batches[0]).await.unwrap();
    assert_eq!(report.refused.len(), 15);
    assert!(report
        .refused
        .iter()
        .all(|r| !r.permanent && r.reply.starts_with("452")));
    assert_eq!(report.accepted(&plan.batches[0]).len(), 10);
    assert_eq!(sink.messages()[0].rcpt_to.len(), 10);
}

/// Every recipient refused: no DATA, the report lists all, and the connection stays usable.
#[tokio::test]
async fn when_every_recipient_is_refused_no_message_is_sent() {
    let all: Vec<String> = (0..3).map(attendee_address).collect();
    let refuse: Vec<&str> = all.iter().map(String::as_str).collect();
    let sink = SmtpSink::start_with(SinkOptions {
        refuse: &refuse,
        ..SinkOptions::default()
    })
    .await;
    let sender = sender(sink.port, 1);
    let report = sender.send(&updates(3, 100).batches[0]).await.unwrap();
    assert_eq!(report.refused.len(), 3);
    assert!(sink.messages().is_empty());
    let report = sender.send(&updates(5, 100).batches[0]).await.unwrap();
    assert_eq!(report.refused.len(), 3, "the same three, and two delivered");
    assert_eq!(sink.messages().len(), 1);
}

/// The strict relay refuses a line over 998 octets as a whole-message `500 5.5.2`: permanent,
/// nothing stored. (What `build_updates` produces never has one; a hand-made message can.)
#[tokio::test]
async fn a_line_over_998_octets_is_refused_permanently_and_the_next_message_still_goes() {
    let sink = SmtpSink::start().await;
    let sender = sender(sink.port, 1);
    let long = OutgoingMessage::from_raw(
        "long@contoso.com",
        "mms@contoso.com",
        vec![attendee_address(1)],
        format!(
            "Subject: x\r\nTo: {}\r\n\r\n{}\r\n",
            attendee_address(1),
            "x".repeat(999)
        )
        .into_bytes(),
    );
    let err = sender.send(&long).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent(m) if m.contains("500") && m.contains("Line too long")),
        "{err}"
    );
    assert!(sink.messages().is_empty());
    // The refused transaction's connection was dropped; the next message opens a new one.
    sender.send(&updates(2, 100).batches[0]).await.unwrap();
    assert_eq!(sink.messages().len(), 1);
}

/// The pool: many messages over at most `connections` connections, reused between messages.
#[tokio::test]
async fn messages_reuse_a_bounded_pool_of_connections() {
    let sink = SmtpSink::start().await;
    let sender = sender(sink.port, 2);
    let plan = updates(2_000, 100);
    send_all(&sender, &plan.batches).await;
    let received = sink.messages();
    assert_eq!(received.len(), 20);
    let connections: HashSet<&str> = received.iter().map(|m| m.peer.as_str()).collect();
    assert!(
        !connections.is_empty() && connections.len() <= 2,
        "20 messages over {} connections: {connections:?}",
        connections.len()
    );
}

/// A pooled connection the relay closed while idle (its timeout: `421` and close) is noticed
/// by the `RSET` before the next message and replaced; the message goes out on a new one.
#[tokio::test]
async fn a_connection_the_relay_closed_while_idle_is_replaced() {
    let sink = SmtpSink::start_with(SinkOptions {
        idle_timeout_secs: Some(0.5),
        ..SinkOptions::default()
    })
    .await;
    let sender = sender(sink.port, 1);
    sender.send(&updates(2, 100).batches[0]).await.unwrap();
    // Not a timed assertion: only long enough for the relay to give up on the idle connection.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sender.send(&updates(3, 100).batches[0]).await.unwrap();
    let received = sink.messages();
    assert_eq!(received.len(), 2);
    assert_ne!(
        received[0].peer, received[1].peer,
        "a new connection carried the second"
    );
}
