//! Everything MMS keeps in Redis, behind typed methods.
//!
//! - [`keys`]: the key layout (hash tags for Redis Cluster).
//! - [`queue`]: migration requests on per-tenant streams with a consumer group, the coalescing /
//!   retry delay set, per-user merge, fair reads across tenants, claims of dead workers' entries.
//! - [`lease`]: the per-mailbox lease with a fencing token.
//! - [`progress`]: status rows, the per-meeting journal and the sent-message ledger; every write is
//!   fenced by the lease token in one Lua script.
//! - [`history`]: the per-user transaction history.
//! - [`directory`]: tenants' switches, users, bridges, API tokens.

pub mod directory;
pub mod error;
pub mod history;
pub mod keys;
pub mod lease;
pub mod progress;
pub mod queue;

pub use error::StoreError;
pub use keys::Keys;
