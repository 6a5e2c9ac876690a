//! The migration queue (P1, D3, P7): one Redis stream per tenant read through the consumer group
//! [`GROUP`], a per-tenant delayed set for coalescing holds and retries, and a per-user merge.
//!
//! How a request travels:
//! 1. [`Store::enqueue`] stores it in the tenant's `requests` hash (the authoritative copy), points
//!    `queued:<user>` at it, writes its Pending status row and either adds it to the stream or
//!    parks it in the delayed set. A second trigger for a user whose request is still queued is
//!    merged into that request instead (one migration covers both).
//! 2. [`Store::promote_due`] moves due delayed requests onto the stream.
//! 3. [`Store::read_ready`] hands stream entries to a worker, a few per tenant per call so that a
//!    big tenant cannot starve a small one; [`Store::claim_stale`] hands a dead worker's entries to
//!    a live one.
//! 4. [`Store::mark_started`] ends the merge window; [`Store::ack`] removes the finished request;
//!    [`Store::requeue_at`] parks it again for a retry.
//!
//! Stream entries carry `cid` (the correlation id) and `req` (the request, rmp-serde). A delivery
//! takes the request from the `requests` hash when it is there, because a merge may have widened it
//! after the entry was added; `req` keeps each entry self-describing for redis-cli and is the
//! fallback. Entries that decode neither way go to the tenant's dead-letter list, never nowhere.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::Utc;
use mms_core::{MigrationRequest, MigrationStatus, SourceMeetingType, TargetMeetingType, Trigger};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply,
    StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, RedisError, Script, Value};
use serde::Serialize;

use crate::history::{HistoryEvent, HISTORY_APPEND_LUA};
use crate::keys::GROUP;
use crate::progress::{status_json, STATUS_PUT_LUA};
use crate::{Store, StoreError};

/// Times [`Store::enqueue`] re-reads a user's queued request that concurrent triggers keep changing
/// before giving up with [`StoreError::Contention`].
const ENQUEUE_ATTEMPTS: usize = 16;
/// Delayed requests moved per script call: bounds how long one call blocks Redis.
const PROMOTE_BATCH: usize = 1_000;
/// Dead letters kept per tenant.
const DEAD_LETTER_CAP: isize = 1_000;

/// Where [`Store::enqueue`] put a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The correlation id the admin will see: the new request's, or the queued one it joined.
    pub correlation_id: String,
    /// True when the request was merged into a request already queued for the user.
    pub merged: bool,
}

/// One stream entry handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub tenant: String,
    pub stream_id: String,
    pub request: MigrationRequest,
    /// How many times the entry was handed out (1 on first delivery; more after claims from dead
    /// workers). Retries re-add the request, so this counts crashes, not retries.
    pub delivery_count: u64,
}

/// Queue depth of one tenant, for metrics and autoscaling on stream lag (D7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub tenant: String,
    /// On the stream, not yet delivered to any worker.
    pub ready: u64,
    /// Delivered to a worker, not yet acked.
    pub pending: u64,
    /// Waiting in the delayed set (coalescing hold or retry).
    pub delayed: u64,
}

/// KEYS: queued, requests, status, statuses, user migrations, stream, delayed, history.
/// ARGV: correlation, request, status json, create ms, delay ms, due ms, history json.
/// Returns 0 when the user already has a live queued request (the caller merges instead).
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{STATUS_PUT_LUA}{}
local queued = redis.call('GET', KEYS[1])
if queued and redis.call('HEXISTS', KEYS[2], queued) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
status_put(KEYS[3], KEYS[4], KEYS[5], ARGV[3], ARGV[4], ARGV[1])
if ARGV[5] == '0' then
  redis.call('XADD', KEYS[6], '*', 'cid', ARGV[1], 'req', ARGV[2])
else
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
end
history_append(KEYS[8], ARGV[7])
return 1",
        *HISTORY_APPEND_LUA
    ))
});

