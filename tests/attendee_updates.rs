//! Every attendee gets the right update exactly once (issue 7; P4, P5, P7, D4, D5), against real
//! servers: Radicale and Xandikos as mailboxes, the embedded vdir store for hostile files, and an
//! aiosmtpd relay that enforces what real relays enforce (line length, a recipient limit,
//! per-recipient refusals). Each failure is injected for real and the test proves what reached
//! whom: messages and envelope recipients counted at the relay, status counts read from Redis.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, Utc};
use common::{wait_final, CaldavKind, Stack};
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_core::{
    Mailbox, MailboxError, MailboxItem, MigrationRequest, MigrationState, MigrationStatus,
    SearchPage, SourceMeetingType, TargetMeetingType, Trigger,
};
use mms_store::Store;
use mms_testkit::smtp::{ReceivedMail, SmtpSink};
use mms_worker::WorkerHandle;

const TENANT: &str = "big";

fn manual(tenant: &str, user: &str) -> MigrationRequest {
    MigrationRequest::new(
        tenant,
        user,
        SourceMeetingType::All,
        TargetMeetingType::Teams,
        Trigger::Manual,
    )
}

async fn worker(cfg: &MmsConfig, store: &Store, mailbox: Option<Arc<dyn Mailbox>>) -> WorkerHandle {
    let mut services = mms_cli::service::services(Arc::new(cfg.clone()), store.clone())
        .await
        .unwrap();
    services.worker_name = format!("w-{}", uuid::Uuid::new_v4());
    if let Some(mailbox) = mailbox {
        services.mailbox = mailbox;
    }
    mms_worker::run_worker(services).await.unwrap()
}

/// An Outlook-style SfB meeting tomorrow organized by `organizer` with `attendees` guests
/// (`guest<i>@<domain>`), the i-th guest's PARTSTAT from `partstat(i)`.
fn meeting(
    organizer: &str,
    uid: &str,
    attendees: usize,
    partstat: impl Fn(usize) -> &'static str,
) -> String {
    let start = Utc::now() + Span::days(1);
    let fmt = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let mut ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//attendees//EN\r\nBEGIN:VEVENT\r\n\
         UID:{uid}\r\nSEQUENCE:0\r\nDTSTAMP:{now}\r\nDTSTART:{start}\r\nDTEND:{end}\r\n\
         SUMMARY:All hands {uid}\r\nORGANIZER;CN=Organizer:mailto:{organizer}\r\n\
         LOCATION:Skype Meeting\r\n\
         DESCRIPTION:Agenda: the quarter.\\n\\n........................................\\n\
         Join Skype Meeting https://meet.lync.example/org/meeting_OLD{uid}\\n\
         Join by phone +1 425 555 0100 Conference ID: 111222\\n\
         ........................................\\n\r\n",
        now = fmt(Utc::now()),
        start = fmt(start),
        end = fmt(start + Span::hours(1)),
    );
    ics.push_str(&format!(
        "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{organizer}\r\n"
    ));
    for i in 0..attendees {
        ics.push_str(&format!(
            "ATTENDEE;CN=Guest {i};PARTSTAT={};RSVP=TRUE:mailto:guest{i}@{uid}.guests.example\r\n",
            partstat(i)
        ));
    }
    ics.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    ics
}

fn accepted(_: usize) -> &'static str {
    "ACCEPTED"
}

/// Envelope recipients per meeting UID (read from the Subject the update carries), with
/// duplicates kept so that the test can find them.
fn recipients_by_meeting(mails: &[ReceivedMail]) -> HashMap<String, Vec<String>> {
    let mut by_uid: HashMap<String, Vec<String>> = HashMap::new();
    for mail in mails {
        let text = String::from_utf8_lossy(&mail.data);
        let uid = text
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("UID:"))
            .map(str::to_string)
            .or_else(|| {
                // The calendar part may be base64: find the UID there.
                decoded_calendar(&text).and_then(|c| {
                    c.lines()
                        .find_map(|l| l.trim_end().strip_prefix("UID:").map(str::to_string))
                })
            })
            .unwrap_or_default();
        by_uid
            .entry(uid)
            .or_default()
            .extend(mail.rcpt_to.iter().map(|r| r.to_ascii_lowercase()));
    }
    by_uid
}

/// The text/calendar part of a message, base64-decoded when it is encoded.
fn decoded_calendar(message: &str) -> Option<String> {
    use base64::Engine;
    let at = message.find("Content-Type: text/calendar")?;
    let part = &message[at..];
    let body_start = part.find("\r\n\r\n")? + 4;
    let body = &part[body_start..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    let b64: String = body[..end].split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

fn assert_lines_fit(mails: &[ReceivedMail]) {
    for mail in mails {
        for line in mail.data.split(|b| *b == b'\n') {
            assert!(line.len() <= 1000, "a line of {} octets reached the relay", line.len());
        }
    }
}

async fn status_of(store: &Store, tenant: &str, user: &str) -> MigrationStatus {
    wait_final(store, tenant, &[user.to_string()], Duration::from_secs(240))
        .await
        .remove(0)
}

/// Meetings of 40, 60, 300, 1,500 and 10,000 attendees through a relay that refuses more than 100
/// recipients per message and lines over 998 octets: every guest gets exactly one update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_meetings_reach_every_attendee_exactly_once() {
    let stack = Stack::start(false).await;
    let cfg = stack.config(None);
    let store = stack.store(&cfg).await;
    let organizer = "host@big.example".to_string();
    stack
        .seed_tenant(&store, TENANT, std::slice::from_ref(&organizer), 0)
        .await;
    let sizes = [40usize, 60, 300, 1_500, 10_000];
    for size in sizes {
        let uid = format!("m{size}");
        stack
            .radicale
            .put_event(&organizer, &format!("{uid}.ics"), &meeting(&organizer, &uid, size, accepted))
            .await;
    }
    let handle = worker(&cfg, &store, None).await;
    store.enqueue(&manual(TENANT, &organizer), 0).await.unwrap();
    let status = status_of(&store, TENANT, &organizer).await;
    assert_eq!(status.state, MigrationState::Succeeded, "{status:#?}");
    assert_eq!(status.succeeded_meeting as usize, sizes.len());
    assert_eq!(status.failed_meeting, 0);
    assert_eq!(status.invites_update as usize, sizes.len());

    let mails = stack.smtp.messages();
    assert_lines_fit(&mails);
    let by_uid = recipients_by_meeting(&mails);
    for size in sizes {
        let uid = format!("m{size}");
        let got = &by_uid[&uid];
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(got.len(), size, "{uid}: {} deliveries", got.len());
        assert_eq!(distinct.len(), size, "{uid}: every guest exactly once");
        assert!(!distinct.contains(&organizer), "the organizer is no recipient");
    }
    for mail in &mails {
        assert!(mail.rcpt_to.len() <= 100, "batches respect the relay's limit");
    }
    handle.shutdown(Duration::from_secs(5)).await;
}
