//! The migration actor (D2): one per user request, spawned and supervised by its tenant's
//! supervisor. It takes the user's mailbox lease, runs the [`pipeline`](crate::pipeline), writes the
//! final status under the lease, and reports an [`AttemptOutcome`] to its supervisor.

use std::panic::AssertUnwindSafe;

use chrono::Utc;
use futures::FutureExt;
use mms_core::{MigrationState, MigrationStatus};
use mms_store::history::HistoryEventKind;
use mms_store::queue::Delivery;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use crate::lease_keeper::LeaseKeeper;
use crate::pipeline::{self, Attempt, RunError};
use crate::retry::{RetryDecision, RetryPolicy};
use crate::supervisor::SupervisorMsg;
use crate::telemetry::{self, FailureReason, FailureScope, MigrationOutcome, RetryCause};
use crate::Services;

/// How an attempt ended, as the supervisor needs to know to ack or requeue the stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Succeeded or Failed, written: ack.
    Final(MigrationState),
    /// A transient failure; the status says which retry runs when: requeue at `due_ms`.
    RetryAt { due_ms: i64 },
    /// Another worker holds the user's mailbox: requeue soon, no retry counted.
    LeaseBusy,
    /// The lease was lost mid-run: write nothing more, leave the entry for whoever holds the lease.
    LeaseLost,
    /// This request had already reached a final state (a duplicate delivery): ack.
    AlreadyFinal,
    /// Redis was unreachable before anything started: requeue by leaving the entry pending.
    StoreUnavailable(String),
}

pub struct MigrationActor;

pub struct MigrationArgs {
    pub services: Services,
    pub delivery: Delivery,
    pub retry: RetryPolicy,
    pub supervisor: ActorRef<SupervisorMsg>,
}

pub enum MigrationMsg {
    Run,
}

impl Actor for MigrationActor {
    type Msg = MigrationMsg;
    type State = MigrationArgs;
    type Arguments = MigrationArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: MigrationArgs,
    ) -> Result<MigrationArgs, ActorProcessingErr> {
        Ok(args)
    }

    /// The work starts once the actor is running (ractor's idiom: `pre_start` only builds state).
    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut MigrationArgs,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_message(MigrationMsg::Run)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        _msg: MigrationMsg,
        state: &mut MigrationArgs,
    ) -> Result<(), ActorProcessingErr> {
        let req = &state.delivery.request;
        let span = tracing::info_span!("migration", tenant = %req.tenant, user = %req.user, correlation_id = %req.correlation_id);
        let started = std::time::Instant::now();
        let outcome = run_attempt(&state.services, &state.delivery, &state.retry)
            .instrument(span)
            .await;
        let label = match &outcome {
            AttemptOutcome::Final(MigrationState::Succeeded) => MigrationOutcome::Succeeded,
            AttemptOutcome::Final(_) => MigrationOutcome::Failed,
            AttemptOutcome::RetryAt { .. } => MigrationOutcome::Retry,
            AttemptOutcome::LeaseBusy => MigrationOutcome::LeaseBusy,
            AttemptOutcome::LeaseLost => {
                telemetry::lease_lost();
                MigrationOutcome::LeaseLost
            }
            AttemptOutcome::AlreadyFinal => MigrationOutcome::Duplicate,
            AttemptOutcome::StoreUnavailable(_) => MigrationOutcome::StoreUnavailable,
        };
        telemetry::migration_finished(label, started.elapsed());
        state.supervisor.send_message(SupervisorMsg::ChildDone {
            child: myself.get_id(),
            outcome,
        })?;
        myself.stop(None);
        Ok(())
    }
}

/// One attempt at one request.
pub async fn run_attempt(
    services: &Services,
    delivery: &Delivery,
    retry: &RetryPolicy,
) -> AttemptOutcome {
    let store = &services.store;
    let req = &delivery.request;
    let cfg = &services.config;
    let lease = match store
        .acquire_lease(
            &req.tenant,
            &req.user,
            &services.worker_name,
            cfg.lease.ttl_ms,
        )
        .await
    {
        Ok(Some(lease)) => lease,
        Ok(None) => return AttemptOutcome::LeaseBusy,
        Err(e) => return AttemptOutcome::StoreUnavailable(e.to_string()),
    };
    let keeper = LeaseKeeper::start(
        store.clone(),
        lease.clone(),
        delivery.clone(),
        services.worker_name.clone(),
        cfg.lease.ttl_ms,
        cfg.lease.renew_divisor,
    );
    let outcome = run_under_lease(services, delivery, retry, &lease, &keeper).await;
    if outcome != AttemptOutcome::LeaseLost {
        if let Err(e) = store.release_lease(&lease).await {
            // It expires by itself after its TTL.
            tracing::warn!(error = %e, "could not release the mailbox lease");
        }
    }
    outcome
}

