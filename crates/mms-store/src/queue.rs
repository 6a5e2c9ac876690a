//! The migration queue (P1, D3, P7): one Redis stream per tenant read through the consumer group
//! [`GROUP`], a per-tenant delayed set for coalescing holds and retries, and a per-user merge.
//!
//! How a request travels:
//! 1. [`Store::enqueue`] stores it in the tenant's `requests` hash (the authoritative copy), points
//!    `queued:<user>` at it, writes its Pending status row and either adds it to the stream or
//!    parks it in the delayed set. A second trigger for a user whose request is still queued is
//!    merged into that request instead (one migration covers both). The tenant joins the index of
//!    tenants with work and a wake-up goes on the namespace's wake stream.
//! 2. [`Store::promote_round`] moves due delayed requests onto the stream and retires tenants left
//!    with no work from the index.
//! 3. [`Store::read_within`] hands stream entries to a worker, only as many as it can start now
//!    ([`Capacity`]: per tenant and in total), tenants round-robin so that a big tenant cannot
//!    starve a small one; [`Store::claim_within`] hands a dead worker's entries to a live one.
//!    [`Store::release`] gives back an entry a worker will not start after all.
//! 4. [`Store::mark_started`] ends the merge window; [`Store::ack`] removes the finished request;
//!    [`Store::requeue_at`] parks it again for a retry.
//!
//! The poll round only looks at the index of tenants with work ([`Store::active_tenants`]), so its
//! cost follows the tenants that have something ready, pending or delayed, not every tenant ever
//! seen. Idle workers block on the wake stream ([`WakeListener`]) between rounds.
//!
//! The scripts live in `crates/mms-store/lua/queue/`, each behind a typed invoker in
//! [`scripts`]; every key of one script carries the tenant's hash tag (one Redis Cluster slot),
//! and the namespace-wide keys (tenant indexes, wake stream) are touched outside them.
//!
//! Stream entries carry `cid` (the correlation id) and `req` (the request, rmp-serde). A delivery
//! takes the request from the `requests` hash when it is there, because a merge may have widened it
//! after the entry was added; `req` keeps each entry self-describing for redis-cli and is the
//! fallback. Entries that decode neither way go to the tenant's dead-letter list, never nowhere.

mod scripts;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use mms_core::{MigrationRequest, MigrationStatus, SourceMeetingType, TargetMeetingType, Trigger};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply,
    StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, RedisError, Value};
use serde::Serialize;

use crate::connection::{BlockingConnection, MAX_BLOCK};
use crate::history::HistoryEvent;
use crate::keys::GROUP;
use crate::progress::status_json;
use crate::{Store, StoreError};
use scripts::{Ack, Create, DeadLetterMove, MarkStarted, Merge, Promote, Requeue};

/// Times [`Store::enqueue`] re-reads a user's queued request that concurrent triggers keep changing
/// before giving up with [`StoreError::Contention`].
const ENQUEUE_ATTEMPTS: usize = 16;
/// Delayed requests moved per script call: bounds how long one call blocks Redis.
const PROMOTE_BATCH: usize = 1_000;
/// Dead letters kept per tenant.
const DEAD_LETTER_CAP: isize = 1_000;
/// Wake-up entries kept on the wake stream (`MAXLEN ~`): listeners only need the ones added since
/// they last looked, a few milliseconds' worth.
const WAKE_STREAM_CAP: usize = 1_000;

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

/// How much work a worker can start now: what [`Store::read_within`] and [`Store::claim_within`]
/// may hand it. Built by the worker from its limits and what it runs; charged by the reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Most entries taken from one tenant per round (`queue.batch`): fairness between tenants.
    pub batch: usize,
    /// Migrations of one tenant the worker runs at once (`concurrency.per_tenant`).
    pub per_tenant: usize,
    /// Migrations the worker runs at once, all tenants (`concurrency.per_worker`).
    pub per_worker: usize,
    /// Requests routed and not settled yet, per tenant.
    pub running: HashMap<String, usize>,
}

