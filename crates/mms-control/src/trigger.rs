//! Carrying out a rule's verdict: queue the request, or record why nothing was queued, and always
//! leave a line in the user's transaction history (M2, "every trigger ... with times").

use mms_core::history::HistoryEventKind;
use mms_core::MigrationRequest;
use mms_store::{HistoryEvent, Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules::{Verdict, VerdictKind};

/// What became of one user's trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TriggerResult {
    /// A new migration request was queued.
    Queued,
    /// Joined the user's request that was already queued (one migration covers both).
    Merged,
    /// An exclusion (X1, X2) applies: nothing queued.
    Refused,
    /// The rule or a tenant switch says nothing migrates.
    NotTriggered,
}

/// One user's outcome, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerOutcome {
    pub user: String,
    /// Row of the requirement tables: T1a, T2e, T2-no, T3, T4, X1, X2...
    pub rule: String,
    pub result: TriggerResult,
    /// The migration that will run, when one was queued or merged into.
    #[serde(default)]
    pub correlation_id: Option<String>,
    pub message: String,
}

/// Carry out `verdict` for `tenant`: `cause` names the event or command in the history;
/// `delay_ms` is the coalescing hold (0 for a manual start).
pub async fn carry_out(
    store: &Store,
    tenant: &str,
    cause: &str,
    verdict: &Verdict,
    delay_ms: u64,
) -> Result<TriggerOutcome, StoreError> {
    let user = verdict.user.as_str();
    let outcome = |result, correlation_id, message: String| TriggerOutcome {
        user: user.to_string(),
        rule: verdict.rule.to_string(),
        result,
        correlation_id,
        message,
    };
    match &verdict.kind {
        VerdictKind::Queue {
            source,
            target,
            trigger,
            note,
        } => {
            let mut message = format!(
                "{}: {cause} (source {source}, target {target})",
                verdict.rule
            );
            if let Some(note) = note {
                message = format!("{message}; {note}");
            }
            store
                .append_history(
                    tenant,
                    user,
                    &HistoryEvent::now("", HistoryEventKind::Triggered, &message),
                )
                .await?;
            let request = MigrationRequest::new(tenant, user, *source, *target, trigger.clone());
            let placed = store.enqueue(&request, delay_ms).await?;
            let result = if placed.merged {
                TriggerResult::Merged
            } else {
                TriggerResult::Queued
            };
            Ok(outcome(result, Some(placed.correlation_id), message))
        }
        VerdictKind::Refused { exclusion, message } => {
            let message = format!("{exclusion}: {cause} refused: {message}");
            store
                .append_history(
                    tenant,
                    user,
                    &HistoryEvent::now("", HistoryEventKind::Refused, &message),
                )
                .await?;
            Ok(TriggerOutcome {
                rule: exclusion.to_string(),
                ..outcome(TriggerResult::Refused, None, message)
            })
        }
        VerdictKind::NotTriggered { reason } => {
            let message = format!("{}: {cause} triggered nothing: {reason}", verdict.rule);
            store
                .append_history(
                    tenant,
                    user,
                    &HistoryEvent::now("", HistoryEventKind::NotTriggered, &message),
                )
                .await?;
            Ok(outcome(TriggerResult::NotTriggered, None, message))
        }
    }
}
