//! The migration cluster's worker: pulls requests from Redis streams and migrates mailboxes.
//!
//! Inside one worker process (D1, D2, D3):
//!
//! ```text
//!  Redis streams ──poll──▶ Dispatcher ──Run──▶ TenantSupervisor (one per tenant, on demand)
//!   (consumer group)          ▲                    │ spawn_linked, ≤ per_tenant at once
//!                             └──── Finished ──────┤
//!                                                  ▼
//!                                        MigrationActor (one per user request)
//!                                          lease → search → rewrite → save → send
//! ```
//!
//! - [`dispatcher`]: the root actor; promotes due delayed requests, claims dead workers' entries,
//!   reads ready requests fairly across tenants within this process's capacity, routes them.
//! - [`supervisor`]: one per tenant; enforces MeetingMigrationEnabled (holds requests), the
//!   concurrency limit and the retry limit; turns outcomes into ack / requeue.
//! - [`migration`]: the per-request actor and [`pipeline`], the stages themselves.
//! - [`undo`]: an undo of a migration, through the same stages from the migration's pre-images.
//! - [`preview`]: the what-if, the stages up to the rewrite (or the undo) with nothing written
//!   or sent.
//! - [`lease_keeper`]: renews the mailbox lease while a migration runs, and says when it is lost.
//! - [`telemetry`]: metric families (names, HELP, buckets) and the helpers that record them;
//!   [`queue_metrics`]: the queue sampled for Prometheus; [`metrics_server`]: the metrics port
//!   (`/metrics`, `/healthz`, `/readyz`) and [`health`], the readiness checks it runs.

pub mod decide;
pub mod dispatcher;
pub mod health;
pub mod lease_keeper;
pub mod metrics_server;
pub mod migration;
pub mod pipeline;
pub mod preview;
pub mod queue_metrics;
pub mod retry;
pub mod supervisor;
pub mod tally;
pub mod telemetry;
pub mod undo;

use std::sync::Arc;

use mms_core::config::MmsConfig;
use mms_core::{Mailbox, MeetingService, Sender};
use mms_store::Store;

/// Everything a migration needs from the outside world; cloned into every actor.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub mailbox: Arc<dyn Mailbox>,
    pub sender: Arc<dyn Sender>,
    pub meetings: Arc<dyn MeetingService>,
    pub config: Arc<MmsConfig>,
    /// This worker's consumer name in the stream group, and the owner recorded on leases.
    pub worker_name: String,
}

pub use dispatcher::{run_worker, WorkerHandle};
