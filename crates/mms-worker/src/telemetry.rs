//! What a worker tells Prometheus (D6): every metric family's name, HELP text, labels and
//! histogram buckets in one place, the helpers the actors call to record them, and the recorder
//! that renders them for the metrics port ([`crate::metrics_server`]).
//!
//! Conventions, so that `promtool check metrics` passes and dashboards aggregate across workers:
//! - every family is described once at start-up ([`describe`]), so each has a `# HELP` line;
//! - counters end in `_total`, durations are histograms in seconds (`_seconds`), never summaries
//!   (a summary's quantiles drop to 0 when idle and cannot be summed across workers);
//! - labels carry bounded vocabularies only (stage, outcome, reason, tenant): never a user, a
//!   mailbox or a correlation id;
//! - the label sets known in advance are registered at start-up with the value 0 ([`describe`]),
//!   so that `rate()` and ratios see a 0 instead of no series before the first event.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: stage executions, labels `stage` ([`STAGES`]) and `outcome` (ok, error, skipped,
/// conflict, gone, refused, no_recipients, already_sent, changed, unchanged).
pub const STAGE_TOTAL: &str = "mms_stage_total";
/// Histogram: one stage of one meeting (search: one page), seconds, label `stage`.
pub const STAGE_SECONDS: &str = "mms_stage_duration_seconds";
/// Histogram: one meeting from selection to its journaled outcome, seconds, label `outcome`.
pub const MEETING_SECONDS: &str = "mms_meeting_duration_seconds";
/// Counter: migration attempts by how they ended, label `outcome` ([`MigrationOutcome`]).
pub const MIGRATIONS_TOTAL: &str = "mms_migrations_total";
/// Histogram: duration of one migration attempt, seconds, label `outcome`.
pub const MIGRATION_SECONDS: &str = "mms_migration_duration_seconds";
/// Histogram: from the trigger (`requested_at_ms`) to the start of the first attempt, seconds.
pub const QUEUE_WAIT_SECONDS: &str = "mms_queue_wait_seconds";
/// Counter: meetings by outcome ([`MeetingOutcome`]).
pub const MEETINGS_TOTAL: &str = "mms_meetings_total";
/// Counter: failures by `scope` (meeting, migration) and `reason` ([`FailureReason`]).
pub const FAILURES_TOTAL: &str = "mms_failures_total";
/// Counter: retries scheduled, label `cause` ([`RetryCause`]).
pub const RETRIES_TOTAL: &str = "mms_retries_scheduled_total";
/// Counter: migrations that ended Failed because their last retry failed too.
pub const RETRIES_EXHAUSTED_TOTAL: &str = "mms_retries_exhausted_total";
/// Counter: mailbox leases lost in the middle of a migration (paused worker, Redis partition).
pub const LEASES_LOST_TOTAL: &str = "mms_leases_lost_total";
/// Counter: lease renewals, label `outcome` (ok, failed).
pub const LEASE_RENEWALS_TOTAL: &str = "mms_lease_renewals_total";
/// Counter: messages the SMTP relay refused, label `kind` (permanent: 5xx, transient: 4xx).
pub const SMTP_REFUSALS_TOTAL: &str = "mms_smtp_refusals_total";
/// Gauge: migrations running in this worker.
pub const ACTIVE_MIGRATIONS: &str = "mms_active_migrations";
/// Gauge: queue depth, labels `tenant` and `kind` (ready, pending, delayed).
pub const QUEUE_DEPTH: &str = "mms_queue_depth";
/// Gauge: age of the oldest request waiting on a tenant's stream (not yet handed to a worker),
/// seconds; 0 when none waits. Label `tenant`.
pub const QUEUE_OLDEST_AGE: &str = "mms_queue_oldest_age_seconds";
/// Gauge: entries in a tenant's dead-letter list (stream entries that did not decode).
pub const DEAD_LETTERS: &str = "mms_dead_letters";
/// Gauge: tenant supervisors alive in this worker.
pub const SUPERVISORS: &str = "mms_tenant_supervisors";
/// Gauge: always 1, labels `version` and `role` (worker, api, all): which build runs where.
pub const BUILD_INFO: &str = "mms_build_info";

