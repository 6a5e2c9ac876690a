//! The queue as Prometheus sees it: per tenant, how many requests wait (ready, pending,
//! delayed), how old the oldest waiting one is, and how many entries were dead-lettered.
//!
//! Every process samples it, the API too, so that alerts and autoscaling keep their input when
//! every worker is gone (that is when they matter most). Dashboards and alerts therefore take
//! `max by (tenant)` over the processes. Reading costs a handful of commands per tenant and
//! sample, so it runs on its own timer ([`spawn_sampler`]) rather than on every poll.

use std::time::Duration;

use chrono::Utc;
use mms_store::keys::GROUP;
use mms_store::{Store, StoreError};
use redis::streams::{StreamInfoGroupsReply, StreamRangeReply};
use redis::AsyncCommands;
use tokio::task::JoinHandle;

use crate::telemetry::{DEAD_LETTERS, QUEUE_DEPTH, QUEUE_OLDEST_AGE};

/// How often [`spawn_sampler`] reads the queue: a fraction of any sensible scrape interval
/// would be wasted work; alerts look at minutes.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// What one tenant's queue looks like now.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantQueue {
    pub tenant: String,
    pub ready: u64,
    pub pending: u64,
    pub delayed: u64,
    /// Seconds the oldest request on the stream not yet handed to a worker has waited; 0 when
    /// none waits.
    pub oldest_waiting_secs: f64,
    pub dead_letters: u64,
}

/// Read the queues of the tenants with work now (the store's index) once.
pub async fn read(store: &Store) -> Result<Vec<TenantQueue>, StoreError> {
    let active = store.active_tenants().await?;
    read_tenants(store, active).await
}

/// Read the queues of `tenants` once (zeros for a tenant without work).
pub async fn read_tenants(
    store: &Store,
    tenants: impl IntoIterator<Item = String>,
) -> Result<Vec<TenantQueue>, StoreError> {
    let now_ms = Utc::now().timestamp_millis();
    let mut queues = Vec::new();
    for depth in store.queue_depth_of(tenants).await? {
        let stream = store.keys().stream(&depth.tenant);
        let oldest_ms = oldest_undelivered_ms(store, &stream).await?;
        let mut conn = store.connection();
        let dead_letters: u64 = conn.llen(store.keys().dead_letters(&depth.tenant)).await?;
        queues.push(TenantQueue {
            oldest_waiting_secs: oldest_ms.map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0),
            tenant: depth.tenant,
            ready: depth.ready,
            pending: depth.pending,
            delayed: depth.delayed,
            dead_letters,
        });
    }
    Ok(queues)
}

/// Set the gauges from one reading.
pub fn record(queues: &[TenantQueue]) {
    for q in queues {
        let tenant = q.tenant.clone();
        for (kind, value) in [
            ("ready", q.ready),
            ("pending", q.pending),
            ("delayed", q.delayed),
        ] {
            metrics::gauge!(QUEUE_DEPTH, "tenant" => tenant.clone(), "kind" => kind)
                .set(value as f64);
        }
        metrics::gauge!(QUEUE_OLDEST_AGE, "tenant" => tenant.clone()).set(q.oldest_waiting_secs);
        metrics::gauge!(DEAD_LETTERS, "tenant" => tenant).set(q.dead_letters as f64);
    }
}

/// Read and record the queue every `every` until the process stops. A failed reading (Redis
/// down) keeps the last values and is logged once per outage, not every tick.
pub fn spawn_sampler(store: Store, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = std::collections::BTreeSet::new();
        for round in 0u64.. {
            tick.tick().await;
            match sample(&store, round, &mut seen).await {
                Ok(queues) => {
                    if failing {
                        tracing::info!("queue metrics readable again");
                    }
                    failing = false;
                    record(&queues);
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read the queue for its metrics; keeping the last values");
                }
                Err(_) => {}
            }
        }
    })
}

/// Up to this many tenants every sample reads them all (dead letters of a tenant without work
/// included); beyond it, a sample reads the tenants with work and those seen before (so their
/// gauges return to 0), and every [`FULL_SWEEP_EVERY`]-th sample reads them all.
const SAMPLE_ALL_UP_TO: usize = 1_000;
const FULL_SWEEP_EVERY: u64 = 12;

async fn sample(
    store: &Store,
    round: u64,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<Vec<TenantQueue>, StoreError> {
    let all = store.tenants().await?;
    let tenants: Vec<String> =
        if all.len() <= SAMPLE_ALL_UP_TO || round.is_multiple_of(FULL_SWEEP_EVERY) {
            all
        } else {
            let mut tenants: std::collections::BTreeSet<String> =
                store.active_tenants().await?.into_iter().collect();
            tenants.extend(seen.iter().cloned());
            tenants.into_iter().collect()
        };
    let queues = read_tenants(store, tenants).await?;
    *seen = queues
        .iter()
        .filter(|q| q.ready + q.pending + q.delayed + q.dead_letters > 0)
        .map(|q| q.tenant.clone())
        .collect();
    Ok(queues)
}

/// When the oldest entry not yet delivered to the worker group was added (ms since the epoch),
/// from its stream id; `None` when every entry was handed out (or the stream is empty).
async fn oldest_undelivered_ms(store: &Store, stream: &str) -> Result<Option<i64>, StoreError> {
    let mut conn = store.connection();
    let groups: Result<StreamInfoGroupsReply, redis::RedisError> = conn.xinfo_groups(stream).await;
    let start = match groups {
        Ok(reply) => match reply.groups.into_iter().find(|g| g.name == GROUP) {
            // Exclusive range: the first entry after the last one handed out.
            Some(group) => format!("({}", group.last_delivered_id),
            None => "-".to_string(),
        },
        // No stream yet: nothing waits.
        Err(e) if e.kind() == redis::ErrorKind::ResponseError => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let range: StreamRangeReply = conn.xrange_count(stream, &start, "+", 1).await?;
    Ok(range.ids.first().and_then(|entry| stream_id_ms(&entry.id)))
}

/// The milliseconds part of a stream id (`<ms>-<seq>`).
fn stream_id_ms(id: &str) -> Option<i64> {
    id.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_time() {
        assert_eq!(stream_id_ms("1700000000123-4"), Some(1_700_000_000_123));
        assert_eq!(stream_id_ms("garbage"), None);
    }
}
