//! The pre-images of a migration (issue 9.2), against a real redis-server: written with the
//! journal in the same fenced page (a stale lease writes neither), read back page by page,
//! expiring with the journal once the migration is final, removed with a trimmed status row.

mod common;

use chrono::{Duration, Utc};
use common::{fresh, manual};
use mms_core::config::RetentionConfig;
use mms_core::{
    BodyPreImage, BodyProperty, EventPreImage, MeetingPreImage, MigrationState, MigrationStatus,
};
use mms_store::journal::{JournalCursor, MeetingWrite};
use mms_store::{JournalEntry, MeetingStage, Store};
use redis::AsyncCommands;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn saving(uid: &str) -> JournalEntry {
    JournalEntry {
        stage: MeetingStage::Saving,
        sequence: 3,
        message_id: None,
        etag: None,
        reason: String::new(),
        uid: uid.into(),
        summary: "Weekly sync".into(),
        recipients: 0,
        undelivered: 0,
    }
}

fn image(uid: &str) -> MeetingPreImage {
    MeetingPreImage {
        uid: uid.into(),
        events: vec![EventPreImage {
            uid: uid.into(),
            recurrence_id: None,
            bodies: vec![BodyPreImage {
                property: BodyProperty::Description,
                existed: true,
                replaced: "Join Skype Meeting".into(),
                written: "Microsoft Teams meeting".into(),
            }],
            properties: vec![],
        }],
    }
}

async fn pttl(store: &Store, key: String) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut store.connection())
        .await
        .unwrap()
}

#[tokio::test]
async fn pre_images_are_written_with_the_journal_under_the_lease_and_kept_as_long() {
    let (_server, store) = fresh(false).await;
    let store = store
        .with_retention(RetentionConfig {
            journal_days: 2,
            ..RetentionConfig::default()
        })
        .unwrap();
    let user = "ann@acme.test";
    let mut row = MigrationStatus::pending(&manual("acme", user), "id", Utc::now());
    let correlation = row.correlation_id.clone();
    let lease = store
        .acquire_lease("acme", user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.pre_image_count("acme", &correlation).await.unwrap(),
        0
    );
    let writes: Vec<MeetingWrite> = (0..30)
        .map(|i| {
            let uid = format!("m{i}");
            MeetingWrite::new(format!("/cal/{uid}.ics"), saving(&uid)).with_pre_image(image(&uid))
        })
        .collect();
    store
        .record_meetings(&lease, &correlation, &writes)
        .await
        .unwrap();
    // A later write of the same meeting without a pre-image keeps the stored one.
    store
        .record_meetings(
            &lease,
            &correlation,
            &[MeetingWrite::new("/cal/m0.ics", saving("m0"))],
        )
        .await
        .unwrap();
    assert_eq!(
        store.pre_image_count("acme", &correlation).await.unwrap(),
        30
    );
    let mut found = std::collections::BTreeMap::new();
    let mut cursor = JournalCursor::START;
    loop {
        let page = store
            .pre_images_page("acme", &correlation, cursor, 7)
            .await
            .unwrap();
        found.extend(page.entries);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(found.len(), 30);
    assert_eq!(found["/cal/m7.ics"], image("m7"));

    // A stale lease writes neither the entry nor the pre-image.
    store.release_lease(&lease).await.unwrap();
    let stale = store
        .record_meetings(
            &lease,
            &correlation,
            &[MeetingWrite::new("/cal/late.ics", saving("late")).with_pre_image(image("late"))],
        )
        .await;
    assert!(stale.is_err());
    assert_eq!(
        store.pre_image_count("acme", &correlation).await.unwrap(),
        30
    );

    let lease = store
        .acquire_lease("acme", user, "w1", 30_000)
        .await
        .unwrap()
        .unwrap();
    row.state = MigrationState::Succeeded;
    store.write_status(&lease, &row).await.unwrap();
    let ttl = pttl(&store, store.keys().pre_images("acme", &correlation)).await;
    assert!(
        ttl > DAY_MS && ttl <= 2 * DAY_MS,
        "pre-images expire with the journal: {ttl}"
    );
}

#[tokio::test]
async fn a_trimmed_status_row_takes_its_pre_images_along() {
    let (_server, store) = fresh(false).await;
    let store = store
        .with_retention(RetentionConfig {
            status_rows_per_user: 1,
            ..RetentionConfig::default()
        })
        .unwrap();
    let user = "bob@acme.test";
    let mut correlations = Vec::new();
    for day in 0..2 {
        let mut row = MigrationStatus::pending(
            &manual("acme", user),
            "id",
            Utc::now() - Duration::days(5 - day),
        );
        let lease = store
            .acquire_lease("acme", user, "w1", 30_000)
            .await
            .unwrap()
            .unwrap();
        store
            .record_meetings(
                &lease,
                &row.correlation_id,
                &[MeetingWrite::new("/cal/m.ics", saving("m")).with_pre_image(image("m"))],
            )
            .await
            .unwrap();
        row.state = MigrationState::Succeeded;
        store.write_status(&lease, &row).await.unwrap();
        store.release_lease(&lease).await.unwrap();
        correlations.push(row.correlation_id);
    }
    let mut conn = store.connection();
    assert!(
        !conn
            .exists::<_, bool>(store.keys().pre_images("acme", &correlations[0]))
            .await
            .unwrap(),
        "the trimmed row's pre-images are gone"
    );
    assert_eq!(
        store
            .pre_image_count("acme", &correlations[1])
            .await
            .unwrap(),
        1
    );
}

/// An undo is a request of its own: never merged into a queued migration, nor a migration into
/// a queued undo; the refusal names the queued request.
#[tokio::test]
async fn an_undo_and_a_migration_of_one_user_are_never_merged() {
    let (_server, store) = fresh(false).await;
    let user = "cem@acme.test";
    let migration = manual("acme", user);
    let held = store.enqueue(&migration, 60_000).await.unwrap();
    let mut undo = manual("acme", user);
    undo.trigger = mms_core::Trigger::Undo {
        of: "earlier".into(),
    };
    match store.enqueue(&undo, 0).await {
        Err(mms_store::StoreError::NotMergeable {
            queued,
            queued_kind,
            incoming_kind,
            ..
        }) => {
            assert_eq!(queued, held.correlation_id);
            assert_eq!((queued_kind, incoming_kind), ("migration", "undo"));
        }
        other => panic!("{other:?}"),
    }
    let status = store
        .status("acme", &held.correlation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.migration_type,
        mms_core::MigrationType::AllToTeams,
        "left as it was"
    );

    let other = "dee@acme.test";
    let mut undo = manual("acme", other);
    undo.trigger = mms_core::Trigger::Undo {
        of: "earlier".into(),
    };
    let queued = store.enqueue(&undo, 0).await.unwrap();
    let row = store
        .status("acme", &queued.correlation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.migration_type, mms_core::MigrationType::Undo);
    assert!(matches!(
        store.enqueue(&manual("acme", other), 0).await,
        Err(mms_store::StoreError::NotMergeable {
            incoming_kind: "migration",
            ..
        })
    ));
}
