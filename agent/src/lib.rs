//! `sched-agent`: Stagger's per-host daemon, as a library so tests reach its parts.
//!
//! The daemon measures the host's I/O load into a weekly profile, follows
//! its backup runs, serves them to the coordinator (`GET /v1/report`),
//! applies new schedules to jobs.cfg safely (`PUT /v1/schedules`,
//! `POST /v1/rollback`) and serves Prometheus metrics. The same binary is the
//! vzdump hook (`sched-agent hook <phase>`) that takes a lease before a
//! backup starts.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`config`] | `/etc/stagger/agent.toml`: every path and setting, unknown keys refused |
//! | [`context`] | the running agent: settings and shared state |
//! | [`sample`] | procfs readers, the load value, the sampler task |
//! | [`runs`] | task records, job states and hook events → run history |
//! | [`jobs_file`] | the jobs.cfg transaction: cluster lock, digest, atomic replace, kept copies, audit log; the API backend |
//! | [`api`] | the HTTP API: `router()`, one file per endpoint |
//! | [`hook`] | the vzdump hook: phases, the lease, `hook install|uninstall` |
//! | [`metrics`] | every metric, in one place |
//! | [`state`] | the files in `state-dir` and how they are kept |
#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod context;
pub mod hook;
pub mod jobs_file;
pub mod metrics;
pub mod runs;
pub mod sample;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use stagger_service::tls::Identity;

use config::Config;
use context::Agent;

/// The agent's TLS identity: made on first start in `state-dir/tls`, kept after.
pub fn identity(config: &Config) -> anyhow::Result<Identity> {
    let node = config.node_name().context("cannot tell the node name")?;
    Ok(Identity::load_or_create(
        &config.tls_dir(),
        &config.subject_names(&node),
    )?)
}

/// Runs the daemon on `listener` until `shutdown` completes: the sampler,
/// the run poller and the API. Tells systemd "ready" once it serves.
pub async fn run<F>(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let tls = if config.plain_http {
        None
    } else {
        let identity = identity(&config)?;
        tracing::info!(fingerprint = %identity.fingerprint(), "Serving HTTPS with the agent's certificate.");
        Some(identity.server_config()?)
    };
    let agent = Arc::new(Agent::new(config)?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(sample::sampler::run(agent.clone(), stopped.clone()));
    let poller = tokio::spawn(runs::run(agent.clone(), stopped));
    let address = listener.local_addr()?;
    let router = api::router(agent.clone());
    tracing::info!(
        %address,
        node = agent.node.as_str(),
        https = tls.is_some(),
        "The agent serves."
    );
    stagger_service::notify::ready();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("Stopping.");
        stagger_service::notify::stopping();
        let _ = stop.send(true);
    };
    let served = stagger_service::serve::serve(listener, router, tls, shutdown).await;
    if served.is_err() {
        sampler.abort();
        poller.abort();
    }
    // After a clean stop both tasks end on their own (the sampler saves the profile).
    let _ = tokio::join!(sampler, poller);
    served.context("the HTTP server failed")
}
