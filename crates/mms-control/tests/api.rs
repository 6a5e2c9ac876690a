//! The API's contract beyond the rules: tokens and tenant isolation, error codes, the body limit,
//! bulk import, and the OpenAPI document.

mod common;

use std::collections::BTreeSet;

use common::{Api, OPERATOR};
use mms_control::{ApiState, StartupError};
use mms_core::config::MmsConfig;
use mms_core::MigrationState;
use mms_store::directory::TokenRole;
use serde_json::{json, Value};

async fn tenant_with_user(api: &Api, tenant: &str) {
    api.tenant(tenant, true, true).await;
    let (status, reply) = api
        .op(
            "PUT",
            &format!("/v1/tenants/{tenant}/users/ada@{tenant}.com"),
            Some(json!({"SipAddress": "ada@x.com", "AudioEnabled": "false"})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn a_tenant_admin_sees_and_triggers_only_its_own_tenant() {
    let api = Api::start(1 << 20).await;
    tenant_with_user(&api, "alpha").await;
    tenant_with_user(&api, "beta").await;
    let alpha = api.admin_token("alpha").await;

    let start = |t: &str| {
        (
            format!("/v1/tenants/{t}/migrations"),
            json!({"Identity": format!("ada@{t}.com")}),
        )
    };
    let (path, body) = start("alpha");
    assert_eq!(
        api.call("POST", &path, Some(&alpha), Some(body)).await.0,
        202
    );
    let (path, body) = start("beta");
    let (status, reply) = api.call("POST", &path, Some(&alpha), Some(body)).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (403, Some("forbidden")),
        "{reply}"
    );
    for read in [
        "/v1/tenants/beta/migrations",
        "/v1/tenants/beta/users",
        "/v1/tenants/beta/configuration/migration",
    ] {
        assert_eq!(
            api.call("GET", read, Some(&alpha), None).await.0,
            403,
            "{read}"
        );
    }
    // A tenant that does not exist answers 403 too: a tenant admin cannot probe for tenants.
    assert_eq!(
        api.call("GET", "/v1/tenants/gamma/users", Some(&alpha), None)
            .await
            .0,
        403
    );
    assert_eq!(
        api.call(
            "POST",
            "/v1/tokens",
            Some(&alpha),
            Some(json!({"Tenant": "beta"}))
        )
        .await
        .0,
        403
    );
    let (_, visible) = api.call("GET", "/v1/tenants", Some(&alpha), None).await;
    assert_eq!(visible, json!(["alpha"]));
    assert!(api
        .store
        .user_statuses("beta", "ada@beta.com")
        .await
        .unwrap()
        .is_empty());

    let (status, reply) = api.call("GET", "/v1/tenants/alpha/users", None, None).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        api.call("GET", "/v1/tenants/alpha/users", Some("mms_guessed"), None)
            .await
            .0,
        401
    );
}

/// Issue 7.5, the exact sequence: with tenant A's token, PUT a user record with tenant B's UPN
/// into A's directory, then preview and start a migration of it. Both are refused (403
/// `domain_not_owned`), nothing is queued, and A cannot give itself B's domain: only the operator
/// assigns domains, and a domain has one owner. (The worker refuses the same again:
/// `tests/attendee_updates.rs`.)
#[tokio::test]
async fn another_tenants_upn_in_my_directory_reaches_no_mailbox() {
    let api = Api::start(1 << 20).await;
    tenant_with_user(&api, "alpha").await;
    tenant_with_user(&api, "beta").await;
    let alpha = api.admin_token("alpha").await;
    let (status, reply) = api
        .call(
            "PUT",
            "/v1/tenants/alpha/users/ada@beta.com",
            Some(&alpha),
            Some(json!({"SipAddress": "ada.b@x.com", "AudioEnabled": "false"})),
        )
        .await;
    assert_eq!(status, 200, "a directory record is only a record: {reply}");
    for path in [
        "/v1/tenants/alpha/migrations:preview",
        "/v1/tenants/alpha/migrations",
    ] {
        let (status, reply) = api
            .call(
                "POST",
                path,
                Some(&alpha),
                Some(json!({"Identity": "ada@beta.com"})),
            )
            .await;
        assert_eq!(
            (status, reply["Code"].as_str()),
            (403, Some("domain_not_owned")),
            "{path}: {reply}"
        );
        assert!(
            reply["Message"].as_str().unwrap().contains("alpha.com"),
            "names the tenant's own domains: {reply}"
        );
    }
    assert!(
        api.store
            .user_statuses("alpha", "ada@beta.com")
            .await
            .unwrap()
            .is_empty(),
        "nothing queued"
    );
    // A tenant admin cannot assign domains; the operator cannot give one domain to two tenants.
    let (status, _) = api
        .call(
            "PUT",
            "/v1/tenants/alpha/domains",
            Some(&alpha),
            Some(json!({"Domains": ["beta.com"]})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, reply) = api
        .op(
            "PUT",
            "/v1/tenants/alpha/domains",
            Some(json!({"Domains": ["beta.com"]})),
        )
        .await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (409, Some("domain_taken")),
        "{reply}"
    );
    let (status, reply) = api
        .call("GET", "/v1/tenants/alpha/domains", Some(&alpha), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply["Domains"], json!(["alpha.com"]));
    let (status, reply) = api
        .op(
            "POST",
            "/v1/tenants",
            Some(json!({"Tenant": "gamma", "Domains": ["beta.com"]})),
        )
        .await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (409, Some("domain_taken")),
        "{reply}"
    );
}

