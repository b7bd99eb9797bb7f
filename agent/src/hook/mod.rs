//! `sched-agent hook <phase> [mode vmid]`: the vzdump hook.
//!
//! vzdump runs it with an empty environment (no PATH, no HOME), no timeout,
//! and fails the backup on a non-zero exit (FORMATS.md (d)). So the hook
//! exits 0 on **every** path, uses only absolute paths from the config, and
//! bounds its own run time: a watchdog thread ends it (with 0) when
//! `lease-wait-max-secs` have passed, whatever it is doing.
//!
//! What it does per phase:
//!
//! - `job-init`, `job-start`, `job-end`, `job-abort`: finds the run it belongs
//!   to ([`identify`]) and records the phase as an event in the spool, for the
//!   run history;
//! - `job-start` (the first phase under the node's vzdump lock) also asks the
//!   coordinator for a lease on the job's resources and waits for the grant,
//!   at most `lease-wait-max-secs`; any error — no config, no coordinator
//!   configured, unreachable, refused, a bad answer, the time running out, a
//!   run it cannot identify — lets the backup go, and the event says why
//!   (`stagger_hook_fail_open_total{reason}`);
//!   and when it gives up while queued, it withdraws its request, so the
//!   coordinator does not grant it later to a backup that is running already;
//! - `job-end`, `job-abort` release the run's lease (or a queued request the
//!   hook could not withdraw);
//! - the per-guest phases return at once.
//!
//! | file | step |
//! | --- | --- |
//! | `identify.rs` | which run a call belongs to |
//! | `lease.rs` | the coordinator's lease: ask, wait, release |
//! | `install.rs` | `hook install|uninstall`: the wrapper and vzdump.conf |

pub mod identify;
pub mod install;
pub mod lease;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scheduler_core::report::LeaseRequest;

use crate::config::Config;
use crate::metrics::FailOpen;
use crate::runs::events::{self, HookEvent};
use crate::state;

/// Time the hook gives itself beyond the lease wait to withdraw, record and exit.
const WRAP_UP: Duration = Duration::from_secs(2);
/// How long a release at `job-end`/`job-abort` may take.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The job phases the hook records; the others return at once.
const JOB_PHASES: [&str; 4] = ["job-init", "job-start", "job-end", "job-abort"];

/// Runs the hook for `args` (`<phase> [mode vmid]`); never fails.
pub fn run(config_path: &Path, args: &[String]) {
    let started = Instant::now();
    let Some(phase) = args.first().map(String::as_str) else {
        say("called without a phase; nothing to do");
        return;
    };
    if !JOB_PHASES.contains(&phase) {
        return;
    }
    let storage = std::env::var("STOREID").ok().filter(|s| !s.is_empty());
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            // Without a config there is no state-dir to record in (and no
            // daemon reading one): the task log is the only trace.
            say(&format!(
                "no usable config ({error}); the backup goes ahead"
            ));
            return;
        }
    };
    let wait_max = config
        .coordinator
        .as_ref()
        .map(|c| Duration::from_secs(c.lease_wait_max_secs))
        .unwrap_or_default();
    watchdog(
        &config.state_dir,
        phase,
        storage.clone(),
        wait_max + WRAP_UP,
    );
    let deadline = started + wait_max;
    let outcome = Call {
        config: &config,
        phase,
        storage,
        deadline,
    }
    .run();
    record(&config.state_dir, outcome);
}

/// One hook call with its config.
struct Call<'a> {
    config: &'a Config,
    phase: &'a str,
    storage: Option<String>,
    deadline: Instant,
}

