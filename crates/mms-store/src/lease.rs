//! The per-mailbox lease (D4): one worker at a time touches a user's mailbox, and a worker whose
//! lease expired or was taken over cannot write any more.
//!
//! The lease is a key `<token>:<owner>` with a TTL. The token comes from a per-user counter that is
//! never reset, so every acquisition gets a strictly larger token than the one before. Every
//! progress write (status, journal, sent ledger) checks, in the same Lua script, that the lease
//! still carries the writer's token ([`FENCE_CHECK_LUA`]): a worker paused past its TTL (GC, a
//! stalled network) wakes up to `LeaseLost` instead of overwriting its successor's work.

use std::sync::LazyLock;

use redis::Script;

use crate::{Store, StoreError};

/// A held mailbox lease; `token` fences every write made under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub tenant: String,
    pub user: String,
    pub owner: String,
    pub token: u64,
}

impl Lease {
    pub(crate) fn value(&self) -> String {
        format!("{}:{}", self.token, self.owner)
    }
}

/// Lua fragment `fence_ok(lease_key, value)` (`lua/lib/fence.lua`): true when the lease key still
/// holds exactly `value` (`<token>:<owner>`). Prepended to every fenced script.
pub(crate) const FENCE_CHECK_LUA: &str = include_str!("../lua/lib/fence.lua");

/// KEYS: lease, fence. ARGV: owner, ttl ms. Returns the new token, or false when the lease is held.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
"#,
    )
});

/// KEYS: lease. ARGV: expected value, ttl ms. 1 when extended, 0 when the lease is not ours.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#,
    )
});

/// KEYS: lease. ARGV: expected value. Deletes only our own lease.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"#,
    )
});

fn check_ttl(ttl_ms: u64) -> Result<(), StoreError> {
    if ttl_ms == 0 {
        return Err(StoreError::Invalid(
            "lease ttl is 0 ms: give the lease a lifetime longer than one renewal period"
                .to_string(),
        ));
    }
    Ok(())
}

impl Store {
    /// Take the user's mailbox lease for `ttl_ms`, with a fresh fencing token (SET NX PX and INCR
    /// in one script). `None` when someone else holds it.
    pub async fn acquire_lease(
        &self,
        tenant: &str,
        user: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        check_ttl(ttl_ms)?;
        let mut conn = self.conn.clone();
        let token: Option<u64> = ACQUIRE
            .key(self.keys.lease(tenant, user))
            .key(self.keys.fence(tenant, user))
            .arg(owner)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(token.map(|token| Lease {
            tenant: tenant.to_string(),
            user: user.to_string(),
            owner: owner.to_string(),
            token,
        }))
    }

    /// Extend the lease to `ttl_ms` from now, only if it still carries our token. `false` means
    /// it was lost: stop touching the mailbox.
    pub async fn renew_lease(&self, lease: &Lease, ttl_ms: u64) -> Result<bool, StoreError> {
        check_ttl(ttl_ms)?;
        let mut conn = self.conn.clone();
        let renewed: i64 = RENEW
            .key(self.keys.lease(&lease.tenant, &lease.user))
            .arg(lease.value())
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Give the lease up if it is still ours; a lease already taken over is left alone.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        RELEASE
            .key(self.keys.lease(&lease.tenant, &lease.user))
            .arg(lease.value())
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }
}