#[tokio::test]
async fn tokens_are_stored_hashed_never_in_clear() {
    let api = Api::start(1 << 20).await;
    api.tenant("alpha", true, true).await;
    let token = api.admin_token("alpha").await;
    let mut conn = api
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut seen = 0;
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&dump);
        assert!(
            !text.contains(&token) && !text.contains(OPERATOR),
            "{key} holds a token in clear"
        );
        seen += 1;
    }
    assert!(
        seen >= 3,
        "the scan saw the tokens hash and the tenant keys"
    );
    let stored: Vec<String> = redis::cmd("HKEYS")
        .arg("{test}:tokens")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(stored.contains(&mms_store::directory::token_hash(&token)));
}

/// Tokens are listed by id (never in clear) and revoked by id; the operator token of the
/// configuration is the only operator token after a start; a short one is refused.
#[tokio::test]
async fn tokens_are_listed_and_revoked_by_id_and_the_operator_token_rotates_on_restart() {
    let api = Api::start(1 << 20).await;
    api.tenant("alpha", true, true).await;
    let (status, minted) = api
        .op("POST", "/v1/tokens", Some(json!({"Tenant": "alpha"})))
        .await;
    assert_eq!(status, 201, "{minted}");
    let (token, id) = (
        minted["Token"].as_str().unwrap(),
        minted["Id"].as_str().unwrap(),
    );
    assert_eq!(id.len(), 12);
    assert!(!token.contains(id), "the id is not part of the token");
    let (status, listed) = api.op("GET", "/v1/tokens", None).await;
    assert_eq!(status, 200, "{listed}");
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "the operator and alpha's admin: {listed}");
    assert!(rows.contains(&json!({"Id": id, "Role": "TenantAdmin", "Tenant": "alpha"})));
    assert!(rows.iter().any(|r| r["Role"] == "Operator"));
    assert!(!listed.to_string().contains(token));
    assert_eq!(
        api.call("GET", "/v1/tokens", Some(token), None).await.0,
        403
    );
    let path = format!("/v1/tokens/{id}");
    assert_eq!(api.call("DELETE", &path, Some(token), None).await.0, 403);

    let (status, revoked) = api.op("DELETE", &path, None).await;
    assert_eq!(
        (status, &revoked["Tenant"]),
        (200, &json!("alpha")),
        "{revoked}"
    );
    let (status, _) = api
        .call("GET", "/v1/tenants/alpha/users", Some(token), None)
        .await;
    assert_eq!(status, 401, "a revoked token stops working");
    let (status, reply) = api.op("DELETE", &path, None).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (404, Some("token_not_found"))
    );
    let (status, reply) = api.op("DELETE", "/v1/tokens/not-an-id", None).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (400, Some("malformed_token_id"))
    );

    // An operator token from an earlier configuration is removed when the API starts again.
    let old_operator = "an-operator-token-from-last-years-configuration";
    api.store
        .put_token(old_operator, &TokenRole::Operator)
        .await
        .unwrap();
    assert_eq!(
        api.call("GET", "/v1/tokens", Some(old_operator), None)
            .await
            .0,
        200
    );
    let mut config = MmsConfig::default();
    config.api.operator_token = Some(OPERATOR.to_string());
    let restarted = ApiState::new(api.store.clone(), config.clone());
    assert_eq!(restarted.install_operator_token().await.unwrap(), None);
    assert_eq!(
        api.call("GET", "/v1/tokens", Some(old_operator), None)
            .await
            .0,
        401
    );
    assert_eq!(api.op("GET", "/v1/tokens", None).await.0, 200);

    config.api.operator_token = Some("short-operator-token".into());
    let refused = ApiState::new(api.store.clone(), config)
        .install_operator_token()
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StartupError::OperatorTokenTooShort { len: 20 }),
        "{refused}"
    );
    assert!(refused.to_string().contains("at least 32"), "{refused}");
    assert_eq!(
        api.op("GET", "/v1/tokens", None).await.0,
        200,
        "nothing changed"
    );
}

