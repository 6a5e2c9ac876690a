//! The directory in Redis: tenants' switches, users, audio-conferencing bridges and API tokens.
//!
//! Users live in one hash per tenant (upn -> JSON [`UserProfile`]) with two index hashes (SIP
//! address -> upn, user id -> upn) so that an `Identity` given as a SIP address or a user id
//! resolves in one lookup. Bulk imports write in pipelined chunks: 10,000 users are a few round
//! trips, not 30,000.
//!
//! API tokens are never stored in clear: the tokens hash maps `sha256(token)` (hex) to the role it
//! grants, so a copy of Redis does not hand out access.

use mms_core::{Bridge, TenantSettings, UserProfile};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// Users written per pipeline in a bulk import: large enough to amortise round trips, small
/// enough that one reply stays a few hundred kilobytes.
const IMPORT_CHUNK: usize = 1_000;

/// What a bearer token lets its holder do.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Role")]
pub enum TokenRole {
    /// Every tenant, plus creating tenants and minting tokens.
    Operator,
    /// One tenant only: its switches, directory, events and migrations.
    TenantAdmin {
        #[serde(rename = "Tenant")]
        tenant: String,
    },
}

/// The hex SHA-256 of a token: the only form in which a token is stored or compared.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::corrupt)
}

fn from_json<T: for<'de> Deserialize<'de>>(key: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
}