async fn run_under_lease(
    services: &Services,
    delivery: &Delivery,
    retry: &RetryPolicy,
    lease: &mms_store::lease::Lease,
    keeper: &LeaseKeeper,
) -> AttemptOutcome {
    let store = &services.store;
    let now = Utc::now();
    // The stored request may carry triggers merged after this delivery was read: run that one,
    // and read the status only now, so that the merge's new types are not overwritten.
    let request = match store.mark_started(delivery).await {
        Ok(request) => request,
        Err(e) => return AttemptOutcome::StoreUnavailable(e.to_string()),
    };
    let req = &request;
    let existing = match store.status(&req.tenant, &req.correlation_id).await {
        Ok(s) => s,
        Err(e) => return AttemptOutcome::StoreUnavailable(e.to_string()),
    };
    let mut status = match existing {
        Some(s) if s.state.is_final() => return AttemptOutcome::AlreadyFinal,
        Some(s) => s,
        None => MigrationStatus::pending(req, "", now),
    };
    if status.state == MigrationState::InProgress && delivery.delivery_count > 1 {
        // A worker died in the middle of this request (its entry was claimed while InProgress;
        // live workers keep their entries from being claimed). That was an attempt too: a
        // mailbox that kills every worker that opens it must end Failed, not loop forever.
        let reason = format!(
            "the worker running it died ({} deliveries)",
            delivery.delivery_count
        );
        match retry.after_failure(status.retry_count, Utc::now()) {
            RetryDecision::RetryAt { retry: n, .. } => status.retry_count = n,
            RetryDecision::GiveUp => {
                status.state = MigrationState::Failed;
                status.last_message =
                    format!("Failed after {} retries: {reason}", retry.max_retries);
                status.modified_date = Utc::now();
                return match store.write_status(lease, &status).await {
                    Ok(()) => {
                        history(
                            services,
                            req,
                            HistoryEventKind::Failed,
                            &status.last_message,
                        )
                        .await;
                        AttemptOutcome::Final(MigrationState::Failed)
                    }
                    Err(mms_store::StoreError::LeaseLost { .. }) => AttemptOutcome::LeaseLost,
                    Err(e) => AttemptOutcome::StoreUnavailable(e.to_string()),
                };
            }
        }
        history(
            services,
            req,
            HistoryEventKind::Resumed,
            &format!("Resumed after {reason}"),
        )
        .await;
    }
    let attempt = Attempt {
        services,
        request: req,
        lease,
        keeper,
        now,
    };
    let run = async {
        let (organizer, bridge) = pipeline::load_organizer(services, req).await?;
        status.user_id = organizer.user_id.clone();
        status.state = MigrationState::InProgress;
        status.held_reason = None;
        status.last_message = format!(
            "Started by {} (attempt {})",
            services.worker_name,
            status.retry_count + 1
        );
        status.modified_date = Utc::now();
        store.write_status(lease, &status).await?;
        history(
            services,
            req,
            HistoryEventKind::Started,
            &status.last_message,
        )
        .await;
        if status.retry_count == 0 && delivery.delivery_count <= 1 {
            telemetry::queue_waited(req.requested_at_ms, Utc::now().timestamp_millis());
        }
        tracing::info!(
            attempt = status.retry_count + 1,
            trigger = %req.trigger,
            source = ?req.source,
            target = ?req.target,
            worker = %services.worker_name,
            "migration started"
        );
        let context = pipeline::MailboxContext {
            organizer: &organizer,
            bridge: bridge.as_ref(),
            notifier: pipeline::notifier(services, &req.user).await?,
            pending: store.pending_updates(&req.tenant, &req.user).await?,
        };
        match req.trigger.undoes() {
            Some(undone) => {
                crate::undo::undo_mailbox(&attempt, &context, &mut status, undone).await
            }
            None => pipeline::migrate_mailbox(&attempt, &context, &mut status).await,
        }
    };
    // A panic on some meeting's data is a failed attempt like any other: caught here, it goes
    // through the retry policy and the fenced status write, and the lease is released.
    let result = match AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %what, "migration attempt panicked");
            Err(RunError::Panic(what))
        }
    };
    let outcome = match result {
        Ok(tally) => {
            status.state = MigrationState::Succeeded;
            status.last_message = pipeline::summary_message(&status, tally.skipped());
            AttemptOutcome::Final(MigrationState::Succeeded)
        }
        Err(RunError::LeaseLost) => return AttemptOutcome::LeaseLost,
        Err(e) if e.is_permanent() => {
            telemetry::failed(FailureScope::Migration, failure_reason(&e));
            status.state = MigrationState::Failed;
            status.last_message = error_chain(&e);
            AttemptOutcome::Final(MigrationState::Failed)
        }
        Err(e) => {
            let message = error_chain(&e);
            match retry.after_failure(status.retry_count, Utc::now()) {
                RetryDecision::RetryAt { retry: n, at } => {
                    telemetry::retry_scheduled(retry_cause(&e));
                    status.state = MigrationState::Pending;
                    status.retry_count = n;
                    status.last_message = format!(
                        "Retry {n} of {} scheduled at {}: {message}",
                        retry.max_retries,
                        at.to_rfc3339()
                    );
                    AttemptOutcome::RetryAt {
                        due_ms: at.timestamp_millis(),
                    }
                }
                RetryDecision::GiveUp => {
                    telemetry::retries_exhausted();
                    telemetry::failed(FailureScope::Migration, FailureReason::RetriesExhausted);
                    status.state = MigrationState::Failed;
                    status.last_message =
                        format!("Failed after {} retries: {message}", retry.max_retries);
                    AttemptOutcome::Final(MigrationState::Failed)
                }
            }
        }
    };
    status.modified_date = Utc::now();
    match store.write_status(lease, &status).await {
        Ok(()) => {}
        Err(mms_store::StoreError::LeaseLost { .. }) => return AttemptOutcome::LeaseLost,
        Err(e) => return AttemptOutcome::StoreUnavailable(e.to_string()),
    }
    let event = match status.state {
        MigrationState::Succeeded => {
            tracing::info!(
                total = status.total_meeting,
                succeeded = status.succeeded_meeting,
                failed = status.failed_meeting,
                updates = status.invites_update,
                "migration succeeded"
            );
            HistoryEventKind::Succeeded
        }
        MigrationState::Failed => {
            tracing::warn!(
                total = status.total_meeting,
                failed = status.failed_meeting,
                reason = %status.last_message,
                "migration failed"
            );
            HistoryEventKind::Failed
        }
        _ => {
            tracing::info!(retry = status.retry_count, reason = %status.last_message, "migration retry scheduled");
            HistoryEventKind::RetryScheduled
        }
    };
    history(services, req, event, &status.last_message).await;
    outcome
}

