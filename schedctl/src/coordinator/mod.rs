//! The coordinator, `schedctl serve`: rounds that collect the fleet, fill
//! the metrics and plan again when durations or load drift (applying the
//! plan with `approval = "auto"`); the lease service the vzdump hook asks
//! before a backup starts; `/metrics` for Prometheus and the status page.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`rounds`] | the serve loop: collect, assess, plan, apply; what the status page shows |
//! | [`assess`] | pure conclusions from a snapshot: plan again?, drift, backup windows, reserved durations |
//! | [`leases`] | the lease manager: pure, time handed in; resources, queue order, expiry |
//! | [`lease_service`] | the manager behind a lock, requests held open until granted, events logged and counted |
//! | [`lease_store`] | lease events into the store, off the request path |
//! | [`http`] | the routes: `/`, `/v1/lease`, `/v1/lease/release`, `/metrics`, `/healthz` |
//! | [`page`] | the status page: the timeline and the coordinator's warnings |
//! | [`metrics`] | every coordinator metric, by its contract name |
//!
//! [`run`] takes a bound listener and a shutdown future, as every Stagger
//! daemon does: the caller binds (so a busy port is reported before systemd
//! hears "ready") and decides when to stop.

pub mod assess;
pub mod http;
pub mod lease_service;
pub mod lease_store;
pub mod leases;
pub mod metrics;
pub mod page;
pub mod rounds;

use std::future::Future;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use stagger_service::token::Token;
use tokio::sync::watch;

use crate::config::Config;
use lease_service::LeaseService;
use metrics::Metrics;

/// The coordinator, set up and ready to serve.
pub struct Coordinator {
    metrics: Arc<Metrics>,
    leases: Arc<LeaseService>,
    rounds: Arc<rounds::Rounds>,
    view: Arc<RwLock<rounds::View>>,
    token: Token,
    stop: watch::Sender<bool>,
}

/// Why the coordinator could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration names something unusable (a transport without its pin, a key file).
    #[error(transparent)]
    Config(anyhow::Error),
    /// The store or a thread could not be started.
    #[error(transparent)]
    Failed(anyhow::Error),
}

impl Coordinator {
    /// Sets up the transports, the store, the lease service and the metrics
    /// for `config`; serves nothing yet.
    pub fn new(config: Config, token: Token) -> Result<Coordinator, SetupError> {
        let metrics = Arc::new(Metrics::new());
        metrics
            .fleet_hosts
            .set(i64::try_from(config.hosts.len()).unwrap_or(i64::MAX));
        let (stop, stopping) = watch::channel(false);
        let sink = lease_store::sink(&config.store).map_err(SetupError::Failed)?;
        let leases = Arc::new(LeaseService::new(
            leases::Settings::from_config(&config),
            metrics.clone(),
            Some(sink),
            stopping,
        ));
        let view = Arc::new(RwLock::new(rounds::View::default()));
        let rounds = rounds::Rounds::new(config, metrics.clone(), leases.clone(), view.clone())?;
        Ok(Coordinator {
            metrics,
            leases,
            rounds: Arc::new(rounds),
            view,
            token,
            stop,
        })
    }

    /// Serves on `listener` (HTTPS with `tls`, else plain HTTP on loopback)
    /// until `shutdown` completes; then answers the requests that wait for a
    /// lease at once and drains the others.
    pub async fn serve<F>(
        self,
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
        let stopping = self.stop.subscribe();
        let ticks = tokio::spawn(self.leases.clone().run_ticks());
        self.rounds.report_unfinished()?;
        let round_task = tokio::spawn(self.rounds.clone().run(stopping));
        let router = http::router(http::AppState {
            token: Arc::new(self.token),
            leases: self.leases,
            metrics: self.metrics,
            view: self.view,
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(url = %format!("{scheme}://{address}"), "The coordinator is serving.");
        stagger_service::notify::ready();
        let stop = self.stop;
        let stopped = async move {
            shutdown.await;
            stagger_service::notify::stopping();
            tracing::info!("Stopping: answering waiting lease requests, draining the others.");
            let _ = stop.send(true);
        };
        let served = stagger_service::serve::serve(listener, router, tls, stopped).await;
        ticks.abort();
        round_task.abort();
        served.with_context(|| format!("the coordinator stopped serving on {address}"))
    }
}
