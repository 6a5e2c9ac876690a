//! Everything MMS keeps in Redis, behind typed methods on one cloneable [`Store`] handle.
//!
//! - [`keys`]: the key layout (hash tags for Redis Cluster).
//! - [`queue`]: migration requests on per-tenant streams with a consumer group, the coalescing /
//!   retry delay set, per-user merge, fair reads across tenants, claims of dead workers' entries
//!   (P1, D3, P7).
//! - [`lease`]: the per-mailbox lease with a fencing token (D4).
//! - [`progress`]: status rows; every write is fenced by the lease token in one Lua script (D4, M2).
//! - [`journal`]: the per-meeting journal with its stage counters, the user's pending updates and
//!   the sent-message ledger, a page of meetings per fenced script (D4, D5).
//! - [`summary`]: the tenant summary from counters kept with every status change (M1).
//! - [`retention`]: how long journals, ledgers, history and status rows are kept.
//! - [`history`]: the per-user transaction history.
//! - [`jobs`]: background jobs (tenant-wide fan-outs) with a cursor, exact counters and a claim.
//! - [`directory`]: tenants' switches, users, bridges, API tokens.
//!
//! The Lua scripts are files under `crates/mms-store/lua/`, each called through one typed
//! invoker (see `script.rs`).
//!
//! Every method returns [`StoreError`] on failure and never retries by itself: the caller (the
//! worker's actors, the control plane) decides whether to retry, and the [`Store`]'s connection
//! ([`connection`]: one server or a Redis Cluster) reconnects underneath after a Redis restart or
//! a cluster failover.

pub mod connection;
pub mod directory;
pub mod domains;
pub mod error;
pub mod history;
pub mod jobs;
pub mod journal;
pub mod keys;
pub mod lease;
pub mod progress;
pub mod queue;
pub mod retention;
mod script;
pub mod summary;
pub mod undo;

use std::sync::{Arc, Mutex};

pub use connection::{RedisConnection, RedisTarget};
pub use error::StoreError;
pub use history::HistoryEvent;
pub use jobs::{JobClaim, JobCounter, JobEnd, JobId, JobRecord, JobState};
pub use journal::{
    JournalCursor, JournalEntry, JournalPage, MeetingStage, MeetingWrite, PendingChange,
    PendingUpdate, StageCounts,
};
pub use keys::Keys;
pub use lease::Lease;
pub use progress::StatusFilter;
pub use queue::{Capacity, Delivery, Enqueued, QueueDepth, WakeListener};
pub use summary::TenantSummary;

use connection::RedisClient;

/// One handle on the deployment's Redis (a server or a cluster); cheap to clone (one
/// self-reconnecting [`RedisConnection`] inside, shared by the clones).
#[derive(Clone)]
pub struct Store {
    pub(crate) conn: RedisConnection,
    /// Opens the dedicated connections blocking reads need ([`Store::wake_listener`]).
    pub(crate) client: RedisClient,
    pub(crate) keys: Keys,
    /// The tenant [`Store::read_ready`] served last, where its next round-robin starts; shared by
    /// the clones of one handle (one worker process).
    pub(crate) read_cursor: Arc<Mutex<Option<String>>>,
    /// How long journals, ledgers, history and status rows are kept ([`Store::with_retention`]).
    pub(crate) retention: mms_core::config::RetentionConfig,
}

impl Store {
    /// Connect to `url` (`redis://host:port/db`) and use the keys of `namespace`, so that several
    /// deployments (or tests) can share one Redis without seeing each other.
    pub async fn connect(url: &str, namespace: &str) -> Result<Store, StoreError> {
        Store::open(&RedisTarget::Single(url.to_string()), namespace).await
    }

    /// Connect to a Redis Cluster through some of its nodes (`redis://host:port`).
    pub async fn connect_cluster(nodes: &[String], namespace: &str) -> Result<Store, StoreError> {
        Store::open(&RedisTarget::Cluster(nodes.to_vec()), namespace).await
    }

    /// Connect to the Redis a config names: `redis_cluster_nodes` when set, else `redis_url`.
    pub async fn from_config(config: &mms_core::config::MmsConfig) -> Result<Store, StoreError> {
        Store::open(
            &RedisTarget::from_config(&config.redis_url, &config.redis_cluster_nodes),
            &config.namespace,
        )
        .await
    }

    /// Connect to `target` and use the keys of `namespace`.
    pub async fn open(target: &RedisTarget, namespace: &str) -> Result<Store, StoreError> {
        let client = RedisClient::open(target)?;
        let conn = client.shared().await?;
        Ok(Store {
            conn,
            client,
            keys: Keys::new(namespace),
            read_cursor: Arc::default(),
            retention: Default::default(),
        })
    }

    /// The key layout of this store's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for callers that need raw commands (tests, metrics).
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }
}
