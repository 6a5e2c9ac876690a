//! Metric names (one place, so dashboards and code agree) and the Prometheus exporter (D6).

use std::net::SocketAddr;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Counter: stage executions, labels `stage` (search, rewrite, save, send) and `outcome`.
pub const STAGE_TOTAL: &str = "mms_stage_total";
/// Histogram: stage duration in seconds, label `stage`.
pub const STAGE_SECONDS: &str = "mms_stage_duration_seconds";
/// Counter: migrations that ended an attempt, label `outcome` (succeeded, failed, retry, lease_busy, lease_lost, held).
pub const MIGRATIONS_TOTAL: &str = "mms_migrations_total";
/// Histogram: duration of one migration attempt, seconds.
pub const MIGRATION_SECONDS: &str = "mms_migration_duration_seconds";
/// Counter: meetings by outcome (updated, unchanged, skipped, failed).
pub const MEETINGS_TOTAL: &str = "mms_meetings_total";
/// Gauge: migrations running in this worker.
pub const ACTIVE_MIGRATIONS: &str = "mms_active_migrations";
/// Gauge: queue depth, labels `tenant` and `kind` (ready, pending, delayed).
pub const QUEUE_DEPTH: &str = "mms_queue_depth";
/// Gauge: tenant supervisors alive in this worker.
pub const SUPERVISORS: &str = "mms_tenant_supervisors";

/// Serve `/metrics` on `addr` for this process. Fails when the address is taken or a recorder is
/// already installed (one exporter per process).
pub fn install_exporter(addr: SocketAddr) -> Result<(), String> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("cannot serve /metrics on {addr}: {e}"))
}

/// One stage of one migration: a tracing span (`stage`, with the stage's name) to run the stage's
/// work in, and the stage's duration and outcome recorded as metrics when it finishes (D5, D6).
pub struct StageTimer {
    stage: &'static str,
    started: Instant,
    span: tracing::Span,
}

impl StageTimer {
    pub fn start(stage: &'static str) -> Self {
        StageTimer {
            stage,
            started: Instant::now(),
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
