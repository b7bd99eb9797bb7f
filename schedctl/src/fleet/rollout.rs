//! Writing a stored plan, host by host, as `schedctl apply` and the
//! coordinator (`approval = "auto"`) both do.
//!
//! 1. An apply that never finished must be resolved first
//!    ([`refuse_if_unfinished`]).
//! 2. The write order ([`order`], from [`scheduler_core::fleet::rollout`]):
//!    no intermediate state overlaps more than the one before.
//! 3. [`apply`] records the apply as started, then each host as `writing`,
//!    writes it (digest-checked) and reads it back ([`writes::write_checked`]),
//!    and records its result; on the first failure the hosts already written
//!    are rolled back, newest first, and recorded as a rollback of the apply.
//!
//! Hosts of one cluster share jobs.cfg: the second one's write expects the
//! digest the first one's left.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use scheduler_core::fleet::rollout::{self, HostMove};
use scheduler_core::snapshot::Model;
use serde::Serialize;

use super::planned::{short, HostState, PlanBody};
use super::{now, writes};
use crate::config::Config;
use crate::exit::{bad_input, refused, CommandError, Kind};
use crate::output;
use crate::store::{ApplyHostRow, HostUpdate, Store};
use crate::transport::{HostTransport, TransportError};

/// One host of the rollout.
pub struct Target<'a> {
    state: &'a HostState,
    transport: Arc<dyn HostTransport>,
}

/// What an apply did to one host, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    /// The host.
    pub host: String,
    /// Its place in the order.
    pub position: usize,
    /// Its transport.
    pub transport: String,
    /// written | rolled_back | rollback_failed | failed | not_written.
    pub status: String,
    /// The digest before.
    pub digest_before: String,
    /// The digest after its write (or after its rollback).
    pub digest_after: Option<String>,
    /// What went wrong, in words.
    pub error: String,
    /// Its schedule changes.
    pub changes: usize,
}

impl HostResult {
    fn new(target: &Target<'_>, position: usize, digest_before: &str, status: &str) -> Self {
        HostResult {
            host: target.state.host.clone(),
            position,
            transport: target.state.transport.clone(),
            status: status.to_owned(),
            digest_before: digest_before.to_owned(),
            digest_after: None,
            error: String::new(),
            changes: target.state.changes.len(),
        }
    }
}

/// Where progress lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// On stdout, for people.
    Stdout,
    /// On stderr, when stdout carries JSON.
    Stderr,
    /// Into the log (the coordinator).
    Log,
}

impl Progress {
    /// Beside a command's output: on stdout for people, on stderr when stdout carries JSON.
    pub fn beside(format: output::Format) -> Progress {
        match format {
            output::Format::Json => Progress::Stderr,
            output::Format::Text => Progress::Stdout,
        }
    }

    /// Says one line (or several).
    pub fn line(self, text: &str) {
        match self {
            Progress::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            Progress::Stderr => eprintln!("{text}"),
            Progress::Log => tracing::info!("{text}"),
        }
    }
}

/// An earlier apply that never finished must be resolved first.
pub fn refuse_if_unfinished(store: &Store) -> Result<(), CommandError> {
    let unfinished = store.unfinished_applies()?;
    let Some(apply) = unfinished.first() else {
        return Ok(());
    };
    let mut text = format!(
        "apply {} (started {} by {}) did not finish; its hosts:",
        apply.id,
        output::utc_time(apply.started_at),
        apply.started_by
    );
    for host in &apply.hosts {
        let _ = write!(text, "\n  {}: {}", host.host, host.status);
    }
    let _ = write!(
        text,
        "\nroll it back with `schedctl rollback {}` (hosts it wrote are put back), then apply again",
        apply.id
    );
    Err(refused(anyhow::anyhow!(text)))
}

/// The transport of every changed host; a host no longer configured is bad input.
pub fn targets<'a>(
    config: &Config,
    changed: &[&'a HostState],
) -> Result<Vec<Target<'a>>, CommandError> {
    let timeout = Duration::from_secs(config.timeout_secs);
    changed
        .iter()
        .map(|&state| {
            let host = config.host(&state.host).ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "host \"{}\" of the plan is no longer in the configuration; plan again",
                    state.host
                ))
            })?;
            let transport = crate::transport::for_host(host, timeout).map_err(bad_input)?;
            Ok(Target {
                state,
                transport: Arc::from(transport),
            })
        })
        .collect()
}

