//! The queue's Lua scripts (`crates/mms-store/lua/queue/*.lua`), each behind one typed invoker.
//!
//! A script's KEYS and ARGV are positional; here each script is a struct whose fields name its
//! arguments, and whose `invoke` derives the KEYS from [`Keys`] itself. A caller therefore cannot
//! pass a key of another tenant or swap two keys: every key of one call carries the same tenant
//! hash tag, which is also what Redis Cluster needs (one script, one slot).
//!
//! The scripts are run through [`redis::Script`] (EVALSHA, re-sent on NOSCRIPT after a restart or
//! a failover to a replica that never saw them).

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::Script;

use crate::history::HISTORY_APPEND_LUA;
use crate::keys::{Keys, GROUP};
use crate::progress::STATUS_PUT_LUA;
use crate::StoreError;

/// A script assembled from shared fragments and its own file.
fn assembled(fragments: &[&str], body: &str) -> Script {
    let mut source = fragments.concat();
    source.push_str(body);
    Script::new(&source)
}

static CREATE: LazyLock<Script> = LazyLock::new(|| {
    assembled(
        &[STATUS_PUT_LUA, HISTORY_APPEND_LUA.as_str()],
        include_str!("../../lua/queue/create.lua"),
    )
});
static MERGE: LazyLock<Script> = LazyLock::new(|| {
    assembled(
        &[HISTORY_APPEND_LUA.as_str()],
        include_str!("../../lua/queue/merge.lua"),
    )
});
static MARK_STARTED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/queue/mark_started.lua")));
static ACK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/queue/ack.lua")));
static REQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/queue/requeue.lua")));
static PROMOTE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/queue/promote.lua")));
static RELEASE_HELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/queue/release_held.lua")));
static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/queue/dead_letter.lua")));

/// `create.lua`: a new queued request with its Pending status row and its `Queued` event.
pub(super) struct Create<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub correlation: &'a str,
    /// The request, rmp-serde.
    pub request: &'a [u8],
    pub status_json: &'a str,
    pub create_ms: i64,
    /// 0: straight onto the stream; otherwise into the delayed set, due at `due_ms`.
    pub delay_ms: u64,
    pub due_ms: i64,
    pub history_json: &'a str,
}

impl Create<'_> {
    /// False when the user already has a live queued request (merge into it instead).
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<bool, StoreError> {
        let created: i64 = CREATE
            .key(keys.queued(self.tenant, self.user))
            .key(keys.requests(self.tenant))
            .key(keys.status(self.tenant, self.correlation))
            .key(keys.statuses(self.tenant))
            .key(keys.user_migrations(self.tenant, self.user))
            .key(keys.stream(self.tenant))
            .key(keys.delayed(self.tenant))
            .key(keys.history(self.tenant, self.user))
            .arg(self.correlation)
            .arg(self.request)
            .arg(self.status_json)
            .arg(self.create_ms)
            .arg(self.delay_ms)
            .arg(self.due_ms)
            .arg(self.history_json)
            .invoke_async(conn)
            .await?;
        Ok(created == 1)
    }
}

/// `merge.lua`: compare-and-set of a queued request (and its status row, when it has one).
pub(super) struct Merge<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub correlation: &'a str,
    /// The stored request as read (rmp-serde); the merge fails if it changed since.
    pub old_request: &'a [u8],
    pub merged_request: &'a [u8],
    /// The status row as read ("" = none); the merge fails if it changed since.
    pub old_status: &'a str,
    /// The row to write ("" = none).
    pub new_status: &'a str,
    pub history_json: &'a str,
}

impl Merge<'_> {
    /// False when the request or its row changed meanwhile (the caller looks again).
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<bool, StoreError> {
        let done: i64 = MERGE
            .key(keys.queued(self.tenant, self.user))
            .key(keys.requests(self.tenant))
            .key(keys.status(self.tenant, self.correlation))
            .key(keys.history(self.tenant, self.user))
            .arg(self.correlation)
            .arg(self.old_request)
            .arg(self.merged_request)
            .arg(self.old_status)
            .arg(self.new_status)
            .arg(self.history_json)
            .invoke_async(conn)
            .await?;
        Ok(done == 1)
    }
}

/// `mark_started.lua`: close the merge window.
pub(super) struct MarkStarted<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub correlation: &'a str,
}