/// The stages of [`crate::pipeline`], in order.
pub const STAGES: [&str; 4] = ["search", "rewrite", "save", "send"];

/// Stage buckets: a CalDAV page or PUT takes milliseconds on a LAN, seconds on a slow server;
/// the 30 and 60 s buckets catch requests running into the connector timeouts.
pub const STAGE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Meeting buckets: a meeting is a rewrite, a save and a send (each possibly retried on 412).
pub const MEETING_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Migration buckets: from one empty mailbox (sub-second) to a 50,000-event one (an hour).
pub const MIGRATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Queue-wait buckets: includes the coalescing hold (minutes by default) and a backlog of hours.
pub const QUEUE_WAIT_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// How a migration attempt ended (the `outcome` label of [`MIGRATIONS_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationOutcome {
    Succeeded,
    /// Final failure: permanent error, or the last retry failed.
    Failed,
    /// A transient error; a retry is scheduled.
    Retry,
    /// The tenant's MeetingMigrationEnabled is false: counted once per request when it is first
    /// held, not on every recheck.
    Held,
    /// Another worker holds the mailbox lease; requeued, no retry counted.
    LeaseBusy,
    LeaseLost,
    /// A duplicate delivery of a request already final.
    Duplicate,
    StoreUnavailable,
}

impl MigrationOutcome {
    pub const ALL: [MigrationOutcome; 8] = [
        MigrationOutcome::Succeeded,
        MigrationOutcome::Failed,
        MigrationOutcome::Retry,
        MigrationOutcome::Held,
        MigrationOutcome::LeaseBusy,
        MigrationOutcome::LeaseLost,
        MigrationOutcome::Duplicate,
        MigrationOutcome::StoreUnavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MigrationOutcome::Succeeded => "succeeded",
            MigrationOutcome::Failed => "failed",
            MigrationOutcome::Retry => "retry",
            MigrationOutcome::Held => "held",
            MigrationOutcome::LeaseBusy => "lease_busy",
            MigrationOutcome::LeaseLost => "lease_lost",
            MigrationOutcome::Duplicate => "duplicate",
            MigrationOutcome::StoreUnavailable => "store_unavailable",
        }
    }
}

/// What happened to one meeting (the `outcome` label of [`MEETINGS_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingOutcome {
    /// Rewritten, saved and the update sent.
    Updated,
    /// Already carried the target block.
    Unchanged,
    /// Not selected (past, not organized by the user, cancelled, no block).
    Skipped,
    Failed,
}

impl MeetingOutcome {
    pub const ALL: [MeetingOutcome; 4] = [
        MeetingOutcome::Updated,
        MeetingOutcome::Unchanged,
        MeetingOutcome::Skipped,
        MeetingOutcome::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MeetingOutcome::Updated => "updated",
            MeetingOutcome::Unchanged => "unchanged",
            MeetingOutcome::Skipped => "skipped",
            MeetingOutcome::Failed => "failed",
        }
    }
}

/// Where a failure happened (the `scope` label of [`FAILURES_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureScope {
    /// One meeting failed; the migration goes on with the others.
    Meeting,
    /// The whole migration ended Failed.
    Migration,
}

impl FailureScope {
    pub fn label(self) -> &'static str {
        match self {
            FailureScope::Meeting => "meeting",
            FailureScope::Migration => "migration",
        }
    }
}

