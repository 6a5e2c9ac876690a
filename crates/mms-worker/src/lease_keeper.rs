//! Keeps a mailbox lease alive while a migration runs (D4).
//!
//! A background task renews the lease every `ttl / divisor`. When a renewal says the lease is no
//! longer ours, or Redis has not confirmed it for a whole TTL, the keeper flags it lost; the
//! pipeline checks the flag between steps and stops without writing. The fenced Lua writes are the
//! real guarantee (a stale token is refused atomically); the flag only makes the stop prompt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mms_store::lease::Lease;
use mms_store::Store;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub struct LeaseKeeper {
    lost: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    pub fn start(store: Store, lease: Lease, ttl_ms: u64, divisor: u32) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let every = Duration::from_millis((ttl_ms / u64::from(divisor.max(2))).max(10));
        let ttl = Duration::from_millis(ttl_ms);
        let task = tokio::spawn(async move {
            let mut confirmed = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                match store.renew_lease(&lease, ttl_ms).await {
                    Ok(true) => confirmed = Instant::now(),
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, user = %lease.user, "lease renewal failed; retrying");
                        if confirmed.elapsed() >= ttl {
                            break;
                        }
                    }
                }
            }
            tracing::warn!(user = %lease.user, token = lease.token, "mailbox lease lost");
            flag.store(true, Ordering::SeqCst);
        });
        LeaseKeeper { lost, task }
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LeaseKeeper {
    /// Renewal stops with the migration, also when it unwinds from a panic.
    fn drop(&mut self) {
        self.task.abort();
    }
}
