//! The trigger table (T1–T4, T2-no), the exclusions (X1, X2) and the switches (M3, M4), one row per
//! case, driven through the HTTP API against a real redis-server. Each row runs in its own tenant
//! and checks what was answered, what was queued (status rows in the store) and what the user's
//! transaction history says.

mod common;

use common::Api;
use serde_json::{json, Value};

/// What a row does: post an event, or start a migration by hand (T4).
enum Action {
    Event(Value),
    Start(Value),
}

/// One expected outcome: user, result, rule, and for queued requests the MigrationType.
type Expect = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

struct Row {
    name: &'static str,
    migration_enabled: bool,
    auto_dialin: bool,
    /// Users as `UserRecord` JSON (Upn first).
    users: Vec<Value>,
    action: Action,
    expect: Vec<Expect>,
}

fn user(upn: &str, extra: Value) -> Value {
    let mut record = json!({"Upn": upn, "SipAddress": format!("sip:{upn}"), "Home": "Cloud",
        "AudioEnabled": "true", "AudioProvider": "Microsoft", "Bridge": "b1", "DefaultTollNumber": "+1 111"});
    for (key, value) in extra.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

fn ada() -> Value {
    user("ada@contoso.com", json!({}))
}

/// Ada homed on-premises: the user T1 moves to the cloud, and whom X2 protects from every other rule.
fn ada_on_premises() -> Value {
    user("ada@contoso.com", json!({"Home": "OnPremises"}))
}

fn row(name: &'static str, users: Vec<Value>, action: Action, expect: Vec<Expect>) -> Row {
    Row {
        name,
        migration_enabled: true,
        auto_dialin: true,
        users,
        action,
        expect,
    }
}

fn event(body: Value) -> Action {
    Action::Event(body)
}

const ADA: &str = "ada@contoso.com";
const BOB: &str = "bob@contoso.com";
const CY: &str = "cy@contoso.com";

fn table() -> Vec<Row> {
    vec![
        row(
            "T1a move with MoveToTeams",
            vec![ada_on_premises()],
            event(json!({"Type": "UserMovedToCloud", "Identity": ADA, "MoveToTeams": true})),
            vec![(ADA, "Queued", "T1a", Some("AllToTeams"))],
        ),
        row(
            "T1b move without MoveToTeams",
            vec![ada_on_premises()],
            event(json!({"Type": "UserMovedToCloud", "Identity": ADA})),
            vec![(ADA, "Queued", "T1b", Some("ToSameType"))],
        ),
        row(
            "T2a licence assigned, Microsoft provider",
            vec![ada()],
            event(
                json!({"Type": "AudioConferencingLicenseChanged", "Identity": ADA, "Assigned": true}),
            ),
            vec![(ADA, "Queued", "T2a", Some("ToSameType"))],
        ),
        row(
            "T2a licence removed, third-party provider",
            vec![user(ADA, json!({"AudioProvider": "ThirdParty"}))],
            event(
                json!({"Type": "AudioConferencingLicenseChanged", "Identity": ADA, "Assigned": false}),
            ),
            vec![(ADA, "NotTriggered", "T2a", None)],
        ),
        row(
            "T2b provider changed",
            vec![ada()],
            event(
                json!({"Type": "AudioProviderChanged", "Identity": ADA, "Provider": "ThirdParty"}),
            ),
            vec![(ADA, "Queued", "T2b", Some("ToSameType"))],
        ),
        row(
            "T2c audio conferencing disabled",
            vec![ada()],
            event(
                json!({"Type": "AudioConferencingEnabledChanged", "Identity": ADA, "Enabled": false}),
            ),
            vec![(ADA, "Queued", "T2c", Some("ToSameType"))],
        ),
        row(
            "T2d moved to another bridge",
            vec![ada()],
            event(json!({"Type": "UserBridgeChanged", "Identity": ADA, "Bridge": "b2"})),
            vec![(ADA, "Queued", "T2d", Some("ToSameType"))],
        ),
        row(
            "T2e number unassigned fans out to the bridge's organizers",
            vec![
                ada(),
                user(BOB, json!({"AudioEnabled": "false"})),
                user(CY, json!({"Bridge": "b2", "DefaultTollNumber": "+1 333"})),
            ],
            event(json!({"Type": "BridgeNumberUnassigned", "Bridge": "b1", "Number": "+1 111"})),
            vec![
                (ADA, "Queued", "T2e", Some("ToSameType")),
                (BOB, "NotTriggered", "T2e", None),
            ],
        ),
        row(
            "T2 conference id changed",
            vec![ada()],
            event(
                json!({"Type": "ConferenceIdChanged", "Identity": ADA, "ConferenceId": "4455667"}),
            ),
            vec![(ADA, "Queued", "T2", Some("ToSameType"))],
        ),
        row(
            "T2-no SIP address changed",
            vec![ada()],
            event(
                json!({"Type": "SipAddressChanged", "Identity": ADA, "SipAddress": "sip:ada.l@contoso.com"}),
            ),
            vec![(ADA, "NotTriggered", "T2-no", None)],
        ),
        row(
            "T2-no organization meeting URL changed",
            vec![ada()],
            event(
                json!({"Type": "OrganizationMeetingUrlChanged", "Url": "https://meet.contoso.com/new"}),
            ),
            vec![(ADA, "NotTriggered", "T2-no", None)],
        ),
        row(
            "T3 TeamsOnly granted to a user",
            vec![user(ADA, json!({"Home": "Cloud"}))],
            event(
                json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "TeamsOnly"}),
            ),
            vec![(ADA, "Queued", "T3", Some("AllToTeams"))],
        ),
        row(
            "T3 SfBWithTeamsCollabAndMeetings granted",
            vec![user(ADA, json!({"Home": "Cloud"}))],
            event(
                json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "SfBWithTeamsCollabAndMeetings"}),
            ),
            vec![(ADA, "Queued", "T3", Some("SfbToTeams"))],
        ),
        row(
            "T3 with MigrateMeetingsToTeams false",
            vec![user(ADA, json!({"Home": "Cloud"}))],
            event(
                json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "TeamsOnly", "MigrateMeetingsToTeams": false}),
            ),
            vec![(ADA, "NotTriggered", "T3", None)],
        ),
        row(
            "T3 a mode that does not migrate",
            vec![user(ADA, json!({"Home": "Cloud"}))],
            event(
                json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "SfBWithTeamsCollab"}),
            ),
            vec![(ADA, "NotTriggered", "T3", None)],
        ),
        row(
            "T3 tenant-wide grant fans out to the users it changes",
            vec![
                user(ADA, json!({"Home": "Cloud"})),
                user(
                    BOB,
                    json!({"Home": "Cloud", "TeamsUpgradeMode": "TeamsOnly"}),
                ),
            ],
            event(json!({"Type": "TeamsUpgradePolicyGranted", "Mode": "TeamsOnly"})),
            vec![(ADA, "Queued", "T3", Some("AllToTeams"))],
        ),
        row(
            "T4 manual start by SIP address, defaults All/Current",
            vec![ada()],
            Action::Start(json!({"Identity": "sip:ada@contoso.com"})),
            vec![(ADA, "Queued", "T4", Some("ToSameType"))],
        ),
        row(
            "T4 manual start SfB to Teams",
            vec![ada()],
            Action::Start(
                json!({"Identity": ADA, "SourceMeetingType": "SfB", "TargetMeetingType": "Teams"}),
            ),
            vec![(ADA, "Queued", "T4", Some("SfbToTeams"))],
        ),
        row(
            "X1 automatic trigger, mailbox on Exchange on-premises",
            vec![user(
                ADA,
                json!({"Home": "OnPremises", "Mailbox": "ExchangeOnPremises"}),
            )],
            event(json!({"Type": "UserMovedToCloud", "Identity": ADA, "MoveToTeams": true})),
            vec![(ADA, "Refused", "X1", None)],
        ),
        row(
            "X1 manual start, mailbox on Exchange on-premises",
            vec![user(ADA, json!({"Mailbox": "ExchangeOnPremises"}))],
            Action::Start(json!({"Identity": ADA})),
            vec![(ADA, "Refused", "X1", None)],
        ),
        row(
            "X2 moved from the cloud to on-premises",
            vec![user(ADA, json!({"Home": "Cloud"}))],
            event(json!({"Type": "UserMovedToOnPremises", "Identity": ADA})),
            vec![(ADA, "Refused", "X2", None)],
        ),
        row(
            "X2 a later T2 change of an on-premises user",
            vec![ada_on_premises()],
            event(
                json!({"Type": "AudioConferencingLicenseChanged", "Identity": ADA, "Assigned": true}),
            ),
            vec![(ADA, "Refused", "X2", None)],
        ),
        row(
            "X2 a later T3 grant to an on-premises user",
            vec![ada_on_premises()],
            event(
                json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "TeamsOnly"}),
            ),
            vec![(ADA, "Refused", "X2", None)],
        ),
        row(
            "X2 manual start of an on-premises user",
            vec![ada_on_premises()],
            Action::Start(json!({"Identity": ADA})),
            vec![(ADA, "Refused", "X2", None)],
        ),
        row(
            "X2 in a T2e fan-out: the on-premises organizer is refused, the others queued",
            vec![ada(), user(BOB, json!({"Home": "OnPremises"}))],
            event(json!({"Type": "BridgeNumberUnassigned", "Bridge": "b1", "Number": "+1 111"})),
            vec![
                (ADA, "Queued", "T2e", Some("ToSameType")),
                (BOB, "Refused", "X2", None),
            ],
        ),
        row(
            "X2 in a tenant-wide T3 grant",
            vec![ada(), user(BOB, json!({"Home": "OnPremises"}))],
            event(json!({"Type": "TeamsUpgradePolicyGranted", "Mode": "TeamsOnly"})),
            vec![
                (ADA, "Queued", "T3", Some("AllToTeams")),
                (BOB, "Refused", "X2", None),
            ],
        ),
        Row {
            migration_enabled: false,
            ..row(
                "M3 off stops T1",
                vec![ada_on_premises()],
                event(json!({"Type": "UserMovedToCloud", "Identity": ADA, "MoveToTeams": true})),
                vec![(ADA, "NotTriggered", "T1a", None)],
            )
        },
        Row {
            migration_enabled: false,
            ..row(
                "M3 off stops T2",
                vec![ada()],
                event(
                    json!({"Type": "AudioConferencingEnabledChanged", "Identity": ADA, "Enabled": false}),
                ),
                vec![(ADA, "NotTriggered", "T2c", None)],
            )
        },
        Row {
            migration_enabled: false,
            ..row(
                "M3 off stops T3",
                vec![user(ADA, json!({"Home": "Cloud"}))],
                event(
                    json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "TeamsOnly"}),
                ),
                vec![(ADA, "NotTriggered", "T3", None)],
            )
        },
        Row {
            migration_enabled: false,
            ..row(
                "M3 off: a manual start overrides it and is queued",
                vec![ada()],
                Action::Start(json!({"Identity": ADA})),
                vec![(ADA, "Queued", "T4", Some("ToSameType"))],
            )
        },
        Row {
            auto_dialin: false,
            ..row(
                "M4 off stops T2",
                vec![ada()],
                event(
                    json!({"Type": "AudioConferencingLicenseChanged", "Identity": ADA, "Assigned": true}),
                ),
                vec![(ADA, "NotTriggered", "T2a", None)],
            )
        },
        Row {
            auto_dialin: false,
            ..row(
                "M4 off stops T2e fan-out",
                vec![ada()],
                event(
                    json!({"Type": "BridgeNumberUnassigned", "Bridge": "b1", "Number": "+1 111"}),
                ),
                vec![(ADA, "NotTriggered", "T2e", None)],
            )
        },
        Row {
            auto_dialin: false,
            ..row(
                "M4 off keeps T1",
                vec![ada_on_premises()],
                event(json!({"Type": "UserMovedToCloud", "Identity": ADA, "MoveToTeams": true})),
                vec![(ADA, "Queued", "T1a", Some("AllToTeams"))],
            )
        },
        Row {
            auto_dialin: false,
            ..row(
                "M4 off keeps T3",
                vec![user(ADA, json!({"Home": "Cloud"}))],
                event(
                    json!({"Type": "TeamsUpgradePolicyGranted", "Identity": ADA, "Mode": "TeamsOnly"}),
                ),
                vec![(ADA, "Queued", "T3", Some("AllToTeams"))],
            )
        },
    ]
}