/// RFC 7235: the auth scheme is case-insensitive.
#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let api = Api::start(1 << 20).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let status = api
            .http
            .get(format!("{}/v1/tenants", api.base))
            .header("authorization", format!("{scheme} {OPERATOR}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn bad_input_is_named_with_a_stable_code() {
    let api = Api::start(1 << 20).await;
    tenant_with_user(&api, "alpha").await;
    let start = |body: Value| api.op("POST", "/v1/tenants/alpha/migrations", Some(body));
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (400, "unknown_meeting_type", start(json!({"Identity": "ada@alpha.com", "SourceMeetingType": "Zoom"})).await),
        (400, "unknown_meeting_type", start(json!({"Identity": "ada@alpha.com", "TargetMeetingType": "SfB"})).await),
        (400, "malformed_identity", start(json!({"Identity": "ada"})).await),
        (404, "user_not_found", start(json!({"Identity": "nobody@alpha.com"})).await),
        (404, "tenant_not_found", api.op("POST", "/v1/tenants/nowhere/migrations", Some(json!({"Identity": "ada@alpha.com"}))).await),
        (400, "invalid_body", start(json!({"Identity": 7})).await),
        (400, "unknown_state", api.op("GET", "/v1/tenants/alpha/migrations?state=Done", None).await),
        (400, "malformed_time", api.op("GET", "/v1/tenants/alpha/migrations?startTime=yesterday", None).await),
        // Issue 11.8: a misspelled filter is refused, not ignored (which would list every row).
        (400, "unknown_parameter", api.op("GET", "/v1/tenants/alpha/migrations?Identity=ada@alpha.com", None).await),
        (400, "unknown_parameter", api.op("GET", "/v1/tenants/alpha/migrations/summary?limit=5", None).await),
        (400, "unknown_parameter", api.op("GET", "/v1/tenants/alpha/users?homee=Cloud", None).await),
        (400, "invalid_query", api.op("GET", "/v1/tenants/alpha/users?home=Moon", None).await),
        (404, "bridge_not_found", api.op("POST", "/v1/tenants/alpha/events",
            Some(json!({"Type": "UserBridgeChanged", "Identity": "ada@alpha.com", "Bridge": "nope"}))).await),
        (404, "migration_not_found", api.op("GET", "/v1/tenants/alpha/migrations/no-such-id", None).await),
        (404, "user_not_found", api.op("GET", "/v1/tenants/alpha/users/bob@alpha.com", None).await),
        (404, "user_not_found", api.op("GET", "/v1/tenants/alpha/users/bob@alpha.com/history", None).await),
        (404, "user_not_found", api.op("GET", "/v1/tenants/alpha/users/sip:bob@alpha.com/history", None).await),
        (404, "bridge_not_found", api.op("GET", "/v1/tenants/alpha/bridges/b1", None).await),
        (409, "tenant_exists", api.op("POST", "/v1/tenants", Some(json!({"Tenant": "alpha"}))).await),
        (400, "malformed_tenant", api.op("POST", "/v1/tenants", Some(json!({"Tenant": "a{b}"}))).await),
    ];
    for (status, code, (got_status, reply)) in cases {
        assert_eq!(
            (got_status, reply["Code"].as_str().unwrap_or("")),
            (status, code),
            "{reply}"
        );
        assert!(
            reply["Message"].as_str().is_some_and(|m| m.len() > 20),
            "a message that explains: {reply}"
        );
    }
    let (_, reply) = start(json!({"Identity": "ada@alpha.com", "SourceMeetingType": "Zoom"})).await;
    assert!(
        reply["Message"].as_str().unwrap().contains("All SfB Teams"),
        "names the accepted values: {reply}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let api = Api::start(4_096).await;
    api.tenant("alpha", true, true).await;
    let big = "Upn\n".to_string() + &"someone@alpha.com\n".repeat(1_000);
    let response = api
        .http
        .post(format!("{}/v1/tenants/alpha/users:import", api.base))
        .bearer_auth(OPERATOR)
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["Code"], "payload_too_large");
    assert_eq!(api.store.user_count("alpha").await.unwrap(), 0);
}