/// Why something failed (the `reason` label of [`FAILURES_TOTAL`]): a small fixed vocabulary an
/// operator can act on, never the error text (unbounded, and it may name a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The mailbox server did not answer or answered 5xx.
    MailboxUnavailable,
    /// The mailbox server refused (401/403/404): configuration or permissions.
    MailboxRefused,
    /// The event could not be parsed or rewritten.
    InvalidEvent,
    /// The SMTP relay refused the message (5xx).
    SmtpRefused,
    /// The SMTP relay was unreachable or answered 4xx.
    SmtpUnavailable,
    /// The organizer is not in the directory.
    UnknownUser,
    /// X1: the user cannot be migrated (e.g. not enabled for the target platform).
    NotMigratable,
    /// The last retry failed too.
    RetriesExhausted,
    /// A bug: a panic caught in an attempt, or an invariant broken.
    Internal,
}

impl FailureReason {
    pub const ALL: [FailureReason; 9] = [
        FailureReason::MailboxUnavailable,
        FailureReason::MailboxRefused,
        FailureReason::InvalidEvent,
        FailureReason::SmtpRefused,
        FailureReason::SmtpUnavailable,
        FailureReason::UnknownUser,
        FailureReason::NotMigratable,
        FailureReason::RetriesExhausted,
        FailureReason::Internal,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureReason::MailboxUnavailable => "mailbox_unavailable",
            FailureReason::MailboxRefused => "mailbox_refused",
            FailureReason::InvalidEvent => "invalid_event",
            FailureReason::SmtpRefused => "smtp_refused",
            FailureReason::SmtpUnavailable => "smtp_unavailable",
            FailureReason::UnknownUser => "unknown_user",
            FailureReason::NotMigratable => "not_migratable",
            FailureReason::RetriesExhausted => "retries_exhausted",
            FailureReason::Internal => "internal",
        }
    }
}

/// Why a retry was scheduled (the `cause` label of [`RETRIES_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    Mailbox,
    Smtp,
    /// Redis was unreachable during the attempt.
    Store,
    /// The worker running the attempt died (its entry was claimed while InProgress).
    WorkerDied,
    /// A panic inside the attempt.
    Internal,
}

impl RetryCause {
    pub const ALL: [RetryCause; 5] = [
        RetryCause::Mailbox,
        RetryCause::Smtp,
        RetryCause::Store,
        RetryCause::WorkerDied,
        RetryCause::Internal,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RetryCause::Mailbox => "mailbox",
            RetryCause::Smtp => "smtp",
            RetryCause::Store => "store",
            RetryCause::WorkerDied => "worker_died",
            RetryCause::Internal => "internal",
        }
    }
}

/// How an SMTP relay refused a message (the `kind` label of [`SMTP_REFUSALS_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpRefusal {
    /// 5xx: the relay will not take it (relay access, policy, size): fix the configuration.
    Permanent,
    /// 4xx: try later (greylisting, rate limit, full queue).
    Transient,
}

impl SmtpRefusal {
    pub fn label(self) -> &'static str {
        match self {
            SmtpRefusal::Permanent => "permanent",
            SmtpRefusal::Transient => "transient",
        }
    }
}

/// Which role this process plays (the `role` label of [`BUILD_INFO`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    Worker,
    Api,
    /// Worker and API in one process (`mms all`).
    All,
}

impl ProcessRole {
    pub fn label(self) -> &'static str {
        match self {
            ProcessRole::Worker => "worker",
            ProcessRole::Api => "api",
            ProcessRole::All => "all",
        }
    }

    /// Whether this process runs migrations (and so exports the worker families).
    pub fn runs_worker(self) -> bool {
        matches!(self, ProcessRole::Worker | ProcessRole::All)
    }
}

/// A histogram family and its buckets, for [`install_recorder`]: how other crates (the API's
/// request latency) get buckets without this crate knowing their names.
#[derive(Debug, Clone, Copy)]
pub struct HistogramBuckets {
    pub name: &'static str,
    pub buckets: &'static [f64],
}

