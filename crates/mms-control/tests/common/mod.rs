//! Test harness: a private redis-server, the API router on a free port, and a small JSON client.

#![allow(dead_code)] // each test binary uses a different part of the harness

use mms_control::{router, ApiState};
use mms_core::config::MmsConfig;
use mms_store::Store;
use mms_testkit::redis::RedisServer;
use serde_json::{json, Value};

/// At least 32 characters: shorter operator tokens are refused at start-up.
pub const OPERATOR: &str = "operator-secret-for-the-control-plane-tests";

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub redis: RedisServer,
}

impl Api {
    /// Redis, a store, the router served on a free port with `body_limit` bytes.
    pub async fn start(body_limit: usize) -> Api {
        Self::start_with(body_limit, |state| state).await
    }

    /// [`Api::start`] with a job runner of its own (polling every 50 ms), for tests that post
    /// fan-outs or bulk starts and follow their jobs to the end.
    pub async fn start_running_jobs(body_limit: usize) -> Api {
        Api::start_with(body_limit, |state| {
            let options = mms_control::jobs::JobRunnerOptions {
                poll: std::time::Duration::from_millis(50),
                ..Default::default()
            };
            mms_control::jobs::JobRunner::new(state.clone(), options).spawn();
            state
        })
        .await
    }

    /// [`Api::start`], with `configure` applied to the state before it is served (e.g. to add a
    /// previewer built over the same store).
    pub async fn start_with(
        body_limit: usize,
        configure: impl FnOnce(ApiState) -> ApiState,
    ) -> Api {
        let redis = RedisServer::start(false).await;
        let store = Store::connect(&redis.url(), "test").await.expect("store");
        let mut config = MmsConfig::default();
        config.api.operator_token = Some(OPERATOR.to_string());
        config.api.body_limit_bytes = body_limit;
        config.queue.coalesce_delay_ms = 60_000;
        let state = configure(ApiState::new(store.clone(), config));
        assert_eq!(state.install_operator_token().await.expect("token"), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Api {
            base,
            http: reqwest::Client::new(),
            store,
            redis,
        }
    }

    /// Poll the job at `location` (a reply's `Location`) until it has ended; its last view. No
    /// time limit asserted: the test runner's timeout is the bound.
    pub async fn job_end(&self, location: &str) -> Value {
        loop {
            let (status, job) = self.op("GET", location, None).await;
            assert_eq!(status, 200, "{job}");
            if job["State"] != "Running" {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Send `method path` with a bearer `token` and an optional JSON body; the status and JSON reply.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn op(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(OPERATOR), body).await
    }

    /// Create a tenant with the two switches.
    pub async fn tenant(&self, tenant: &str, migration_enabled: bool, auto_dialin: bool) {
        // The tests' users of tenant `t` live in `t.com`, which the tenant owns.
        let body = json!({"Tenant": tenant, "MeetingMigrationEnabled": migration_enabled,
                          "AutomaticallyMigrateUserMeetings": auto_dialin,
                          "Domains": [format!("{tenant}.com")]});
        let (status, reply) = self.op("POST", "/v1/tenants", Some(body)).await;
        assert_eq!(status, 201, "{reply}");
    }

    /// Mint a tenant-admin token.
    pub async fn admin_token(&self, tenant: &str) -> String {
        let (status, reply) = self
            .op("POST", "/v1/tokens", Some(json!({"Tenant": tenant})))
            .await;
        assert_eq!(status, 201, "{reply}");
        reply["Token"].as_str().unwrap().to_string()
    }
}