/// The write order of the changed hosts (indices into `changed`); without a
/// safe order, the best one found with `any_order`, else a refusal.
pub fn order(
    body: &PlanBody,
    changed: &[&HostState],
    any_order: bool,
) -> Result<Vec<usize>, CommandError> {
    let model: Model = body.fleet.snapshot.validate().map_err(|e| {
        CommandError::new(
            Kind::Failed,
            anyhow::anyhow!("the stored snapshot is not valid: {e}"),
        )
    })?;
    let current: Vec<usize> = model.jobs.iter().map(|j| j.current_start).collect();
    let slot = model.slot_minutes as usize;
    let moves: Vec<HostMove> = changed
        .iter()
        .map(|state| HostMove {
            host: state.host.clone(),
            jobs: body
                .fleet
                .jobs
                .iter()
                .zip(&body.plan.assignments)
                .enumerate()
                .filter(|(_, (planned, _))| {
                    planned.host == state.host && state.changes.iter().any(|c| c.job == planned.job)
                })
                .filter_map(|(index, (_, assignment))| {
                    let (h, m) = assignment.start.split_once(':')?;
                    let minutes = h.parse::<usize>().ok()? * 60 + m.parse::<usize>().ok()?;
                    Some((index, minutes / slot))
                })
                .collect(),
        })
        .collect();
    match rollout::order(&model, &current, &moves) {
        Ok(rollout) => Ok(rollout.order),
        Err(err) if any_order => Ok(err.best.order),
        Err(err) => Err(refused(anyhow::anyhow!(
            "{err}; nothing was written. Apply anyway in that order with --any-order, or plan again"
        ))),
    }
}

/// What an apply did.
pub struct Applied {
    /// Its id in the store.
    pub apply_id: i64,
    /// ok | rolled_back | failed.
    pub status: &'static str,
    /// Every host, in the order.
    pub results: Vec<HostResult>,
    /// The write that stopped the rollout, and the kind of failure it makes.
    failure: Option<(Kind, TransportError)>,
}

impl Applied {
    /// The error the apply ends with, when a write stopped it: a stale digest
    /// whose rollout was undone everywhere is a refusal, anything else a failure.
    pub fn error(&self) -> Option<CommandError> {
        self.failure.as_ref().map(|(kind, err)| {
            CommandError::new(
                *kind,
                anyhow::anyhow!("apply {} stopped: {err}; {}", self.apply_id, err.hint()),
            )
        })
    }
}

/// Writes plan `plan_id` to `targets` in `order` (indices into `targets`),
/// recording every step in the store under `who`'s name; on a failed write
/// the hosts already written are rolled back.
pub async fn apply(
    store: &Mutex<Store>,
    plan_id: i64,
    who: &str,
    targets: &[Target<'_>],
    order: &[usize],
    timeout: Duration,
    progress: Progress,
) -> Result<Applied, CommandError> {
    let ordered: Vec<&Target<'_>> = order.iter().map(|&k| &targets[k]).collect();
    let rows: Vec<ApplyHostRow> = ordered
        .iter()
        .enumerate()
        .map(|(i, target)| ApplyHostRow {
            position: i64::try_from(i + 1).unwrap_or(i64::MAX),
            host: target.state.host.clone(),
            transport: target.state.transport.clone(),
            digest_before: target.state.digest.clone(),
            digest_after: None,
            changes: target.state.schedule_changes(),
            previous: target.state.previous_schedules(),
            status: "pending".to_owned(),
            error: String::new(),
        })
        .collect();
    let apply_id = lock(store).start_apply(plan_id, now(), who, &rows)?;
    let journal = Journal {
        store,
        apply_id,
        who,
    };
    let mut results = write_in_order(&journal, &ordered, timeout, progress).await?;
    let failure = results.failure.take();
    if failure.is_some() {
        undo_written(&journal, &ordered, &mut results.hosts, timeout, progress).await?;
    }
    let (status, failure) = match failure {
        None => ("ok", None),
        Some(err) => {
            let all_undone = results.hosts.iter().all(|r| r.status != "rollback_failed");
            let status = if all_undone { "rolled_back" } else { "failed" };
            let kind = if matches!(err, TransportError::Stale { .. }) && all_undone {
                Kind::Refused
            } else {
                Kind::Failed
            };
            (status, Some((kind, err)))
        }
    };
    let message = match &failure {
        None => format!("{} host(s) written", results.hosts.len()),
        Some((_, err)) => format!("stopped at {}: {err}", err.host()),
    };
    lock(store).finish_apply(apply_id, status, &message, now())?;
    Ok(Applied {
        apply_id,
        status,
        results: results.hosts,
        failure,
    })
}

/// The store of one apply, locked for each record only (never across a write).
struct Journal<'a> {
    store: &'a Mutex<Store>,
    apply_id: i64,
    who: &'a str,
}

impl Journal<'_> {
    fn host(&self, host: &str, update: &HostUpdate<'_>) -> Result<(), CommandError> {
        Ok(lock(self.store).set_apply_host(self.apply_id, host, update)?)
    }

    fn undo(
        &self,
        rollback_id: i64,
        host: &str,
        apply: (&str, &str),
        rollback: &HostUpdate<'_>,
    ) -> Result<(), CommandError> {
        Ok(lock(self.store).record_undo(self.apply_id, rollback_id, host, apply, rollback)?)
    }
}

/// What the writes did, up to the first failure.
struct Written {
    hosts: Vec<HostResult>,
    failure: Option<TransportError>,
}

