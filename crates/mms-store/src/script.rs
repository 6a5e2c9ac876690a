//! How the store runs its Lua: scripts are files under `crates/mms-store/lua/`, assembled at
//! compile time, and each is called through one typed invoker.
//!
//! A script file (`lua/<area>/<name>.lua`) says at its top which KEYS and ARGV it reads and
//! which shared parts of `lua/lib/` it needs; [`lua_script!`] glues those parts and the script
//! into one source with `concat!` + `include_str!`, so no Lua lives in a Rust string and
//! `make lint` runs luacheck over exactly the text Redis runs.
//!
//! Each script has ONE Rust caller: a struct whose named fields are the script's inputs (the
//! lease, the tenant, the rows...), implementing [`LuaCall`], whose `invocation` derives every key
//! from those inputs and pushes KEYS and ARGV in the order the file reads them. A caller cannot
//! swap two keys or forget one: it never handles them. Scripts run through redis-rs's [`Script`]
//! (EVALSHA, reloaded transparently after a NOSCRIPT, e.g. after a Redis restart).
//!
//! [`Script`]: redis::Script

use redis::{FromRedisValue, RedisResult, ScriptInvocation, Value};

use crate::lease::Lease;
use crate::StoreError;

/// The Lua source made of the given files under `crates/mms-store/lua/`, in order (shared
/// `lib/` parts first, the script last).
macro_rules! lua_source {
    ($($file:literal),+ $(,)?) => {
        concat!($(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/lua/", $file)), "\n"),+)
    };
}
pub(crate) use lua_source;

/// A lazily built [`redis::Script`] of the given files (see [`lua_source!`]), for a `static`.
macro_rules! lua_script {
    ($($file:literal),+ $(,)?) => {
        std::sync::LazyLock::new(|| redis::Script::new($crate::script::lua_source!($($file),+)))
    };
}
pub(crate) use lua_script;

/// One script call with its inputs; the only way the store runs that script.
pub(crate) trait LuaCall {
    /// What the script returns, decoded.
    type Reply: FromRedisValue;

    /// The script with KEYS and ARGV pushed in the order its file documents.
    fn invocation(&self) -> ScriptInvocation<'static>;
}

/// Run `call` on `conn`.
pub(crate) async fn invoke<L: LuaCall>(
    call: &L,
    conn: &mut impl redis::aio::ConnectionLike,
) -> Result<L::Reply, StoreError> {
    Ok(call.invocation().invoke_async(conn).await?)
}

/// What a lease-guarded script reports: it made all of its writes, or none because the lease no
/// longer holds the caller's token (the script returns 1 or 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fenced {
    Written,
    Refused,
}

impl Fenced {
    /// `Ok` when written; [`StoreError::LeaseLost`] naming the stale lease when refused.
    pub(crate) fn or_lease_lost(self, lease: &Lease) -> Result<(), StoreError> {
        match self {
            Fenced::Written => Ok(()),
            Fenced::Refused => Err(StoreError::LeaseLost {
                user: lease.user.clone(),
                token: lease.token,
            }),
        }
    }
}

impl FromRedisValue for Fenced {
    fn from_redis_value(value: &Value) -> RedisResult<Self> {
        match i64::from_redis_value(value)? {
            1 => Ok(Fenced::Written),
            0 => Ok(Fenced::Refused),
            other => Err(redis::RedisError::from((
                redis::ErrorKind::TypeError,
                "a fenced script answers 1 (written) or 0 (lease lost)",
                format!("got {other}"),
            ))),
        }
    }
}
