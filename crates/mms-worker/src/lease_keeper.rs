//! Keeps a mailbox lease alive while a migration runs (D4), and its stream entry visibly alive.
//!
//! A background task renews the lease every `ttl / divisor` and, on each success, resets the idle
//! time of the stream entry being worked on, so that other workers do not claim a live migration
//! as abandoned (D3). The pipeline asks [`LeaseKeeper::is_lost`] between steps: the lease counts as
//! lost when a renewal said it is no longer ours, or when Redis has not confirmed it for three
//! quarters of its TTL (the remaining quarter is the margin for a step already under way). The
//! fenced Lua writes are the real guarantee (a stale token is refused atomically); this check keeps
//! a worker that may have lost its lease from saving a meeting or sending an update.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mms_store::lease::Lease;
use mms_store::queue::Delivery;
use mms_store::Store;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub struct LeaseKeeper {
    lost: Arc<AtomicBool>,
    /// Milliseconds since `started` at the last confirmation by Redis.
    confirmed_ms: Arc<AtomicU64>,
    started: Instant,
    safe_for: Duration,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    pub fn start(
        store: Store,
        lease: Lease,
        delivery: Delivery,
        consumer: String,
        ttl_ms: u64,
        divisor: u32,
    ) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let confirmed_ms = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let every = Duration::from_millis((ttl_ms / u64::from(divisor.max(2))).max(10));
        let ttl = Duration::from_millis(ttl_ms);
        let (flag, confirmed) = (lost.clone(), confirmed_ms.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let renewed = store.renew_lease(&lease, ttl_ms).await;
                crate::telemetry::lease_renewed(matches!(renewed, Ok(true)));
                match renewed {
                    Ok(true) => {
                        confirmed.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                        if let Err(e) = store.touch(&delivery, &consumer).await {
                            tracing::debug!(error = %e, "could not reset the stream entry's idle time");
                        }
                    }
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, user = %lease.user, "lease renewal failed; retrying");
                        let since = started.elapsed().saturating_sub(Duration::from_millis(
                            confirmed.load(Ordering::SeqCst),
                        ));
                        if since >= ttl {
                            break;
                        }
                    }
                }
            }
            tracing::warn!(user = %lease.user, token = lease.token, "mailbox lease lost");
            flag.store(true, Ordering::SeqCst);
        });
        LeaseKeeper {
            lost,
            confirmed_ms,
            started,
            safe_for: ttl * 3 / 4,
            task,
        }
    }

    pub fn is_lost(&self) -> bool {
        let confirmed = Duration::from_millis(self.confirmed_ms.load(Ordering::SeqCst));
        self.lost.load(Ordering::SeqCst)
            || self.started.elapsed().saturating_sub(confirmed) > self.safe_for
    }
}

impl Drop for LeaseKeeper {
    /// Renewal stops with the migration, also when it unwinds from a panic.
    fn drop(&mut self) {
        self.task.abort();
    }
}
