//! The metrics port of every MMS process (`metrics_addr`, 0.0.0.0:9464 by default): what
//! Prometheus scrapes and what Kubernetes probes.
//!
//! - `GET /metrics`: the Prometheus text format of this process, process metrics (CPU, memory,
//!   file descriptors, from the `metrics-process` crate) refreshed at each scrape.
//! - `GET /healthz`: 200 `ok` while the process runs (liveness).
//! - `GET /readyz`: 200 when [`crate::health::readiness`] passes, 503 otherwise, with a JSON body
//!   naming each check and what to fix.
//!
//! It is a small axum server rather than the exporter's own listener because the exporter's
//! listener serves nothing but the metrics, and the probes belong on the same port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use mms_store::Store;
use tokio::task::JoinHandle;

use crate::telemetry::{ProcessRole, TelemetryError};

/// How often histograms are folded into their buckets between scrapes (bounds the memory of
/// samples recorded but not yet rendered).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

struct PortState {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    store: Store,
    role: ProcessRole,
}

/// A running metrics port. Its tasks stop with the runtime; [`MetricsServer::addr`] says where it
/// listens (useful with port 0 in tests).
pub struct MetricsServer {
    addr: SocketAddr,
    server: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl MetricsServer {
    /// Bind `addr` (an error when taken, so a misconfigured process stops at start-up) and serve
    /// the metrics port of a process with `role`.
    pub async fn start(
        addr: SocketAddr,
        handle: PrometheusHandle,
        store: Store,
        role: ProcessRole,
    ) -> Result<MetricsServer, TelemetryError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let process = metrics_process::Collector::default();
        process.describe();
        let state = Arc::new(PortState {
            handle: handle.clone(),
            process,
            store,
            role,
        });
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(state);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics port stopped");
            }
        });
        let upkeep = tokio::spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP_EVERY).await;
                handle.run_upkeep();
            }
        });
        Ok(MetricsServer {
            addr,
            server,
            upkeep,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.abort();
        self.upkeep.abort();
    }
}

async fn metrics(State(state): State<Arc<PortState>>) -> impl IntoResponse {
    state.process.collect();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.handle.render(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<PortState>>) -> impl IntoResponse {
    let readiness = crate::health::readiness(&state.store, state.role.runs_worker()).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