/// The `reason` label of a failed migration (no identity in labels).
fn failure_reason(e: &RunError) -> FailureReason {
    match e {
        RunError::Mailbox(m) if m.is_permanent() => FailureReason::MailboxRefused,
        RunError::Mailbox(_) => FailureReason::MailboxUnavailable,
        RunError::Organizer(text) if text.contains("not in the directory") => {
            FailureReason::UnknownUser
        }
        RunError::Organizer(_) => FailureReason::NotMigratable,
        RunError::Send { .. } | RunError::UpdatesOwed { .. } => FailureReason::SmtpRefused,
        _ => FailureReason::Internal,
    }
}

/// The `cause` label of a scheduled retry.
fn retry_cause(e: &RunError) -> RetryCause {
    match e {
        RunError::Mailbox(_) | RunError::Conflicts(_) => RetryCause::Mailbox,
        RunError::Send { .. } | RunError::UpdatesOwed { .. } => RetryCause::Smtp,
        RunError::Store(_) => RetryCause::Store,
        _ => RetryCause::Internal,
    }
}

/// The error and its causes, one after the other: what LastMessage shows an admin.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// History is best-effort: a migration does not fail because its history line could not be written.
pub async fn history(
    services: &Services,
    req: &mms_core::MigrationRequest,
    event: HistoryEventKind,
    message: &str,
) {
    let ev = mms_store::history::HistoryEvent {
        at: Utc::now(),
        correlation_id: req.correlation_id.clone(),
        event,
        message: message.to_string(),
    };
    if let Err(e) = services
        .store
        .append_history(&req.tenant, &req.user, &ev)
        .await
    {
        tracing::warn!(error = %e, "history not written");
    }
}
