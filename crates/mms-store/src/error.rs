//! Errors of the Redis store.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The caller's lease expired or was taken over: it must stop without writing.
    #[error("mailbox lease of {user} lost (token {token} is stale)")]
    LeaseLost { user: String, token: u64 },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn corrupt(e: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