/// The worker's histogram families with their buckets.
pub const WORKER_HISTOGRAMS: [HistogramBuckets; 4] = [
    HistogramBuckets {
        name: STAGE_SECONDS,
        buckets: STAGE_BUCKETS,
    },
    HistogramBuckets {
        name: MEETING_SECONDS,
        buckets: MEETING_BUCKETS,
    },
    HistogramBuckets {
        name: MIGRATION_SECONDS,
        buckets: MIGRATION_BUCKETS,
    },
    HistogramBuckets {
        name: QUEUE_WAIT_SECONDS,
        buckets: QUEUE_WAIT_BUCKETS,
    },
];

/// Buckets of any histogram not listed (none today): histograms, never summaries.
const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why the recorder cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid histogram buckets for {name}: {source}")]
    Buckets {
        name: &'static str,
        #[source]
        source: BuildError,
    },
    #[error("a metrics recorder is already installed in this process (one per process): {0}")]
    Install(#[source] BuildError),
    #[error(
        "cannot serve the metrics port on {addr}: {source} (set metrics_addr or MMS_METRICS_ADDR)"
    )]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Install the process-wide Prometheus recorder: the worker's histograms plus `extra` (other
/// crates' families) with their buckets. Render it with the returned handle; the metrics server
/// does, and runs its upkeep.
pub fn install_recorder(extra: &[HistogramBuckets]) -> Result<PrometheusHandle, TelemetryError> {
    let mut builder = PrometheusBuilder::new()
        .set_buckets(DEFAULT_BUCKETS)
        .map_err(|source| TelemetryError::Buckets {
            name: "default",
            source,
        })?;
    for family in WORKER_HISTOGRAMS.iter().chain(extra) {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(family.name.to_string()), family.buckets)
            .map_err(|source| TelemetryError::Buckets {
                name: family.name,
                source,
            })?;
    }
    builder.install_recorder().map_err(TelemetryError::Install)
}

