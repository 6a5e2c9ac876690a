//! The dispatcher: the root actor of a worker process (D3).
//!
//! A poll loop asks it for a round every time the previous round found work (or after the idle
//! interval when it did not). A round: move due delayed requests (coalescing holds, retries) back
//! to their streams; claim entries a dead worker left pending; read ready entries fairly across
//! tenants, no more than this process has room for; route each to its tenant's supervisor,
//! spawning the supervisor on demand.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use mms_store::queue::Delivery;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::supervisor::{SupervisorArgs, SupervisorMsg, TenantSupervisor};
use crate::telemetry::{ACTIVE_MIGRATIONS, QUEUE_DEPTH, SUPERVISORS};
use crate::Services;

pub enum DispatcherMsg {
    /// Do one round; reply with how many requests were routed.
    Poll(RpcReplyPort<usize>),
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
}

impl DispatcherState {
    fn total_in_flight(&self) -> usize {
        self.in_flight.values().sum()
    }
}

impl Actor for Dispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = Services;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        services: Services,
    ) -> Result<DispatcherState, ActorProcessingErr> {
        Ok(DispatcherState {
            services,
            supervisors: HashMap::new(),
            in_flight: HashMap::new(),
            last_claim: None,
            last_depth: None,
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
                let routed = match poll_round(&myself, state).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "queue round failed (Redis unavailable?); retrying");
                        0
                    }
                };
                let _ = reply.send(routed);
            }
            DispatcherMsg::Finished { tenant } => {
                if let Some(n) = state.in_flight.get_mut(&tenant) {
                    *n = n.saturating_sub(1);
                }
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
) -> Result<usize, mms_store::StoreError> {
    let services = state.services.clone();
    let store = &services.store;
    let cfg = &services.config;
    store.promote_due(Utc::now().timestamp_millis()).await?;
    if state
        .last_depth
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
    {
        state.last_depth = Some(Instant::now());
        for depth in store.queue_depth().await? {
            metrics::gauge!(QUEUE_DEPTH, "tenant" => depth.tenant.clone(), "kind" => "ready")
                .set(depth.ready as f64);
            metrics::gauge!(QUEUE_DEPTH, "tenant" => depth.tenant.clone(), "kind" => "pending")
                .set(depth.pending as f64);
            metrics::gauge!(QUEUE_DEPTH, "tenant" => depth.tenant.clone(), "kind" => "delayed")
                .set(depth.delayed as f64);
        }
    }
    let room = cfg
        .concurrency
        .per_worker
        .saturating_sub(state.total_in_flight());
    if room == 0 {
        return Ok(0);
    }
    let per_tenant = cfg.queue.batch.clamp(1, room);
    let mut deliveries = Vec::new();
    let claim_every = Duration::from_millis((cfg.queue.claim_idle_ms / 2).max(100));
    if state.last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
        state.last_claim = Some(Instant::now());
        deliveries.extend(
            store
                .claim_stale(
                    &services.worker_name,
                    cfg.queue.claim_idle_ms,
                    per_tenant,
                    room,
                )
                .await?,
        );
    }
    let left = room.saturating_sub(deliveries.len());
    if left > 0 {
        deliveries.extend(
            store
                .read_ready(&services.worker_name, per_tenant, left)
                .await?,
        );
    }
    let routed = deliveries.len();
    for delivery in deliveries {
        route(myself, state, delivery).await;
    }
    Ok(routed)
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
    let (dispatcher, actor) = Actor::spawn(None, Dispatcher, services).await?;
    let (stop, mut stopped) = watch::channel(false);
    let poll_ref = dispatcher.clone();
    let poller = tokio::spawn(async move {
        loop {
            if *stopped.borrow() {
                return;
            }
            let routed = match poll_ref
                .call(DispatcherMsg::Poll, Some(Duration::from_secs(60)))
                .await
            {
                Ok(CallResult::Success(n)) => n,
                Ok(_) => 0,
                Err(_) => return,
            };
            if routed == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    });
    Ok(WorkerHandle {
        dispatcher,
        stop,
        poller,
        actor,
    })
}