/// Compare-and-set of a queued request and its status row.
/// KEYS: queued, requests, status, history.
/// ARGV: correlation, old request, merged request, old status ('' = none), new status ('' = none),
/// history json. Returns 0 when anything changed since the caller read it.
static MERGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5]) end
history_append(KEYS[4], ARGV[6])
return 1",
        *HISTORY_APPEND_LUA
    ))
});

/// KEYS: queued, requests. ARGV: correlation. Closes the merge window, returns the request as it
/// stands (merges included).
static MARK_STARTED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return redis.call('HGET', KEYS[2], ARGV[1])",
    )
});

/// KEYS: stream, queued, requests. ARGV: group, stream id, correlation.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1",
    )
});

/// KEYS: stream, requests, delayed. ARGV: group, stream id, correlation, request, due ms.
/// Keeps a stored (possibly merged) request over the delivery's copy.
static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
return 1",
    )
});

/// KEYS: delayed, requests, stream. ARGV: now ms, batch. Returns {due seen, moved}; a due id whose
/// request is gone (cancelled) is dropped from the set.
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local moved = 0
for _, cid in ipairs(due) do
  local req = redis.call('HGET', KEYS[2], cid)
  if req then
    redis.call('XADD', KEYS[3], '*', 'cid', cid, 'req', req)
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], cid)
end
return {#due, moved}",
    )
});

/// KEYS: stream, dead letters. ARGV: group, stream id, record json, cap.
static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return 1",
    )
});

/// A stream entry that could not be turned into a request, as kept in the dead-letter list.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeadLetter {
    at: chrono::DateTime<Utc>,
    stream_id: String,
    error: String,
    /// The entry's fields, binary shown lossily, so an admin can see what arrived.
    fields: HashMap<String, String>,
}

/// The request that covers both `queued` and `incoming` (same user): SourceMeetingType `All` when
/// they differ, TargetMeetingType `Teams` when either asks for it. Identity (correlation id, first
/// trigger, request time) stays the queued one's.
pub fn merge_requests(queued: &MigrationRequest, incoming: &MigrationRequest) -> MigrationRequest {
    let source = if queued.source == incoming.source {
        queued.source
    } else {
        SourceMeetingType::All
    };
    let target = if queued.target == TargetMeetingType::Teams
        || incoming.target == TargetMeetingType::Teams
    {
        TargetMeetingType::Teams
    } else {
        TargetMeetingType::Current
    };
    // An admin's explicit start (T4) is not held by a disabled tenant; once merged, the request
    // stands for that start too, so it keeps the manual trigger whichever came first.
    let trigger = if incoming.trigger == Trigger::Manual {
        Trigger::Manual
    } else {
        queued.trigger.clone()
    };
    MigrationRequest {
        source,
        target,
        trigger,
        ..queued.clone()
    }
}

fn encode_request(request: &MigrationRequest) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(request).map_err(|e| {
        StoreError::Invalid(format!(
            "request {} does not encode: {e}",
            request.correlation_id
        ))
    })
}

fn decode_request(bytes: &[u8]) -> Result<MigrationRequest, String> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| format!("request does not decode as rmp-serde MigrationRequest: {e}"))
}

fn error_code_is(error: &RedisError, code: &str) -> bool {
    error.code() == Some(code)
}

fn field_text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    }
}

