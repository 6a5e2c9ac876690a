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
use redis::{AsyncCommands, Script, ScriptInvocation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::script::{invoke, lua_script, LuaCall};
use crate::{Keys, Store, StoreError};

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

static PUT_USERS: LazyLock<Script> = lua_script!("directory/put_users.lua");
static DELETE_USER: LazyLock<Script> = lua_script!("directory/delete_user.lua");
static SET_SWITCH: LazyLock<Script> = lua_script!("directory/set_switch.lua");
static INSTALL_OPERATOR: LazyLock<Script> = lua_script!("directory/install_operator.lua");

/// One user of a [`PutUsers`] chunk, encoded.
struct UserRecord<'a> {
    upn: &'a str,
    json: String,
    sip: &'a str,
    user_id: &'a str,
}

/// `lua/directory/put_users.lua`: a chunk of users written all or none; a conflict comes back as
/// `[field, value, owner, upn]` and nothing is written, success as `[]`.
struct PutUsers<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    users: Vec<UserRecord<'a>>,
}

impl LuaCall for PutUsers<'_> {
    type Reply = Vec<String>;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = PUT_USERS.prepare_invoke();
        call.key(self.keys.users(self.tenant))
            .key(self.keys.sip_index(self.tenant))
            .key(self.keys.user_id_index(self.tenant));
        for user in &self.users {
            call.arg(user.upn)
                .arg(&user.json)
                .arg(user.sip)
                .arg(user.user_id);
        }
        call
    }
}

/// `lua/directory/delete_user.lua`: 1 when the user existed.
struct DeleteUser<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    upn: &'a str,
}

impl LuaCall for DeleteUser<'_> {
    type Reply = i64;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = DELETE_USER.prepare_invoke();
        call.key(self.keys.users(self.tenant))
            .key(self.keys.sip_index(self.tenant))
            .key(self.keys.user_id_index(self.tenant))
            .arg(self.upn);
        call
    }
}

/// `lua/directory/set_switch.lua`: the new settings JSON, `None` when the tenant does not exist.
struct SetSwitch<'a> {
    keys: &'a Keys,
    tenant: &'a str,
    switch: TenantSwitch,
    on: bool,
}

impl LuaCall for SetSwitch<'_> {
    type Reply = Option<String>;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = SET_SWITCH.prepare_invoke();
        call.key(self.keys.settings(self.tenant))
            .arg(self.switch.field())
            .arg(if self.on { "1" } else { "0" });
        call
    }
}

/// `lua/directory/install_operator.lua`: how many other operator entries were removed.
struct InstallOperator<'a> {
    keys: &'a Keys,
    hash: &'a str,
    entry_json: String,
}

impl LuaCall for InstallOperator<'_> {
    type Reply = usize;
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut call = INSTALL_OPERATOR.prepare_invoke();
        call.key(self.keys.tokens())
            .arg(self.hash)
            .arg(&self.entry_json);
        call
    }
}

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

fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::encode(what, e))
}

/// A directory record read back from `key`; one that does not decode names the key and the repair.
fn from_json<T: for<'de> Deserialize<'de>>(key: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::corrupt(
            key,
            format!("inspect it with redis-cli (`GET` or `HGET '{key}' <field>`) and write it again through the API, or delete it"),
            e,
        )
    })
}

impl Store {
    /// Create a tenant with `settings`; `false` (and nothing written) when it already exists.
    pub async fn create_tenant(&self, settings: &TenantSettings) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let created: bool = redis::cmd("SET")
            .arg(self.keys.settings(&settings.tenant))
            .arg(to_json("tenant settings", settings)?)
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
            .set(
                self.keys.settings(&settings.tenant),
                to_json("tenant settings", settings)?,
            )
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
        let call = SetSwitch {
            keys: &self.keys,
            tenant,
            switch,
            on,
        };
        let text = invoke(&call, &mut self.conn.clone()).await?;
        text.map(|t| from_json(&self.keys.settings(tenant), &t))
            .transpose()
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
        for chunk in users.chunks(IMPORT_CHUNK) {
            let call = PutUsers {
                keys: &self.keys,
                tenant,
                users: chunk
                    .iter()
                    .map(|user| {
                        Ok(UserRecord {
                            upn: &user.upn,
                            json: to_json("user profile", user)?,
                            sip: user.sip_address.as_deref().unwrap_or(""),
                            user_id: &user.user_id,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?,
            };
            // The script checks again: the pre-check above covers every chunk before any is
            // written (all or nothing for an import), this one closes the race within a chunk.
            let refused = invoke(&call, &mut conn).await?;
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
        let call = DeleteUser {
            keys: &self.keys,
            tenant,
            upn,
        };
        let removed = invoke(&call, &mut self.conn.clone()).await?;
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
                to_json("bridge", bridge)?,
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
            .hset(self.keys.tokens(), &hash, to_json("token entry", &entry)?)
            .await?;
        Ok(entry.id)
    }

    /// Make `token` the only operator token: store it and remove every other operator entry
    /// (rotation is: change the configured token, restart). Returns how many were removed.
    pub async fn install_operator_token(&self, token: &str) -> Result<usize, StoreError> {
        let (hash, entry) = token_entry(token, &TokenRole::Operator);
        let call = InstallOperator {
            keys: &self.keys,
            hash: &hash,
            entry_json: to_json("token entry", &entry)?,
        };
        let removed = invoke(&call, &mut self.conn.clone()).await?;
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
