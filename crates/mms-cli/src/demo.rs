//! Demo data: a tenant, a bridge, users, and mailboxes of Outlook-style invitations.
//!
//! `mms all --demo` seeds it so that `make run` shows a migration end to end; the load generator
//! and the end-to-end tests build their mailboxes with [`invitation`] too.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_core::{
    AudioConferencing, Bridge, DialInNumber, MigrationRequest, MigrationState, MigrationStatus,
    SourceMeetingType, TargetMeetingType, TenantSettings, Trigger, UserProfile,
};
use mms_store::Store;

pub const DEMO_TENANT: &str = "demo";
/// The mail domain of the demo users, owned by the demo tenant.
pub const DEMO_DOMAIN: &str = "demo.example";
pub const DEMO_BRIDGE: &str = "demo-bridge";

/// What kind of online block an invitation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Teams,
    SfB,
    None,
}

/// One invitation as Outlook writes it: a text and an HTML body with the online block.
pub struct Invitation<'a> {
    pub uid: &'a str,
    pub organizer: &'a str,
    pub attendees: &'a [String],
    pub start: DateTime<Utc>,
    pub block: BlockKind,
    /// Weekly series of this many occurrences (None: a single meeting).
    pub weekly_count: Option<u32>,
    pub summary: &'a str,
}

pub fn invitation(inv: &Invitation<'_>) -> String {
    let fmt = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let (text, html) = match inv.block {
        BlockKind::Teams => (
            "Agenda: review the quarter.\\n\\n________________________________________________________________________________\\nMicrosoft Teams meeting\\nJoin on your computer\\, mobile app or room device\\nClick here to join the meeting<https://teams.microsoft.com/l/meetup-join/19%3ameeting_OLD%40thread.v2/0>\\nMeeting ID: 111 222 333 444\\nPasscode: abc123\\nOr call in (audio only)\\n+1 206-555-0100\\,\\,111222333#   United States\\, Seattle\\nPhone Conference ID: 111 222 333#\\nFind a local number<https://dialin.teams.microsoft.com/old>\\n________________________________________________________________________________\\n",
            "<html><body><p>Agenda: review the quarter.</p><div>________________________________________________________________________________</div><div><span style=\"font-size:14pt\">Microsoft Teams meeting</span></div><div><a href=\"https://teams.microsoft.com/l/meetup-join/19%3ameeting_OLD%40thread.v2/0\">Click here to join the meeting</a></div><div>Meeting ID: 111 222 333 444</div><div>Passcode: abc123</div><div>Or call in (audio only)</div><div>+1 206-555-0100,,111222333# United States, Seattle</div><div>Phone Conference ID: 111 222 333#</div><div><a href=\"https://dialin.teams.microsoft.com/old\">Find a local number</a></div><div>________________________________________________________________________________</div></body></html>",
        ),
        BlockKind::SfB => (
            "Agenda: plan the release.\\n\\n.........................................................................................................................................\\nJoin Skype Meeting<https://meet.contoso.com/old/ABCD1234>\\nTrouble Joining? Try Skype Web App<https://meet.contoso.com/old/ABCD1234?sl=1>\\nJoin by phone\\n+1 425-555-0199 (Redmond) English (United States)\\nFind a local number<https://dialin.contoso.com>\\nConference ID: 7654321\\nForgot your dial-in PIN?<https://dialin.contoso.com>\\n.........................................................................................................................................\\n",
            "<html><body><p>Agenda: plan the release.</p><div>.........................................................................................................................................</div><div><a href=\"https://meet.contoso.com/old/ABCD1234\">Join Skype Meeting</a></div><div>Join by phone</div><div>+1 425-555-0199 (Redmond) English (United States)</div><div><a href=\"https://dialin.contoso.com\">Find a local number</a></div><div>Conference ID: 7654321</div><div>.........................................................................................................................................</div></body></html>",
        ),
        BlockKind::None => ("Lunch at the usual place.\\n", "<html><body><p>Lunch at the usual place.</p></body></html>"),
    };
    let mut out = String::with_capacity(4096);
    out.push_str("BEGIN:VCALENDAR\r\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\nVERSION:2.0\r\n");
    out.push_str("BEGIN:VEVENT\r\n");
    out.push_str(&format!("UID:{}\r\n", inv.uid));
    out.push_str(&format!("SUMMARY:{}\r\n", inv.summary));
    out.push_str(&format!(
        "DTSTART:{}\r\nDTEND:{}\r\n",
        fmt(inv.start),
        fmt(inv.start + Duration::minutes(30))
    ));
    if let Some(count) = inv.weekly_count {
        out.push_str(&format!("RRULE:FREQ=WEEKLY;COUNT={count}\r\n"));
    }
    out.push_str("DTSTAMP:20260101T000000Z\r\nSEQUENCE:0\r\n");
    out.push_str(&format!(
        "ORGANIZER;CN=Organizer:mailto:{}\r\n",
        inv.organizer
    ));
    for a in inv.attendees {
        out.push_str(&format!(
            "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}\r\n"
        ));
    }
    if inv.block == BlockKind::Teams {
        out.push_str("LOCATION:Microsoft Teams Meeting\r\n");
        out.push_str("X-MICROSOFT-SKYPETEAMSMEETINGURL:https://teams.microsoft.com/l/meetup-join/19%3ameeting_OLD%40thread.v2/0\r\n");
    }
    out.push_str(&fold(&format!("DESCRIPTION:{text}")));
    // TEXT values escape `,` and `;` (RFC 5545 §3.3.11), as Outlook does in its HTML body.
    let html = html.replace(',', "\\,").replace(';', "\\;");
    out.push_str(&fold(&format!("X-ALT-DESC;FMTTYPE=text/html:{html}")));
    out.push_str("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n");
    out.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    out
}

