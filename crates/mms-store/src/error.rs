//! Errors of the Redis store: each says what went wrong and what the caller (or the admin reading
//! the log) should do about it, and carries the error underneath it as its `source()`, so a
//! caller that reports the whole chain shows the cause too.
//!
//! How the control plane answers each (the API's mapping):
//!
//! | variant | HTTP | why |
//! |---|---|---|
//! | [`StoreError::Redis`] | 503, `Retry-After` | Redis unreachable or restarting: the same request works later |
//! | [`StoreError::Contention`] | 503, `Retry-After` | concurrent triggers on one user: retry at once |
//! | [`StoreError::LeaseLost`] | 409 | another worker owns the mailbox now |
//! | [`StoreError::InProgress`] | 409 | a live worker runs that migration: wait for it |
//! | [`StoreError::NotMergeable`] | 409 | an undo and a migration of one user cannot share a request: retry once the queued one started |
//! | [`StoreError::Invalid`] | 400 | the request contradicts itself: the message says what to fix |
//! | [`StoreError::CorruptRecord`], [`StoreError::Corrupt`] | 500 | a stored record does not decode: the message names the key and the repair |
//! | [`StoreError::Encode`] | 500 | a value could not be encoded: a bug, report it |

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
    /// A stored record does not decode; `record` names the key (and field) so it can be
    /// inspected with redis-cli, `fix` says how to repair it, `source` why it does not decode.
    #[error("stored record {record} is corrupt: {fix}")]
    CorruptRecord {
        record: String,
        fix: String,
        #[source]
        source: Malformed,
    },
    /// The job runner's claim on a job expired and another runner took it over: stop without
    /// writing; the new claim holder carries on from the job's cursor.
    #[error("claim on job {job} of tenant {tenant} lost: another runner carries it on")]
    JobClaimLost { tenant: String, job: String },
    /// A value the store was given could not be encoded for Redis.
    #[error("{what} does not encode")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A stored record is corrupt, described by text alone (the cause folded into the message).
    /// Only the queue still reports this form; new code reports [`StoreError::CorruptRecord`],
    /// which keeps the cause as its source. Answered like it.
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
    /// An undo and a migration cannot be merged into one request (issue 9.2), and the user
    /// already has one of them queued and not yet started.
    #[error("{user} already has request {queued} queued ({queued_kind}) and a new {incoming_kind} cannot be merged into it: retry once it has started (mmsctl get-meeting-migration --correlation-id {queued})")]
    NotMergeable {
        user: String,
        queued: String,
        queued_kind: &'static str,
        incoming_kind: &'static str,
    },
}

/// Why a stored record does not decode.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// Not the JSON of the type stored there.
    #[error("not the expected JSON record")]
    Json(#[from] serde_json::Error),
    /// Not the MessagePack of the type stored there.
    #[error("not the expected MessagePack record")]
    MessagePack(#[from] rmp_serde::decode::Error),
    /// Decodes, but holds a value no writer produces (e.g. a counter that is not a number).
    #[error("{0}")]
    Value(String),
}

impl StoreError {
    /// A record at `record` that does not decode, with the repair to suggest.
    pub fn corrupt(
        record: impl Into<String>,
        fix: impl Into<String>,
        source: impl Into<Malformed>,
    ) -> Self {
        StoreError::CorruptRecord {
            record: record.into(),
            fix: fix.into(),
            source: source.into(),
        }
    }

    /// A value that `serde_json` could not encode; `what` names it.
    pub fn encode(what: impl Into<String>, source: serde_json::Error) -> Self {
        StoreError::Encode {
            what: what.into(),
            source,
        }
    }
}