impl Capacity {
    /// The capacity of a worker that runs nothing.
    pub fn idle(batch: usize, per_tenant: usize, per_worker: usize) -> Capacity {
        Capacity {
            batch,
            per_tenant,
            per_worker,
            running: HashMap::new(),
        }
    }

    /// Requests that may start now, all tenants together.
    pub fn room(&self) -> usize {
        self.per_worker
            .saturating_sub(self.running.values().sum::<usize>())
    }

    /// Requests of `tenant` that may start now (and be read this round).
    pub fn room_for(&self, tenant: &str) -> usize {
        let running = self.running.get(tenant).copied().unwrap_or(0);
        self.per_tenant
            .saturating_sub(running)
            .min(self.batch)
            .min(self.room())
    }

    /// Count `taken` more requests of `tenant` as running.
    pub fn charge(&mut self, tenant: &str, taken: usize) {
        if taken > 0 {
            *self.running.entry(tenant.to_string()).or_default() += taken;
        }
    }
}

/// What [`Store::promote_round`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromoteRound {
    /// Delayed requests moved onto their streams.
    pub moved: usize,
    /// When the earliest request still delayed falls due (ms since the epoch), over all tenants
    /// with work; `None` when nothing is delayed.
    pub next_due_ms: Option<i64>,
}

/// Blocks until work is announced on the namespace (an enqueue, a release) or a time passes:
/// how an idle worker starts a request within milliseconds instead of on its next poll round.
///
/// Every listener sees every wake-up (a plain XREAD from the last id it saw, no consumer group):
/// any idle worker may be the one with room. It reads one stream key, so it works on Redis Cluster
/// too, where one blocking read cannot span the tenants' slots.
pub struct WakeListener {
    store: Store,
    conn: Option<BlockingConnection>,
    /// The last wake-up seen; `None` until the first call, which starts from the stream's end.
    last_id: Option<String>,
}

