//! The journal written a page at a time, against a real redis-server: one fenced script per page
//! (issue 11.4) keeps the per-stage counters exact through repeats and resumes, sets and clears
//! pending updates (issue 7.1) and fills the sent ledger in the same step; a stale lease writes
//! none of it (D4). Reading pages through HSCAN / HMGET (D5).

mod common;

use std::collections::HashMap;

use chrono::Utc;
use common::fresh;
use mms_store::{
    JournalCursor, JournalEntry, Lease, MeetingStage, MeetingWrite, PendingChange, PendingUpdate,
    StageCounts, Store, StoreError,
};
use redis::AsyncCommands;

const TENANT: &str = "acme";

fn entry(stage: MeetingStage, uid: &str) -> JournalEntry {
    JournalEntry {
        stage,
        sequence: 2,
        message_id: matches!(stage, MeetingStage::Saved | MeetingStage::Sent)
            .then(|| format!("<{uid}.2@acme.test>")),
        etag: Some("\"e2\"".into()),
        reason: String::new(),
        uid: uid.into(),
        summary: format!("Meeting {uid}"),
        recipients: 3,
        undelivered: 0,
    }
}

fn pending(uid: &str, correlation: &str) -> PendingUpdate {
    PendingUpdate {
        uid: uid.into(),
        sequence: 2,
        correlation_id: correlation.into(),
        saved_at: Utc::now(),
        message_ids_sent: vec![format!("<{uid}.2.b1@acme.test>")],
        owed: [(
            format!("<{uid}.2.b2@acme.test>"),
            vec!["late@fabrikam.test".to_string()],
        )]
        .into(),
    }
}

async fn lease(store: &Store, user: &str, owner: &str) -> Lease {
    store
        .acquire_lease(TENANT, user, owner, 30_000)
        .await
        .unwrap()
        .expect("lease free")
}

/// Take the lease over from its holder, as a new worker does once the old one's expired.
async fn take_over(store: &Store, user: &str, owner: &str) -> Lease {
    let mut conn = store.connection();
    conn.del::<_, ()>(store.keys().lease(TENANT, user))
        .await
        .unwrap();
    lease(store, user, owner).await
}

/// What the counters must say: the journal's entries counted one by one.
async fn recount(store: &Store, correlation: &str) -> StageCounts {
    let journal = store.journal(TENANT, correlation).await.unwrap();
    StageCounts::of(journal.values())
}

/// One page: entries, counters, pending set and cleared, ledger, all in one script; writing the
/// same page again (a retried page) changes no counter.
#[tokio::test]
async fn a_page_writes_entries_counters_pending_and_ledger_together() {
    let (_server, store) = fresh(false).await;
    let user = "ann@acme.test";
    let lease = lease(&store, user, "w1").await;
    let page = vec![
        MeetingWrite::new("/cal/m1.ics", entry(MeetingStage::Saved, "m1"))
            .with_pending(PendingChange::Set(pending("m1", "c1")))
            .with_sent(vec!["<m1.2.b1@acme.test>".into()]),
        MeetingWrite::new("/cal/m2.ics", entry(MeetingStage::Skipped, "m2")),
        MeetingWrite::new("/cal/m3.ics", entry(MeetingStage::Sent, "m3"))
            .with_pending(PendingChange::Clear)
            .with_sent(vec!["<m3.2@acme.test>".into()]),
    ];
    store.record_meetings(&lease, "c1", &page).await.unwrap();

    let journal = store.journal(TENANT, "c1").await.unwrap();
    assert_eq!(journal.len(), 3);
    assert_eq!(journal["/cal/m1.ics"], page[0].entry);
    let expected = StageCounts {
        saved: 1,
        skipped: 1,
        sent: 1,
        ..StageCounts::default()
    };
    assert_eq!(store.journal_counts(TENANT, "c1").await.unwrap(), expected);
    let pending_now = store.pending_updates(TENANT, user).await.unwrap();
    assert_eq!(pending_now.len(), 1);
    assert_eq!(pending_now["/cal/m1.ics"].correlation_id, "c1");
    for id in ["<m1.2.b1@acme.test>", "<m3.2@acme.test>"] {
        assert!(store.was_sent(TENANT, user, id).await.unwrap(), "{id}");
    }

    // The same page again (a retry after a lost reply): nothing counted twice.
    store.record_meetings(&lease, "c1", &page).await.unwrap();
    assert_eq!(store.journal_counts(TENANT, "c1").await.unwrap(), expected);

    // The next write finishes m1: Saved -> Sent, pending cleared.
    let done = vec![
        MeetingWrite::new("/cal/m1.ics", entry(MeetingStage::Sent, "m1"))
            .with_pending(PendingChange::Clear)
            .with_sent(vec!["<m1.2.b2@acme.test>".into()]),
    ];
    store.record_meetings(&lease, "c1", &done).await.unwrap();
    let counts = store.journal_counts(TENANT, "c1").await.unwrap();
    assert_eq!(
        counts,
        StageCounts {
            skipped: 1,
            sent: 2,
            ..StageCounts::default()
        }
    );
    assert_eq!(counts, recount(&store, "c1").await);
    assert_eq!(counts.total(), 3);
    assert!(store
        .pending_updates(TENANT, user)
        .await
        .unwrap()
        .is_empty());
}

