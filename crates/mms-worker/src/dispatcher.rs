//! The dispatcher: the root actor of a worker process (D3).
//!
//! A poll loop asks it for a round every time the previous round found work. When a round finds
//! none, the loop waits for the first of: a wake-up on the namespace's wake stream (an enqueue
//! anywhere in the cluster), a migration of this worker settling (room freed), the earliest
//! delayed request falling due, or the idle interval (`queue.block_ms`, for claims and anything
//! missed). A round: move due delayed requests (coalescing holds, retries) back to their streams;
//! claim entries a dead worker left pending; read ready entries fairly across tenants, only as
//! many as this worker can start now (per tenant and in total, [`Capacity`]); route each to its
//! tenant's supervisor, spawning the supervisor on demand. Every step walks only the tenants with
//! work (the store's index), so an idle round costs a few Redis calls whatever the tenant count.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mms_store::queue::{Capacity, Delivery};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::supervisor::{SupervisorArgs, SupervisorMsg, TenantSupervisor};
use crate::telemetry::{ACTIVE_MIGRATIONS, QUEUE_DEPTH, SUPERVISORS};
use crate::Services;

/// What one poll round found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Requests routed to supervisors.
    pub routed: usize,
    /// When the earliest delayed request falls due (ms since the epoch), if any.
    pub next_due_ms: Option<i64>,
}

pub enum DispatcherMsg {
    /// Do one round; reply with what it found.
    Poll(RpcReplyPort<RoundReport>),
    /// A request routed to `tenant` is settled (acked, requeued or left for a claim).
    Finished { tenant: String },
    /// The supervisor of `tenant` has been idle long enough to stop.
    SupervisorIdle { tenant: String },
    /// Which tenants have a live supervisor in this process (for operators and tests).
    Supervisors(RpcReplyPort<Vec<String>>),
    /// How many routed requests are not settled yet.
    InFlight(RpcReplyPort<usize>),
}

pub struct Dispatcher;

pub struct DispatcherState {
    services: Services,
    supervisors: HashMap<String, ActorRef<SupervisorMsg>>,
    in_flight: HashMap<String, usize>,
    last_claim: Option<Instant>,
    last_depth: Option<Instant>,
    /// Tenants whose queue-depth gauges were last set non-zero (set to zero once they go idle).
    depth_reported: HashSet<String>,
    /// Signalled when a routed request settles: room freed, the poll loop looks again at once.
    room_freed: Arc<Notify>,
}

impl DispatcherState {
    fn total_in_flight(&self) -> usize {
        self.in_flight.values().sum()
    }
}

impl Actor for Dispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = (Services, Arc<Notify>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (services, room_freed): (Services, Arc<Notify>),
    ) -> Result<DispatcherState, ActorProcessingErr> {
        Ok(DispatcherState {
            services,
            supervisors: HashMap::new(),
            in_flight: HashMap::new(),
            last_claim: None,
            last_depth: None,
            depth_reported: HashSet::new(),
            room_freed,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: DispatcherMsg,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatcherMsg::Poll(reply) => {
                let report = match poll_round(&myself, state).await {
                    Ok(report) => report,
                    Err(e) => {
                        tracing::warn!(error = %e, "queue round failed (Redis unavailable?); retrying");
                        RoundReport::default()
                    }
                };
                let _ = reply.send(report);
            }
            DispatcherMsg::Finished { tenant } => {
                if let Some(n) = state.in_flight.get_mut(&tenant) {
                    *n = n.saturating_sub(1);
                }
                state.room_freed.notify_one();
            }
            DispatcherMsg::InFlight(reply) => {
                let _ = reply.send(state.total_in_flight());
            }
            DispatcherMsg::Supervisors(reply) => {
                let mut tenants: Vec<String> = state.supervisors.keys().cloned().collect();
                tenants.sort();
                let _ = reply.send(tenants);
            }
            DispatcherMsg::SupervisorIdle { tenant } => {
                if state.in_flight.get(&tenant).copied().unwrap_or(0) == 0 {
                    if let Some(sup) = state.supervisors.remove(&tenant) {
                        sup.stop(Some("idle".into()));
                    }
                    state.in_flight.remove(&tenant);
                }
            }
        }
        metrics::gauge!(ACTIVE_MIGRATIONS).set(state.total_in_flight() as f64);
        metrics::gauge!(SUPERVISORS).set(state.supervisors.len() as f64);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, _)
        | SupervisionEvent::ActorTerminated(cell, _, _) = &event
        {
            let gone: Vec<String> = state
                .supervisors
                .iter()
                .filter(|(_, r)| r.get_id() == cell.get_id())
                .map(|(t, _)| t.clone())
                .collect();
            for tenant in gone {
                if let SupervisionEvent::ActorFailed(_, err) = &event {
                    tracing::error!(%tenant, error = %err, "tenant supervisor failed; its requests will be claimed again");
                }
                state.supervisors.remove(&tenant);
                state.in_flight.remove(&tenant);
            }
        }
        Ok(())
    }
}

