//! Starting the service's roles from a configuration: connect Redis, build the mailbox and mail
//! connectors, serve `/metrics`, run the worker and/or the API until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mms_core::config::MmsConfig;
use mms_core::meeting_service::TemplateMeetingService;
use mms_store::Store;
use mms_worker::Services;

pub struct Roles {
    pub worker: bool,
    pub api: bool,
    pub demo: bool,
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MMS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("MMS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn load_config(file: Option<&Path>) -> anyhow::Result<MmsConfig> {
    MmsConfig::load(file).map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// The name this process uses in the consumer group and on leases: configured, or host + pid.
pub fn worker_name(config: &MmsConfig) -> String {
    config.worker_name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}-{}", std::process::id())
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
    })?;
    let metrics_addr: SocketAddr = config
        .metrics_addr
        .parse()
        .with_context(|| format!("metrics_addr {:?} is not host:port", config.metrics_addr))?;
    mms_worker::telemetry::install_exporter(metrics_addr)
        .map_err(|e| anyhow::anyhow!("{e} (set metrics_addr or MMS_METRICS_ADDR)"))?;
    tracing::info!(%metrics_addr, "serving /metrics");
    if roles.demo {
        crate::demo::seed(&config, &store)
            .await
            .context("seeding the demo tenant")?;
    }
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
    // The API ends only on an error (its address taken, say): then the process stops too, with
    // that error, instead of running on without its control plane.
    let api_failed = async {
        match api {
            Some(task) => match task.await {
                Ok(Ok(())) => anyhow::anyhow!("the API stopped"),
                Ok(Err(e)) => {
                    anyhow::anyhow!("the API failed: {e} (check api_addr or MMS_API_ADDR)")
                }
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