/// D4: a stale lease holder's page writes no entry, no counter, no pending change and no ledger
/// entry; the new holder's page does.
#[tokio::test]
async fn a_stale_lease_writes_nothing_of_a_page() {
    let (_server, store) = fresh(false).await;
    let user = "bob@acme.test";
    let old = lease(&store, user, "w1").await;
    let first = vec![
        MeetingWrite::new("/cal/m1.ics", entry(MeetingStage::Saved, "m1"))
            .with_pending(PendingChange::Set(pending("m1", "c1"))),
    ];
    store.record_meetings(&old, "c1", &first).await.unwrap();
    let new = take_over(&store, user, "w2").await;

    let stale_page = vec![
        MeetingWrite::new("/cal/m1.ics", entry(MeetingStage::Sent, "m1"))
            .with_pending(PendingChange::Clear)
            .with_sent(vec!["<m1.2@acme.test>".into()]),
        MeetingWrite::new("/cal/m2.ics", entry(MeetingStage::Saved, "m2"))
            .with_pending(PendingChange::Set(pending("m2", "c1"))),
    ];
    let refused = store.record_meetings(&old, "c1", &stale_page).await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { token, .. }) if token == old.token),
        "{refused:?}"
    );
    let journal = store.journal(TENANT, "c1").await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal["/cal/m1.ics"].stage, MeetingStage::Saved);
    assert_eq!(
        store.journal_counts(TENANT, "c1").await.unwrap(),
        StageCounts {
            saved: 1,
            ..StageCounts::default()
        }
    );
    let still_pending = store.pending_updates(TENANT, user).await.unwrap();
    assert_eq!(
        still_pending.keys().collect::<Vec<_>>(),
        vec!["/cal/m1.ics"]
    );
    assert!(!store
        .was_sent(TENANT, user, "<m1.2@acme.test>")
        .await
        .unwrap());
    // The single-meeting forms are fenced the same way.
    assert!(matches!(
        store
            .record_sent(&old, "c1", "/cal/m1.ics", &entry(MeetingStage::Sent, "m1"))
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(store.pending_updates(TENANT, user).await.unwrap().len(), 1);

    // The new holder's write of the same page goes through.
    store
        .record_meetings(&new, "c1", &stale_page)
        .await
        .unwrap();
    let pending_now = store.pending_updates(TENANT, user).await.unwrap();
    assert_eq!(pending_now.keys().collect::<Vec<_>>(), vec!["/cal/m2.ics"]);
    assert_eq!(
        store.journal_counts(TENANT, "c1").await.unwrap(),
        recount(&store, "c1").await
    );
}

/// Issue 7.1: a meeting saved whose update did not reach everyone is found by a LATER migration
/// of the user (another correlation id, another lease), and cleared by the write that sends it.
#[tokio::test]
async fn a_pending_update_outlives_its_migration() {
    let (_server, store) = fresh(false).await;
    let user = "cy@acme.test";
    let first = lease(&store, user, "w1").await;
    let half_sent = pending("m1", "c1");
    store
        .record_meetings(
            &first,
            "c1",
            &[
                MeetingWrite::new("/cal/m1.ics", entry(MeetingStage::Saved, "m1"))
                    .with_pending(PendingChange::Set(half_sent.clone())),
            ],
        )
        .await
        .unwrap();
    store.release_lease(&first).await.unwrap();

    // A new migration (new correlation id, new lease) of the same user.
    let second = lease(&store, user, "w2").await;
    let found = store.pending_updates(TENANT, user).await.unwrap();
    assert_eq!(found.get("/cal/m1.ics"), Some(&half_sent));
    // Its first page journals m1 in ITS journal and keeps the pending update (still unsent).
    store
        .record_meeting(
            &second,
            "c2",
            "/cal/m1.ics",
            &entry(MeetingStage::Saved, "m1"),
        )
        .await
        .unwrap();
    assert_eq!(store.pending_updates(TENANT, user).await.unwrap().len(), 1);
    // Sending it clears it.
    store
        .record_sent(
            &second,
            "c2",
            "/cal/m1.ics",
            &entry(MeetingStage::Sent, "m1"),
        )
        .await
        .unwrap();
    assert!(store
        .pending_updates(TENANT, user)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .was_sent(TENANT, user, "<m1.2@acme.test>")
        .await
        .unwrap());
    // The other user's pending updates are their own.
    assert!(store
        .pending_updates(TENANT, "dee@acme.test")
        .await
        .unwrap()
        .is_empty());
}

/// Counters stay exact when a resumed attempt (new lease, same migration) rewrites entries
/// already journaled, and a journal written before the counters existed is counted once on its
/// next write.
#[tokio::test]
async fn counters_are_exact_after_resumes_and_for_journals_older_than_them() {
    let (_server, store) = fresh(false).await;
    let user = "eve@acme.test";
    let first = lease(&store, user, "w1").await;
    let stages = [
        MeetingStage::Saving,
        MeetingStage::Saved,
        MeetingStage::Skipped,
        MeetingStage::Unchanged,
        MeetingStage::Failed,
    ];
    let page: Vec<MeetingWrite> = (0..50)
        .map(|i| {
            MeetingWrite::new(
                format!("/cal/m{i}.ics"),
                entry(stages[i % stages.len()], &format!("m{i}")),
            )
        })
        .collect();
    store.record_meetings(&first, "c1", &page).await.unwrap();
    assert_eq!(store.journal_counts(TENANT, "c1").await.unwrap().saving, 10);

    // The worker dies; another resumes: it redoes the Saving/Saved ones (-> Sent) and writes the
    // whole page again, half of it unchanged.
    let resumed = take_over(&store, user, "w2").await;
    let redo: Vec<MeetingWrite> = page
        .iter()
        .map(|w| match w.entry.stage {
            MeetingStage::Saving | MeetingStage::Saved => {
                let uid = w.entry.uid.clone();
                MeetingWrite::new(w.key.clone(), entry(MeetingStage::Sent, &uid))
            }
            _ => w.clone(),
        })
        .collect();
    store.record_meetings(&resumed, "c1", &redo).await.unwrap();
    store.record_meetings(&resumed, "c1", &redo).await.unwrap();
    let counts = store.journal_counts(TENANT, "c1").await.unwrap();
    assert_eq!(
        counts,
        StageCounts {
            sent: 20,
            skipped: 10,
            unchanged: 10,
            failed: 10,
            ..StageCounts::default()
        }
    );
    assert_eq!(counts, recount(&store, "c1").await);

    // A journal from before the counters (deleted here, as after an upgrade): the next write
    // counts the whole journal once, then moves as usual.
    let mut conn = store.connection();
    conn.del::<_, ()>(store.keys().counts(TENANT, "c1"))
        .await
        .unwrap();
    store
        .record_meeting(
            &resumed,
            "c1",
            "/cal/m2.ics",
            &entry(MeetingStage::Sent, "m2"),
        )
        .await
        .unwrap();
    let counts = store.journal_counts(TENANT, "c1").await.unwrap();
    assert_eq!(counts, recount(&store, "c1").await);
    assert_eq!(counts.total(), 50);
}

/// Outcomes are read a page at a time: HSCAN pages cover the journal, HMGET returns the entries of
/// given meetings in order (None for meetings not journaled).
#[tokio::test]
async fn the_journal_is_read_in_pages() {
    let (_server, store) = fresh(false).await;
    let user = "fay@acme.test";
    let lease = lease(&store, user, "w1").await;
    for chunk in 0..10 {
        let page: Vec<MeetingWrite> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                MeetingWrite::new(
                    format!("/cal/m{n}.ics"),
                    entry(MeetingStage::Skipped, &format!("m{n}")),
                )
            })
            .collect();
        store.record_meetings(&lease, "c1", &page).await.unwrap();
    }

    let mut seen: HashMap<String, JournalEntry> = HashMap::new();
    let mut cursor = JournalCursor::START;
    let mut pages = 0;
    loop {
        let page = store.journal_page(TENANT, "c1", cursor, 100).await.unwrap();
        pages += 1;
        seen.extend(page.entries);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(pages > 1, "a 1,000-entry journal comes in several pages");
    assert_eq!(seen, store.journal(TENANT, "c1").await.unwrap());
    assert_eq!(seen.len(), 1_000);

    let picked = store
        .journal_entries(
            TENANT,
            "c1",
            &["/cal/m7.ics", "/cal/none.ics", "/cal/m999.ics"],
        )
        .await
        .unwrap();
    assert_eq!(picked[0].as_ref().map(|e| e.uid.as_str()), Some("m7"));
    assert_eq!(picked[1], None);
    assert_eq!(picked[2].as_ref().map(|e| e.uid.as_str()), Some("m999"));
    let one = store
        .journal_entries(TENANT, "c1", &["/cal/m1.ics"])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert!(store
        .journal_entries::<&str>(TENANT, "c1", &[])
        .await
        .unwrap()
        .is_empty());
}

