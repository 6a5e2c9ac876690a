//! Liveness and readiness of the API process, for load balancers and Kubernetes probes.
//!
//! - `/healthz`: the process answers (liveness). It does not look at Redis: restarting the API
//!   because Redis is down would not bring Redis back.
//! - `/readyz`: the API can serve: its listener answers (this very request proves it) and Redis
//!   answers a PING within [`REDIS_TIMEOUT`]. 503 otherwise, with what to fix, so that a load
//!   balancer sends admins to an API that can act on their requests.
//!
//! Neither needs a token: they reveal nothing but whether the process and its Redis are up.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;

/// Longest `/readyz` waits for Redis: below the probes' timeout (3 s in `deploy/k8s`).
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// One readiness check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadinessCheck {
    /// `listener` or `redis`.
    pub name: &'static str,
    pub ok: bool,
    /// What was seen and, when failing, what to fix.
    pub detail: String,
}

/// The answer to `/readyz`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<ReadinessCheck>,
}

/// Liveness: answers `ok` without touching Redis.
#[utoipa::path(get, path = "/healthz", tag = "admin", security(()), responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when the listener and Redis answer, 503 naming what failed.
#[utoipa::path(get, path = "/readyz", tag = "admin", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let listener = ReadinessCheck {
        name: "listener",
        ok: true,
        detail: "answering".into(),
    };
    let mut conn = state.store.connection();
    let ping = tokio::time::timeout(
        REDIS_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    let redis = match ping {
        Ok(Ok(_)) => ReadinessCheck {
            name: "redis",
            ok: true,
            detail: "PING answered".into(),
        },
        Ok(Err(e)) => ReadinessCheck {
            name: "redis",
            ok: false,
            detail: format!("PING failed: {e}; check that Redis runs and redis_url points at it"),
        },
        Err(_) => ReadinessCheck {
            name: "redis",
            ok: false,
            detail: format!(
                "no answer to PING within {REDIS_TIMEOUT:?}; check that Redis runs and redis_url points at it"
            ),
        },
    };
    let ready = redis.ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            checks: vec![listener, redis],
        }),
    )
}
