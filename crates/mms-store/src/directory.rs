//! The directory in Redis: tenants' switches, users, audio-conferencing bridges and API tokens.
//!
//! Users live in one hash per tenant (upn -> JSON [`UserProfile`]) with two index hashes (SIP
//! address -> upn, user id -> upn) so that an `Identity` given as a SIP address or a user id
//! resolves in one lookup. An index entry belongs to exactly one user: a write that would give a
//! user a SIP address or user id another UPN holds is refused ([`DirectoryConflict`]), and an entry
//! is removed only while it still points at the user being changed (compare-and-delete in Lua), so
//! the index never names the wrong user. Bulk imports write in chunks of one script call each:
//! 10,000 users are a few round trips, not 30,000.
//!
//! API tokens are never stored in clear: the tokens hash maps `sha256(token)` (hex) to the role it
//! grants, so a copy of Redis does not hand out access. Each entry also carries a short public id
//! (the first [`TOKEN_ID_LEN`] hex digits of the hash) by which an operator lists and revokes it.

use std::sync::LazyLock;

use mms_core::{Bridge, TenantSettings, UserProfile};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// Users written per pipeline in a bulk import: large enough to amortise round trips, small
/// enough that one reply stays a few hundred kilobytes.
const IMPORT_CHUNK: usize = 1_000;

/// Hex digits of a token's hash that make up its public id: 48 bits, enough that two tokens of
/// one deployment do not share an id, and useless for guessing the token.
pub const TOKEN_ID_LEN: usize = 12;

/// What a bearer token lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The public id of the token whose hash is `hash`: not secret, shown in listings and used to revoke.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

/// A stored token as listings show it: its public id and role, never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(flatten)]
    pub role: TokenRole,
}

/// One of the two tenant switches, changed alone by [`Store::set_tenant_switch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantSwitch {
    /// `MeetingMigrationEnabled` (M3).
    MeetingMigrationEnabled,
    /// `AutomaticallyMigrateUserMeetings` (M4).
    AutomaticallyMigrateUserMeetings,
}

impl TenantSwitch {
    /// The field of the stored [`TenantSettings`] JSON.
    fn field(self) -> &'static str {
        match self {
            TenantSwitch::MeetingMigrationEnabled => "MeetingMigrationEnabled",
            TenantSwitch::AutomaticallyMigrateUserMeetings => "AutomaticallyMigrateUserMeetings",
        }
    }
}

/// A user write refused because an index entry it needs belongs to another user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryConflict {
    #[error("SIP address {sip} already belongs to {owner}: change or remove {owner}'s SIP address first, or give {upn} another one")]
    SipInUse {
        sip: String,
        owner: String,
        upn: String,
    },
    #[error("user id {user_id} already belongs to {owner}: user ids are unique; give {upn} another one or leave it out to have it derived")]
    UserIdInUse {
        user_id: String,
        owner: String,
        upn: String,
    },
}

/// Write a chunk of users, all or none: ARGV holds (upn, json, sip or "", user id) per user.
/// First every SIP address and user id is checked against the indexes (a conflict returns
/// `{field, value, owner, upn}` and writes nothing); then each user's old index entries are
/// removed only while they still point at that user, and the new ones are set.
static PUT_USERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local users, sips, ids = KEYS[1], KEYS[2], KEYS[3]
local n = #ARGV / 4
for i = 0, n - 1 do
  local upn, sip, id = ARGV[i*4+1], ARGV[i*4+3], ARGV[i*4+4]
  if sip ~= '' then
    local owner = redis.call('HGET', sips, sip)
    if owner and owner ~= upn then return {'SipAddress', sip, owner, upn} end
  end
  local owner = redis.call('HGET', ids, id)
  if owner and owner ~= upn then return {'UserId', id, owner, upn} end
end
for i = 0, n - 1 do
  local upn, json, sip, id = ARGV[i*4+1], ARGV[i*4+2], ARGV[i*4+3], ARGV[i*4+4]
  local old = redis.call('HGET', users, upn)
  if old then
    local prev = cjson.decode(old)
    local old_sip, old_id = prev['SipAddress'], prev['UserId']
    if type(old_sip) == 'string' and old_sip ~= sip and redis.call('HGET', sips, old_sip) == upn then
      redis.call('HDEL', sips, old_sip)
    end
    if type(old_id) == 'string' and old_id ~= id and redis.call('HGET', ids, old_id) == upn then
      redis.call('HDEL', ids, old_id)
    end
  end
  redis.call('HSET', users, upn, json)
  redis.call('HSET', ids, id, upn)
  if sip ~= '' then redis.call('HSET', sips, sip, upn) end
end
return {}
"#,
    )
});