/// A damaged record is reported with the key to repair, not skipped or guessed: a counter that
/// is not a stage, a journal entry or pending update that is not JSON.
#[tokio::test]
async fn corrupt_records_name_their_key_and_repair() {
    let (_server, store) = fresh(false).await;
    let user = "gus@acme.test";
    let lease = lease(&store, user, "w1").await;
    store
        .record_meeting(
            &lease,
            "c1",
            "/cal/m1.ics",
            &entry(MeetingStage::Sent, "m1"),
        )
        .await
        .unwrap();
    let mut conn = store.connection();
    conn.hset::<_, _, _, ()>(store.keys().counts(TENANT, "c1"), "Done", 3)
        .await
        .unwrap();
    let err = store.journal_counts(TENANT, "c1").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::CorruptRecord { record, .. } if *record == store.keys().counts(TENANT, "c1")),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "carries its cause"
    );

    conn.hset::<_, _, _, ()>(store.keys().journal(TENANT, "c1"), "/cal/bad.ics", "{oops")
        .await
        .unwrap();
    let err = store
        .journal_entries(TENANT, "c1", &["/cal/bad.ics"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/cal/bad.ics"), "{err}");
    assert!(err.to_string().contains("HDEL"), "{err}");

    conn.hset::<_, _, _, ()>(store.keys().pending(TENANT, user), "/cal/m9.ics", "[]")
        .await
        .unwrap();
    assert!(matches!(
        store.pending_updates(TENANT, user).await,
        Err(StoreError::CorruptRecord { .. })
    ));
}
