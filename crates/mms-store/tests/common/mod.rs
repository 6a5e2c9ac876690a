//! Shared set-up of the store's integration tests: a private redis-server per test (real, from
//! mms-testkit) and requests to queue.

#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::future::Future;
use std::time::Duration;

use mms_core::{MigrationRequest, SourceMeetingType, TargetMeetingType, Trigger};
use mms_store::{Store, StoreError};
use mms_testkit::redis::RedisServer;

/// A fresh server and a store on it.
pub async fn fresh(aof: bool) -> (RedisServer, Store) {
    let server = RedisServer::start(aof).await;
    let store = Store::connect(&server.url(), "test")
        .await
        .expect("connect to the test redis");
    (server, store)
}

pub fn request(
    tenant: &str,
    user: &str,
    source: SourceMeetingType,
    target: TargetMeetingType,
) -> MigrationRequest {
    MigrationRequest::new(tenant, user, source, target, Trigger::Manual)
}

pub fn manual(tenant: &str, user: &str) -> MigrationRequest {
    request(
        tenant,
        user,
        SourceMeetingType::All,
        TargetMeetingType::Teams,
    )
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Run `op` until Redis answers, as the worker does after a restart: the first commands after the
/// connection dropped fail while the ConnectionManager reconnects.
pub async fn with_retries<T, F, Fut>(mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut last = None;
    for _ in 0..100 {
        match op().await {
            Ok(value) => return value,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("redis did not come back: {:?}", last);
}