/// Describe every family this process exports (HELP lines), set [`BUILD_INFO`], and register
/// the label sets known in advance at 0. Call once, after [`install_recorder`].
pub fn describe(role: ProcessRole) {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        BUILD_INFO,
        "Always 1: the version of MMS this process runs and its role (worker, api, all)."
    );
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "role" => role.label())
        .set(1.0);
    // Every process samples the queue (the API too: KEDA and alerts keep their input when all
    // workers are gone).
    describe_gauge!(
        QUEUE_DEPTH,
        "Migration requests per tenant: ready (on the stream, not yet handed out), pending (handed to a worker, not acked), delayed (coalescing hold or retry)."
    );
    describe_gauge!(
        QUEUE_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest request waiting on the tenant's stream for a worker; 0 when none waits."
    );
    describe_gauge!(
        DEAD_LETTERS,
        "Stream entries of the tenant that did not decode and were moved to its dead-letter list."
    );
    if !role.runs_worker() {
        return;
    }
    describe_counter!(
        STAGE_TOTAL,
        "Pipeline stage executions by stage (search, rewrite, save, send) and outcome."
    );
    describe_histogram!(
        STAGE_SECONDS,
        Unit::Seconds,
        "Duration of one pipeline stage (search: one page of events; others: one meeting)."
    );
    describe_histogram!(
        MEETING_SECONDS,
        Unit::Seconds,
        "Duration of one meeting from selection to its journaled outcome."
    );
    describe_counter!(
        MIGRATIONS_TOTAL,
        "Migration attempts by outcome (succeeded, failed, retry, held, lease_busy, lease_lost, duplicate, store_unavailable); held counts a request once when it is first held."
    );
    describe_histogram!(
        MIGRATION_SECONDS,
        Unit::Seconds,
        "Duration of one migration attempt, by outcome."
    );
    describe_histogram!(
        QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "Time from a migration's trigger to the start of its first attempt (coalescing hold included)."
    );
    describe_counter!(
        MEETINGS_TOTAL,
        "Meetings by outcome (updated, unchanged, skipped, failed)."
    );
    describe_counter!(
        FAILURES_TOTAL,
        "Failures by scope (meeting, migration) and reason."
    );
    describe_counter!(
        RETRIES_TOTAL,
        "Migration retries scheduled after a transient failure, by cause."
    );
    describe_counter!(
        RETRIES_EXHAUSTED_TOTAL,
        "Migrations that ended Failed because their last retry failed too."
    );
    describe_counter!(
        LEASES_LOST_TOTAL,
        "Mailbox leases lost in the middle of a migration (the worker stopped writing)."
    );
    describe_counter!(
        LEASE_RENEWALS_TOTAL,
        "Mailbox lease renewals by outcome (ok, failed)."
    );
    describe_counter!(
        SMTP_REFUSALS_TOTAL,
        "Messages the SMTP relay refused, by kind (permanent 5xx, transient 4xx)."
    );
    describe_gauge!(ACTIVE_MIGRATIONS, "Migrations running in this worker.");
    describe_gauge!(SUPERVISORS, "Tenant supervisors alive in this worker.");

    // The label sets known in advance, at 0: rates and ratios are 0, not missing, before the
    // first event (and alerts on them are defined from the start).
    for outcome in MigrationOutcome::ALL {
        metrics::counter!(MIGRATIONS_TOTAL, "outcome" => outcome.label()).absolute(0);
    }
    for outcome in MeetingOutcome::ALL {
        metrics::counter!(MEETINGS_TOTAL, "outcome" => outcome.label()).absolute(0);
    }
    for reason in FailureReason::ALL {
        for scope in [FailureScope::Meeting, FailureScope::Migration] {
            metrics::counter!(FAILURES_TOTAL, "scope" => scope.label(), "reason" => reason.label())
                .absolute(0);
        }
    }
    for cause in RetryCause::ALL {
        metrics::counter!(RETRIES_TOTAL, "cause" => cause.label()).absolute(0);
    }
    for kind in [SmtpRefusal::Permanent, SmtpRefusal::Transient] {
        metrics::counter!(SMTP_REFUSALS_TOTAL, "kind" => kind.label()).absolute(0);
    }
    for outcome in ["ok", "failed"] {
        metrics::counter!(LEASE_RENEWALS_TOTAL, "outcome" => outcome).absolute(0);
    }
    metrics::counter!(RETRIES_EXHAUSTED_TOTAL).absolute(0);
    metrics::counter!(LEASES_LOST_TOTAL).absolute(0);
    metrics::gauge!(ACTIVE_MIGRATIONS).set(0.0);
    metrics::gauge!(SUPERVISORS).set(0.0);
    // Histograms registered without a sample render empty buckets: the families exist from the
    // start, so dashboards and `histogram_quantile` have a series to work on.
    for stage in STAGES {
        let _ = metrics::histogram!(STAGE_SECONDS, "stage" => stage);
    }
    let _ = metrics::histogram!(QUEUE_WAIT_SECONDS);
}

/// A migration attempt ended: its outcome and duration. For [`MigrationOutcome::Held`] call it
/// only when the request is first held (its status gains the held reason), not on rechecks.
pub fn migration_finished(outcome: MigrationOutcome, elapsed: Duration) {
    metrics::counter!(MIGRATIONS_TOTAL, "outcome" => outcome.label()).increment(1);
    metrics::histogram!(MIGRATION_SECONDS, "outcome" => outcome.label())
        .record(elapsed.as_secs_f64());
}

/// A request was held (tenant disabled) for the first time: counts once, no duration.
pub fn migration_held() {
    metrics::counter!(MIGRATIONS_TOTAL, "outcome" => MigrationOutcome::Held.label()).increment(1);
}

