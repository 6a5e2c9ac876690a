//! The tenant supervisor (D1): one per tenant per worker, spawned on demand by the dispatcher and
//! stopped when idle.
//!
//! It decides whether a request may run now (MeetingMigrationEnabled; a user already migrating
//! here), runs at most `per_tenant` migration actors at once, turns their outcomes into stream
//! acks or requeues, and reacts to a child that died without reporting (a panic) by scheduling a
//! retry under the same retry limit.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::Utc;
use mms_core::{MigrationState, Trigger};
use mms_store::queue::Delivery;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::dispatcher::DispatcherMsg;
use crate::migration::{self, AttemptOutcome, MigrationActor, MigrationArgs};
use crate::retry::{RetryDecision, RetryPolicy};
use crate::Services;

pub enum SupervisorMsg {
    /// A request delivered from the stream.
    Run(Box<Delivery>),
    /// A migration actor finished its attempt.
    ChildDone {
        child: ActorId,
        outcome: AttemptOutcome,
    },
    /// Periodic: stop when idle long enough.
    IdleCheck,
}

pub struct TenantSupervisor;

pub struct SupervisorArgs {
    pub tenant: String,
    pub services: Services,
    pub dispatcher: ActorRef<DispatcherMsg>,
}

pub struct SupervisorState {
    tenant: String,
    services: Services,
    dispatcher: ActorRef<DispatcherMsg>,
    retry: RetryPolicy,
    waiting: VecDeque<Delivery>,
    running: HashMap<ActorId, Delivery>,
    idle_since: std::time::Instant,
}

impl Actor for TenantSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        // At least 1 s: `MmsConfig::validate` refuses 0 at load.
        let idle = Duration::from_secs(args.services.config.concurrency.supervisor_idle_secs);
        myself.send_interval(idle / 2, || SupervisorMsg::IdleCheck);
        Ok(SupervisorState {
            retry: RetryPolicy::from_config(&args.services.config.retry),
            tenant: args.tenant,
            services: args.services,
            dispatcher: args.dispatcher,
            waiting: VecDeque::new(),
            running: HashMap::new(),
            idle_since: std::time::Instant::now(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Run(delivery) => {
                if !admit(state, &delivery).await {
                    state.dispatcher.send_message(DispatcherMsg::Finished {
                        tenant: state.tenant.clone(),
                    })?;
                } else if state.running.len() + state.waiting.len() >= per_tenant_limit(state) {
                    // The dispatcher reads only what can start, so this is a race at most; a
                    // delivery left waiting here would age into another worker's claim.
                    if let Err(e) = state.services.store.release(&delivery).await {
                        tracing::warn!(error = %e, "cannot release a delivery with no room; it will be claimed again");
                    }
                    state.dispatcher.send_message(DispatcherMsg::Finished {
                        tenant: state.tenant.clone(),
                    })?;
                } else {
                    state.waiting.push_back(*delivery);
                }
            }
            SupervisorMsg::ChildDone { child, outcome } => {
                if let Some(delivery) = state.running.remove(&child) {
                    settle(state, &delivery, outcome).await;
                    state.dispatcher.send_message(DispatcherMsg::Finished {
                        tenant: state.tenant.clone(),
                    })?;
                }
            }
            SupervisorMsg::IdleCheck => {
                let idle_for =
                    Duration::from_secs(state.services.config.concurrency.supervisor_idle_secs);
                if state.running.is_empty()
                    && state.waiting.is_empty()
                    && state.idle_since.elapsed() >= idle_for
                {
                    state
                        .dispatcher
                        .send_message(DispatcherMsg::SupervisorIdle {
                            tenant: state.tenant.clone(),
                        })?;
                }
            }
        }
        start_waiting(&myself, state).await?;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // A clean stop always follows the child's ChildDone message, which may still be queued behind
        // this (supervision events overtake messages): only a failure means the child died mid-attempt.
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                (cell, format!("migration actor failed: {err}"))
            }
            _ => return Ok(()),
        };
        if let Some(delivery) = state.running.remove(&cell.get_id()) {
            tracing::error!(tenant = %state.tenant, user = %delivery.request.user, %reason, "migration actor died");
            child_died(state, &delivery, &reason).await;
            state.dispatcher.send_message(DispatcherMsg::Finished {
                tenant: state.tenant.clone(),
            })?;
        }
        start_waiting(&myself, state).await?;
        Ok(())
    }
}

/// Whether the request may run now. A request of a disabled tenant is held (T4 manual starts
/// excepted: an explicit admin command overrides the switch, as the vendor allows).
async fn admit(state: &SupervisorState, delivery: &Delivery) -> bool {
    let store = &state.services.store;
    let req = &delivery.request;
    let settings = match store.tenant_settings(&state.tenant).await {
        Ok(s) => s.unwrap_or_else(|| mms_core::TenantSettings::defaults(&state.tenant)),
        Err(e) => {
            // Handed back in a moment rather than left pending for a claim (`claim_idle_ms`).
            tracing::warn!(error = %e, "tenant settings unavailable; request requeued");
            requeue(state, delivery, Utc::now().timestamp_millis() + 1_000).await;
            return false;
        }
    };
    if !settings.meeting_migration_enabled
        && !matches!(req.trigger, Trigger::Manual | Trigger::Undo { .. })
    {
        hold(state, delivery).await;
        return false;
    }
    let busy = state
        .running
        .values()
        .chain(state.waiting.iter())
        .any(|d| d.request.user == req.user);
    if busy {
        requeue(state, delivery, Utc::now().timestamp_millis() + 500).await;
        return false;
    }
    true
}

