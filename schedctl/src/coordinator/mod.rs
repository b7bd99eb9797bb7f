//! The coordinator, `schedctl serve`: the lease service the vzdump hook asks
//! before a backup starts, and `/metrics` for Prometheus.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`leases`] | the lease manager: pure, time handed in; resources, queue order, expiry |
//! | [`lease_service`] | the manager behind a lock, requests held open until granted, events logged and counted |
//! | [`http`] | the routes: `/v1/lease`, `/v1/lease/release`, `/metrics`, `/healthz` |
//! | [`metrics`] | every coordinator metric, by its contract name |
//!
//! [`run`] takes a bound listener and a shutdown future, as every Stagger
//! daemon does: the caller binds (so a busy port is reported before systemd
//! hears "ready") and decides when to stop.

pub mod http;
pub mod lease_service;
pub mod leases;
pub mod metrics;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use stagger_service::token::Token;
use tokio::sync::watch;

use crate::config::Config;
use lease_service::LeaseService;
use metrics::Metrics;

/// Serves the coordinator on `listener` (HTTPS with `tls`, else plain HTTP
/// on loopback) until `shutdown` completes; then answers the requests that
/// wait for a lease at once and drains the others.
pub async fn run<F>(
    config: Config,
    token: Token,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let metrics = Arc::new(Metrics::new());
    metrics
        .fleet_hosts
        .set(i64::try_from(config.hosts.len()).unwrap_or(i64::MAX));
    let (stop, stopping) = watch::channel(false);
    let leases = Arc::new(LeaseService::new(
        leases::Settings::from_config(&config),
        metrics.clone(),
        None,
        stopping,
    ));
    let ticks = tokio::spawn(leases.clone().run_ticks());
    let router = http::router(http::AppState {
        token: Arc::new(token),
        leases,
        metrics,
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{address}"), "The coordinator is serving.");
    stagger_service::notify::ready();
    let stopped = async move {
        shutdown.await;
        stagger_service::notify::stopping();
        tracing::info!("Stopping: answering waiting lease requests, draining the others.");
        let _ = stop.send(true);
    };
    let served = stagger_service::serve::serve(listener, router, tls, stopped).await;
    ticks.abort();
    served.with_context(|| format!("the coordinator stopped serving on {address}"))
}
