//! The running agent: its settings and the state its tasks and handlers share.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use scheduler_core::jobs_cfg::{JobsCfg, VzdumpJob};
use stagger_service::token::Token;

use crate::config::{Backend, Config};
use crate::jobs_file::kept::Kept;
use crate::jobs_file::{self, JobsFile};
use crate::metrics::{JobLabels, Metrics};
use crate::runs::history::RunHistory;
use crate::sample::sampler::LoadState;
use crate::state;

/// Everything the agent's tasks and HTTP handlers share.
pub struct Agent {
    /// The configuration.
    pub config: Config,
    /// The node name.
    pub node: String,
    /// The host's time zone.
    pub timezone: String,
    /// The metrics.
    pub metrics: Metrics,
    /// The weekly load profile and the latest pressure.
    pub load: Mutex<LoadState>,
    /// The run history.
    pub runs: Mutex<RunHistory>,
    /// jobs.cfg, its lock, the kept copies, the audit log.
    pub jobs_file: JobsFile,
    /// One change of jobs.cfg at a time from this agent (the cluster lock
    /// orders us against other writers; this keeps our own requests from
    /// queueing on it).
    pub writes: tokio::sync::Mutex<()>,
    /// The bearer token clients must present.
    pub token: Arc<Token>,
    /// The Proxmox API client, for `backend = "api"`.
    pub pve: Option<pve_api::Client>,
    /// jobs.cfg as last read, re-read when it changes.
    jobs_cache: Mutex<JobsCache>,
}

#[derive(Default)]
struct JobsCache {
    stamp: Option<(u64, Option<SystemTime>)>,
    jobs: Vec<VzdumpJob>,
}

impl Agent {
    /// Sets the agent up from `config`: node name, time zone, token, the
    /// persisted state (a corrupt file is set aside and started afresh).
    pub fn new(config: Config) -> anyhow::Result<Agent> {
        let node = config
            .node_name()
            .context("cannot tell the node name; set `node` in the config")?;
        let timezone = config.timezone_name();
        let token = Token::load(&config.token_file)?;
        let now = state::unix_now();
        let load = LoadState::load(&config.state_dir, config.load_half_life_weeks, now)?;
        let runs = crate::runs::load_history(&config.state_dir, now);
        let pve = match (&config.backend, &config.api) {
            (Backend::Api, Some(api)) => Some(pve_client(api)?),
            _ => None,
        };
        let metrics = Metrics::new(&node);
        let jobs_file = JobsFile {
            path: config.pve_root.join("jobs.cfg"),
            lock_dir: config.pve_root.join("priv/lock"),
            kept: Kept::new(state::backups_dir(&config.state_dir), config.backups_keep),
            audit_log: state::audit_log_path(&config.state_dir),
            lock_timeout: std::time::Duration::from_secs(config.lock_timeout_secs),
            node: node.clone(),
            state_dir: config.state_dir.clone(),
            lock_waits: metrics.lock_wait_histogram(),
        };
        Ok(Agent {
            node,
            timezone,
            metrics,
            load: Mutex::new(load),
            runs: Mutex::new(runs),
            jobs_file,
            writes: tokio::sync::Mutex::new(()),
            token: Arc::new(token),
            pve,
            jobs_cache: Mutex::new(JobsCache::default()),
            config,
        })
    }

    /// The backup jobs of this node (`node` is this node or absent), from
    /// jobs.cfg as it is now.
    pub fn node_jobs(&self) -> Vec<VzdumpJob> {
        let path = &self.jobs_file.path;
        let stamp = std::fs::metadata(path)
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        let mut cache = self.jobs_cache.lock().unwrap_or_else(|p| p.into_inner());
        if stamp.is_none() || stamp != cache.stamp {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            cache.jobs = jobs_file::node_jobs(&JobsCfg::parse(&text), &self.node);
            cache.stamp = stamp;
        }
        cache.jobs.clone()
    }

    /// The metric labels of job `job_id`.
    pub fn job_labels(&self, job_id: &str) -> JobLabels {
        JobLabels {
            job_id: job_id.to_owned(),
        }
    }
}

fn pve_client(api: &crate::config::ApiConfig) -> anyhow::Result<pve_api::Client> {
    let secret = std::fs::read_to_string(&api.token_file).with_context(|| {
        format!(
            "cannot read the Proxmox API token file {}",
            api.token_file.display()
        )
    })?;
    let token = secret
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .with_context(|| format!("in {}", api.token_file.display()))?;
    let fingerprint = api.fingerprint.parse()?;
    Ok(pve_api::Client::new(pve_api::Config {
        base_url: api.url.clone(),
        token,
        trust: pve_api::Trust::Fingerprint(fingerprint),
        timeout: std::time::Duration::from_secs(20),
    })?)
}