impl Call<'_> {
    fn run(&self) -> HookEvent {
        let node = match self.config.node_name() {
            Ok(node) => node,
            Err(error) => return self.fail(None, FailOpen::no_config, format!("{error}")),
        };
        let run = self.identify(&node);
        match self.phase {
            "job-start" => self.start(&node, run),
            "job-end" | "job-abort" => {
                if let Some(candidate) = &run {
                    self.release(&candidate.upid.to_string());
                }
                self.note(run.as_ref(), None, None)
            }
            _ => self.note(run.as_ref(), None, None),
        }
    }

    fn identify(&self, node: &str) -> Option<identify::Candidate> {
        let c = self.config;
        let candidates = identify::candidates(
            node,
            &c.job_state_dir,
            &c.task_dir,
            &c.pve_root.join("jobs.cfg"),
            &c.vzdump_conf,
        );
        let seen = identify::seen_phases(&c.state_dir);
        let ancestors = identify::ancestors(&c.proc_root);
        identify::choose(
            &candidates,
            self.phase,
            self.storage.as_deref(),
            &ancestors,
            &seen,
        )
        .cloned()
    }

    /// `job-start`: the lease.
    fn start(&self, node: &str, run: Option<identify::Candidate>) -> HookEvent {
        let Some(coordinator) = &self.config.coordinator else {
            let run = run.as_ref();
            return self.fail(
                run,
                FailOpen::no_config,
                "no [coordinator] in the config, so no lease".into(),
            );
        };
        let Some(candidate) = run else {
            return self.fail(
                None,
                FailOpen::other,
                "could not tell which backup job this run belongs to, so no lease".into(),
            );
        };
        lease::forget_expired(
            &state::leases_dir(&self.config.state_dir),
            state::unix_now(),
        );
        let client = match lease::client(coordinator) {
            Ok(client) => client,
            Err((reason, message)) => return self.fail(Some(&candidate), reason, message),
        };
        let request = LeaseRequest {
            host: node.to_owned(),
            job: candidate.job.clone(),
            started: candidate.upid.starttime(),
            wait_secs: 0,
            storage: self
                .storage
                .clone()
                .or_else(|| Some(candidate.storage.clone())),
        };
        let runtime = match runtime() {
            Ok(runtime) => runtime,
            Err(error) => {
                return self.fail(
                    Some(&candidate),
                    FailOpen::other,
                    format!("cannot start the runtime: {error}"),
                )
            }
        };
        let wait = runtime.block_on(lease::wait_for_lease(&client, request, self.deadline));
        match wait {
            lease::Wait::Granted { lease, waited } => {
                let held = lease::HeldLease {
                    upid: candidate.upid.to_string(),
                    job: candidate.job.clone(),
                    lease_id: lease.lease_id.clone(),
                    expires: lease.expires,
                };
                let dir = state::leases_dir(&self.config.state_dir);
                if let Err(error) = state::save(&lease::lease_file(&dir, &held.upid), &held) {
                    say(&format!(
                        "could not note the lease ({error:#}); it expires on its own"
                    ));
                }
                let message = format!(
                    "lease {} for {} granted after {} s",
                    lease.lease_id,
                    candidate.job,
                    waited.as_secs()
                );
                say(&message);
                self.note(Some(&candidate), Some(waited), Some(message))
            }
            lease::Wait::FailOpen {
                reason,
                message,
                waited,
                queued,
            } => {
                let mut event = self.fail(Some(&candidate), reason, message);
                event.lease_wait_secs = Some(waited.as_secs_f64());
                if let Some(lease_id) = queued {
                    self.withdraw(&runtime, &client, &candidate, lease_id);
                }
                event
            }
        }
    }

    /// Withdraws the queued request `lease_id` of a hook that gave up
    /// waiting. If that fails, the request is noted as the run's lease, so
    /// that `job-end` withdraws it (or releases the grant it may get meanwhile).
    fn withdraw(
        &self,
        runtime: &tokio::runtime::Runtime,
        client: &stagger_service::client::Client,
        candidate: &identify::Candidate,
        lease_id: String,
    ) {
        let withdrawn =
            runtime.block_on(lease::release(client, &lease_id, lease::WITHDRAW_TIMEOUT));
        match withdrawn {
            Ok(()) => say(&format!("withdrew the request for lease {lease_id}")),
            Err(error) => {
                say(&format!(
                    "could not withdraw the request for lease {lease_id} ({error}); job-end will"
                ));
                let held = lease::HeldLease {
                    upid: candidate.upid.to_string(),
                    job: candidate.job.clone(),
                    lease_id,
                    // Forgotten after a day if no job-end comes.
                    expires: Some(state::unix_now() + 86_400),
                };
                let dir = state::leases_dir(&self.config.state_dir);
                let _ = state::save(&lease::lease_file(&dir, &held.upid), &held);
            }
        }
    }

    /// `job-end`/`job-abort`: gives the run's lease back.
    fn release(&self, upid: &str) {
        let dir = state::leases_dir(&self.config.state_dir);
        let path = lease::lease_file(&dir, upid);
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let held: Option<lease::HeldLease> = serde_json::from_slice(&bytes).ok();
        if let (Some(held), Some(coordinator)) = (held, &self.config.coordinator) {
            let released = lease::client(coordinator)
                .map_err(|(_, message)| message)
                .and_then(|client| {
                    runtime()
                        .map_err(|e| e.to_string())?
                        .block_on(lease::release(&client, &held.lease_id, RELEASE_TIMEOUT))
                });
            match released {
                Ok(()) => say(&format!("lease {} released", held.lease_id)),
                Err(error) => say(&format!(
                    "could not release lease {} ({error}); it expires on its own",
                    held.lease_id
                )),
            }
        }
        let _ = std::fs::remove_file(path);
    }

    fn note(
        &self,
        run: Option<&identify::Candidate>,
        waited: Option<Duration>,
        message: Option<String>,
    ) -> HookEvent {
        HookEvent {
            time: state::unix_now(),
            phase: self.phase.to_owned(),
            job: run.map(|c| c.job.clone()),
            upid: run.map(|c| c.upid.to_string()),
            storage: self.storage.clone(),
            fail_open: None,
            lease_wait_secs: waited.map(|w| w.as_secs_f64()),
            message,
        }
    }

    fn fail(
        &self,
        run: Option<&identify::Candidate>,
        reason: FailOpen,
        message: String,
    ) -> HookEvent {
        let message = format!("{message}; the backup goes ahead");
        say(&message);
        let mut event = self.note(run, None, Some(message));
        event.fail_open = Some(reason);
        event
    }
}