impl MarkStarted<'_> {
    /// The stored request as it stands now (rmp-serde), `None` when it is gone.
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(MARK_STARTED
            .key(keys.queued(self.tenant, self.user))
            .key(keys.requests(self.tenant))
            .arg(self.correlation)
            .invoke_async(conn)
            .await?)
    }
}

/// `ack.lua`: a final state was reached.
pub(super) struct Ack<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub stream_id: &'a str,
    pub correlation: &'a str,
}

impl Ack<'_> {
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<(), StoreError> {
        ACK.key(keys.stream(self.tenant))
            .key(keys.queued(self.tenant, self.user))
            .key(keys.requests(self.tenant))
            .arg(GROUP)
            .arg(self.stream_id)
            .arg(self.correlation)
            .invoke_async::<i64>(conn)
            .await?;
        Ok(())
    }
}

/// `requeue.lua`: ack a delivery and park its request in the delayed set.
/// `release_held.lua`: the users' held requests due at `due_ms` at the latest.
pub(super) struct ReleaseHeld<'a> {
    pub tenant: &'a str,
    pub users: &'a [&'a str],
    pub due_ms: i64,
}

impl ReleaseHeld<'_> {
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<usize, StoreError> {
        let mut call = RELEASE_HELD.key(keys.delayed(self.tenant));
        for user in self.users {
            call.key(keys.queued(self.tenant, user));
        }
        Ok(call.arg(self.due_ms).invoke_async::<usize>(conn).await?)
    }
}

pub(super) struct Requeue<'a> {
    pub tenant: &'a str,
    pub stream_id: &'a str,
    pub correlation: &'a str,
    /// The delivery's request (rmp-serde), stored only when the stored copy is gone.
    pub request: &'a [u8],
    pub due_ms: i64,
}

impl Requeue<'_> {
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<(), StoreError> {
        REQUEUE
            .key(keys.stream(self.tenant))
            .key(keys.requests(self.tenant))
            .key(keys.delayed(self.tenant))
            .arg(GROUP)
            .arg(self.stream_id)
            .arg(self.correlation)
            .arg(self.request)
            .arg(self.due_ms)
            .invoke_async::<i64>(conn)
            .await?;
        Ok(())
    }
}

/// `promote.lua`: move due delayed requests of one tenant onto its stream.
pub(super) struct Promote<'a> {
    pub tenant: &'a str,
    pub now_ms: i64,
    /// At most this many due entries per call: bounds how long one call blocks Redis.
    pub batch: usize,
}

/// What [`Promote::invoke`] did, and what work the tenant has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Promoted {
    /// Due entries looked at (== batch: call again).
    pub due_seen: usize,
    /// Entries moved onto the stream.
    pub moved: usize,
    /// Entries on the stream, ready or pending (acked entries are deleted).
    pub stream_len: u64,
    /// Entries left in the delayed set.
    pub delayed_left: u64,
    /// Due time of the earliest delayed entry left.
    pub next_due_ms: Option<i64>,
}

impl Promoted {
    /// Nothing ready, pending or delayed: the tenant can leave the index of tenants with work.
    pub fn is_idle(&self) -> bool {
        self.stream_len == 0 && self.delayed_left == 0
    }
}

impl Promote<'_> {
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<Promoted, StoreError> {
        let (due_seen, moved, stream_len, delayed_left, next_due): (usize, usize, u64, u64, i64) =
            PROMOTE
                .key(keys.delayed(self.tenant))
                .key(keys.requests(self.tenant))
                .key(keys.stream(self.tenant))
                .arg(self.now_ms)
                .arg(self.batch)
                .invoke_async(conn)
                .await?;
        Ok(Promoted {
            due_seen,
            moved,
            stream_len,
            delayed_left,
            next_due_ms: (next_due >= 0).then_some(next_due),
        })
    }
}

/// `dead_letter.lua`: move an undecodable entry to the tenant's dead-letter list.
pub(super) struct DeadLetterMove<'a> {
    pub tenant: &'a str,
    pub stream_id: &'a str,
    pub record_json: &'a str,
    /// Records kept.
    pub cap: isize,
}

impl DeadLetterMove<'_> {
    pub async fn invoke(
        &self,
        keys: &Keys,
        conn: &mut impl ConnectionLike,
    ) -> Result<(), StoreError> {
        DEAD_LETTER
            .key(keys.stream(self.tenant))
            .key(keys.dead_letters(self.tenant))
            .arg(GROUP)
            .arg(self.stream_id)
            .arg(self.record_json)
            .arg(self.cap)
            .invoke_async::<i64>(conn)
            .await?;
        Ok(())
    }
}