/// Remove one user (ARGV[1]) and the index entries that still point at it; 1 when it existed.
static DELETE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local users, sips, ids, upn = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local old = redis.call('HGET', users, upn)
if not old then return 0 end
redis.call('HDEL', users, upn)
local prev = cjson.decode(old)
local old_sip, old_id = prev['SipAddress'], prev['UserId']
if type(old_sip) == 'string' and redis.call('HGET', sips, old_sip) == upn then
  redis.call('HDEL', sips, old_sip)
end
if type(old_id) == 'string' and redis.call('HGET', ids, old_id) == upn then
  redis.call('HDEL', ids, old_id)
end
return 1
"#,
    )
});

/// Set one field (ARGV[1]) of the settings JSON to the boolean ARGV[2] and return the new JSON;
/// nil when the tenant does not exist. The other switch is left as stored, whatever a concurrent
/// writer did to it.
static SET_SWITCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local text = redis.call('GET', KEYS[1])
if not text then return false end
local settings = cjson.decode(text)
settings[ARGV[1]] = (ARGV[2] == '1')
local updated = cjson.encode(settings)
redis.call('SET', KEYS[1], updated)
return updated
"#,
    )
});

/// Store the operator token's hash (ARGV[1]) with its role JSON (ARGV[2]) and remove every other
/// operator entry, in one step: the configured token is the only operator token.
static INSTALL_OPERATOR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  local hash, role = all[i], all[i + 1]
  local ok, decoded = pcall(cjson.decode, role)
  if hash ~= ARGV[1] and ok and type(decoded) == 'table' and decoded['Role'] == 'Operator' then
    redis.call('HDEL', KEYS[1], hash)
    removed = removed + 1
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return removed
"#,
    )
});

/// The tokens-hash field (the token's hash) and the JSON record stored under it.
fn token_entry(token: &str, role: &TokenRole) -> (String, TokenEntry) {
    let hash = token_hash(token);
    let entry = TokenEntry {
        id: token_id(&hash),
        role: role.clone(),
    };
    (hash, entry)
}