async fn poll_round(
    myself: &ActorRef<DispatcherMsg>,
    state: &mut DispatcherState,
) -> Result<RoundReport, mms_store::StoreError> {
    let services = state.services.clone();
    let store = &services.store;
    let cfg = &services.config;
    let promoted = store.promote_round(Utc::now().timestamp_millis()).await?;
    if state
        .last_depth
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
    {
        state.last_depth = Some(Instant::now());
        report_depth(store, &mut state.depth_reported).await?;
    }
    let mut capacity = Capacity {
        batch: cfg.queue.batch.max(1),
        per_tenant: cfg.concurrency.per_tenant.max(1),
        per_worker: cfg.concurrency.per_worker,
        running: state.in_flight.clone(),
    };
    let mut report = RoundReport {
        routed: 0,
        next_due_ms: promoted.next_due_ms,
    };
    if capacity.room() == 0 {
        return Ok(report);
    }
    let mut deliveries = Vec::new();
    let claim_every = Duration::from_millis((cfg.queue.claim_idle_ms / 2).max(100));
    if state.last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
        state.last_claim = Some(Instant::now());
        deliveries.extend(
            store
                .claim_within(
                    &services.worker_name,
                    cfg.queue.claim_idle_ms,
                    &mut capacity,
                )
                .await?,
        );
    }
    deliveries.extend(
        store
            .read_within(&services.worker_name, &mut capacity)
            .await?,
    );
    report.routed = deliveries.len();
    for delivery in deliveries {
        route(myself, state, delivery).await;
    }
    Ok(report)
}

/// Set the queue-depth gauges of the tenants with work, and zero those of tenants that had work
/// at the last report and have none now (they are no longer in the store's index).
async fn report_depth(
    store: &mms_store::Store,
    reported: &mut HashSet<String>,
) -> Result<(), mms_store::StoreError> {
    let depths = store.queue_depth().await?;
    let now: HashSet<String> = depths.iter().map(|d| d.tenant.clone()).collect();
    for gone in reported.difference(&now) {
        for kind in ["ready", "pending", "delayed"] {
            metrics::gauge!(QUEUE_DEPTH, "tenant" => gone.clone(), "kind" => kind).set(0.0);
        }
    }
    for depth in depths {
        metrics::gauge!(QUEUE_DEPTH, "tenant" => depth.tenant.clone(), "kind" => "ready")
            .set(depth.ready as f64);
        metrics::gauge!(QUEUE_DEPTH, "tenant" => depth.tenant.clone(), "kind" => "pending")
            .set(depth.pending as f64);
        metrics::gauge!(QUEUE_DEPTH, "tenant" => depth.tenant.clone(), "kind" => "delayed")
            .set(depth.delayed as f64);
    }
    *reported = now;
    Ok(())
}

async fn route(myself: &ActorRef<DispatcherMsg>, state: &mut DispatcherState, delivery: Delivery) {
    let tenant = delivery.request.tenant.clone();
    let mut message = SupervisorMsg::Run(Box::new(delivery));
    for _ in 0..2 {
        let supervisor = match state.supervisors.get(&tenant) {
            Some(s) => s.clone(),
            None => {
                let args = SupervisorArgs {
                    tenant: tenant.clone(),
                    services: state.services.clone(),
                    dispatcher: myself.clone(),
                };
                match Actor::spawn_linked(None, TenantSupervisor, args, myself.get_cell()).await {
                    Ok((s, _)) => {
                        state.supervisors.insert(tenant.clone(), s.clone());
                        s
                    }
                    Err(e) => {
                        tracing::error!(%tenant, error = %e, "cannot spawn tenant supervisor; entry left for a later claim");
                        return;
                    }
                }
            }
        };
        match supervisor.send_message(message) {
            Ok(()) => {
                *state.in_flight.entry(tenant).or_default() += 1;
                return;
            }
            Err(ractor::MessagingErr::SendErr(returned)) => {
                // The supervisor stopped in between: forget it and spawn a new one.
                state.supervisors.remove(&tenant);
                message = returned;
            }
            Err(e) => {
                tracing::error!(%tenant, error = %e, "cannot route request; entry left for a later claim");
                return;
            }
        }
    }
}

