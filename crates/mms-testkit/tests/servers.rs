//! Each test server of the kit starts on its own port and answers.

use mms_testkit::proxy::FaultProxy;
use mms_testkit::radicale::Radicale;
use mms_testkit::smtp::{SinkMode, SmtpSink};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mms//testkit//EN\r\nBEGIN:VEVENT\r\nUID:kit-1\r\n\
DTSTAMP:20300101T000000Z\r\nDTSTART:20300102T100000Z\r\nDTEND:20300102T110000Z\r\nSUMMARY:Kit\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[tokio::test]
async fn radicale_creates_a_calendar_and_stores_events() {
    let radicale = Radicale::start().await;
    radicale.create_calendar("alice@example.com").await;
    let etag = radicale
        .put_event("alice@example.com", "kit-1.ics", EVENT)
        .await;
    assert!(!etag.is_empty(), "PUT returned no ETag");
    assert!(radicale
        .get_event("alice@example.com", "kit-1.ics")
        .await
        .contains("UID:kit-1"));
    let stored = radicale.list_events("alice@example.com");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].0, "kit-1.ics");
    assert_eq!(
        radicale.calendar_url_template(),
        format!("http://127.0.0.1:{}/{{user}}/calendar/", radicale.port)
    );
}

#[tokio::test]
async fn radicale_with_users_refuses_a_wrong_password() {
    let radicale = Radicale::start_with_users(&[("bob", "s3cret")]).await;
    radicale.create_calendar("bob").await;
    let resp = reqwest::Client::new()
        .get(radicale.calendar_url("bob"))
        .basic_auth("bob", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// Speak just enough SMTP to hand one message to the sink; returns the reply to the DATA body.
async fn smtp_send(port: u16, rcpt: &[&str], body: &str) -> String {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    async fn reply(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    ) -> String {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }
    reply(&mut lines).await;
    let mut commands = vec![
        "HELO kit".to_string(),
        "MAIL FROM:<mms@example.com>".to_string(),
    ];
    commands.extend(rcpt.iter().map(|r| format!("RCPT TO:<{r}>")));
    commands.push("DATA".into());
    for command in commands {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut lines).await;
    }
    write
        .write_all(format!("{body}\r\n.\r\n").as_bytes())
        .await
        .unwrap();
    let answer = reply(&mut lines).await;
    write.write_all(b"QUIT\r\n").await.unwrap();
    answer
}

#[tokio::test]
async fn smtp_sink_stores_messages_with_their_envelope() {
    let sink = SmtpSink::start().await;
    let answer = smtp_send(
        sink.port,
        &["a@example.com", "b@example.com"],
        "Subject: hi\r\n\r\nbody",
    )
    .await;
    assert!(answer.starts_with("250"), "{answer}");
    let mail = sink.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].mail_from, "mms@example.com");
    assert_eq!(mail[0].rcpt_to, vec!["a@example.com", "b@example.com"]);
    assert_eq!(mail[0].data, b"Subject: hi\r\n\r\nbody\r\n");
}

#[tokio::test]
async fn smtp_sink_refuses_in_reject_and_defer_modes() {
    let reject = SmtpSink::start_in_mode(SinkMode::Reject).await;
    assert!(smtp_send(reject.port, &["a@example.com"], "x")
        .await
        .starts_with("550"));
    let defer = SmtpSink::start_in_mode(SinkMode::Defer).await;
    assert!(smtp_send(defer.port, &["a@example.com"], "x")
        .await
        .starts_with("451"));
    assert!(reject.messages().is_empty() && defer.messages().is_empty());
}

#[tokio::test]
async fn fault_proxy_forwards_then_answers_503_when_failing() {
    let radicale = Radicale::start().await;
    radicale.create_calendar("carol").await;
    radicale.put_event("carol", "kit-1.ics", EVENT).await;
    let proxy = FaultProxy::start(radicale.port).await;
    let url = format!("{}/carol/calendar/kit-1.ics", proxy.base_url());
    let http = reqwest::Client::new();

    let ok = http.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("UID:kit-1"));

    proxy.set_failing(true);
    let refused = http.put(&url).body(EVENT).send().await.unwrap();
    assert_eq!(refused.status(), 503);

    proxy.set_failing(false);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(proxy.request_count(), 3);
    assert_eq!(proxy.refused_count(), 1);
}
