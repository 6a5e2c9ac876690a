//! Errors of the Redis store: each says what went wrong and what the caller (or the admin reading
//! the log) should do about it.

/// Every failure a [`crate::Store`] method can report. Callers retry [`StoreError::Redis`] and
/// [`StoreError::Contention`]; the others are final for the operation that hit them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused the command or could not be reached (it may be restarting): retry later.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The caller's lease expired or was taken over: it must stop without writing.
    #[error("mailbox lease of {user} lost (token {token} is stale): stop work on this mailbox; the new lease holder carries on")]
    LeaseLost { user: String, token: u64 },
    /// A stored record does not decode; the message names the key so it can be inspected with
    /// redis-cli and repaired or deleted.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The caller passed arguments that contradict each other (e.g. a status of another user than
    /// the lease's); the message says which.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// An unfenced write tried to overwrite a migration that a live worker is running.
    #[error("migration {correlation} of {user} is InProgress under a live lease: only the lease holder may change it; wait for it to finish or for its lease to expire")]
    InProgress { user: String, correlation: String },
    /// Concurrent writers kept changing the same user's queued request; retry the operation.
    #[error("the queued request of {user} kept changing under concurrent triggers: retry")]
    Contention { user: String },
}

impl StoreError {
    pub fn corrupt(e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