fn event(
    phase: &str,
    job: Option<String>,
    storage: Option<String>,
    fail_open: Option<FailOpen>,
    waited: Option<f64>,
    message: String,
) -> HookEvent {
    HookEvent {
        time: state::unix_now(),
        phase: phase.to_owned(),
        job,
        upid: None,
        storage,
        fail_open,
        lease_wait_secs: waited,
        message: Some(message),
    }
}

/// Writes the event to the spool; a failure is told in the task log, no more.
fn record(state_dir: &Path, event: HookEvent) {
    if let Err(error) = events::write_event(&state::spool_dir(state_dir), &event) {
        say(&format!(
            "could not record the {} event ({error:#})",
            event.phase
        ));
    }
}

/// Ends the process with 0 after `limit`, recording a timeout first.
fn watchdog(state_dir: &Path, phase: &str, storage: Option<String>, limit: Duration) {
    let state_dir: PathBuf = state_dir.to_path_buf();
    let phase = phase.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let message = format!(
            "the hook ran out of its {} s; the backup goes ahead",
            limit.as_secs()
        );
        say(&message);
        record(
            &state_dir,
            event(
                &phase,
                None,
                storage,
                Some(FailOpen::timeout),
                Some(limit.as_secs_f64()),
                message,
            ),
        );
        std::process::exit(0);
    });
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A line for the task log: vzdump logs the hook's output as `INFO: ...`.
fn say(message: &str) {
    println!("stagger: {message}");
}