/// A running worker: its dispatcher and poll loop. Dropping it does not stop it; call [`WorkerHandle::shutdown`].
pub struct WorkerHandle {
    dispatcher: ActorRef<DispatcherMsg>,
    stop: watch::Sender<bool>,
    poller: JoinHandle<()>,
    actor: JoinHandle<()>,
}

impl WorkerHandle {
    /// Tenants with a live supervisor in this worker.
    pub async fn supervised_tenants(&self) -> Vec<String> {
        match self
            .dispatcher
            .call(DispatcherMsg::Supervisors, Some(Duration::from_secs(10)))
            .await
        {
            Ok(CallResult::Success(tenants)) => tenants,
            _ => Vec::new(),
        }
    }

    /// Stop taking new work, let the migrations under way finish (up to `grace`), then stop the
    /// actors. Stopping an actor cancels its work at whatever await point it is, possibly between
    /// SMTP's acceptance and the ledger write: draining first keeps scale-downs out of that window.
    /// Whatever is still running after `grace` stays pending in its stream and is claimed by
    /// another worker.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout_at(deadline, self.poller).await;
        while tokio::time::Instant::now() < deadline {
            match self
                .dispatcher
                .call(DispatcherMsg::InFlight, Some(Duration::from_secs(5)))
                .await
            {
                Ok(CallResult::Success(0)) | Err(_) => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        self.dispatcher.stop(Some("shutdown".into()));
        let _ = tokio::time::timeout(Duration::from_secs(5), self.actor).await;
    }
}

/// Start a worker in this process; fails only when ractor cannot spawn the dispatcher.
pub async fn run_worker(services: Services) -> Result<WorkerHandle, ractor::SpawnErr> {
    let idle = Duration::from_millis(services.config.queue.block_ms.max(10));
    // Queues written before the index of tenants with work existed (or an index an operator
    // deleted) are found again once, here; afterwards enqueue and promotion keep it.
    match services.store.rebuild_active_index().await {
        Ok(active) => tracing::debug!(active, "index of tenants with work checked"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the index of tenants with work; continuing with the index as it is")
        }
    }
    let wake = Arc::new(Notify::new());
    let (dispatcher, actor) =
        Actor::spawn(None, Dispatcher, (services.clone(), wake.clone())).await?;
    let (stop, stopped) = watch::channel(false);
    let listener = tokio::spawn(listen_for_wakes(
        services.store.wake_listener(),
        wake.clone(),
        stopped.clone(),
    ));
    let poll_ref = dispatcher.clone();
    let poller = tokio::spawn(poll_loop(poll_ref, wake, idle, stopped, listener));
    Ok(WorkerHandle {
        dispatcher,
        stop,
        poller,
        actor,
    })
}

/// Ask the dispatcher for rounds: at once while rounds find work, otherwise after the first of a
/// wake-up, the earliest delayed request's due time, or `idle`.
async fn poll_loop(
    dispatcher: ActorRef<DispatcherMsg>,
    wake: Arc<Notify>,
    idle: Duration,
    mut stopped: watch::Receiver<bool>,
    listener: JoinHandle<()>,
) {
    loop {
        if *stopped.borrow() {
            break;
        }
        let report = match dispatcher
            .call(DispatcherMsg::Poll, Some(Duration::from_secs(60)))
            .await
        {
            Ok(CallResult::Success(report)) => report,
            Ok(_) => RoundReport::default(),
            Err(_) => break,
        };
        if report.routed > 0 {
            continue;
        }
        let until_due = report.next_due_ms.map(|due| {
            let wait = due.saturating_sub(Utc::now().timestamp_millis()).max(0);
            Duration::from_millis(wait as u64)
        });
        let pause = until_due.map_or(idle, |due| due.min(idle));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
            _ = stopped.changed() => break,
        }
    }
    listener.abort();
}

/// Turn wake-ups on the namespace's wake stream into a local notification for the poll loop.
/// When Redis cannot be reached the loop keeps polling on its idle interval, so this only waits
/// a moment before listening again.
async fn listen_for_wakes(
    mut listener: mms_store::WakeListener,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    // Each wait blocks in Redis for up to this long (the store's limit); the poll loop keeps its
    // own timers, so this only bounds how many idle reads the listener makes.
    let block = Duration::from_secs(2);
    loop {
        let outcome = tokio::select! {
            outcome = listener.wait(block) => outcome,
            _ = stopped.changed() => return,
        };
        match outcome {
            Ok(true) => wake.notify_one(),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, "wake stream unavailable; polling on the idle interval");
                tokio::select! {
                    _ = tokio::time::sleep(block) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    }
}