fn conflict(field: &str, value: &str, owner: &str, upn: &str) -> DirectoryConflict {
    let (value, owner, upn) = (value.to_string(), owner.to_string(), upn.to_string());
    if field == "SipAddress" {
        DirectoryConflict::SipInUse {
            sip: value,
            owner,
            upn,
        }
    } else {
        DirectoryConflict::UserIdInUse {
            user_id: value,
            owner,
            upn,
        }
    }
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

    /// Set one switch of the tenant, leaving the other as stored (atomic, so two admins changing
    /// the two switches at once both win); `None` when the tenant was never created.
    pub async fn set_tenant_switch(
        &self,
        tenant: &str,
        switch: TenantSwitch,
        on: bool,
    ) -> Result<Option<TenantSettings>, StoreError> {
        let key = self.keys.settings(tenant);
        let text: Option<String> = SET_SWITCH
            .key(&key)
            .arg(switch.field())
            .arg(if on { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await?;
        text.map(|t| from_json(&key, &t)).transpose()
    }

    /// Create or replace one user, keeping the SIP and user-id indexes in step. A SIP address or
    /// user id held by another user is refused as [`StoreError::Invalid`] naming the owner; the
    /// control plane calls [`Store::put_users_exclusive`] to answer it as a conflict.
    pub async fn put_user(&self, user: &UserProfile) -> Result<(), StoreError> {
        self.put_users(&user.tenant, std::slice::from_ref(user))
            .await
            .map(|_| ())
    }

    /// [`Store::put_users_exclusive`] for callers that treat a conflict as a bad request
    /// ([`StoreError::Invalid`], naming the owner).
    pub async fn put_users(
        &self,
        tenant: &str,
        users: &[UserProfile],
    ) -> Result<usize, StoreError> {
        self.put_users_exclusive(tenant, users)
            .await?
            .map_err(|conflict| StoreError::Invalid(conflict.to_string()))
    }

    /// Create or replace many users of `tenant`; returns how many were written, or the first
    /// SIP address or user id that another UPN already holds (then nothing is written, as long as
    /// no concurrent writer takes an address between the check and a later chunk). Every profile
    /// must belong to `tenant`, and the batch must not repeat a UPN or SIP address (the control
    /// plane validates before calling).
    pub async fn put_users_exclusive(
        &self,
        tenant: &str,
        users: &[UserProfile],
    ) -> Result<Result<usize, DirectoryConflict>, StoreError> {
        if let Some(conflict) = self.first_conflict(tenant, users).await? {
            return Ok(Err(conflict));
        }
        let mut conn = self.conn.clone();
        let (users_key, sip_key, id_key) = (
            self.keys.users(tenant),
            self.keys.sip_index(tenant),
            self.keys.user_id_index(tenant),
        );
        for chunk in users.chunks(IMPORT_CHUNK) {
            let mut script = PUT_USERS.key(&users_key);
            script.key(&sip_key).key(&id_key);
            for user in chunk {
                script
                    .arg(&user.upn)
                    .arg(to_json(user)?)
                    .arg(user.sip_address.as_deref().unwrap_or(""))
                    .arg(&user.user_id);
            }
            // The script checks again: the pre-check above covers every chunk before any is
            // written (all or nothing for an import), this one closes the race within a chunk.
            let refused: Vec<String> = script.invoke_async(&mut conn).await?;
            if let [field, value, owner, upn] = refused.as_slice() {
                return Ok(Err(conflict(field, value, owner, upn)));
            }
        }
        let _: () = conn.sadd(self.keys.tenants(), tenant).await?;
        Ok(Ok(users.len()))
    }

    /// The first SIP address or user id of `users` that the indexes give to another UPN.
    async fn first_conflict(
        &self,
        tenant: &str,
        users: &[UserProfile],
    ) -> Result<Option<DirectoryConflict>, StoreError> {
        let mut conn = self.conn.clone();
        let (sip_key, id_key) = (self.keys.sip_index(tenant), self.keys.user_id_index(tenant));
        for chunk in users.chunks(IMPORT_CHUNK) {
            let sips: Vec<&str> = chunk
                .iter()
                .map(|u| u.sip_address.as_deref().unwrap_or(""))
                .collect();
            let ids: Vec<&str> = chunk.iter().map(|u| u.user_id.as_str()).collect();
            let (sip_owners, id_owners): (Vec<Option<String>>, Vec<Option<String>>) = redis::pipe()
                .cmd("HMGET")
                .arg(&sip_key)
                .arg(&sips)
                .cmd("HMGET")
                .arg(&id_key)
                .arg(&ids)
                .query_async(&mut conn)
                .await?;
            for ((user, sip_owner), id_owner) in chunk.iter().zip(sip_owners).zip(id_owners) {
                if let (Some(sip), Some(owner)) = (&user.sip_address, sip_owner) {
                    if owner != user.upn {
                        return Ok(Some(conflict("SipAddress", sip, &owner, &user.upn)));
                    }
                }
                if let Some(owner) = id_owner.filter(|owner| *owner != user.upn) {
                    return Ok(Some(conflict("UserId", &user.user_id, &owner, &user.upn)));
                }
            }
        }
        Ok(None)
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

    /// Remove a user and the index entries that still point at it; `false` when there was no
    /// such user.
    pub async fn delete_user(&self, tenant: &str, upn: &str) -> Result<bool, StoreError> {
        let removed: i64 = DELETE_USER
            .key(self.keys.users(tenant))
            .key(self.keys.sip_index(tenant))
            .key(self.keys.user_id_index(tenant))
            .arg(upn)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
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

    /// Store a token's role under the token's hash (the token itself is never written); returns
    /// the token's public id.
    pub async fn put_token(&self, token: &str, role: &TokenRole) -> Result<String, StoreError> {
        let (hash, entry) = token_entry(token, role);
        let _: () = self
            .conn
            .clone()
            .hset(self.keys.tokens(), &hash, to_json(&entry)?)
            .await?;
        Ok(entry.id)
    }

    /// Make `token` the only operator token: store it and remove every other operator entry
    /// (rotation is: change the configured token, restart). Returns how many were removed.
    pub async fn install_operator_token(&self, token: &str) -> Result<usize, StoreError> {
        let (hash, entry) = token_entry(token, &TokenRole::Operator);
        let removed: usize = INSTALL_OPERATOR
            .key(self.keys.tokens())
            .arg(&hash)
            .arg(to_json(&entry)?)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed)
    }

    /// Every stored token by public id and role, sorted by id (tokens and hashes are not shown).
    pub async fn tokens(&self) -> Result<Vec<TokenEntry>, StoreError> {
        let key = self.keys.tokens();
        let all: Vec<(String, String)> = self.conn.clone().hgetall(&key).await?;
        let mut entries = all
            .iter()
            .map(|(hash, text)| {
                let role: TokenRole = from_json(&key, text)?;
                Ok(TokenEntry {
                    id: token_id(hash),
                    role,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(entries)
    }

    /// Remove the token whose public id is `id`; the removed entry, `None` when no token has it.
    pub async fn revoke_token(&self, id: &str) -> Result<Option<TokenEntry>, StoreError> {
        let key = self.keys.tokens();
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = conn.hgetall(&key).await?;
        let Some((hash, text)) = all.iter().find(|(hash, _)| token_id(hash) == id) else {
            return Ok(None);
        };
        let role: TokenRole = from_json(&key, text)?;
        let removed: usize = conn.hdel(&key, hash).await?;
        Ok((removed == 1).then(|| TokenEntry {
            id: id.to_string(),
            role,
        }))
    }

    /// The role a presented token grants, `None` when it is unknown.
    pub async fn token_role(&self, token: &str) -> Result<Option<TokenRole>, StoreError> {
        let key = self.keys.tokens();
        let text: Option<String> = self.conn.clone().hget(&key, token_hash(token)).await?;
        text.map(|t| from_json(&key, &t)).transpose()
    }
}