impl WakeListener {
    /// Wait up to `max` (at most [`MAX_BLOCK`]) for a wake-up added since the last call. True
    /// when one came. A Redis error drops the connection (the next call opens a new one) and is
    /// returned, so the caller falls back to its poll interval.
    pub async fn wait(&mut self, max: Duration) -> Result<bool, StoreError> {
        let result = self.wait_inner(max).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn wait_inner(&mut self, max: Duration) -> Result<bool, StoreError> {
        let key = self.store.keys.wake();
        if self.conn.is_none() {
            self.conn = Some(self.store.client.dedicated().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        let last_id = match &self.last_id {
            Some(id) => id.clone(),
            None => {
                // Start from the newest entry, not `$`: a later call with `$` would miss what
                // was added between two calls.
                let newest: StreamRangeReply = conn.xrevrange_count(&key, "+", "-", 1).await?;
                let id = newest
                    .ids
                    .first()
                    .map_or_else(|| "0-0".to_string(), |entry| entry.id.clone());
                self.last_id = Some(id.clone());
                id
            }
        };
        let block = max.min(MAX_BLOCK).as_millis().max(1) as usize;
        let options = StreamReadOptions::default()
            .count(WAKE_STREAM_CAP)
            .block(block);
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[&key], &[&last_id], &options).await?;
        let newest = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .last()
            .map(|entry| entry.id);
        match newest {
            Some(id) => {
                self.last_id = Some(id);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

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
        let tenant = &request.tenant;
        let mut conn = self.conn.clone();
        // The tenant indexes have the namespace's hash tag, so they cannot join the tenant's
        // script. Adding to both first means a reader never misses a tenant whose request it
        // could see, even if this process dies right after the script; adding to the index of
        // tenants with work again afterwards (in `announce_work`) covers a worker that retired
        // the tenant from it in between (see `retire_if_idle`).
        redis::pipe()
            .sadd(self.keys.tenants(), tenant)
            .ignore()
            .sadd(self.keys.active_tenants(), tenant)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        let enqueued = self.place(request, delay_ms).await?;
        self.announce_work(tenant).await?;
        Ok(enqueued)
    }

    /// The merge-or-create loop of [`Store::enqueue`].
    async fn place(
        &self,
        request: &MigrationRequest,
        delay_ms: u64,
    ) -> Result<Enqueued, StoreError> {
        let (tenant, user) = (&request.tenant, &request.user);
        let mut conn = self.conn.clone();
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
        // An undo puts back what one migration replaced; merged with a migration it would be
        // neither (issue 9.2).
        if queued.trigger.undoes().is_some() || incoming.trigger.undoes().is_some() {
            let kind = |r: &MigrationRequest| {
                if r.trigger.undoes().is_some() {
                    "undo"
                } else {
                    "migration"
                }
            };
            return Err(StoreError::NotMergeable {
                user: user.clone(),
                queued: correlation.to_string(),
                queued_kind: kind(&queued),
                incoming_kind: kind(incoming),
            });
        }
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
        let done = Merge {
            tenant,
            user,
            correlation,
            old_request: &stored,
            merged_request: &encode_request(&merged)?,
            old_status: old_status.as_deref().unwrap_or_default(),
            new_status: &new_status,
            history_json: &event.to_json()?,
        }
        .invoke(&self.keys, &mut conn)
        .await?;
        Ok(done.then(|| Enqueued {
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
        let created = Create {
            tenant,
            user,
            correlation,
            request: &encode_request(request)?,
            status_json: &status_json(&status)?,
            create_ms: now.timestamp_millis(),
            delay_ms,
            due_ms,
            history_json: &event.to_json()?,
        }
        .invoke(&self.keys, &mut conn)
        .await?;
        Ok(created.then(|| Enqueued {
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

    /// Ready requests for `consumer`, at most `per_tenant` per tenant and `max_total` in all:
    /// [`Store::read_within`] for a worker with nothing running.
    pub async fn read_ready(
        &self,
        consumer: &str,
        per_tenant: usize,
        max_total: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read_within(
            consumer,
            &mut Capacity::idle(per_tenant, per_tenant, max_total),
        )
        .await
    }

    /// Ready requests for `consumer`, no more than it can start now: per tenant what
    /// [`Capacity::room_for`] allows, in all what [`Capacity::room`] allows, and the capacity is
    /// charged with what was read. Tenants with work are taken round-robin starting after the last
    /// tenant served, so a tenant with 50,000 queued cannot starve one with 5. Non-blocking;
    /// creates the consumer group on first use. Entries that do not decode go to the tenant's
    /// dead-letter list (logged), not to the caller. Taking only what starts at once is what keeps
    /// work shared: an entry read and left waiting in one worker would age until another worker's
    /// XAUTOCLAIM took it, and the two would then contend for the user's lease.
    pub async fn read_within(
        &self,
        consumer: &str,
        capacity: &mut Capacity,
    ) -> Result<Vec<Delivery>, StoreError> {
        if capacity.room() == 0 {
            return Ok(Vec::new());
        }
        let tenants = self.active_tenants().await?;
        let last_served = self
            .read_cursor
            .lock()
            .map(|cursor| cursor.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let start = last_served.map_or(0, |last| tenants.partition_point(|tenant| *tenant <= last));
        let mut deliveries = Vec::new();
        for tenant in tenants[start..].iter().chain(&tenants[..start]) {
            if capacity.room() == 0 {
                break;
            }
            let want = capacity.room_for(tenant);
            if want == 0 {
                continue;
            }
            let entries = self.read_group(tenant, consumer, want).await?;
            if entries.is_empty() {
                continue;
            }
            let counts = vec![1; entries.len()];
            let decoded = self.decode_entries(tenant, entries, counts).await?;
            capacity.charge(tenant, decoded.len());
            deliveries.extend(decoded);
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
        DeadLetterMove {
            tenant,
            stream_id: &entry.id,
            record_json: &json,
            cap: DEAD_LETTER_CAP,
        }
        .invoke(&self.keys, &mut conn)
        .await
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
        self.claim_within(
            consumer,
            min_idle_ms,
            &mut Capacity::idle(per_tenant, per_tenant, max_total),
        )
        .await
    }

    /// Claim entries pending longer than `min_idle_ms` on the streams of tenants with work, no
    /// more than `capacity` has room for (charged with what was claimed).
    pub async fn claim_within(
        &self,
        consumer: &str,
        min_idle_ms: u64,
        capacity: &mut Capacity,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut deliveries = Vec::new();
        if capacity.room() == 0 {
            return Ok(deliveries);
        }
        for tenant in self.active_tenants().await? {
            if capacity.room() == 0 {
                break;
            }
            let want = capacity.room_for(&tenant);
            if want == 0 {
                continue;
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
            let decoded = self.decode_entries(&tenant, reply.claimed, counts).await?;
            capacity.charge(&tenant, decoded.len());
            deliveries.extend(decoded);
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
        let stored = MarkStarted {
            tenant: &delivery.tenant,
            user: &request.user,
            correlation: &request.correlation_id,
        }
        .invoke(&self.keys, &mut conn)
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
        Ack {
            tenant: &delivery.tenant,
            user: &request.user,
            stream_id: &delivery.stream_id,
            correlation: &request.correlation_id,
        }
        .invoke(&self.keys, &mut conn)
        .await
    }

    /// Ack the entry and park the request in the delayed set until `due_ms` (retry, lease busy,
    /// tenant disabled hold), atomically. The request keeps its correlation id; a request not yet
    /// started stays open to merges.
    /// Bring `users`' requests held in the delayed set forward to `due_ms` (those due sooner
    /// keep their time): a fan-out job queues its users held, and releases them once the
    /// directory change they must be minted from is saved. How many were brought forward.
    pub async fn release_held(
        &self,
        tenant: &str,
        users: &[&str],
        due_ms: i64,
    ) -> Result<usize, StoreError> {
        let released = scripts::ReleaseHeld {
            tenant,
            users,
            due_ms,
        }
        .invoke(&self.keys, &mut self.conn.clone())
        .await?;
        if released > 0 {
            self.announce_work(tenant).await?;
        }
        Ok(released)
    }

    pub async fn requeue_at(&self, delivery: &Delivery, due_ms: i64) -> Result<(), StoreError> {
        let request = &delivery.request;
        let mut conn = self.conn.clone();
        Requeue {
            tenant: &delivery.tenant,
            stream_id: &delivery.stream_id,
            correlation: &request.correlation_id,
            request: &encode_request(request)?,
            due_ms,
        }
        .invoke(&self.keys, &mut conn)
        .await
    }

    /// Move every delayed request due at `now_ms` onto its stream (atomic per batch of a
    /// tenant). Returns how many moved. See [`Store::promote_round`].
    pub async fn promote_due(&self, now_ms: i64) -> Result<usize, StoreError> {
        Ok(self.promote_round(now_ms).await?.moved)
    }

    /// One promotion pass over the tenants with work (the index, not every tenant): move due
    /// delayed requests onto their streams, drop tenants left with nothing ready, pending or
    /// delayed from the index, and report when the earliest delayed request falls due, so an idle
    /// worker knows when to look again.
    pub async fn promote_round(&self, now_ms: i64) -> Result<PromoteRound, StoreError> {
        let mut round = PromoteRound::default();
        for tenant in self.active_tenants().await? {
            let left = self
                .promote_tenant(&tenant, now_ms, &mut round.moved)
                .await?;
            if left.is_idle() {
                self.retire_if_idle(&tenant, now_ms).await?;
            } else if let Some(due) = left.next_due_ms {
                round.next_due_ms = Some(round.next_due_ms.map_or(due, |d: i64| d.min(due)));
            }
        }
        Ok(round)
    }

    /// Promote one tenant's due entries, batch after batch; returns what the tenant has left.
    async fn promote_tenant(
        &self,
        tenant: &str,
        now_ms: i64,
        moved_total: &mut usize,
    ) -> Result<scripts::Promoted, StoreError> {
        let mut conn = self.conn.clone();
        loop {
            let promoted = Promote {
                tenant,
                now_ms,
                batch: PROMOTE_BATCH,
            }
            .invoke(&self.keys, &mut conn)
            .await?;
            *moved_total += promoted.moved;
            if promoted.due_seen < PROMOTE_BATCH {
                return Ok(promoted);
            }
        }
    }

    /// Take an idle tenant out of the index of tenants with work. The index lives in another slot
    /// than the tenant's keys, so this cannot be one script: remove, then look again, and put the
    /// tenant back if work arrived in between. With enqueue adding the tenant after its work is
    /// written, every interleaving leaves a tenant with work in the index.
    async fn retire_if_idle(&self, tenant: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.srem::<_, _, ()>(self.keys.active_tenants(), tenant)
            .await?;
        let mut moved = 0;
        let again = self.promote_tenant(tenant, now_ms, &mut moved).await?;
        if !again.is_idle() {
            conn.sadd::<_, _, ()>(self.keys.active_tenants(), tenant)
                .await?;
        }
        Ok(())
    }

    /// Tenants with work (ready, pending or delayed requests), sorted: what the poll round walks.
    pub async fn active_tenants(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut tenants: Vec<String> = conn.smembers(self.keys.active_tenants()).await?;
        tenants.sort();
        Ok(tenants)
    }

    /// Rebuild the index of tenants with work from every tenant's queue: for a deployment whose
    /// queues predate the index, or after an operator deleted it. Costs a few commands per tenant
    /// ever seen; a worker runs it once at start-up. Returns how many tenants have work.
    pub async fn rebuild_active_index(&self) -> Result<usize, StoreError> {
        let mut active = 0;
        let mut conn = self.conn.clone();
        for tenant in self.tenants().await? {
            let mut moved = 0;
            let left = self
                .promote_tenant(&tenant, Utc::now().timestamp_millis(), &mut moved)
                .await?;
            if !left.is_idle() {
                conn.sadd::<_, _, ()>(self.keys.active_tenants(), &tenant)
                    .await?;
                active += 1;
            }
        }
        Ok(active)
    }

    /// Put `tenant` in the index of tenants with work and wake the idle workers (one entry on the
    /// wake stream); both keys share the namespace's slot, so this is one pipeline.
    async fn announce_work(&self, tenant: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .sadd(self.keys.active_tenants(), tenant)
            .ignore()
            .cmd("XADD")
            .arg(self.keys.wake())
            .arg("MAXLEN")
            .arg("~")
            .arg(WAKE_STREAM_CAP)
            .arg("*")
            .arg("tenant")
            .arg(tenant)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// A listener for wake-ups on this namespace (see [`WakeListener`]); it opens its own
    /// connection on first use, since a blocking read must not hold up the shared one.
    pub fn wake_listener(&self) -> WakeListener {
        WakeListener {
            store: self.clone(),
            conn: None,
            last_id: None,
        }
    }

    /// Hand a delivery back to the queue at once (the NACK Redis streams lack): ack it and put
    /// its request back on the tenant's queue, due now, and wake the workers. For a delivery a
    /// worker read but will not start (no room after all, shutting down): waiting inside that
    /// worker, it would age until another worker's XAUTOCLAIM took it.
    pub async fn release(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.requeue_at(delivery, Utc::now().timestamp_millis())
            .await?;
        self.announce_work(&delivery.tenant).await
    }

    /// Queue depth of every tenant with work: ready (stream lag), pending (delivered, not
    /// acked), delayed. A tenant missing from the answer has none of the three.
    pub async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let active = self.active_tenants().await?;
        self.queue_depth_of(active).await
    }

    /// The queue depth of each of `tenants`, whether or not it has work now (a tenant without
    /// any reads as zeros): what the metrics sampler needs to bring a gauge back to 0.
    pub async fn queue_depth_of(
        &self,
        tenants: impl IntoIterator<Item = String>,
    ) -> Result<Vec<QueueDepth>, StoreError> {
        let mut depths = Vec::new();
        for tenant in tenants {
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