impl Store {
    /// Place a request (P1). If the same (tenant, user) already has a request queued and not yet
    /// started, merge into it ([`merge_requests`]) and return its correlation id with
    /// `merged = true`; its status row's LastMessage and the user's history record the merge.
    /// Otherwise create it: Pending status row, indexes, and either the tenant stream
    /// (`delay_ms == 0`) or the delayed set due `delay_ms` from now (coalescing hold). Each path is
    /// one atomic script on the tenant's keys.
    pub async fn enqueue(
        &self,
        request: &MigrationRequest,
        delay_ms: u64,
    ) -> Result<Enqueued, StoreError> {
        let (tenant, user) = (&request.tenant, &request.user);
        let mut conn = self.conn.clone();
        // The tenant index has its own hash tag, so it cannot join the tenant's script; adding
        // first means a reader never misses a tenant whose request it could see.
        conn.sadd::<_, _, ()>(self.keys.tenants(), tenant).await?;
        for _ in 0..ENQUEUE_ATTEMPTS {
            let queued: Option<String> = conn.get(self.keys.queued(tenant, user)).await?;
            if let Some(correlation) = queued {
                if let Some(merged) = self.try_merge(request, &correlation).await? {
                    if delay_ms == 0 {
                        // A trigger that must not wait (a manual start) merged into a request
                        // still in its coalescing hold: make it due now. XX leaves a request that
                        // is already on the stream alone.
                        let _: Option<i64> = redis::cmd("ZADD")
                            .arg(self.keys.delayed(tenant))
                            .arg("XX")
                            .arg(Utc::now().timestamp_millis())
                            .arg(&merged.correlation_id)
                            .query_async(&mut conn)
                            .await?;
                    }
                    return Ok(merged);
                }
            }
            if let Some(created) = self.try_create(request, delay_ms).await? {
                return Ok(created);
            }
        }
        Err(StoreError::Contention { user: user.clone() })
    }

