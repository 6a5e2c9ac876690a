//! The control plane of MMS: the directory, the trigger rules and the HTTP API (axum) that
//! exposes the vendor's meeting-migration cmdlets as resources.
//!
//! - [`rules`]: the pure decision table (T1–T4, X1–X2, the switches M3–M4).
//! - [`events`]: the directory events the API accepts.
//! - [`trigger`]: carrying out a verdict (queue, refuse, record) with its history line.
//! - [`jobs`]: tenant-wide fan-outs as background jobs and their runner.
//! - [`import`]: user records in CSV or JSON, validated all-or-nothing.
//! - [`auth`]: bearer tokens, operator and tenant admin.
//! - [`preview`]: the what-if seam, implemented by the worker crate.
//! - [`routes`]: the handlers; [`openapi`]: the generated document.
//! - [`console`]: the web status page and its embedded assets (not part of the JSON API).
//!
//! Start it with [`serve`], or mount [`router`] in another server.

pub mod auth;
pub mod console;
pub mod error;
pub mod events;
pub mod http_metrics;
pub mod import;
pub mod jobs;
pub mod json;
pub mod openapi;
pub mod preview;
pub mod routes;
pub mod rules;
pub mod trigger;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use mms_core::config::MmsConfig;
use mms_store::{Store, StoreError};
use tower_http::trace::TraceLayer;

use preview::Previewer;

use routes::{
    admin, config, directory, domains, events as event_routes, health, jobs as job_routes,
    migrations,
};

/// What every handler shares: the store, the process configuration and, when the process can
/// read mailboxes, the what-if previewer.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub config: Arc<MmsConfig>,
    pub previewer: Option<Arc<dyn Previewer>>,
    /// Wakes this process's [`jobs::JobRunner`] when a job is submitted, so it starts at once
    /// rather than on its next poll.
    pub job_wake: Arc<tokio::sync::Notify>,
}

impl ApiState {
    pub fn new(store: Store, config: MmsConfig) -> Self {
        ApiState {
            store,
            config: Arc::new(config),
            previewer: None,
            job_wake: Arc::default(),
        }
    }

    /// Serve `POST .../migrations:preview` with `previewer` (without one it answers 503).
    pub fn with_previewer(mut self, previewer: Arc<dyn Previewer>) -> Self {
        self.previewer = Some(previewer);
        self
    }

    /// Make the operator token the only one: store its hash and remove every other operator
    /// entry, so that rotating it is changing the configuration and restarting. With no
    /// `api.operator_token` configured, a fresh token is generated, installed, and returned so
    /// that the caller shows it once to whoever starts MMS. A configured token shorter than
    /// [`MIN_OPERATOR_TOKEN_LEN`] is refused: it could be guessed.
    pub async fn install_operator_token(&self) -> Result<Option<String>, StartupError> {
        let (token, generated) = match &self.config.api.operator_token {
            Some(token) if token.chars().count() < MIN_OPERATOR_TOKEN_LEN => {
                return Err(StartupError::OperatorTokenTooShort {
                    len: token.chars().count(),
                })
            }
            Some(token) => (token.clone(), false),
            None => (auth::new_token(), true),
        };
        let removed = self.store.install_operator_token(&token).await?;
        if removed > 0 {
            tracing::info!(
                removed,
                "operator token installed; previous operator tokens revoked"
            );
        }
        Ok(generated.then_some(token))
    }
}

/// Shortest operator token accepted from the configuration.
pub const MIN_OPERATOR_TOKEN_LEN: usize = 32;

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("api.operator_token is {len} characters long; it must have at least {MIN_OPERATOR_TOKEN_LEN}: \
             set a random one (e.g. `openssl rand -hex 32`) through MMS_API__OPERATOR_TOKEN, or unset it to have \
             one generated and printed once")]
    OperatorTokenTooShort { len: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every route of the API, with the body limit (`api.body_limit_bytes`, 413 above it), request
/// metrics ([`http_metrics`]) and request tracing (method and path only: headers, and so tokens,
/// are not recorded).
pub fn router(state: ApiState) -> Router {
    let limit = state.config.api.body_limit_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(admin::openapi_json))
        .merge(console::router())
        .route(
            "/v1/tenants",
            post(admin::create_tenant).get(admin::list_tenants),
        )
        .route(
            "/v1/tokens",
            post(admin::create_token).get(admin::list_tokens),
        )
        .route(
            "/v1/tenants/{tenant}/domains",
            get(domains::list_domains).put(domains::assign_domains),
        )
        .route(
            "/v1/tenants/{tenant}/domains/{domain}",
            delete(domains::release_domain),
        )
        .route("/v1/tokens/{id}", delete(admin::revoke_token))
        .route(
            "/v1/tenants/{tenant}/configuration/migration",
            get(config::get_migration).put(config::set_migration),
        )
        .route(
            "/v1/tenants/{tenant}/configuration/dialin",
            get(config::get_dialin).put(config::set_dialin),
        )
        .route("/v1/tenants/{tenant}/users", get(directory::list_users))
        .route(
            "/v1/tenants/{tenant}/users:import",
            post(directory::import_users),
        )
        .route(
            "/v1/tenants/{tenant}/users/{upn}",
            get(directory::get_user)
                .put(directory::put_user)
                .delete(directory::delete_user),
        )
        .route(
            "/v1/tenants/{tenant}/users/{upn}/history",
            get(migrations::history),
        )
        .route("/v1/tenants/{tenant}/bridges", get(directory::list_bridges))
        .route(
            "/v1/tenants/{tenant}/bridges/{id}",
            get(directory::get_bridge).put(directory::put_bridge),
        )
        .route(
            "/v1/tenants/{tenant}/events",
            post(event_routes::post_event),
        )
        .route("/v1/tenants/{tenant}/jobs", get(job_routes::list_jobs))
        .route("/v1/tenants/{tenant}/jobs/{id}", get(job_routes::get_job))
        .route(
            "/v1/tenants/{tenant}/migrations",
            post(migrations::start).get(migrations::list),
        )
        .route(
            "/v1/tenants/{tenant}/migrations:preview",
            post(migrations::preview),
        )
        .route(
            "/v1/tenants/{tenant}/migrations:bulk",
            post(routes::bulk::bulk_start),
        )
        .route(
            "/v1/tenants/{tenant}/migrations/summary",
            get(migrations::summary),
        )
        .route(
            "/v1/tenants/{tenant}/migrations/{correlation_id}",
            get(migrations::get_one).post(migrations::undo),
        )
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(http_metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Why [`serve`] stopped; each says what to fix, and only a bind failure points at `api_addr`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot listen on {addr} ({source}): set api_addr (MMS_API_ADDR) to a free host:port")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the API server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Install the operator token and serve the API on `addr` until the process stops. A generated
/// operator token is printed once on stderr (never through the log).
pub async fn serve(state: ApiState, addr: SocketAddr) -> Result<(), ServeError> {
    if let Some(token) = state.install_operator_token().await? {
        eprintln!(
            "mms: no api.operator_token configured; generated operator token (shown once): {token}"
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, "control API listening");
    axum::serve(listener, router(state))
        .await
        .map_err(ServeError::Serve)
}
