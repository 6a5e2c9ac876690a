//! Starting the service's roles from a configuration: connect Redis, build the mailbox and mail
//! connectors, serve `/metrics`, run the worker and/or the API until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mms_core::config::{LogConfig, LogFormat, MmsConfig};
use mms_core::meeting_service::TemplateMeetingService;
use mms_store::Store;
use mms_worker::metrics_server::MetricsServer;
use mms_worker::telemetry::{self, ProcessRole};
use mms_worker::Services;

pub struct Roles {
    pub worker: bool,
    pub api: bool,
    pub demo: bool,
}

/// Set up logging from `[log]`: the filter is `RUST_LOG` when set, else `MMS_LOG` (the older
/// variable), else `log.level`; the format is JSON when `log.format = "json"` (or the older
/// `MMS_LOG_FORMAT=json`), else plain text, coloured only when the log goes to a terminal and
/// `NO_COLOR` is unset, so that files and log collectors get no escape codes. Logs go to stderr.
pub fn init_tracing(log: &LogConfig) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_from_env("MMS_LOG"))
        .unwrap_or_else(|_| {
            EnvFilter::try_new(&log.level).unwrap_or_else(|e| {
                eprintln!(
                    "mms: log.level {:?} is not a log filter ({e}); logging at info",
                    log.level
                );
                EnvFilter::new("info")
            })
        });
    let json =
        log.format == LogFormat::Json || std::env::var("MMS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(colour).try_init()
    };
}

/// The configuration, read and validated once (see [`crate::config`]).
pub fn load_config(file: Option<&Path>) -> Result<MmsConfig, crate::config::ConfigError> {
    crate::config::load(file)
}

/// The name this process uses in the consumer group and on leases: configured (Kubernetes sets
/// it from the pod name), or host + pid + a random suffix. The suffix keeps names unique where
/// host and pid are not: containers that share a host name, each process being pid 1.
pub fn worker_name(config: &MmsConfig) -> String {
    config.worker_name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &suffix[..8])
    })
}

/// Build the worker's services from the configuration.
pub async fn services(config: Arc<MmsConfig>, store: Store) -> anyhow::Result<Services> {
    let mailbox =
        mms_mailbox::mailbox_from_config(&config.mailbox, config.concurrency.per_mailbox_server)
            .map_err(|e| anyhow::anyhow!("mailbox configuration: {e}"))?;
    let sender = mms_mail::sender_from_config(&config.mail)
        .map_err(|e| anyhow::anyhow!("mail configuration: {e}"))?;
    Ok(Services {
        store,
        mailbox,
        sender,
        meetings: Arc::new(TemplateMeetingService::new(config.meetings.clone())),
        worker_name: worker_name(&config),
        config,
    })
}

pub async fn run(config: MmsConfig, roles: Roles) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let store = Store::from_config(&config).await.with_context(|| {
        if config.redis_cluster_nodes.is_empty() {
            format!(
                "cannot connect to Redis at {} (set redis_url or MMS_REDIS_URL)",
                config.redis_url
            )
        } else {
            format!(
                "cannot connect to the Redis Cluster at {} (set redis_cluster_nodes or MMS_REDIS_CLUSTER_NODES)",
                config.redis_cluster_nodes.join(", ")
            )
        }
    })?
    .with_retention(config.retention)
    .context("the [retention] section of the configuration")?;
    let metrics_addr: SocketAddr = config
        .metrics_addr
        .parse()
        .with_context(|| format!("metrics_addr {:?} is not host:port", config.metrics_addr))?;
    let role = match (roles.worker, roles.api) {
        (true, true) => ProcessRole::All,
        (true, false) => ProcessRole::Worker,
        _ => ProcessRole::Api,
    };
    let recorder = telemetry::install_recorder(&[telemetry::HistogramBuckets {
        name: mms_control::http_metrics::REQUEST_SECONDS,
        buckets: mms_control::http_metrics::REQUEST_BUCKETS,
    }])?;
    telemetry::describe(role);
    if roles.api {
        mms_control::http_metrics::describe();
    }
    let metrics_port = MetricsServer::start(metrics_addr, recorder, store.clone(), role).await?;
    tracing::info!(metrics_addr = %metrics_port.addr(), "serving /metrics, /healthz, /readyz");
    let _queue_sampler = mms_worker::queue_metrics::spawn_sampler(
        store.clone(),
        mms_worker::queue_metrics::SAMPLE_EVERY,
    );
    let demo = if roles.demo {
        crate::demo::seed(&config, &store)
            .await
            .context("seeding the demo tenant")?
    } else {
        None
    };
    // A worker cannot run without its connectors; the API alone can, minus the what-if preview.
    let built = if roles.worker {
        Some(services(config.clone(), store.clone()).await?)
    } else if roles.api {
        services(config.clone(), store.clone())
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "no mailbox connector: the what-if preview answers 503"))
            .ok()
    } else {
        None
    };
    let worker = match (roles.worker, &built) {
        (true, Some(services)) => {
            tracing::info!(worker = %services.worker_name, "worker started");
            Some(mms_worker::run_worker(services.clone()).await?)
        }
        _ => None,
    };
    let api = if roles.api {
        let addr: SocketAddr = config
            .api_addr
            .parse()
            .with_context(|| format!("api_addr {:?} is not host:port", config.api_addr))?;
        let mut state = mms_control::ApiState::new(store.clone(), (*config).clone());
        if let Some(services) = built {
            state = state.with_previewer(Arc::new(mms_worker::preview::MailboxPreviewer::new(
                services,
            )));
        }
        Some(tokio::spawn(mms_control::serve(state, addr)))
    } else {
        None
    };
    // `make run`'s story: each demo user's progress, then the summary and what to try next.
    if let Some(seed) = demo {
        let (config, store) = (config.clone(), store.clone());
        tokio::spawn(async move { crate::demo::narrate(&config, &store, &seed).await });
    }
    // The API ends only on an error (its address taken, say): then the process stops too, with
    // that error, instead of running on without its control plane.
    let api_failed = async {
        match api {
            Some(task) => match task.await {
                Ok(Ok(())) => anyhow::anyhow!("the API stopped"),
                // The error says what to fix (only a bind failure names api_addr).
                Ok(Err(e)) => anyhow::anyhow!("the API failed: {e}"),
                Err(e) => anyhow::anyhow!("the API task failed: {e}"),
            },
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        _ = shutdown_signal() => Ok(()),
        e = api_failed => Err(e),
    };
    tracing::info!("shutting down");
    if let Some(worker) = worker {
        worker.shutdown(Duration::from_secs(10)).await;
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