#[tokio::test]
async fn ten_thousand_users_import_in_one_call_and_bad_rows_reject_the_whole_file() {
    let api = Api::start(16 << 20).await;
    api.tenant("big", true, true).await;
    let mut csv =
        String::from("Upn,SipAddress,Home,Mailbox,TeamsUpgradeMode,AudioEnabled,ConferenceId\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "user{i}@big.com,sip:user{i}@big.com,Cloud,Cloud,Islands,true,{}\n",
            1_000_000 + i
        ));
    }
    let import = |body: String, content_type: &'static str| {
        api.http
            .post(format!("{}/v1/tenants/big/users:import", api.base))
            .bearer_auth(OPERATOR)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let reply: Value = import(csv, "text/csv").await.unwrap().json().await.unwrap();
    assert_eq!(reply["Imported"], 10_000, "{reply}");
    assert_eq!(api.store.user_count("big").await.unwrap(), 10_000);
    let (status, _) = api
        .op(
            "POST",
            "/v1/tenants/big/migrations",
            Some(json!({"Identity": "sip:user9999@big.com"})),
        )
        .await;
    assert_eq!(status, 202, "an imported user resolves by SIP address");

    let bad = json!([{"Upn": "new@big.com", "AudioEnabled": "false"}, {"Upn": "broken"},
               {"Upn": "x@big.com", "Mailbox": "Moon", "AudioEnabled": "false"}])
    .to_string();
    let response = import(bad, "application/json").await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["Code"], "invalid_import");
    let rows: Vec<(u64, &str)> = reply["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["Row"].as_u64().unwrap(), e["Field"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [(2, "Upn"), (3, "Mailbox")]);
    assert!(
        api.store
            .user("big", "new@big.com")
            .await
            .unwrap()
            .is_none(),
        "all or nothing"
    );
    let response = import("[]".into(), "text/plain").await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
}

