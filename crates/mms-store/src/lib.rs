//! Everything MMS keeps in Redis, behind typed methods on one cloneable [`Store`] handle.
//!
//! - [`keys`]: the key layout (hash tags for Redis Cluster).
//! - [`queue`]: migration requests on per-tenant streams with a consumer group, the coalescing /
//!   retry delay set, per-user merge, fair reads across tenants, claims of dead workers' entries
//!   (P1, D3, P7).
//! - [`lease`]: the per-mailbox lease with a fencing token (D4).
//! - [`progress`]: status rows, the per-meeting journal and the sent-message ledger; every write is
//!   fenced by the lease token in one Lua script (D4, D5, M2).
//! - [`history`]: the per-user transaction history.
//! - [`directory`]: tenants' switches, users, bridges, API tokens.
//!
//! Every method returns [`StoreError`] on failure and never retries by itself: the caller (the
//! worker's actors, the control plane) decides whether to retry, and the [`Store`]'s
//! `ConnectionManager` reconnects underneath after a Redis restart.

pub mod directory;
pub mod domains;
pub mod error;
pub mod history;
pub mod keys;
pub mod lease;
pub mod progress;
pub mod queue;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use error::StoreError;
pub use history::HistoryEvent;
pub use keys::Keys;
pub use lease::Lease;
pub use progress::{JournalEntry, MeetingStage, StatusFilter};
pub use queue::{Delivery, Enqueued, QueueDepth};

/// How long one Redis command may take before the caller gets an error instead of a hang: long
/// enough for a fsync-always AOF write on a busy disk, short enough that a dead server is noticed
/// while the lease (tens of seconds) is still valid.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnection attempts per failure; with the backoff below this rides out a restart of a few
/// seconds, after which the caller sees an error and retries the operation later.
const RECONNECT_RETRIES: usize = 6;
/// Longest pause between two reconnection attempts (ms).
const RECONNECT_MAX_DELAY_MS: u64 = 2_000;

/// One handle on the deployment's Redis; cheap to clone (ConnectionManager inside: reconnects
/// after a Redis restart).
#[derive(Clone)]
pub struct Store {
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
    /// The tenant [`Store::read_ready`] served last, where its next round-robin starts; shared by
    /// the clones of one handle (one worker process).
    pub(crate) read_cursor: Arc<Mutex<Option<String>>>,
}

impl Store {
    /// Connect to `url` (`redis://host:port/db`) and use the keys of `namespace`, so that several
    /// deployments (or tests) can share one Redis without seeing each other.
    pub async fn connect(url: &str, namespace: &str) -> Result<Store, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_connection_timeout(CONNECTION_TIMEOUT)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY_MS);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Store {
            conn,
            keys: Keys::new(namespace),
            read_cursor: Arc::default(),
        })
    }

    /// The key layout of this store's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for callers that need raw commands (tests, metrics).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}