    /// Merge `incoming` into the queued request `correlation`; `None` when that request is gone or
    /// changed meanwhile (the caller looks again).
    async fn try_merge(
        &self,
        incoming: &MigrationRequest,
        correlation: &str,
    ) -> Result<Option<Enqueued>, StoreError> {
        let (tenant, user) = (&incoming.tenant, &incoming.user);
        let requests_key = self.keys.requests(tenant);
        let status_key = self.keys.status(tenant, correlation);
        let mut conn = self.conn.clone();
        let (stored, old_status): (Option<Vec<u8>>, Option<String>) = redis::pipe()
            .hget(&requests_key, correlation)
            .get(&status_key)
            .query_async(&mut conn)
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let queued = decode_request(&stored).map_err(|e| {
            StoreError::Corrupt(format!(
                "{requests_key} field {correlation}: {e}; delete the field (`redis-cli HDEL`) and trigger the migration again"
            ))
        })?;
        let merged = merge_requests(&queued, incoming);
        let now = Utc::now();
        let message = format!(
            "Merged trigger '{}' (source {}, target {}) into this request: now source {}, target {}",
            incoming.trigger, incoming.source, incoming.target, merged.source, merged.target
        );
        let new_status = match &old_status {
            Some(text) => {
                let mut status: MigrationStatus = serde_json::from_str(text).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "{status_key}: {e}; fix or delete it with redis-cli"
                    ))
                })?;
                status.source_meeting_type = merged.source;
                status.target_meeting_type = merged.target;
                status.migration_type = merged.migration_type();
                status.last_message = message.clone();
                status.modified_date = now;
                status_json(&status)?
            }
            None => String::new(),
        };
        let event = HistoryEvent {
            at: now,
            correlation_id: correlation.to_string(),
            event: crate::history::HistoryEventKind::Merged,
            message,
        };
        let done: i64 = MERGE
            .key(self.keys.queued(tenant, user))
            .key(&requests_key)
            .key(&status_key)
            .key(self.keys.history(tenant, user))
            .arg(correlation)
            .arg(stored)
            .arg(encode_request(&merged)?)
            .arg(old_status.unwrap_or_default())
            .arg(new_status)
            .arg(event.to_json()?)
            .invoke_async(&mut conn)
            .await?;
        Ok((done == 1).then(|| Enqueued {
            correlation_id: correlation.to_string(),
            merged: true,
        }))
    }

    /// Create `request` as the user's queued request; `None` when another one got there first.
    async fn try_create(
        &self,
        request: &MigrationRequest,
        delay_ms: u64,
    ) -> Result<Option<Enqueued>, StoreError> {
        let (tenant, user, correlation) = (&request.tenant, &request.user, &request.correlation_id);
        let now = Utc::now();
        // The UserId column comes from the directory; a user not imported there (a manual trigger
        // by UPN before the import) shows an empty one until the worker resolves it.
        let user_id = self
            .user(tenant, user)
            .await?
            .map(|profile| profile.user_id)
            .unwrap_or_default();
        let status = MigrationStatus::pending(request, &user_id, now);
        let (due_ms, message) = if delay_ms == 0 {
            (
                now.timestamp_millis(),
                format!("Queued: trigger '{}'", request.trigger),
            )
        } else {
            let due_ms = now
                .timestamp_millis()
                .saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX));
            (
                due_ms,
                format!(
                    "Queued: trigger '{}', held {} s so that further changes coalesce",
                    request.trigger,
                    delay_ms / 1000
                ),
            )
        };
        let event = HistoryEvent {
            at: now,
            correlation_id: correlation.clone(),
            event: crate::history::HistoryEventKind::Queued,
            message,
        };
        let mut conn = self.conn.clone();
        let created: i64 = CREATE
            .key(self.keys.queued(tenant, user))
            .key(self.keys.requests(tenant))
            .key(self.keys.status(tenant, correlation))
            .key(self.keys.statuses(tenant))
            .key(self.keys.user_migrations(tenant, user))
            .key(self.keys.stream(tenant))
            .key(self.keys.delayed(tenant))
            .key(self.keys.history(tenant, user))
            .arg(correlation)
            .arg(encode_request(request)?)
            .arg(status_json(&status)?)
            .arg(now.timestamp_millis())
            .arg(delay_ms)
            .arg(due_ms)
            .arg(event.to_json()?)
            .invoke_async(&mut conn)
            .await?;
        Ok((created == 1).then(|| Enqueued {
            correlation_id: correlation.clone(),
            merged: false,
        }))
    }

    /// Every tenant that ever had a request or a record, sorted.
    pub async fn tenants(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut tenants: Vec<String> = conn.smembers(self.keys.tenants()).await?;
        tenants.sort();
        Ok(tenants)
    }

    /// Ready requests for `consumer`, fair across tenants: at most `per_tenant` per tenant per
    /// call, tenants taken round-robin starting after the last tenant served, so a tenant with
    /// 50,000 queued cannot starve one with 5. Non-blocking; creates the consumer group on first
    /// use. Entries that do not decode go to the tenant's dead-letter list (logged), not to the
    /// caller. Never more than `max_total` in all: a worker takes only what it has room for, so
    /// nothing it read waits long enough in its own queues to look abandoned.
    pub async fn read_ready(
        &self,
        consumer: &str,
        per_tenant: usize,
        max_total: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let tenants = self.tenants().await?;
        let last_served = self
            .read_cursor
            .lock()
            .map(|cursor| cursor.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let start = last_served.map_or(0, |last| tenants.partition_point(|tenant| *tenant <= last));
        let mut deliveries = Vec::new();
        for tenant in tenants[start..].iter().chain(&tenants[..start]) {
            let want = per_tenant.min(max_total.saturating_sub(deliveries.len()));
            if want == 0 {
                break;
            }
            let entries = self.read_group(tenant, consumer, want).await?;
            if entries.is_empty() {
                continue;
            }
            let counts = vec![1; entries.len()];
            deliveries.extend(self.decode_entries(tenant, entries, counts).await?);
            let mut cursor = self.read_cursor.lock().unwrap_or_else(|p| p.into_inner());
            *cursor = Some(tenant.clone());
        }
        Ok(deliveries)
    }

    /// XREADGROUP of new entries on one tenant stream, creating the group when it is missing.
    async fn read_group(
        &self,
        tenant: &str,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<StreamId>, StoreError> {
        let stream = self.keys.stream(tenant);
        let options = StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(count);
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> =
            match conn.xread_options(&[&stream], &[">"], &options).await {
                Err(e) if error_code_is(&e, "NOGROUP") => {
                    self.create_group(&stream).await?;
                    conn.xread_options(&[&stream], &[">"], &options).await?
                }
                other => other?,
            };
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .collect())
    }

    /// Create the consumer group from the stream's start, so requests added before any worker
    /// looked are delivered too.
    async fn create_group(&self, stream: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        match conn
            .xgroup_create_mkstream::<_, _, _, ()>(stream, GROUP, "0")
            .await
        {
            Err(e) if error_code_is(&e, "BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Turn stream entries into deliveries, preferring the stored (possibly merged) request; entries
    /// that decode neither way are dead-lettered.
    async fn decode_entries(
        &self,
        tenant: &str,
        entries: Vec<StreamId>,
        counts: Vec<u64>,
    ) -> Result<Vec<Delivery>, StoreError> {
        let correlations: Vec<Option<String>> = entries
            .iter()
            .map(|entry| {
                entry
                    .map
                    .get("cid")
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
            })
            .collect();
        let lookup: Vec<&str> = correlations
            .iter()
            .map(|c| c.as_deref().unwrap_or(""))
            .collect();
        let mut conn = self.conn.clone();
        // HMGET with one field still answers an array when sent as a raw command.
        let stored: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(self.keys.requests(tenant))
            .arg(&lookup)
            .query_async(&mut conn)
            .await?;
        let mut deliveries = Vec::with_capacity(entries.len());
        for ((entry, stored), delivery_count) in entries.into_iter().zip(stored).zip(counts) {
            let on_stream = entry
                .map
                .get("req")
                .and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok());
            let decoded = match (stored, on_stream) {
                (Some(bytes), _) | (None, Some(bytes)) => decode_request(&bytes),
                (None, None) => {
                    Err("entry has neither a stored request nor a `req` field".to_string())
                }
            }
            .and_then(|request| {
                if request.tenant == tenant {
                    Ok(request)
                } else {
                    Err(format!(
                        "request of tenant {:?} found on the stream of tenant {tenant:?}",
                        request.tenant
                    ))
                }
            });
            match decoded {
                Ok(request) => deliveries.push(Delivery {
                    tenant: tenant.to_string(),
                    stream_id: entry.id,
                    request,
                    delivery_count,
                }),
                Err(error) => self.dead_letter(tenant, entry, error).await?,
            }
        }
        Ok(deliveries)
    }

    /// Move an undecodable entry off the stream into the tenant's dead-letter list.
    async fn dead_letter(
        &self,
        tenant: &str,
        entry: StreamId,
        error: String,
    ) -> Result<(), StoreError> {
        let dead_key = self.keys.dead_letters(tenant);
        tracing::error!(tenant, stream_id = %entry.id, %error, dead_letters = %dead_key,
            "undecodable queue entry moved to the dead-letter list");
        let record = DeadLetter {
            at: Utc::now(),
            stream_id: entry.id.clone(),
            error,
            fields: entry
                .map
                .iter()
                .map(|(field, value)| (field.clone(), field_text(value)))
                .collect(),
        };
        let json = serde_json::to_string(&record)
            .map_err(|e| StoreError::Invalid(format!("dead letter does not serialize: {e}")))?;
        let mut conn = self.conn.clone();
        DEAD_LETTER
            .key(self.keys.stream(tenant))
            .key(&dead_key)
            .arg(GROUP)
            .arg(&entry.id)
            .arg(json)
            .arg(DEAD_LETTER_CAP)
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// The dead-letter records of a tenant (JSON, newest first): stream entries that did not decode.
    pub async fn dead_letters(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.lrange(self.keys.dead_letters(tenant), 0, -1).await?)
    }

    /// Claim entries pending longer than `min_idle_ms` on any tenant stream (XAUTOCLAIM): a dead
    /// worker's requests (D3). At most `per_tenant` per tenant and `max_total` in all.
    pub async fn claim_stale(
        &self,
        consumer: &str,
        min_idle_ms: u64,
        per_tenant: usize,
        max_total: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut deliveries = Vec::new();
        for tenant in self.tenants().await? {
            let want = per_tenant.min(max_total.saturating_sub(deliveries.len()));
            if want == 0 {
                break;
            }
            let stream = self.keys.stream(&tenant);
            let mut conn = self.conn.clone();
            let options = StreamAutoClaimOptions::default().count(want);
            let reply: StreamAutoClaimReply = match conn
                .xautoclaim_options(&stream, GROUP, consumer, min_idle_ms, "0-0", options)
                .await
            {
                // No group yet: nothing was ever delivered on this stream, so nothing is stale.
                Err(e) if error_code_is(&e, "NOGROUP") => continue,
                other => other?,
            };
            if reply.claimed.is_empty() {
                continue;
            }
            let counts = self.delivery_counts(&stream, &reply.claimed).await?;
            deliveries.extend(self.decode_entries(&tenant, reply.claimed, counts).await?);
        }
        Ok(deliveries)
    }

    /// Delivery counts of just-claimed entries (XAUTOCLAIM does not report them).
    async fn delivery_counts(
        &self,
        stream: &str,
        entries: &[StreamId],
    ) -> Result<Vec<u64>, StoreError> {
        let mut pipe = redis::pipe();
        for entry in entries {
            pipe.xpending_count(stream, GROUP, &entry.id, &entry.id, 1);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<StreamPendingCountReply> = pipe.query_async(&mut conn).await?;
        Ok(replies
            .into_iter()
            .map(|reply| {
                reply
                    .ids
                    .first()
                    .map_or(1, |pending| pending.times_delivered as u64)
            })
            .collect())
    }

    /// Reset the idle time of an entry this consumer is working on (XCLAIM with min-idle 0 to
    /// itself), so that `claim_stale` elsewhere does not take a live migration for a dead one.
    /// Called on every lease renewal.
    pub async fn touch(&self, delivery: &Delivery, consumer: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: Value = redis::cmd("XCLAIM")
            .arg(self.keys.stream(&delivery.tenant))
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&delivery.stream_id)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The migration started: later triggers for the user queue a new request instead of merging
    /// into this one. Returns the request as it stands now, including any merge that landed after
    /// the delivery was read: run that one.
    pub async fn mark_started(&self, delivery: &Delivery) -> Result<MigrationRequest, StoreError> {
        let request = &delivery.request;
        let requests_key = self.keys.requests(&delivery.tenant);
        let mut conn = self.conn.clone();
        let stored: Option<Vec<u8>> = MARK_STARTED
            .key(self.keys.queued(&delivery.tenant, &request.user))
            .key(&requests_key)
            .arg(&request.correlation_id)
            .invoke_async(&mut conn)
            .await?;
        match stored {
            Some(bytes) => decode_request(&bytes).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{requests_key} field {}: {e}; delete the field with redis-cli",
                    request.correlation_id
                ))
            }),
            None => Ok(request.clone()),
        }
    }

    /// Final state reached: XACK and XDEL the entry and forget the stored request.
    pub async fn ack(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let request = &delivery.request;
        let mut conn = self.conn.clone();
        ACK.key(self.keys.stream(&delivery.tenant))
            .key(self.keys.queued(&delivery.tenant, &request.user))
            .key(self.keys.requests(&delivery.tenant))
            .arg(GROUP)
            .arg(&delivery.stream_id)
            .arg(&request.correlation_id)
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Ack the entry and park the request in the delayed set until `due_ms` (retry, lease busy,
    /// tenant disabled hold), atomically. The request keeps its correlation id; a request not yet
    /// started stays open to merges.
    pub async fn requeue_at(&self, delivery: &Delivery, due_ms: i64) -> Result<(), StoreError> {
        let request = &delivery.request;
        let mut conn = self.conn.clone();
        REQUEUE
            .key(self.keys.stream(&delivery.tenant))
            .key(self.keys.requests(&delivery.tenant))
            .key(self.keys.delayed(&delivery.tenant))
            .arg(GROUP)
            .arg(&delivery.stream_id)
            .arg(&request.correlation_id)
            .arg(encode_request(request)?)
            .arg(due_ms)
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Move every delayed request due at `now_ms` of every tenant onto its stream (atomic per
    /// batch of a tenant). Returns how many moved.
    pub async fn promote_due(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut moved_total = 0;
        for tenant in self.tenants().await? {
            loop {
                let mut conn = self.conn.clone();
                let (seen, moved): (usize, usize) = PROMOTE
                    .key(self.keys.delayed(&tenant))
                    .key(self.keys.requests(&tenant))
                    .key(self.keys.stream(&tenant))
                    .arg(now_ms)
                    .arg(PROMOTE_BATCH)
                    .invoke_async(&mut conn)
                    .await?;
                moved_total += moved;
                if seen < PROMOTE_BATCH {
                    break;
                }
            }
        }
        Ok(moved_total)
    }

    /// Queue depth per tenant: ready (stream lag), pending (delivered, not acked), delayed.
    pub async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let mut depths = Vec::new();
        for tenant in self.tenants().await? {
            let stream = self.keys.stream(&tenant);
            let mut conn = self.conn.clone();
            let (length, delayed): (u64, u64) = redis::pipe()
                .xlen(&stream)
                .zcard(self.keys.delayed(&tenant))
                .query_async(&mut conn)
                .await?;
            // Acked entries are deleted, so an empty stream has nothing pending either, and XINFO
            // would fail on a stream that was never created.
            let (ready, pending) = if length == 0 {
                (0, 0)
            } else {
                self.group_depth(&stream, length).await?
            };
            depths.push(QueueDepth {
                tenant,
                ready,
                pending,
                delayed,
            });
        }
        Ok(depths)
    }

    /// (ready, pending) of the worker group on a non-empty stream.
    async fn group_depth(&self, stream: &str, length: u64) -> Result<(u64, u64), StoreError> {
        let mut conn = self.conn.clone();
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut conn)
            .await?;
        let Some(group) = group_fields(&groups)
            .into_iter()
            .find(|g| g.get("name").and_then(field_string).as_deref() == Some(GROUP))
        else {
            // No worker has looked yet: everything on the stream is ready.
            return Ok((length, 0));
        };
        let pending = group.get("pending").and_then(field_u64).unwrap_or(0);
        // Redis reports no lag when it cannot compute it cheaply; since acked entries are
        // deleted, what is on the stream and not pending is what waits.
        let ready = group
            .get("lag")
            .and_then(field_u64)
            .unwrap_or_else(|| length.saturating_sub(pending));
        Ok((ready, pending))
    }
}

/// The per-group field maps of an XINFO GROUPS reply (RESP2 flat pairs or RESP3 maps).
fn group_fields(reply: &Value) -> Vec<HashMap<String, Value>> {
    let Value::Array(groups) = reply else {
        return Vec::new();
    };
    groups
        .iter()
        .map(|group| match group {
            Value::Array(flat) => flat
                .chunks_exact(2)
                .filter_map(|pair| field_string(&pair[0]).map(|name| (name, pair[1].clone())))
                .collect(),
            Value::Map(pairs) => pairs
                .iter()
                .filter_map(|(k, v)| field_string(k).map(|name| (name, v.clone())))
                .collect(),
            _ => HashMap::new(),
        })
        .collect()
}

fn field_string(value: &Value) -> Option<String> {
    redis::from_redis_value(value).ok()
}

fn field_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Nil => None,
        other => redis::from_redis_value(other).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mms_core::Trigger;

    fn req(source: SourceMeetingType, target: TargetMeetingType) -> MigrationRequest {
        MigrationRequest::new("t", "u@x", source, target, Trigger::Manual)
    }

    /// P1 merge rule: the merged request covers both sources and the stronger target.
    #[test]
    fn merged_request_is_the_union_and_keeps_the_queued_identity() {
        use SourceMeetingType as S;
        use TargetMeetingType as T;
        let cases = [
            (
                (S::SfB, T::Current),
                (S::SfB, T::Current),
                (S::SfB, T::Current),
            ),
            (
                (S::SfB, T::Current),
                (S::Teams, T::Current),
                (S::All, T::Current),
            ),
            (
                (S::Teams, T::Current),
                (S::Teams, T::Teams),
                (S::Teams, T::Teams),
            ),
            ((S::All, T::Teams), (S::SfB, T::Current), (S::All, T::Teams)),
        ];
        for (queued, incoming, expected) in cases {
            let queued = req(queued.0, queued.1);
            let merged = merge_requests(&queued, &req(incoming.0, incoming.1));
            assert_eq!((merged.source, merged.target), expected);
            assert_eq!(merged.correlation_id, queued.correlation_id);
        }
    }
}
