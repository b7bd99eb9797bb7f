//! Backup runs: Proxmox's task records, the job states and the hook's
//! events, folded into each job's run history.
//!
//! | file | step |
//! | --- | --- |
//! | `records.rs` | reading `index`, `index.1`, `active` and the job state files |
//! | `events.rs` | the hook's events and their spool in `state-dir` |
//! | `history.rs` | the run history and how records and events update it (pure) |
//!
//! [`Poller`] does one round every `sample-interval-secs`: read, update,
//! count in the metrics, save, empty the spool.

pub mod events;
pub mod history;
pub mod records;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::report::RunResult;

use crate::context::Agent;
use crate::metrics::JobLabels;
use crate::state;
use events::HookEvent;
use history::{Change, RunHistory};
use records::RecordReader;

/// Loads the run history from `state-dir` (a corrupt file is set aside).
pub fn load_history(state_dir: &std::path::Path, now: i64) -> RunHistory {
    state::load_or_reset(&state::runs_path(state_dir), now, RunHistory::check).unwrap_or_default()
}

/// One poll after another of the task records and the spool.
pub struct Poller {
    records: RecordReader,
}

impl Poller {
    /// A poller of the agent's `task-dir` and `job-state-dir`.
    pub fn new(agent: &Agent) -> Poller {
        Poller {
            records: RecordReader::new(&agent.config.task_dir, &agent.config.job_state_dir),
        }
    }

    /// One round at Unix time `now`.
    pub fn poll(&mut self, agent: &Agent, now: i64) {
        let spool_dir = state::spool_dir(&agent.config.state_dir);
        let mut events = Vec::new();
        let mut files = Vec::new();
        for (path, event) in events::read_spool(&spool_dir) {
            match event {
                Ok(event) => {
                    events.push(event);
                    files.push(path);
                }
                Err(reason) => state::set_aside(&path, now, &reason),
            }
        }
        let seen = self.records.observe();
        let (changes, snapshot) = {
            let mut history = agent.runs.lock().unwrap_or_else(|p| p.into_inner());
            let changes = history.update(&agent.node, &seen, &events, agent.config.runs_keep);
            let snapshot = (!changes.is_empty() || !events.is_empty()).then(|| history.clone());
            (changes, snapshot)
        };
        count_changes(agent, &changes);
        if let Some(history) = snapshot {
            let path = state::runs_path(&agent.config.state_dir);
            match state::save(&path, &history) {
                // Only now may the events leave the spool: they are in the saved
                // history. Counted once, here, as they leave.
                Ok(()) => {
                    count_events(agent, &events);
                    for file in files {
                        let _ = std::fs::remove_file(file);
                    }
                }
                Err(error) => tracing::error!(
                    path = %path.display(),
                    "Could not save the run history; the hook's events stay spooled: {error:#}"
                ),
            }
        }
        self.update_job_series(agent, now);
    }

    /// The per-job gauges: which jobs of this node run now, for how long,
    /// and how long the last finished run took.
    fn update_job_series(&self, agent: &Agent, now: i64) {
        let jobs: BTreeSet<JobLabels> = agent
            .node_jobs()
            .into_iter()
            .map(|job| agent.job_labels(&job.id))
            .collect();
        agent.metrics.set_jobs(jobs.clone());
        let history = agent.runs.lock().unwrap_or_else(|p| p.into_inner());
        for labels in &jobs {
            let runs = history
                .jobs
                .get(&labels.job_id)
                .map_or(&[][..], Vec::as_slice);
            let running = runs
                .iter()
                .rev()
                .find(|r| r.result == RunResult::Running)
                .map(|run| (now - run.start).max(0) as f64);
            agent.metrics.set_running(labels, running);
            let last = runs
                .iter()
                .rev()
                .filter(|r| r.result != RunResult::Running)
                .find_map(scheduler_core::history::duration_secs);
            if let Some(secs) = last {
                agent.metrics.set_last_duration(labels, secs);
            }
        }
    }
}

fn count_events(agent: &Agent, events: &[HookEvent]) {
    for event in events {
        if let Some(reason) = event.fail_open {
            agent.metrics.hook_failed_open(
                reason,
                event.job.as_deref(),
                event.message.as_deref().unwrap_or("no details"),
            );
        }
        if let Some(secs) = event.lease_wait_secs {
            agent.metrics.lease_waited(secs);
        }
    }
}

fn count_changes(agent: &Agent, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Started { job, upid } => {
                tracing::info!(
                    job = job.as_str(),
                    upid = upid.as_str(),
                    "A backup run started."
                );
            }
            Change::Finished { job, run } => {
                let secs = scheduler_core::history::duration_secs(run);
                tracing::info!(
                    job = job.as_str(),
                    upid = run.upid.as_deref().unwrap_or(""),
                    result = run.result.as_str(),
                    secs = secs.unwrap_or(-1.0),
                    "A backup run ended."
                );
                agent
                    .metrics
                    .run_finished(&agent.job_labels(job), run.result, secs);
            }
        }
    }
}

/// Polls every `sample-interval-secs` until `shutdown` fires; each round on
/// the blocking pool (the task records are on a disk that backups keep busy).
pub async fn run(agent: Arc<Agent>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut poller = Some(Poller::new(&agent));
    let mut ticks = tokio::time::interval(Duration::from_secs(agent.config.sample_interval_secs));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        let Some(mut taken) = poller.take() else {
            return;
        };
        let round = agent.clone();
        let done = tokio::task::spawn_blocking(move || {
            taken.poll(&round, state::unix_now());
            taken
        })
        .await;
        poller = Some(match done {
            Ok(back) => back,
            Err(error) => {
                tracing::error!(%error, "A round of reading the task records failed; the next one starts over.");
                Poller::new(&agent)
            }
        });
    }
}