/// The first attempt of a request starts: how long it waited since its trigger. Retries are not
/// counted here (their wait is the retry schedule, not the queue).
pub fn queue_waited(requested_at_ms: i64, now_ms: i64) {
    let waited = (now_ms - requested_at_ms).max(0) as f64 / 1000.0;
    metrics::histogram!(QUEUE_WAIT_SECONDS).record(waited);
}

/// One meeting reached its final outcome; `elapsed` when the meeting was worked on (not for a
/// meeting skipped at selection).
pub fn meeting_finished(outcome: MeetingOutcome, elapsed: Option<Duration>) {
    metrics::counter!(MEETINGS_TOTAL, "outcome" => outcome.label()).increment(1);
    if let Some(elapsed) = elapsed {
        metrics::histogram!(MEETING_SECONDS, "outcome" => outcome.label())
            .record(elapsed.as_secs_f64());
    }
}

/// A meeting or a migration failed, and why.
pub fn failed(scope: FailureScope, reason: FailureReason) {
    metrics::counter!(FAILURES_TOTAL, "scope" => scope.label(), "reason" => reason.label())
        .increment(1);
}

/// A retry was scheduled after a transient failure.
pub fn retry_scheduled(cause: RetryCause) {
    metrics::counter!(RETRIES_TOTAL, "cause" => cause.label()).increment(1);
}

/// The last retry failed: the migration is Failed. Counts the failure too.
pub fn retries_exhausted() {
    metrics::counter!(RETRIES_EXHAUSTED_TOTAL).increment(1);
    failed(FailureScope::Migration, FailureReason::RetriesExhausted);
}

/// The mailbox lease was lost mid-migration.
pub fn lease_lost() {
    metrics::counter!(LEASES_LOST_TOTAL).increment(1);
}

/// A lease renewal answered (`ok`) or failed (Redis unreachable, lease taken).
pub fn lease_renewed(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!(LEASE_RENEWALS_TOTAL, "outcome" => outcome).increment(1);
}

/// The SMTP relay refused a message.
pub fn smtp_refused(kind: SmtpRefusal) {
    metrics::counter!(SMTP_REFUSALS_TOTAL, "kind" => kind.label()).increment(1);
}

/// One stage of one migration: a tracing span (`stage`, with the stage's name) to run the stage's
/// work in, and the stage's duration and outcome recorded as metrics when it finishes (D5, D6).
pub struct StageTimer {
    stage: &'static str,
    started: std::time::Instant,
    span: tracing::Span,
}

impl StageTimer {
    pub fn start(stage: &'static str) -> Self {
        StageTimer {
            stage,
            started: std::time::Instant::now(),
            span: tracing::info_span!("stage", stage),
        }
    }

    /// The stage's span, to instrument its futures with or to enter around synchronous work.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    pub fn finish(self, outcome: &'static str) {
        let seconds = self.started.elapsed().as_secs_f64();
        tracing::debug!(parent: &self.span, outcome, seconds, "stage finished");
        metrics::histogram!(STAGE_SECONDS, "stage" => self.stage).record(seconds);
        metrics::counter!(STAGE_TOTAL, "stage" => self.stage, "outcome" => outcome).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets must be strictly increasing, or the exporter renders a histogram Prometheus
    /// rejects.
    #[test]
    fn buckets_increase() {
        for family in WORKER_HISTOGRAMS {
            assert!(
                family.buckets.windows(2).all(|w| w[0] < w[1]),
                "{} buckets increase",
                family.name
            );
        }
    }

    /// Every label value is a snake_case word: bounded, and no user data can slip in.
    #[test]
    fn label_vocabularies_are_snake_case() {
        let labels = MigrationOutcome::ALL
            .iter()
            .map(|o| o.label())
            .chain(MeetingOutcome::ALL.iter().map(|o| o.label()))
            .chain(FailureReason::ALL.iter().map(|r| r.label()))
            .chain(RetryCause::ALL.iter().map(|c| c.label()));
        for label in labels {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
        }
    }
}