/// Every route of the JSON API, as (method, OpenAPI path). The web console's routes
/// (`/console`, `/console/assets/{file}`) are served too but deliberately left out of the document:
/// they serve a page, not JSON (see
/// `the_console_is_served_from_the_binary_with_a_strict_policy_outside_the_json_api`).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("get", "/v1/tenants/{tenant}/domains"),
    ("get", "/v1/tenants/{tenant}/jobs"),
    ("get", "/v1/tenants/{tenant}/jobs/{id}"),
    ("put", "/v1/tenants/{tenant}/domains"),
    ("delete", "/v1/tenants/{tenant}/domains/{domain}"),
    ("post", "/v1/tokens"),
    ("get", "/v1/tokens"),
    ("delete", "/v1/tokens/{id}"),
    ("get", "/v1/tenants/{tenant}/configuration/migration"),
    ("put", "/v1/tenants/{tenant}/configuration/migration"),
    ("get", "/v1/tenants/{tenant}/configuration/dialin"),
    ("put", "/v1/tenants/{tenant}/configuration/dialin"),
    ("get", "/v1/tenants/{tenant}/users"),
    ("post", "/v1/tenants/{tenant}/users:import"),
    ("get", "/v1/tenants/{tenant}/users/{upn}"),
    ("put", "/v1/tenants/{tenant}/users/{upn}"),
    ("delete", "/v1/tenants/{tenant}/users/{upn}"),
    ("get", "/v1/tenants/{tenant}/users/{identity}/history"),
    ("get", "/v1/tenants/{tenant}/bridges"),
    ("get", "/v1/tenants/{tenant}/bridges/{id}"),
    ("put", "/v1/tenants/{tenant}/bridges/{id}"),
    ("post", "/v1/tenants/{tenant}/events"),
    ("post", "/v1/tenants/{tenant}/migrations"),
    ("post", "/v1/tenants/{tenant}/migrations:preview"),
    ("post", "/v1/tenants/{tenant}/migrations:bulk"),
    ("get", "/v1/tenants/{tenant}/migrations"),
    ("get", "/v1/tenants/{tenant}/migrations/summary"),
    ("get", "/v1/tenants/{tenant}/migrations/{correlation_id}"),
    (
        "post",
        "/v1/tenants/{tenant}/migrations/{correlation_id}:undo",
    ),
];

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Validate `doc` with an independent implementation of OpenAPI 3.1, the `oas3` crate: it must
/// deserialize into oas3's model (wrong shapes and unknown enum values are errors), declare a
/// supported version, list exactly [`ROUTES`], and every parameter, request body, response and
/// schema reference of every operation must resolve within the document.
fn validate_with_oas3(doc: &Value) {
    let spec = oas3::from_json(doc.to_string()).expect("oas3 parses the document");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));
    let mut listed = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let name = format!("{method} {path}");
        listed.insert((method.as_str().to_ascii_lowercase(), path.clone()));
        assert_eq!(
            operation.parameters(&spec).expect(&name).len(),
            operation.parameters.len(),
            "{name}: every parameter resolves"
        );
        let mut media = Vec::new();
        if let Some(body) = operation.request_body(&spec).expect(&name) {
            media.extend(body.content.into_iter().map(|(_, m)| m));
        }
        let declared = operation.responses.as_ref().map_or(0, |r| r.len());
        let responses = operation.responses(&spec);
        assert!(declared > 0, "{name} declares responses");
        assert_eq!(responses.len(), declared, "{name}: every response resolves");
        media.extend(
            responses
                .into_iter()
                .flat_map(|(_, r)| r.content.into_iter().map(|(_, m)| m)),
        );
        for content in media {
            content
                .schema(&spec)
                .unwrap_or_else(|e| panic!("{name}: a schema does not resolve: {e}"));
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected, "oas3 sees exactly the routes served");
    let components = spec.components.as_ref().expect("components");
    for (name, schema) in &components.schemas {
        schema
            .resolve(&spec)
            .unwrap_or_else(|e| panic!("schema {name} does not resolve: {e}"));
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_lists_every_route() {
    let api = Api::start(1 << 20).await;
    let (status, doc) = api.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // It parses as an OpenAPI document (utoipa's model of the specification).
    let parsed: utoipa::openapi::OpenApi =
        serde_json::from_value(doc.clone()).expect("an OpenAPI 3.1 document");
    assert_eq!(
        parsed.paths.paths.len(),
        doc["paths"].as_object().unwrap().len()
    );
    validate_with_oas3(&doc);

    let mut listed = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            listed.insert((method.clone(), path.clone()));
            assert!(
                operation_ids.insert(operation["operationId"].as_str().unwrap().to_string()),
                "unique operationId"
            );
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('/')
                // A parameter may carry a literal suffix (`{correlation_id}:undo`).
                .filter_map(|seg| {
                    seg.strip_prefix('{')
                        .and_then(|s| s.split_once('}'))
                        .map(|(name, _)| name)
                })
                .collect();
            assert_eq!(
                declared, in_path,
                "{method} {path} declares its path parameters"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} has responses"
            );
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected);

    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in all_refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "$ref {r} resolves"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Issue 10.3: the history's event kinds are one documented vocabulary.
    let kinds: Vec<&str> = doc["components"]["schemas"]["HistoryEventKind"]["enum"]
        .as_array()
        .expect("HistoryEventKind is documented as an enum")
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let every: Vec<&str> = mms_core::HistoryEventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(kinds, every);

    // Each listed route is served (a path the router lacks answers 404 with no JSON code).
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{tenant}", "alpha")
            .replace("{upn}", "a@b.com")
            .replace("{identity}", "a@b.com")
            .replace("{id}", "b1")
            .replace("{correlation_id}", "c1");
        let (status, _) = api
            .call(&method.to_uppercase(), &concrete, None, None)
            .await;
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            status != 404 || concrete.starts_with("/healthz"),
            "{method} {path} is routed ({status})"
        );
    }
}