/// RFC 5545 folding at 75 octets (the demo text is ASCII).
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut width = 75;
    while start < bytes.len() {
        let end = (start + width).min(bytes.len());
        out.push_str(&line[start..end]);
        out.push_str("\r\n");
        if end < bytes.len() {
            out.push(' ');
        }
        start = end;
        width = 74;
    }
    out
}

/// The demo tenant's bridge.
pub fn demo_bridge(tenant: &str) -> Bridge {
    Bridge {
        tenant: tenant.into(),
        id: DEMO_BRIDGE.into(),
        name: "Demo bridge".into(),
        numbers: vec![
            DialInNumber {
                number: "+1 206-555-0142".into(),
                label: "United States, Seattle (Toll)".into(),
                toll_free: false,
            },
            DialInNumber {
                number: "+1 866-555-0199".into(),
                label: "United States (Toll-free)".into(),
                toll_free: true,
            },
        ],
    }
}

pub fn demo_user(tenant: &str, upn: &str) -> UserProfile {
    UserProfile {
        tenant: tenant.into(),
        upn: upn.into(),
        sip_address: Some(upn.into()),
        user_id: format!("id-{upn}"),
        home: Default::default(),
        mailbox: Default::default(),
        teams_upgrade_mode: Default::default(),
        audio: AudioConferencing {
            enabled: true,
            bridge: Some(DEMO_BRIDGE.into()),
            ..Default::default()
        },
    }
}

/// One generated meeting and whether MMS should migrate it.
pub struct DemoMeeting {
    pub uid: String,
    pub ics: String,
    /// Future, organized by the mailbox owner, with an online block: MMS rewrites it.
    pub migrates: bool,
}

/// `count` meetings of `organizer`, nine kinds in rotation: future Teams and SfB meetings, a weekly
/// series that started two weeks ago, a past meeting, one organized by someone else, one without an
/// online block. Three in ten are not to be migrated.
pub fn demo_meetings(organizer: &str, count: usize, now: DateTime<Utc>) -> Vec<DemoMeeting> {
    let attendees: Vec<String> = (0..3).map(|i| format!("guest{i}@example.org")).collect();
    (0..count)
        .map(|i| {
            let uid = format!("{organizer}-meeting-{i}");
            let (org, start, block, series) = match i % 10 {
                7 => (
                    organizer.to_string(),
                    now - Duration::days(3),
                    BlockKind::Teams,
                    None,
                ),
                8 => (
                    "someone.else@example.org".to_string(),
                    now + Duration::days(2),
                    BlockKind::Teams,
                    None,
                ),
                9 => (
                    organizer.to_string(),
                    now + Duration::days(4),
                    BlockKind::None,
                    None,
                ),
                3 => (
                    organizer.to_string(),
                    now - Duration::days(14),
                    BlockKind::Teams,
                    Some(10),
                ),
                n if n % 2 == 0 => (
                    organizer.to_string(),
                    now + Duration::days(1 + i as i64),
                    BlockKind::Teams,
                    None,
                ),
                _ => (
                    organizer.to_string(),
                    now + Duration::days(1 + i as i64),
                    BlockKind::SfB,
                    None,
                ),
            };
            let ics = invitation(&Invitation {
                uid: &uid,
                organizer: &org,
                attendees: &attendees,
                start,
                block,
                weekly_count: series,
                summary: &format!("Demo meeting {i}"),
            });
            DemoMeeting {
                uid,
                ics,
                migrates: !matches!(i % 10, 7..=9),
            }
        })
        .collect()
}

