//! The what-if (M5 `--what-if`, P2–P4): `POST /v1/tenants/{tenant}/migrations:preview` lists each
//! meeting's outcome and its new online-meeting block, served by the worker's real
//! `MailboxPreviewer` over a real vdir mailbox and a real Redis, and changes nothing: the mailbox
//! files keep their bytes, no Redis key appears, the outbox stays empty.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use common::Api;
use mms_cli::demo;
use mms_core::config::{MailConfig, MailboxConfig, MmsConfig};
use mms_core::meeting_service::TemplateMeetingService;
use mms_core::{
    MailboxLocation, MeetingService, MintRequest, OnlineMeetingKind, TenantSettings, UserProfile,
};
use mms_store::Store;
use mms_worker::preview::MailboxPreviewer;
use mms_worker::Services;
use serde_json::{json, Value};

const TENANT: &str = "alpha";
const ADA: &str = "ada@alpha.com";

/// A vdir mailbox and a Maildir outbox in a temp dir, and a preview API over them.
struct Fixture {
    api: Api,
    mailbox_root: tempfile::TempDir,
    outbox_root: tempfile::TempDir,
}

impl Fixture {
    async fn start(limit: usize) -> Fixture {
        let mailbox_root = tempfile::tempdir().unwrap();
        let outbox_root = tempfile::tempdir().unwrap();
        let (mailbox_path, outbox_path) = (
            mailbox_root.path().to_path_buf(),
            outbox_root.path().to_path_buf(),
        );
        let api = Api::start_with(1 << 20, move |state| {
            let config = Arc::new(MmsConfig::default());
            let mailbox = mms_mailbox::mailbox_from_config(
                &MailboxConfig::Vdir {
                    root: mailbox_path,
                    options: Default::default(),
                },
                4,
            )
            .expect("vdir mailbox");
            let sender = mms_mail::sender_from_config(&MailConfig::Maildir {
                root: outbox_path,
                updates: Default::default(),
            })
            .expect("maildir outbox");
            let services = Services {
                store: state.store.clone(),
                mailbox,
                sender,
                meetings: Arc::new(TemplateMeetingService::new(config.meetings.clone())),
                config,
                worker_name: "preview-test".into(),
            };
            state.with_previewer(Arc::new(MailboxPreviewer::new(services).with_limit(limit)))
        })
        .await;
        Fixture {
            api,
            mailbox_root,
            outbox_root,
        }
    }
}