/// The outcomes of an action as (user, result, rule), from an event report or a start reply;
/// for a fan-out (a job, followed to its end), from each of the row's users' history.
async fn run_action(
    api: &Api,
    tenant: &str,
    action: &Action,
    users: &[Value],
) -> (Vec<(String, String, String)>, Value) {
    match action {
        Action::Event(body) if body.get("Identity").is_none() => {
            let response = api
                .http
                .post(format!("{}/v1/tenants/{tenant}/events", api.base))
                .bearer_auth(common::OPERATOR)
                .header("prefer", "wait=30")
                .json(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let job: Value = response.json().await.unwrap();
            assert_eq!((status, &job["State"]), (200, &json!("Succeeded")), "{job}");
            let mut outcomes = Vec::new();
            for record in users {
                let upn = s(&record["Upn"]);
                let path = format!("/v1/tenants/{tenant}/users/{upn}/history");
                let (_, history) = api.op("GET", &path, None).await;
                let events = event_names(&history);
                let Some(first) = events.first() else {
                    continue;
                };
                let result = if events.iter().any(|e| e == "Queued") {
                    "Queued".to_string()
                } else {
                    first.clone()
                };
                let message = s(&history[0]["Message"]);
                let rule = message.split(':').next().unwrap_or_default().to_string();
                outcomes.push((upn, result, rule));
            }
            (outcomes, job)
        }
        Action::Event(body) => {
            let (status, reply) = api
                .op(
                    "POST",
                    &format!("/v1/tenants/{tenant}/events"),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(status, 200, "{reply}");
            let outcomes = reply["Outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| (s(&o["User"]), s(&o["Result"]), s(&o["Rule"])))
                .collect();
            (outcomes, reply)
        }
        Action::Start(body) => {
            let (status, reply) = api
                .op(
                    "POST",
                    &format!("/v1/tenants/{tenant}/migrations"),
                    Some(body.clone()),
                )
                .await;
            let outcome = match status {
                202 => (s(&reply["User"]), "Queued".to_string(), "T4".to_string()),
                409 => {
                    assert_eq!(reply["Code"], "migration_refused", "{reply}");
                    (
                        ADA.to_string(),
                        "Refused".to_string(),
                        reply["Message"].as_str().unwrap()[..2].to_string(),
                    )
                }
                other => panic!("start answered {other}: {reply}"),
            };
            (vec![outcome], reply)
        }
    }
}

/// The `Event` of each entry of a history reply, oldest first.
fn event_names(history: &Value) -> Vec<String> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["Event"]))
        .collect()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn every_trigger_exclusion_and_switch_row_through_the_api() {
    let api = Api::start_running_jobs(1 << 20).await;
    for (index, row) in table().iter().enumerate() {
        let tenant = format!("t{index}");
        api.tenant(&tenant, row.migration_enabled, row.auto_dialin)
            .await;
        // The rows' users live in contoso.com: each row's tenant owns it in turn (a domain has
        // one owner), so a start (T4) may reach them.
        if index > 0 {
            let (status, reply) = api
                .op(
                    "DELETE",
                    &format!("/v1/tenants/t{}/domains/contoso.com", index - 1),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{reply}");
        }
        let (status, reply) = api
            .op(
                "PUT",
                &format!("/v1/tenants/{tenant}/domains"),
                Some(json!({"Domains": ["contoso.com"]})),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        for (id, numbers) in [
            ("b1", vec!["+1 111", "+1 800", "+1 222"]),
            ("b2", vec!["+1 333"]),
        ] {
            let numbers: Vec<Value> = numbers
                .iter()
                .map(|n| json!({"number": n, "label": "Seattle", "toll_free": n.starts_with("+1 8")}))
                .collect();
            let body = json!({"Name": id, "Numbers": numbers});
            let (status, reply) = api
                .op(
                    "PUT",
                    &format!("/v1/tenants/{tenant}/bridges/{id}"),
                    Some(body),
                )
                .await;
            assert_eq!(status, 200, "{}: {reply}", row.name);
        }
        for record in &row.users {
            let upn = record["Upn"].as_str().unwrap();
            let (status, reply) = api
                .op(
                    "PUT",
                    &format!("/v1/tenants/{tenant}/users/{upn}"),
                    Some(record.clone()),
                )
                .await;
            assert_eq!(status, 200, "{}: {reply}", row.name);
        }

        let (outcomes, reply) = run_action(&api, &tenant, &row.action, &row.users).await;
        let expected: Vec<(String, String, String)> = row
            .expect
            .iter()
            .map(|(u, r, rule, _)| (u.to_string(), r.to_string(), rule.to_string()))
            .collect();
        let mut sorted = outcomes.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{}: {reply}", row.name);

        for record in &row.users {
            let upn = record["Upn"].as_str().unwrap();
            let queued = api.store.user_statuses(&tenant, upn).await.unwrap();
            let (status, history) = api
                .op(
                    "GET",
                    &format!("/v1/tenants/{tenant}/users/{upn}/history"),
                    None,
                )
                .await;
            let expectation = row.expect.iter().find(|(u, ..)| *u == upn);
            match expectation {
                Some((_, "Queued", rule, Some(migration_type))) => {
                    assert_eq!(
                        queued.len(),
                        1,
                        "{}: {upn} should have one request",
                        row.name
                    );
                    assert_eq!(
                        queued[0].migration_type.to_string(),
                        *migration_type,
                        "{}",
                        row.name
                    );
                    assert_eq!(
                        queued[0].state,
                        mms_core::MigrationState::Pending,
                        "{}",
                        row.name
                    );
                    let events = event_names(&history);
                    assert_eq!(events, ["Triggered", "Queued"], "{}", row.name);
                    assert!(
                        history[0]["Message"].as_str().unwrap().starts_with(rule),
                        "{}: {history}",
                        row.name
                    );
                }
                Some((_, result, _, _)) => {
                    assert!(
                        queued.is_empty(),
                        "{}: {upn} must have nothing queued",
                        row.name
                    );
                    assert_eq!(status, 200, "{}: {history}", row.name);
                    let events = event_names(&history);
                    assert_eq!(events, [*result], "{}", row.name);
                }
                None => {
                    assert!(
                        queued.is_empty(),
                        "{}: {upn} is not concerned and must have nothing queued",
                        row.name
                    );
                    assert_eq!(
                        (status, history),
                        (200, json!([])),
                        "{}: {upn} has no history",
                        row.name
                    );
                }
            }
        }
        check_directory_effect(&api, &tenant, row.name, &reply).await;
    }
}

/// The events' effects on the directory, for the rows that change it visibly.
async fn check_directory_effect(api: &Api, tenant: &str, name: &str, reply: &Value) {
    let ada = api.store.user(tenant, ADA).await.unwrap().unwrap();
    match name {
        "T1a move with MoveToTeams" => {
            assert_eq!(ada.home, mms_core::UserHome::Cloud);
            assert_eq!(
                ada.teams_upgrade_mode,
                mms_core::TeamsUpgradeMode::TeamsOnly
            );
        }
        "T2d moved to another bridge" => {
            assert_eq!(ada.audio.bridge.as_deref(), Some("b2"));
            assert_eq!(ada.audio.default_toll_number.as_deref(), Some("+1 333"));
        }
        "T2e number unassigned fans out to the bridge's organizers" => {
            let bridge = api.store.bridge(tenant, "b1").await.unwrap().unwrap();
            let numbers: Vec<&str> = bridge.numbers.iter().map(|n| n.number.as_str()).collect();
            assert_eq!(numbers, ["+1 800", "+1 222"]);
            assert_eq!(ada.audio.default_toll_number.as_deref(), Some("+1 222"));
        }
        "T2-no SIP address changed" => {
            assert_eq!(ada.sip_address.as_deref(), Some("ada.l@contoso.com"));
            let (status, _) = api
                .op(
                    "GET",
                    &format!("/v1/tenants/{tenant}/users/sip:ada.l@contoso.com/history"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "the new SIP address resolves");
        }
        "T2-no organization meeting URL changed" => {
            assert!(
                reply["Note"].as_str().unwrap().starts_with("T2-no"),
                "{reply}"
            );
        }
        "X2 moved from the cloud to on-premises" => {
            assert_eq!(ada.home, mms_core::UserHome::OnPremises)
        }
        "M3 off: a manual start overrides it and is queued" => {
            let history = api.store.history(tenant, ADA).await.unwrap();
            assert!(history[0].message.contains("overrides"), "{:?}", history[0]);
        }
        "X2 manual start of an on-premises user" => {
            assert!(
                reply["Message"]
                    .as_str()
                    .unwrap()
                    .contains("on-premises Meeting Migration tool"),
                "says what to use instead: {reply}"
            );
        }
        "X1 manual start, mailbox on Exchange on-premises" => {
            assert!(
                reply["Message"]
                    .as_str()
                    .unwrap()
                    .contains("Meeting Migration tool"),
                "{reply}"
            );
        }
        _ => {}
    }
}