/// Write [`demo_meetings`] into a vdir mailbox, one `<uid>.ics` per meeting.
pub fn write_mailbox(
    root: &Path,
    organizer: &str,
    count: usize,
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    let dir = root.join(organizer);
    std::fs::create_dir_all(&dir)?;
    for meeting in demo_meetings(organizer, count, now) {
        std::fs::write(dir.join(format!("{}.ics", meeting.uid)), meeting.ics)?;
    }
    Ok(())
}

/// What [`seed`] queued: the migrations `make run` then follows ([`narrate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSeed {
    pub tenant: String,
    /// Each demo user with the correlation id of their migration.
    pub migrations: Vec<(String, String)>,
    /// Where the demo mailboxes are.
    pub mailboxes: PathBuf,
}

/// Seed the demo tenant (idempotent) and queue a migration for each demo user; `None` when the
/// mailbox is not the embedded vdir store (the demo writes its mailboxes there).
pub async fn seed(config: &MmsConfig, store: &Store) -> anyhow::Result<Option<DemoSeed>> {
    let MailboxConfig::Vdir { root, .. } = &config.mailbox else {
        tracing::warn!("--demo needs the embedded vdir mailbox; skipping the demo seed");
        return Ok(None);
    };
    let mut migrations = Vec::new();
    let tenant = DEMO_TENANT;
    store
        .create_tenant(&TenantSettings::defaults(tenant))
        .await?;
    let domain = mms_store::domains::MailDomain::parse(DEMO_DOMAIN)?;
    if let Err(taken) = store.claim_domains(tenant, &[domain]).await? {
        anyhow::bail!(
            "the demo domain {} belongs to tenant {}: use another namespace for the demo",
            taken.domain,
            taken.owner
        );
    }
    store.put_bridge(&demo_bridge(tenant)).await?;
    let now = Utc::now();
    for n in 1..=3 {
        let upn = format!("user{n}@{DEMO_DOMAIN}");
        store.put_user(&demo_user(tenant, &upn)).await?;
        if !root.join(&upn).exists() {
            write_mailbox(root, &upn, 20, now)?;
        }
        let request = MigrationRequest::new(
            tenant,
            &upn,
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        let queued = store.enqueue(&request, 0).await?;
        tracing::info!(user = %upn, correlation_id = %queued.correlation_id, "demo migration queued");
        migrations.push((upn, queued.correlation_id));
    }
    Ok(Some(DemoSeed {
        tenant: tenant.to_string(),
        migrations,
        mailboxes: root.clone(),
    }))
}

/// `make run`'s story, on stdout: a line per user whenever their migration moves (state,
/// meetings done / total), then what happened, where to look, and what to try next with the
/// binaries `make run` built. Stops once every demo migration is final (or Redis fails).
pub async fn narrate(config: &MmsConfig, store: &Store, seed: &DemoSeed) {
    let mut last: Vec<Option<(MigrationState, u32, u32)>> = vec![None; seed.migrations.len()];
    loop {
        let mut rows = Vec::with_capacity(seed.migrations.len());
        for (index, (user, correlation_id)) in seed.migrations.iter().enumerate() {
            let status = match store.status(&seed.tenant, correlation_id).await {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(e) => {
                    println!("demo: cannot follow the migrations ({e})");
                    return;
                }
            };
            let now = (
                status.state,
                status.succeeded_meeting + status.failed_meeting,
                status.total_meeting,
            );
            if last[index] != Some(now) {
                println!(
                    "demo: {user:<22} {:<10} {}/{} meetings",
                    status.state.to_string(),
                    now.1,
                    now.2
                );
                last[index] = Some(now);
            }
            rows.push(status);
        }
        if rows.len() == seed.migrations.len() && rows.iter().all(|r| r.state.is_final()) {
            println!("{}", story_end(config, seed, &rows));
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// What a value in the console URL's fragment (`#token=...`, read as form-encoded by the page)
/// must have escaped: all but the unreserved characters, so `&`, `+`, `#` or `=` in a configured
/// token cannot cut it short.
const FRAGMENT_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The summary `make run` ends with (see [`narrate`]).
pub fn story_end(config: &MmsConfig, seed: &DemoSeed, rows: &[MigrationStatus]) -> String {
    let migrated: u32 = rows.iter().map(|r| r.succeeded_meeting).sum();
    let updates: u32 = rows.iter().map(|r| r.invites_update).sum();
    let failed = rows
        .iter()
        .filter(|r| r.state == MigrationState::Failed)
        .count();
    let outbox = match &config.mail {
        MailConfig::Maildir { root, .. } => format!("{}/new (one .eml per update)", root.display()),
        MailConfig::Smtp { host, port, .. } => format!("sent to the SMTP relay {host}:{port}"),
    };
    let api = format!("http://{}", config.api_addr);
    let configured = config.api.operator_token.clone();
    // The token rides in the URL's fragment, which a browser never sends to the server (so no
    // access log holds it); the page stores it for the tab and removes it from the address bar.
    let console = match &configured {
        Some(token) => format!(
            "{api}/console#token={}",
            percent_encoding::utf8_percent_encode(token, FRAGMENT_VALUE)
        ),
        None => format!("{api}/console   (sign in with the operator token printed above)"),
    };
    let token = configured.unwrap_or_else(|| "<the operator token printed above>".into());
    let tenant = &seed.tenant;
    let first_user = seed.migrations.first().map_or("", |(u, _)| u.as_str());
    let first_id = seed.migrations.first().map_or("", |(_, c)| c.as_str());
    format!(
        "\ndemo: done. {users} users migrated ({failed} failed), {migrated} meetings migrated, \
         {updates} updates written.\n\
         \x20 mailboxes: {mailboxes}\n\
         \x20 outbox:    {outbox}\n\
         \x20 console:   {console}\n\
         \x20 API:       {api}   (OpenAPI: {api}/openapi.json)\n\
         \x20 token:     {token}\n\n\
         Try next (the API keeps running until Ctrl-C):\n\
         \x20 export MMS_API_URL={api} MMS_TOKEN={token} MMS_TENANT={tenant}\n\
         \x20 ./target/release/mmsctl get-meeting-migration-status --summary-only\n\
         \x20 ./target/release/mmsctl get-meeting-migration-status\n\
         \x20 ./target/release/mmsctl get-meeting-migration --correlation-id {first_id}\n\
         \x20 ./target/release/mmsctl get-meeting-migration-transaction-history --identity {first_user}\n\
         \x20 ./target/release/mmsctl start-meeting-migration --identity {first_user} --what-if\n\
         \x20 ./target/release/mmsctl undo-meeting-migration --identity {first_user} --what-if\n\
         \x20 ./target/release/mmsctl list-users\n\
         \x20 ./target/release/mms status --tenant {tenant}",
        users = rows.len(),
        mailboxes = seed.mailboxes.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_story_ends_with_counts_places_and_the_built_binaries() {
        let mut config = MmsConfig::default();
        config.api.operator_token = Some("t0ken".into());
        let seed = DemoSeed {
            tenant: DEMO_TENANT.into(),
            migrations: vec![("user1@demo.example".into(), "c-1".into())],
            mailboxes: "var/mailboxes".into(),
        };
        let request = MigrationRequest::new(
            DEMO_TENANT,
            "user1@demo.example",
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        let mut row = MigrationStatus::pending(&request, "id", Utc::now());
        row.state = MigrationState::Succeeded;
        row.succeeded_meeting = 14;
        row.invites_update = 14;
        let text = story_end(&config, &seed, &[row]);
        assert!(
            text.contains("1 users migrated (0 failed), 14 meetings migrated, 14 updates written"),
            "{text}"
        );
        assert!(
            text.contains("var/outbox/new") && text.contains("var/mailboxes"),
            "{text}"
        );
        assert!(text.contains("MMS_TOKEN=t0ken") && text.contains("http://127.0.0.1:8080"));
        assert!(
            text.contains("console:   http://127.0.0.1:8080/console#token=t0ken\n"),
            "the web console's URL carries the token in its fragment: {text}"
        );
        assert!(text.contains("./target/release/mmsctl get-meeting-migration --correlation-id c-1"));
        config.api.operator_token = Some("a+b&c=d#e_f".into());
        let text = story_end(&config, &seed, &[]);
        assert!(
            text.contains("/console#token=a%2Bb%26c%3Dd%23e_f\n"),
            "{text}"
        );
        assert!(!text.contains("cargo run"), "{text}");
    }
}