async fn hold(state: &SupervisorState, delivery: &Delivery) {
    let store = &state.services.store;
    let req = &delivery.request;
    let reason = format!(
        "Held: MeetingMigrationEnabled is false for tenant {}; the migration runs when it is re-enabled (set-tenant-migration-configuration --meeting-migration-enabled true)",
        state.tenant
    );
    if let Ok(Some(mut status)) = store.status(&req.tenant, &req.correlation_id).await {
        if status.held_reason.as_deref() != Some(reason.as_str()) && !status.state.is_final() {
            status.state = MigrationState::Pending;
            status.held_reason = Some(reason.clone());
            status.last_message = reason.clone();
            status.modified_date = Utc::now();
            match store.put_status_unfenced(&status).await {
                Ok(()) => {
                    // Counted once, when the request is first held, not on every recheck.
                    crate::telemetry::migration_held();
                    tracing::info!(reason = %reason, "migration held");
                    migration::history(
                        &state.services,
                        req,
                        mms_store::history::HistoryEventKind::Held,
                        &reason,
                    )
                    .await;
                }
                Err(e) => tracing::warn!(error = %e, "could not mark the request held"),
            }
        }
    }
    let recheck_ms = state.services.config.queue.hold_recheck_ms as i64;
    requeue(state, delivery, Utc::now().timestamp_millis() + recheck_ms).await;
}

async fn requeue(state: &SupervisorState, delivery: &Delivery, due_ms: i64) {
    if let Err(e) = state.services.store.requeue_at(delivery, due_ms).await {
        // The entry stays pending in the stream; it is claimed again after the idle timeout.
        tracing::warn!(error = %e, "requeue failed; the entry will be claimed again");
    }
}

async fn start_waiting(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
) -> Result<(), ActorProcessingErr> {
    let limit = per_tenant_limit(state);
    while state.running.len() < limit {
        let Some(delivery) = state.waiting.pop_front() else {
            break;
        };
        let args = MigrationArgs {
            services: state.services.clone(),
            delivery: delivery.clone(),
            retry: state.retry.clone(),
            supervisor: myself.clone(),
        };
        let (child, _) = Actor::spawn_linked(None, MigrationActor, args, myself.get_cell()).await?;
        state.running.insert(child.get_id(), delivery);
    }
    if !state.running.is_empty() || !state.waiting.is_empty() {
        state.idle_since = std::time::Instant::now();
    }
    Ok(())
}

/// Migration actors this supervisor runs at once (`concurrency.per_tenant`).
fn per_tenant_limit(state: &SupervisorState) -> usize {
    state.services.config.concurrency.per_tenant.max(1)
}

/// Turn an attempt's outcome into what happens to its stream entry.
async fn settle(state: &SupervisorState, delivery: &Delivery, outcome: AttemptOutcome) {
    let store = &state.services.store;
    let result = match outcome {
        AttemptOutcome::Final(_) | AttemptOutcome::AlreadyFinal => store.ack(delivery).await,
        AttemptOutcome::RetryAt { due_ms } => store.requeue_at(delivery, due_ms).await,
        AttemptOutcome::LeaseBusy => {
            let wait = (state.services.config.lease.ttl_ms / 4).clamp(100, 5_000) as i64;
            store
                .requeue_at(delivery, Utc::now().timestamp_millis() + wait)
                .await
        }
        // Leave the entry pending: it is claimed after the idle timeout.
        AttemptOutcome::LeaseLost => Ok(()),
        AttemptOutcome::StoreUnavailable(e) => {
            tracing::warn!(error = %e, "store unavailable; entry left for a later claim");
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not settle the stream entry; it will be claimed again");
    }
}

/// A migration actor died without reporting: count it as a failed attempt (same retry limit).
async fn child_died(state: &SupervisorState, delivery: &Delivery, reason: &str) {
    let store = &state.services.store;
    let req = &delivery.request;
    let Ok(Some(mut status)) = store.status(&req.tenant, &req.correlation_id).await else {
        requeue(state, delivery, Utc::now().timestamp_millis() + 1_000).await;
        return;
    };
    status.modified_date = Utc::now();
    // The entry is acked or requeued only once the status row says so: a row left InProgress
    // (the write refused under a live lease, or Redis gone) keeps its entry pending, and a later
    // claim settles it, so the row and the queue never disagree.
    let settled = match state.retry.after_failure(status.retry_count, Utc::now()) {
        RetryDecision::RetryAt { retry, at } => {
            status.state = MigrationState::Pending;
            status.retry_count = retry;
            status.last_message = format!(
                "Retry {retry} of {} scheduled at {}: {reason}",
                state.retry.max_retries,
                at.to_rfc3339()
            );
            match store.put_status_unfenced(&status).await {
                Ok(()) => store.requeue_at(delivery, at.timestamp_millis()).await,
                Err(e) => Err(e),
            }
        }
        RetryDecision::GiveUp => {
            status.state = MigrationState::Failed;
            status.last_message =
                format!("Failed after {} retries: {reason}", state.retry.max_retries);
            match store.put_status_unfenced(&status).await {
                Ok(()) => store.ack(delivery).await,
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "a failed migration actor could not be settled; its entry stays pending and is claimed again");
        return;
    }
    tracing::warn!(reason = %reason, state = ?status.state, "migration actor died; attempt counted");
    migration::history(
        &state.services,
        req,
        mms_store::history::HistoryEventKind::ActorFailed,
        reason,
    )
    .await;
}
