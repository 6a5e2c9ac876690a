//! A measurement, not a test (`#[ignore]`; run with `cargo test -p mms-mail --release --test
//! throughput -- --ignored --nocapture`): messages per second of `SmtpSender` against Python's
//! smtplib sending the same messages over one connection to the same aiosmtpd, in the same run
//! (issue 11: 67/s against 312/s before; target at least 0.9 of smtplib's rate).
//!
//! Nothing is asserted about time: the figures are printed as a ratio to the baseline.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use mms_core::{OutgoingMessage, Sender};
use mms_ical::{build_updates, UpdateContext};
use mms_mail::{SmtpSender, SmtpTls};
use mms_testkit::smtp::{meeting_with_attendees, SmtpSink};

const MESSAGES: usize = 400;
const ORGANIZER: &str = "joni.sherman@contoso.com";

fn messages() -> Vec<OutgoingMessage> {
    let ctx = UpdateContext {
        tenant: "t1",
        organizer: ORGANIZER,
        service_address: "mms@contoso.com",
        max_recipients_per_message: 100,
        notify_declined: false,
        date: "2025-03-03T12:00:00Z".parse().unwrap(),
    };
    (0..MESSAGES)
        .map(|i| {
            let ics = meeting_with_attendees(&format!("rate-{i}"), ORGANIZER, 5);
            build_updates(&ics, &ctx).unwrap().batches.remove(0)
        })
        .collect()
}

/// smtplib over one connection: messages per second, measured inside Python after connecting.
fn smtplib_rate(port: u16, dir: &std::path::Path) -> f64 {
    let script = r#"
import json, os, smtplib, sys, time
port, folder, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
items = []
for i in range(count):
    with open(os.path.join(folder, f"{i}.eml"), "rb") as f:
        data = f.read()
    with open(os.path.join(folder, f"{i}.json")) as f:
        env = json.load(f)
    items.append((env["from"], env["to"], data))
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo()
start = time.perf_counter()
for sender, rcpts, data in items:
    s.sendmail(sender, rcpts, data)
elapsed = time.perf_counter() - start
s.quit()
print(count / elapsed)
"#;
    let output = Command::new(mms_testkit::venv().join("bin").join("python"))
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .arg(dir)
        .arg(MESSAGES.to_string())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a rate")
}

async fn sender_rate(sender: &SmtpSender, messages: &[OutgoingMessage], concurrent: bool) -> f64 {
    // One message first, so the connection is open, as smtplib's is before its clock starts.
    sender.send(&messages[0]).await.unwrap();
    let start = Instant::now();
    if concurrent {
        let reports = futures::future::join_all(messages.iter().map(|m| sender.send(m))).await;
        assert!(reports
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.all_accepted())));
    } else {
        for message in messages {
            assert!(sender.send(message).await.unwrap().all_accepted());
        }
    }
    messages.len() as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn smtp_sender_rate_against_smtplib_over_one_connection() {
    let sink = SmtpSink::start().await;
    let messages = messages();
    let dir = tempfile::tempdir().unwrap();
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.eml")), m.raw()).unwrap();
        let mut env = std::fs::File::create(dir.path().join(format!("{i}.json"))).unwrap();
        let to: Vec<String> = m.recipients.iter().map(|r| format!("{r:?}")).collect();
        write!(
            env,
            "{{\"from\": {:?}, \"to\": [{}]}}",
            m.envelope_from,
            to.join(", ")
        )
        .unwrap();
    }
    let one = SmtpSender::with_connections(
        "127.0.0.1",
        sink.port,
        SmtpTls::None,
        None,
        Duration::from_secs(30),
        None,
        1,
    )
    .unwrap();
    let four = SmtpSender::with_connections(
        "127.0.0.1",
        sink.port,
        SmtpTls::None,
        None,
        Duration::from_secs(30),
        None,
        4,
    )
    .unwrap();
    let mut baseline = 0f64;
    let mut sequential = 0f64;
    let mut pooled = 0f64;
    // Interleaved rounds, best of each, so a noisy neighbour on the 2 cores hurts all alike.
    for _ in 0..3 {
        baseline = baseline.max(smtplib_rate(sink.port, dir.path()));
        sequential = sequential.max(sender_rate(&one, &messages, false).await);
        pooled = pooled.max(sender_rate(&four, &messages, true).await);
    }
    let size = messages[0].len();
    println!("messages of {size} octets, 5 recipients each, {MESSAGES} per round, best of 3:");
    println!("  smtplib, one connection:             {baseline:8.1} msg/s (baseline)");
    println!(
        "  SmtpSender, one connection, in turn: {sequential:8.1} msg/s = {:.2} x baseline",
        sequential / baseline
    );
    println!(
        "  SmtpSender, 4 connections, at once:  {pooled:8.1} msg/s = {:.2} x baseline",
        pooled / baseline
    );
}
