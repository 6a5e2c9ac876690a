//! Liveness and readiness of a worker process, as its metrics port answers them
//! (`/healthz`, `/readyz`, see [`crate::metrics_server`]).
//!
//! - Alive: the process answers at all. Nothing else is looked at: restarting a worker because
//!   Redis is down would not bring Redis back, and would cut into running migrations.
//! - Ready: Redis answers a PING within [`REDIS_TIMEOUT`], and every tenant stream that exists
//!   has the worker consumer group (the worker creates it on its first read of the stream, so a
//!   missing group on an existing stream that does not come back is a sign the worker cannot
//!   read: look at its log). A process that is not ready says which check failed and what to do.

use std::time::Duration;

use mms_store::keys::GROUP;
use mms_store::Store;
use redis::streams::StreamInfoGroupsReply;
use redis::AsyncCommands;
use serde::Serialize;

/// Longest a readiness check waits for Redis: below the probes' timeout (3 s in `deploy/k8s`),
/// so that a hung Redis gives a 503 that says so rather than a probe timeout that says nothing.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// One check of a readiness report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was seen, and when failing, what to fix.
    pub detail: String,
}

/// The answer to `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

impl Readiness {
    pub fn from_checks(checks: Vec<Check>) -> Self {
        Readiness {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

/// Does Redis answer? (Every role needs it.)
pub async fn check_redis(store: &Store) -> Check {
    let mut conn = store.connection();
    let ping = tokio::time::timeout(
        REDIS_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    match ping {
        Ok(Ok(_)) => Check {
            name: "redis",
            ok: true,
            detail: "PING answered".into(),
        },
        Ok(Err(e)) => Check {
            name: "redis",
            ok: false,
            detail: format!("PING failed: {e}; check that Redis runs and redis_url points at it"),
        },
        Err(_) => Check {
            name: "redis",
            ok: false,
            detail: format!(
                "no answer to PING within {REDIS_TIMEOUT:?}; check that Redis runs and redis_url points at it"
            ),
        },
    }
}

/// Has every existing tenant stream the worker consumer group?
pub async fn check_consumer_groups(store: &Store) -> Check {
    let name = "consumer_group";
    let missing = async {
        let mut missing = Vec::new();
        for tenant in store.tenants().await? {
            let stream = store.keys().stream(&tenant);
            let mut conn = store.connection();
            let groups: Result<StreamInfoGroupsReply, redis::RedisError> =
                conn.xinfo_groups(&stream).await;
            match groups {
                Ok(reply) if reply.groups.iter().any(|g| g.name == GROUP) => {}
                Ok(_) => missing.push(tenant),
                // No stream yet: nothing to consume, nothing missing.
                Err(e) if e.kind() == redis::ErrorKind::ResponseError => {}
                Err(e) => return Err(mms_store::StoreError::from(e)),
            }
        }
        Ok(missing)
    };
    match tokio::time::timeout(REDIS_TIMEOUT, missing).await {
        Ok(Ok(missing)) if missing.is_empty() => Check {
            name,
            ok: true,
            detail: format!("group {GROUP:?} present on every tenant stream"),
        },
        Ok(Ok(missing)) => Check {
            name,
            ok: false,
            detail: format!(
                "group {GROUP:?} missing on the streams of {}; the worker creates it on its next read, see its log if this persists",
                missing.join(", ")
            ),
        },
        Ok(Err(e)) => Check {
            name,
            ok: false,
            detail: format!("cannot list the consumer groups: {e}"),
        },
        Err(_) => Check {
            name,
            ok: false,
            detail: format!("no answer from Redis within {REDIS_TIMEOUT:?}"),
        },
    }
}

/// What a process with these roles must pass to be ready. The API's own listener is checked by
/// the API's `/readyz` (answering it proves the listener); here it is Redis, and for a worker
/// its consumer groups.
pub async fn readiness(store: &Store, worker: bool) -> Readiness {
    let redis = check_redis(store).await;
    let mut checks = vec![redis.clone()];
    if worker {
        if redis.ok {
            checks.push(check_consumer_groups(store).await);
        } else {
            checks.push(Check {
                name: "consumer_group",
                ok: false,
                detail: "not checked: Redis does not answer".into(),
            });
        }
    }
    Readiness::from_checks(checks)
}