/// Issue 10.3: each store failure is its own API error. A corrupt record is the server's fault
/// and names the key (500), where every store error used to be "retry when Redis is reachable";
/// Redis itself gone is that 503.
#[tokio::test]
async fn store_failures_map_to_their_own_status_and_code() {
    let mut api = Api::start(1 << 20).await;
    tenant_with_user(&api, "alpha").await;
    let key = api.store.keys().status("alpha", "c-corrupt");
    let mut conn = api
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("SET")
        .arg(&key)
        .arg("{not json")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let (status, reply) = api
        .op("GET", "/v1/tenants/alpha/migrations/c-corrupt", None)
        .await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (500, Some("store_corrupt")),
        "{reply}"
    );
    assert!(
        reply["Message"].as_str().unwrap().contains(&key),
        "names the key to repair: {reply}"
    );

    api.redis.kill();
    let (status, reply) = api.op("GET", "/v1/tenants/alpha/users", None).await;
    assert_eq!(
        (status, reply["Code"].as_str()),
        (503, Some("store_unavailable")),
        "{reply}"
    );
}

/// The web console (issue 9, item 1): the page and its assets come from the binary with their
/// types and a Content-Security-Policy that allows nothing from elsewhere and nothing inline; no
/// token is needed for them (they hold no data) and they are not in the OpenAPI document.
#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy_outside_the_json_api() {
    let api = Api::start(1 << 20).await;
    let get = |path: &str| api.http.get(format!("{}{path}", api.base)).send();
    for (path, content_type, marker) in [
        (
            "/console",
            "text/html; charset=utf-8",
            "<title>MMS console</title>",
        ),
        (
            "/console/assets/console.js",
            "text/javascript; charset=utf-8",
            "sessionStorage",
        ),
        (
            "/console/assets/console.css",
            "text/css; charset=utf-8",
            "@media (max-width: 600px)",
        ),
    ] {
        let response = get(path).await.expect("request");
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(
            headers["content-security-policy"],
            mms_control::console::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains(marker), "{path}: {body}");
    }
    let policy = mms_control::console::CONTENT_SECURITY_POLICY;
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));

    let response = get("/console/assets/../../Cargo.toml")
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let response = get("/console/assets/app.js").await.expect("request");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Code"], "console_asset_not_found", "{body}");
    assert!(
        body["Message"].as_str().unwrap().contains("console.js"),
        "{body}"
    );

    let (_, doc) = api.call("GET", "/openapi.json", None, None).await;
    assert!(
        doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|path| !path.starts_with("/console")),
        "the console is not part of the JSON API"
    );
}

/// Issue 9.2: `POST .../migrations/{correlation_id}:undo` refuses what cannot be undone with a
/// code naming why: no such migration (also another tenant's), not final yet, nothing saved.
#[tokio::test]
async fn an_undo_names_what_is_missing_or_not_ready() {
    let api = Api::start(1 << 20).await;
    tenant_with_user(&api, "alpha").await;
    tenant_with_user(&api, "beta").await;
    let api = &api;
    let undo = |tenant: &str, correlation: &str| {
        let path = format!("/v1/tenants/{tenant}/migrations/{correlation}:undo");
        async move { api.op("POST", &path, None).await }
    };
    let (status, started) = api
        .op(
            "POST",
            "/v1/tenants/alpha/migrations",
            Some(json!({"Identity": "ada@alpha.com"})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let correlation = started["CorrelationId"].as_str().unwrap().to_string();
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (
            404,
            "migration_not_found",
            undo("alpha", "no-such-id").await,
        ),
        (404, "migration_not_found", undo("beta", &correlation).await),
        (
            409,
            "migration_not_final",
            undo("alpha", &correlation).await,
        ),
        (
            404,
            "operation_not_found",
            api.op(
                "POST",
                &format!("/v1/tenants/alpha/migrations/{correlation}:redo"),
                None,
            )
            .await,
        ),
        (
            400,
            "unknown_parameter",
            api.op(
                "POST",
                &format!("/v1/tenants/alpha/migrations/{correlation}:undo?whatif=true"),
                None,
            )
            .await,
        ),
    ];
    for (status, code, (got_status, reply)) in cases {
        assert_eq!(
            (got_status, reply["Code"].as_str().unwrap_or("")),
            (status, code),
            "{reply}"
        );
    }
    // Final, but it saved nothing (no worker ran here): nothing to undo.
    let mut row = api
        .store
        .status("alpha", &correlation)
        .await
        .unwrap()
        .unwrap();
    row.state = MigrationState::Succeeded;
    api.store.put_status_unfenced(&row).await.unwrap();
    let (status, reply) = undo("alpha", &correlation).await;
    assert_eq!(
        (status, reply["Code"].as_str().unwrap()),
        (409, "nothing_to_undo"),
        "{reply}"
    );
}
