//! The per-mailbox lease (D4): one worker at a time touches a user's mailbox, and a worker whose
//! lease expired or was taken over cannot write any more.
//!
//! The lease is a key `<token>:<owner>` with a TTL. The token comes from a per-user counter that is
//! never reset, so every acquisition gets a strictly larger token than the one before. Every
//! progress write (status, journal, sent ledger) checks, in the same Lua script, that the lease
//! still carries the writer's token (`lua/lib/fence.lua`): a worker paused past its TTL (GC, a
//! stalled network) wakes up to `LeaseLost` instead of overwriting its successor's work.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use crate::script::{invoke, lua_script, LuaCall};
use crate::{Keys, Store, StoreError};

/// A held mailbox lease; `token` fences every write made under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub tenant: String,
    pub user: String,
    pub owner: String,
    pub token: u64,
}

impl Lease {
    /// What the lease key holds while this lease is valid: `<token>:<owner>`.
    pub(crate) fn value(&self) -> String {
        format!("{}:{}", self.token, self.owner)
    }
}

// Every fenced script starts with `fence_ok(lease_key, value)` from `lua/lib/fence.lua`: true
// when the lease key still holds exactly `value` (`<token>:<owner>`); prepend it with
// `lua_script!("lib/fence.lua", "<area>/<script>.lua")`.
static ACQUIRE: LazyLock<Script> = lua_script!("lease/acquire.lua");
static RENEW: LazyLock<Script> = lua_script!("lib/fence.lua", "lease/renew.lua");
static RELEASE: LazyLock<Script> = lua_script!("lib/fence.lua", "lease/release.lua");

/// `lua/lease/acquire.lua`: a fresh token and the lease, or `None` when it is held.
struct Acquire<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    user: &'a str,
    owner: &'a str,
    ttl_ms: u64,
}

impl LuaCall for Acquire<'_> {
    type Reply = Option<u64>;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = ACQUIRE.prepare_invoke();
        call.key(self.keys.lease(self.tenant, self.user))
            .key(self.keys.fence(self.tenant, self.user))
            .arg(self.owner)
            .arg(self.ttl_ms);
        call
    }
}

/// `lua/lease/renew.lua`: 1 when extended, 0 when the lease is not ours.
struct Renew<'a> {
    keys: &'a Keys,
    lease: &'a Lease,
    ttl_ms: u64,
}

impl LuaCall for Renew<'_> {
    type Reply = i64;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = RENEW.prepare_invoke();
        call.key(self.keys.lease(&self.lease.tenant, &self.lease.user))
            .arg(self.lease.value())
            .arg(self.ttl_ms);
        call
    }
}

/// `lua/lease/release.lua`: deletes only our own lease.
struct Release<'a> {
    keys: &'a Keys,
    lease: &'a Lease,
}

impl LuaCall for Release<'_> {
    type Reply = i64;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = RELEASE.prepare_invoke();
        call.key(self.keys.lease(&self.lease.tenant, &self.lease.user))
            .arg(self.lease.value());
        call
    }
}

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
        let call = Acquire {
            keys: &self.keys,
            tenant,
            user,
            owner,
            ttl_ms,
        };
        let token = invoke(&call, &mut self.conn.clone()).await?;
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
        let call = Renew {
            keys: &self.keys,
            lease,
            ttl_ms,
        };
        let renewed = invoke(&call, &mut self.conn.clone()).await?;
        Ok(renewed == 1)
    }

    /// Give the lease up if it is still ours; a lease already taken over is left alone.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let call = Release {
            keys: &self.keys,
            lease,
        };
        invoke(&call, &mut self.conn.clone()).await?;
        Ok(())
    }
}