/// Tenant, demo bridge and one demo user (audio on, on the bridge) straight into the store.
async fn seed_directory(store: &Store, upn: &str) -> UserProfile {
    store
        .create_tenant(&TenantSettings::defaults(TENANT))
        .await
        .unwrap();
    let alpha = mms_store::domains::MailDomain::parse("alpha.com").unwrap();
    store
        .claim_domains(TENANT, &[alpha])
        .await
        .unwrap()
        .expect("alpha.com is free");
    store.put_bridge(&demo::demo_bridge(TENANT)).await.unwrap();
    let user = demo::demo_user(TENANT, upn);
    store.put_user(&user).await.unwrap();
    user
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

async fn redis_keys(api: &Api) -> BTreeSet<String> {
    let mut conn = api
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap()
}

fn outcomes(reply: &Value) -> BTreeMap<String, String> {
    reply["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["Uid"].as_str().unwrap().to_string(),
                i["Outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_preview_lists_each_meeting_and_its_new_block_and_changes_nothing() {
    let fx = Fixture::start(1_000).await;
    let ada = seed_directory(&fx.api.store, ADA).await;
    let now = Utc::now();
    demo::write_mailbox(fx.mailbox_root.path(), ADA, 10, now).unwrap();
    let dir = fx.mailbox_root.path().join(ADA);
    // Meeting 0 already carries exactly what a Teams migration mints for it: Unchanged.
    let already = dir.join(format!("{ADA}-meeting-0.ics"));
    let bridge = demo::demo_bridge(TENANT);
    let coords = TemplateMeetingService::new(MmsConfig::default().meetings)
        .mint(&MintRequest {
            organizer: &ada,
            bridge: Some(&bridge),
            kind: OnlineMeetingKind::Teams,
            meeting_uid: &format!("{ADA}-meeting-0"),
        })
        .await
        .unwrap();
    let original = std::fs::read_to_string(&already).unwrap();
    let migrated = mms_ical::rewrite(&original, &coords, now).unwrap();
    assert!(migrated.changed);
    std::fs::write(&already, migrated.ics).unwrap();
    // A resource that is not iCalendar at all: Failed, with the parser's reason.
    std::fs::write(
        dir.join("broken.ics"),
        "BEGIN:VCALENDAR\r\nthis is not a content line\r\n",
    )
    .unwrap();

    let files_before = snapshot(fx.mailbox_root.path());
    let keys_before = redis_keys(&fx.api).await;
    let (status, reply) = fx
        .api
        .op(
            "POST",
            "/v1/tenants/alpha/migrations:preview",
            Some(json!({"Identity": ADA, "TargetMeetingType": "Teams"})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");

    // Demo meetings 1-6 migrate; 7 is past, 8 organized by someone else, 9 has no online block.
    let mut expected: BTreeMap<String, String> = (1..=6)
        .map(|i| (format!("{ADA}-meeting-{i}"), "WouldUpdate".to_string()))
        .collect();
    expected.insert(format!("{ADA}-meeting-0"), "Unchanged".into());
    for i in 7..=9 {
        expected.insert(format!("{ADA}-meeting-{i}"), "Skipped".into());
    }
    expected.insert(String::new(), "Failed".into());
    assert_eq!(outcomes(&reply), expected, "{reply:#}");
    assert_eq!(
        (
            &reply["WouldUpdate"],
            &reply["Unchanged"],
            &reply["Skipped"],
            &reply["Failed"],
            &reply["Capped"]
        ),
        (&json!(6), &json!(1), &json!(3), &json!(1), &json!(false))
    );
    for item in reply["Items"].as_array().unwrap() {
        assert!(
            !item["Reason"].as_str().unwrap().is_empty(),
            "every outcome says why: {item}"
        );
        let block = item["NewBlock"].as_str();
        if item["Outcome"] == "WouldUpdate" {
            // The block is exactly what the rewrite puts into DESCRIPTION: a Teams block with the
            // minted join URL, the bridge's numbers and MMS's marker, between separator lines.
            let block = block.expect("a WouldUpdate item carries its new block");
            assert!(block.starts_with(&"_".repeat(80)), "{block}");
            assert!(block.contains("Microsoft Teams meeting"), "{block}");
            assert!(
                block.contains("https://teams.example.net/l/meetup-join/alpha/"),
                "{block}"
            );
            assert!(block.contains("+1 206-555-0142"), "{block}");
            assert!(block.contains(mms_ical::render::MMS_MARKER), "{block}");
        } else {
            assert!(block.is_none(), "only WouldUpdate has a new block: {item}");
        }
    }
    let failed = reply["Items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["Outcome"] == "Failed")
        .unwrap();
    assert!(
        failed["Reason"]
            .as_str()
            .unwrap()
            .starts_with("unreadable iCalendar"),
        "{failed}"
    );

    assert_eq!(
        snapshot(fx.mailbox_root.path()),
        files_before,
        "no mailbox file changed"
    );
    assert_eq!(
        redis_keys(&fx.api).await,
        keys_before,
        "nothing queued, no status, no history"
    );
    assert!(fx
        .api
        .store
        .user_statuses(TENANT, ADA)
        .await
        .unwrap()
        .is_empty());
    assert!(fx.api.store.history(TENANT, ADA).await.unwrap().is_empty());
    assert!(snapshot(fx.outbox_root.path()).is_empty(), "no update sent");

    // TargetMeetingType Current keeps each meeting's platform: the SfB meetings get an SfB block.
    let (status, reply) = fx
        .api
        .op(
            "POST",
            "/v1/tenants/alpha/migrations:preview",
            Some(json!({"Identity": ADA})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let sfb = reply["Items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["Uid"] == format!("{ADA}-meeting-1"))
        .unwrap();
    assert_eq!(sfb["Outcome"], "WouldUpdate");
    assert!(
        sfb["NewBlock"]
            .as_str()
            .unwrap()
            .contains("Join Skype Meeting"),
        "{sfb}"
    );
}

#[tokio::test]
async fn a_preview_is_capped_and_says_so() {
    let fx = Fixture::start(3).await;
    seed_directory(&fx.api.store, ADA).await;
    demo::write_mailbox(fx.mailbox_root.path(), ADA, 10, Utc::now()).unwrap();
    let (status, reply) = fx
        .api
        .op(
            "POST",
            "/v1/tenants/alpha/migrations:preview",
            Some(json!({"Identity": ADA})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Items"].as_array().unwrap().len(), 3);
    assert_eq!(reply["Capped"], true);
    assert!(
        reply["Message"]
            .as_str()
            .unwrap()
            .contains("only the first 3 meetings are listed"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_preview_is_validated_and_refused_like_a_start() {
    let fx = Fixture::start(1_000).await;
    seed_directory(&fx.api.store, ADA).await;
    let mut onprem = demo::demo_user(TENANT, "bob@alpha.com");
    onprem.mailbox = MailboxLocation::ExchangeOnPremises;
    fx.api.store.put_user(&onprem).await.unwrap();
    let preview = |body: Value| {
        fx.api
            .op("POST", "/v1/tenants/alpha/migrations:preview", Some(body))
    };
    let cases = [
        (
            409,
            "migration_refused",
            preview(json!({"Identity": "bob@alpha.com"})).await,
        ),
        (
            400,
            "unknown_meeting_type",
            preview(json!({"Identity": ADA, "TargetMeetingType": "SfB"})).await,
        ),
        (
            404,
            "user_not_found",
            preview(json!({"Identity": "nobody@alpha.com"})).await,
        ),
        // Ada has no calendar folder: the mailbox says so, permanently.
        (
            502,
            "mailbox_refused",
            preview(json!({"Identity": ADA})).await,
        ),
    ];
    for (status, code, (got, reply)) in cases {
        assert_eq!(
            (got, reply["Code"].as_str().unwrap_or("")),
            (status, code),
            "{reply}"
        );
        assert!(
            reply["Message"].as_str().is_some_and(|m| m.len() > 20),
            "{reply}"
        );
    }
    let (_, refused) = preview(json!({"Identity": "bob@alpha.com"})).await;
    assert!(
        refused["Message"].as_str().unwrap().contains("X1"),
        "{refused}"
    );
    assert!(fx
        .api
        .store
        .user_statuses(TENANT, "bob@alpha.com")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn without_a_previewer_the_preview_answers_503() {
    let api = Api::start(1 << 20).await;
    seed_directory(&api.store, ADA).await;
    let (status, reply) = api
        .op(
            "POST",
            "/v1/tenants/alpha/migrations:preview",
            Some(json!({"Identity": ADA})),
        )
        .await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (503, Some("preview_unavailable")),
        "{reply}"
    );
}