impl Store {
    /// Create a tenant with `settings`; `false` (and nothing written) when it already exists.
    pub async fn create_tenant(&self, settings: &TenantSettings) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let created: bool = redis::cmd("SET")
            .arg(self.keys.settings(&settings.tenant))
            .arg(to_json(settings)?)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if created {
            let _: () = conn.sadd(self.keys.tenants(), &settings.tenant).await?;
        }
        Ok(created)
    }

    /// The tenant's switches; `None` when the tenant was never created.
    pub async fn tenant_settings(
        &self,
        tenant: &str,
    ) -> Result<Option<TenantSettings>, StoreError> {
        let key = self.keys.settings(tenant);
        let text: Option<String> = self.conn.clone().get(&key).await?;
        text.map(|t| from_json(&key, &t)).transpose()
    }

    /// Overwrite the tenant's switches (the tenant must exist: the caller checks).
    pub async fn put_tenant_settings(&self, settings: &TenantSettings) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .set(self.keys.settings(&settings.tenant), to_json(settings)?)
            .await?;
        let _: () = conn.sadd(self.keys.tenants(), &settings.tenant).await?;
        Ok(())
    }

    /// Create or replace one user, keeping the SIP and user-id indexes in step.
    pub async fn put_user(&self, user: &UserProfile) -> Result<(), StoreError> {
        self.put_users(&user.tenant, std::slice::from_ref(user))
            .await
            .map(|_| ())
    }

    /// Create or replace many users of `tenant` in pipelined chunks; returns how many were written.
    /// Every profile must belong to `tenant` (the control plane validates before calling).
    pub async fn put_users(
        &self,
        tenant: &str,
        users: &[UserProfile],
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let (users_key, sip_key, id_key) = (
            self.keys.users(tenant),
            self.keys.sip_index(tenant),
            self.keys.user_id_index(tenant),
        );
        for chunk in users.chunks(IMPORT_CHUNK) {
            // Read the records being replaced so that a changed SIP address or user id does not
            // leave an index entry pointing at the wrong user.
            let upns: Vec<&str> = chunk.iter().map(|u| u.upn.as_str()).collect();
            let previous: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&users_key)
                .arg(&upns)
                .query_async(&mut conn)
                .await?;
            let mut pipe = redis::pipe();
            for (user, old) in chunk.iter().zip(previous) {
                if let Some(old) = old {
                    let old: UserProfile = from_json(&users_key, &old)?;
                    if let Some(sip) = old
                        .sip_address
                        .filter(|s| Some(s) != user.sip_address.as_ref())
                    {
                        pipe.hdel(&sip_key, sip).ignore();
                    }
                    if old.user_id != user.user_id {
                        pipe.hdel(&id_key, &old.user_id).ignore();
                    }
                }
                pipe.hset(&users_key, &user.upn, to_json(user)?).ignore();
                pipe.hset(&id_key, &user.user_id, &user.upn).ignore();
                if let Some(sip) = &user.sip_address {
                    pipe.hset(&sip_key, sip, &user.upn).ignore();
                }
            }
            let _: () = pipe.query_async(&mut conn).await?;
        }
        let _: () = conn.sadd(self.keys.tenants(), tenant).await?;
        Ok(users.len())
    }

    /// One user by UPN (lower-case).
    pub async fn user(&self, tenant: &str, upn: &str) -> Result<Option<UserProfile>, StoreError> {
        let key = self.keys.users(tenant);
        let text: Option<String> = self.conn.clone().hget(&key, upn).await?;
        text.map(|t| from_json(&key, &t)).transpose()
    }

    /// The upn that a SIP address (without `sip:`) or a user id names, if any.
    pub async fn upn_by_sip(&self, tenant: &str, sip: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .clone()
            .hget(self.keys.sip_index(tenant), sip)
            .await?)
    }

    /// The upn that a user id names, if any.
    pub async fn upn_by_user_id(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .clone()
            .hget(self.keys.user_id_index(tenant), user_id)
            .await?)
    }

    /// Remove a user and its index entries; `false` when there was no such user.
    pub async fn delete_user(&self, tenant: &str, upn: &str) -> Result<bool, StoreError> {
        let Some(old) = self.user(tenant, upn).await? else {
            return Ok(false);
        };
        let mut pipe = redis::pipe();
        pipe.hdel(self.keys.users(tenant), upn).ignore();
        pipe.hdel(self.keys.user_id_index(tenant), &old.user_id)
            .ignore();
        if let Some(sip) = &old.sip_address {
            pipe.hdel(self.keys.sip_index(tenant), sip).ignore();
        }
        let _: () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(true)
    }

    /// Every user of the tenant (HSCAN, so a large tenant does not block Redis), in no set order.
    pub async fn users(&self, tenant: &str) -> Result<Vec<UserProfile>, StoreError> {
        let key = self.keys.users(tenant);
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut users = Vec::new();
        loop {
            let (next, fields): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut conn)
                .await?;
            for (_, text) in fields {
                users.push(from_json(&key, &text)?);
            }
            if next == 0 {
                return Ok(users);
            }
            cursor = next;
        }
    }

    /// How many users the tenant has.
    pub async fn user_count(&self, tenant: &str) -> Result<usize, StoreError> {
        Ok(self.conn.clone().hlen(self.keys.users(tenant)).await?)
    }

    /// Create or replace a bridge.
    pub async fn put_bridge(&self, bridge: &Bridge) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset(
                self.keys.bridges(&bridge.tenant),
                &bridge.id,
                to_json(bridge)?,
            )
            .await?;
        Ok(())
    }

    /// One bridge by id.
    pub async fn bridge(&self, tenant: &str, id: &str) -> Result<Option<Bridge>, StoreError> {
        let key = self.keys.bridges(tenant);
        let text: Option<String> = self.conn.clone().hget(&key, id).await?;
        text.map(|t| from_json(&key, &t)).transpose()
    }

    /// Every bridge of the tenant.
    pub async fn bridges(&self, tenant: &str) -> Result<Vec<Bridge>, StoreError> {
        let key = self.keys.bridges(tenant);
        let all: Vec<(String, String)> = self.conn.clone().hgetall(&key).await?;
        all.iter().map(|(_, text)| from_json(&key, text)).collect()
    }

    /// Store a token's role under the token's hash (the token itself is never written).
    pub async fn put_token(&self, token: &str, role: &TokenRole) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset(self.keys.tokens(), token_hash(token), to_json(role)?)
            .await?;
        Ok(())
    }

    /// The role a presented token grants, `None` when it is unknown.
    pub async fn token_role(&self, token: &str) -> Result<Option<TokenRole>, StoreError> {
        let key = self.keys.tokens();
        let text: Option<String> = self.conn.clone().hget(&key, token_hash(token)).await?;
        text.map(|t| from_json(&key, &t)).transpose()
    }
}