/// Writes each host in turn until one fails; the hosts after it are `not_written`.
async fn write_in_order(
    journal: &Journal<'_>,
    targets: &[&Target<'_>],
    timeout: Duration,
    progress: Progress,
) -> Result<Written, CommandError> {
    // Hosts of one cluster share jobs.cfg: a later write expects what the earlier one left.
    let mut chain: HashMap<String, String> = HashMap::new();
    let mut hosts: Vec<HostResult> = Vec::new();
    let mut failure = None;
    let total = targets.len();
    for (i, target) in targets.iter().enumerate() {
        let state = target.state;
        let step = format!("[{}/{total}] {}", i + 1, state.host);
        let expected = chain
            .get(&state.digest)
            .cloned()
            .unwrap_or_else(|| state.digest.clone());
        journal.host(&state.host, &update("writing", Some(&expected), None, ""))?;
        progress.line(&format!(
            "{step}: writing {} schedule(s)…",
            state.changes.len()
        ));
        let mut result = HostResult::new(target, i + 1, &expected, "written");
        let written = writes::write_checked(
            target.transport.as_ref(),
            &expected,
            &state.schedule_changes(),
            timeout,
        )
        .await;
        match written {
            Ok(response) => {
                journal.host(
                    &state.host,
                    &update("written", None, Some(&response.digest), ""),
                )?;
                progress.line(&format!(
                    "{step}: written and read back, digest {} → {}",
                    short(&expected),
                    short(&response.digest)
                ));
                chain.insert(state.digest.clone(), response.digest.clone());
                result.digest_after = Some(response.digest);
                hosts.push(result);
            }
            Err((response, err)) => {
                // A write that landed but did not read back right is undone like the others.
                let landed = response.map(|r| r.digest);
                let status = if landed.is_some() {
                    "written"
                } else {
                    "failed"
                };
                let error = err.to_string();
                journal.host(
                    &state.host,
                    &update(status, None, landed.as_deref(), &error),
                )?;
                progress.line(&format!("{step}: FAILED: {err}"));
                status.clone_into(&mut result.status);
                result.digest_after = landed;
                result.error = error;
                hosts.push(result);
                failure = Some(err);
                break;
            }
        }
    }
    for target in targets.iter().skip(hosts.len()) {
        hosts.push(HostResult::new(
            target,
            hosts.len() + 1,
            &target.state.digest,
            "not_written",
        ));
    }
    Ok(Written { hosts, failure })
}

/// Rolls back every written host, newest first, and records it (also as a rollback of the apply).
async fn undo_written(
    journal: &Journal<'_>,
    targets: &[&Target<'_>],
    results: &mut [HostResult],
    timeout: Duration,
    progress: Progress,
) -> Result<(), CommandError> {
    let written: Vec<usize> = (0..results.len())
        .filter(|&i| results[i].status == "written")
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    progress.line(&format!(
        "Rolling back the {} host(s) already written…",
        written.len()
    ));
    let rollback_id = lock(journal.store).start_rollback(journal.apply_id, now(), journal.who)?;
    let mut failed_hosts = 0;
    // Hosts of one cluster share jobs.cfg: once a later write is undone, the
    // file is where that undo left it, which is what the earlier write's undo
    // must find (the same digest with the agent, Proxmox's rewrite otherwise).
    let mut replaced: HashMap<String, String> = HashMap::new();
    for &i in written.iter().rev() {
        let target = targets[i];
        let result = &mut results[i];
        let written_digest = result.digest_after.clone().unwrap_or_default();
        let after = replaced
            .get(&written_digest)
            .cloned()
            .unwrap_or(written_digest);
        let undone = writes::undo(
            target.transport.as_ref(),
            &result.digest_before,
            &after,
            &target.state.previous_schedules(),
            timeout,
        )
        .await;
        match undone {
            Ok(response) => {
                journal.undo(
                    rollback_id,
                    &result.host,
                    ("rolled_back", &result.error),
                    &update("restored", Some(&after), Some(&response.digest), ""),
                )?;
                progress.line(&format!(
                    "  {}: rolled back, digest {} → {}",
                    result.host,
                    short(&after),
                    short(&response.digest)
                ));
                replaced.insert(result.digest_before.clone(), response.digest.clone());
                "rolled_back".clone_into(&mut result.status);
                result.digest_after = Some(response.digest);
            }
            Err(err) => {
                failed_hosts += 1;
                let error = err.to_string();
                journal.undo(
                    rollback_id,
                    &result.host,
                    ("rollback_failed", &error),
                    &update("failed", Some(&after), None, &error),
                )?;
                progress.line(&format!("  {}: ROLLBACK FAILED: {err}", result.host));
                "rollback_failed".clone_into(&mut result.status);
                result.error = error;
            }
        }
    }
    let (status, message) = if failed_hosts == 0 {
        ("ok", "automatic, after a failed write".to_owned())
    } else {
        (
            "failed",
            format!(
                "automatic, after a failed write; {failed_hosts} host(s) could not be rolled back"
            ),
        )
    };
    Ok(lock(journal.store).finish_rollback(rollback_id, status, &message, now())?)
}

/// A host's new state, as of now.
fn update<'a>(
    status: &'a str,
    digest_before: Option<&'a str>,
    digest_after: Option<&'a str>,
    error: &'a str,
) -> HostUpdate<'a> {
    HostUpdate {
        status,
        digest_before,
        digest_after,
        error,
        at: now(),
    }
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}
