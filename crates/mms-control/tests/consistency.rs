//! The control plane keeps the directory and the queue consistent under failures and concurrency,
//! through the HTTP API against a real redis-server: a fan-out that fails midway can be retried
//! (T2e, P1), a SIP address names one user only, the two switches (M3, M4) do not overwrite each
//! other, and `-SummaryOnly` (M1) counts each user once.

mod common;

use common::Api;
use mms_core::{
    MigrationRequest, MigrationState, MigrationStatus, SourceMeetingType, TargetMeetingType,
    Trigger,
};
use redis::AsyncCommands;
use serde_json::{json, Value};

const USERS: [&str; 3] = ["ann@acme.com", "bob@acme.com", "cy@acme.com"];

/// Tenant `acme` with bridge b1 (two numbers) and [`USERS`] on it, audio on, in the cloud.
async fn tenant_on_a_bridge(api: &Api) {
    api.tenant("acme", true, true).await;
    let numbers = json!([{"number": "+1 111", "label": "Seattle", "toll_free": false},
                         {"number": "+1 222", "label": "Boston", "toll_free": false}]);
    let (status, reply) = api
        .op(
            "PUT",
            "/v1/tenants/acme/bridges/b1",
            Some(json!({"Name": "b1", "Numbers": numbers})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    for upn in USERS {
        let record = json!({"SipAddress": format!("sip:{upn}"), "Home": "Cloud", "AudioEnabled": "true",
                            "Bridge": "b1", "DefaultTollNumber": "+1 111"});
        let (status, reply) = api
            .op(
                "PUT",
                &format!("/v1/tenants/acme/users/{upn}"),
                Some(record),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
}

/// In how many ms the user's queued request is due (it waits in the delayed set).
async fn due_in_ms(api: &Api, conn: &mut redis::aio::MultiplexedConnection, upn: &str) -> i64 {
    let rows = api.store.user_statuses("acme", upn).await.unwrap();
    let correlation = &rows.first().expect("a queued request").correlation_id;
    let due: f64 = conn
        .zscore(api.store.keys().delayed("acme"), correlation)
        .await
        .unwrap();
    due as i64 - chrono::Utc::now().timestamp_millis()
}

/// A fan-out job whose Redis writes fail for one user pauses with the error and leaves the
/// directory as it was; once Redis is healthy it resumes and queues every organizer once.
#[tokio::test]
async fn a_fan_out_that_fails_midway_resumes_and_misses_no_one() {
    let api = Api::start_running_jobs(1 << 20).await;
    tenant_on_a_bridge(&api).await;
    let mut conn = api
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Bob's history key holds a string, so appending to it fails (WRONGTYPE): a Redis failure in
    // the middle of the fan-out, whichever order the users come in.
    let poisoned = "{test:acme}:history:bob@acme.com";
    let _: () = conn.set(poisoned, "not a list").await.unwrap();
    let unassign = json!({"Type": "BridgeNumberUnassigned", "Bridge": "b1", "Number": "+1 111"});
    let (status, reply) = api
        .op("POST", "/v1/tenants/acme/events", Some(unassign))
        .await;
    assert_eq!(status, 202, "a fan-out is a job: {reply}");
    let location = format!("/v1/tenants/acme/jobs/{}", reply["Id"].as_str().unwrap());
    let paused = loop {
        let (_, job) = api.op("GET", &location, None).await;
        if job["LastError"].as_str().is_some() {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(paused["State"], "Running", "paused, not failed: {paused}");
    assert!(
        paused["LastError"]
            .as_str()
            .unwrap()
            .contains("will resume"),
        "{paused}"
    );
    let bridge = api.store.bridge("acme", "b1").await.unwrap().unwrap();
    assert_eq!(bridge.numbers.len(), 2, "the directory is not changed yet");
    // Ann sorts before Bob: she is queued, and held until the bridge change is saved, so no
    // worker mints her meetings with the number being removed.
    let ann_due = due_in_ms(&api, &mut conn, "ann@acme.com").await;
    assert!(
        ann_due > 30 * 60 * 1000,
        "held while the job has not saved the directory: due in {ann_due} ms"
    );

    let _: () = conn.del(poisoned).await.unwrap();
    let done = api.job_end(&location).await;
    assert_eq!(done["State"], "Succeeded", "{done}");
    assert_eq!(
        done["Queued"].as_u64().unwrap() + done["Merged"].as_u64().unwrap(),
        3,
        "{done}"
    );
    for upn in USERS {
        let rows = api.store.user_statuses("acme", upn).await.unwrap();
        assert_eq!(rows.len(), 1, "{upn} has exactly one migration queued");
    }
    let bridge = api.store.bridge("acme", "b1").await.unwrap().unwrap();
    assert_eq!(
        bridge.numbers.len(),
        1,
        "saved once every verdict was queued"
    );
    for upn in USERS {
        let due = due_in_ms(&api, &mut conn, upn).await;
        assert!(
            due <= 61_000,
            "{upn}: released with the event hold (60 s here) once the directory is saved: due in {due} ms"
        );
    }
    let ann = api
        .store
        .user("acme", "ann@acme.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.audio.default_toll_number.as_deref(), Some("+1 222"));
}

/// A SIP address belongs to one user: PUT, import and SipAddressChanged that would give it to a
/// second user answer 409 naming the owner, and changing or deleting a user never removes an
/// index entry that names someone else.
#[tokio::test]
async fn a_sip_address_names_one_user_only() {
    let api = Api::start(1 << 20).await;
    api.tenant("acme", true, true).await;
    let api = &api;
    // New users must say whether they have audio conferencing (issue 9); these do not.
    let put = |upn: &str, mut body: Value| {
        body["AudioEnabled"] = "false".into();
        let path = format!("/v1/tenants/acme/users/{upn}");
        async move { api.op("PUT", &path, Some(body)).await }
    };
    assert_eq!(
        put("ann@acme.com", json!({"SipAddress": "sip:desk@acme.com"}))
            .await
            .0,
        200
    );

    let (status, reply) = put("bob@acme.com", json!({"SipAddress": "desk@acme.com"})).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (409, Some("sip_in_use")),
        "{reply}"
    );
    assert!(
        reply["Message"].as_str().unwrap().contains("ann@acme.com"),
        "names the owner: {reply}"
    );
    assert!(api
        .store
        .user("acme", "bob@acme.com")
        .await
        .unwrap()
        .is_none());

    let response = api
        .http
        .post(format!("{}/v1/tenants/acme/users:import", api.base))
        .bearer_auth(common::OPERATOR)
        .header("content-type", "text/csv")
        .body("Upn,SipAddress,AudioEnabled\ncy@acme.com,sip:cy@acme.com,false\nbob@acme.com,sip:desk@acme.com,false\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["Code"], "sip_in_use", "{reply}");
    assert!(
        api.store
            .user("acme", "cy@acme.com")
            .await
            .unwrap()
            .is_none(),
        "all or nothing"
    );

    assert_eq!(
        put("bob@acme.com", json!({"SipAddress": "bob@acme.com"}))
            .await
            .0,
        200
    );
    let (status, reply) = api
        .op(
            "POST",
            "/v1/tenants/acme/events",
            Some(
                json!({"Type": "SipAddressChanged", "Identity": "bob@acme.com",
                        "SipAddress": "sip:desk@acme.com"}),
            ),
        )
        .await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (409, Some("sip_in_use")),
        "{reply}"
    );
    assert!(
        api.store
            .history("acme", "bob@acme.com")
            .await
            .unwrap()
            .is_empty(),
        "refused before anything was recorded"
    );

    // The index entry of a user id or SIP address is removed only while it names that user.
    let (status, reply) = put("ann@acme.com", json!({"SipAddress": "ann@acme.com"})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        put("bob@acme.com", json!({"SipAddress": "desk@acme.com"}))
            .await
            .0,
        200,
        "the freed address can be given to bob"
    );
    let mut conn = api
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // An index entry that names another user (e.g. written by an older version) survives the
    // deletion of a user whose record carries that address.
    let _: () = conn
        .hset("{test:acme}:sip", "ann@acme.com", "someone@acme.com")
        .await
        .unwrap();
    let (status, _) = api
        .op("DELETE", "/v1/tenants/acme/users/ann@acme.com", None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        api.store.upn_by_sip("acme", "ann@acme.com").await.unwrap(),
        Some("someone@acme.com".into())
    );
    assert_eq!(
        api.store.upn_by_sip("acme", "desk@acme.com").await.unwrap(),
        Some("bob@acme.com".into())
    );

    // User ids are unique the same way.
    let (status, reply) = put("dee@acme.com", json!({"UserId": bob_id(api).await})).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (409, Some("user_id_in_use")),
        "{reply}"
    );
}

async fn bob_id(api: &Api) -> String {
    api.store
        .user("acme", "bob@acme.com")
        .await
        .unwrap()
        .unwrap()
        .user_id
}

/// Each configuration PUT changes its own switch only: PUTs of the two switches sent at the same
/// time both take effect (a handler that read the whole record and wrote it back would lose one
/// of them whenever the two interleave, which rounds of concurrent PUTs make near certain).
#[tokio::test]
async fn the_two_switches_change_independently() {
    let api = Api::start(1 << 20).await;
    api.tenant("acme", true, true).await;
    for round in 0..20 {
        let (migration, dialin) = (round % 2 == 1, round % 3 == 1);
        let (a, b) = tokio::join!(
            api.op(
                "PUT",
                "/v1/tenants/acme/configuration/migration",
                Some(json!({"MeetingMigrationEnabled": migration}))
            ),
            api.op(
                "PUT",
                "/v1/tenants/acme/configuration/dialin",
                Some(json!({"AutomaticallyMigrateUserMeetings": dialin}))
            ),
        );
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        let settings = api.store.tenant_settings("acme").await.unwrap().unwrap();
        assert_eq!(
            (
                settings.meeting_migration_enabled,
                settings.automatically_migrate_user_meetings
            ),
            (migration, dialin),
            "round {round}: both PUTs took effect"
        );
    }
    let (status, reply) = api
        .op(
            "PUT",
            "/v1/tenants/nowhere/configuration/dialin",
            Some(json!({"AutomaticallyMigrateUserMeetings": true})),
        )
        .await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (404, Some("tenant_not_found"))
    );
}

/// A migration row of `user` created `minutes_ago`, in `state`.
async fn migration(api: &Api, user: &str, minutes_ago: i64, state: MigrationState) {
    let request = MigrationRequest::new(
        "acme",
        user,
        SourceMeetingType::All,
        TargetMeetingType::Current,
        Trigger::Manual,
    );
    let created = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let mut row = MigrationStatus::pending(&request, "id", created);
    row.state = state;
    api.store.put_status_unfenced(&row).await.unwrap();
}

/// M1: a user counts once, by their newest migration (an old failure then a success is one
/// Succeeded user), in the states and in the split by migration type.
#[tokio::test]
async fn the_summary_counts_each_user_once_by_their_newest_migration() {
    let api = Api::start(1 << 20).await;
    api.tenant("acme", true, true).await;
    migration(&api, "ann@acme.com", 60, MigrationState::Failed).await;
    migration(&api, "ann@acme.com", 5, MigrationState::Succeeded).await;
    migration(&api, "bob@acme.com", 30, MigrationState::Failed).await;
    let (status, summary) = api
        .op("GET", "/v1/tenants/acme/migrations/summary", None)
        .await;
    assert_eq!(status, 200, "{summary}");
    let count = |state: &str| {
        summary["States"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["State"] == state)
            .unwrap()["UserCount"]
            .clone()
    };
    assert_eq!((count("Succeeded"), count("Failed")), (json!(1), json!(1)));
    assert_eq!(
        summary["ByMigrationType"],
        json!([{"State": "Failed", "MigrationType": "ToSameType", "UserCount": 1},
               {"State": "Succeeded", "MigrationType": "ToSameType", "UserCount": 1}])
    );
}

/// M2 paging: `limit` and `offset`, and `X-Next-Offset` while more rows follow.
#[tokio::test]
async fn migrations_and_users_are_paged() {
    let api = Api::start(1 << 20).await;
    api.tenant("acme", true, true).await;
    for minutes in 0..5 {
        migration(
            &api,
            &format!("u{minutes}@acme.com"),
            minutes,
            MigrationState::Pending,
        )
        .await;
    }
    let get = |path: String| {
        let request = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(common::OPERATOR);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let next = response
                .headers()
                .get("x-next-offset")
                .map(|v| v.to_str().unwrap().to_string());
            (status, next, response.json::<Value>().await.unwrap())
        }
    };
    let users = |rows: &Value| -> Vec<String> {
        rows.as_array()
            .unwrap_or_else(|| panic!("a list: {rows}"))
            .iter()
            .map(|r| r["UserPrincipalName"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, next, rows) = get("/v1/tenants/acme/migrations?limit=2".into()).await;
    assert_eq!((status, next.as_deref()), (200, Some("2")));
    assert_eq!(users(&rows), ["u0@acme.com", "u1@acme.com"], "newest first");
    let (_, next, rows) = get("/v1/tenants/acme/migrations?limit=2&offset=4".into()).await;
    assert_eq!(
        (next, users(&rows)),
        (None, vec!["u4@acme.com".to_string()])
    );
    let (_, next, rows) = get("/v1/tenants/acme/migrations".into()).await;
    assert_eq!((next, rows.as_array().unwrap().len()), (None, 5));
    let (status, _, reply) = get("/v1/tenants/acme/migrations?limit=10001".into()).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("invalid_limit"))
    );

    for upn in ["u3@acme.com", "c@acme.com", "a@acme.com", "b@acme.com"] {
        let (status, reply) = api
            .op(
                "PUT",
                &format!("/v1/tenants/acme/users/{upn}"),
                Some(json!({"AudioEnabled": "false"})),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let (_, next, rows) =
        get("/v1/tenants/acme/migrations?identity=u3@acme.com&limit=1".into()).await;
    assert_eq!(
        (next, users(&rows)),
        (None, vec!["u3@acme.com".to_string()])
    );
    let (_, next, rows) = get("/v1/tenants/acme/users?limit=2&offset=1".into()).await;
    let upns: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Upn"].as_str().unwrap())
        .collect();
    assert_eq!(
        (next.as_deref(), upns),
        (Some("3"), vec!["b@acme.com", "c@acme.com"])
    );
    let (_, next, _) = get("/v1/tenants/acme/users?limit=1".into()).await;
    assert_eq!(next.as_deref(), Some("1"));
}
