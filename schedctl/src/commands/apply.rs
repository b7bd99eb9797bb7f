//! `schedctl apply [PLAN]`: write a stored plan, host by host.
//!
//! 1. Every host the plan changes is asked again; if any cannot be reached or
//!    its jobs.cfg no longer has the plan's digest, nothing is written.
//! 2. The rollout order ([`scheduler_core::fleet::rollout`]): no intermediate
//!    state overlaps more than the one before.
//! 3. After the confirmation (or `--yes`), the apply is recorded as started,
//!    then each host is recorded as `writing`, written (digest-checked) and
//!    read back, and recorded with its result.
//! 4. On the first failure the hosts already written are rolled back, newest
//!    first, and the state of every host is printed.
//!
//! Hosts of one cluster share jobs.cfg: the second one's write expects the
//! digest the first one's left.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use scheduler_core::fleet::rollout::{self, HostMove};
use scheduler_core::snapshot::Model;
use serde::Serialize;

use super::plan::{collect_hosts, split};
use super::{open_store, stored_plan, Context};
use crate::config::Config;
use crate::exit::{bad_input, refused, CommandError, CommandResult, Kind};
use crate::fleet::collect;
use crate::fleet::planned::{short, HostState, PlanBody};
use crate::fleet::{now, writes};
use crate::output::{self, Format};
use crate::store::{current_user, ApplyHostRow, HostUpdate, Store};
use crate::transport::{HostTransport, TransportError};

/// Write a stored plan to the hosts.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan (an id from `schedctl history`); default: the latest.
    #[arg(value_name = "PLAN")]
    pub plan: Option<i64>,
    /// Check every host and show the order and the changes; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Write even when no order keeps every intermediate state from overlapping more.
    #[arg(long)]
    pub any_order: bool,
    /// Output format: progress and a summary for people, or JSON at the end.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// One host of the rollout.
struct Target<'a> {
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

#[derive(Serialize)]
struct ApplyOutput {
    apply_id: Option<i64>,
    plan_id: i64,
    status: String,
    dry_run: bool,
    order: Vec<String>,
    hosts: Vec<HostResult>,
}

/// Runs `schedctl apply`.
pub fn run(context: &Context, args: &ApplyArgs) -> CommandResult {
    let config = context.config()?;
    let mut store = open_store(&config)?;
    refuse_if_unfinished(&store)?;
    let (row, body) = stored_plan(&store, args.plan)?;
    if body.hosts.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "plan {} was made from a snapshot file ({}): it has no host digests to write against; make a live plan with `schedctl plan`",
            row.id, row.source
        )));
    }
    let changed: Vec<&HostState> = body
        .hosts
        .iter()
        .filter(|h| !h.changes.is_empty())
        .collect();
    let progress = Progress {
        json: args.format == Format::Json,
    };
    if changed.is_empty() {
        progress.line(&format!(
            "Plan {} changes nothing: nothing to write.",
            row.id
        ));
        return finish_output(args, row.id, None, "ok", Vec::new(), Vec::new());
    }
    let targets = targets(&config, &changed)?;
    let runtime = collect::runtime()?;
    let timeout = Duration::from_secs(config.timeout_secs);
    precheck(&config, &changed, &row.id)?;
    let order = rollout_order(&body, &changed, args.any_order)?;
    let names: Vec<String> = order.iter().map(|&k| changed[k].host.clone()).collect();
    progress.line(&describe(row.id, &order, &changed));
    if args.dry_run {
        progress.line("Dry run: nothing written.");
        return finish_output(args, row.id, None, "dry_run", names, Vec::new());
    }
    if !args.yes {
        confirm(order.len())?;
    }
    let rows: Vec<ApplyHostRow> = order
        .iter()
        .enumerate()
        .map(|(i, &k)| ApplyHostRow {
            position: i64::try_from(i + 1).unwrap_or(i64::MAX),
            host: changed[k].host.clone(),
            transport: changed[k].transport.clone(),
            digest_before: changed[k].digest.clone(),
            digest_after: None,
            changes: changed[k].schedule_changes(),
            previous: changed[k].previous_schedules(),
            status: "pending".to_owned(),
            error: String::new(),
        })
        .collect();
    let user = current_user();
    let apply_id = store
        .start_apply(row.id, now(), &user, &rows)
        .map_err(|e| CommandError::new(Kind::Failed, e))?;
    let ordered: Vec<&Target<'_>> = order.iter().map(|&k| &targets[k]).collect();
    let outcome = runtime.block_on(roll_out(&store, apply_id, &ordered, timeout, &progress))?;
    let (status, kind) = match &outcome.failure {
        None => ("ok", None),
        Some(err) => {
            let all_undone = outcome
                .results
                .iter()
                .all(|r| r.status != "rollback_failed");
            let status = if all_undone { "rolled_back" } else { "failed" };
            let kind = if matches!(err, TransportError::Stale { .. }) && all_undone {
                Kind::Refused
            } else {
                Kind::Failed
            };
            (status, Some((kind, err.clone())))
        }
    };
    let message = match &kind {
        None => format!("{} host(s) written", outcome.results.len()),
        Some((_, err)) => format!("stopped at {}: {err}", err.host()),
    };
    store
        .finish_apply(apply_id, status, &message, now())
        .map_err(|e| CommandError::new(Kind::Failed, e))?;
    if args.format == Format::Text {
        output::print_text(&summary(apply_id, status, &outcome.results))?;
    }
    finish_output(args, row.id, Some(apply_id), status, names, outcome.results)?;
    match kind {
        None => Ok(()),
        Some((kind, err)) => Err(CommandError::new(
            kind,
            anyhow::anyhow!("apply {apply_id} stopped: {err}; {}", err.hint()),
        )),
    }
}

/// Progress lines: on stdout for people, on stderr when stdout carries JSON.
pub struct Progress {
    /// Whether stdout is JSON.
    pub json: bool,
}

impl Progress {
    /// Prints one line (or several).
    pub fn line(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

fn finish_output(
    args: &ApplyArgs,
    plan_id: i64,
    apply_id: Option<i64>,
    status: &str,
    order: Vec<String>,
    hosts: Vec<HostResult>,
) -> CommandResult {
    if args.format == Format::Json {
        output::print_json(&ApplyOutput {
            apply_id,
            plan_id,
            status: status.to_owned(),
            dry_run: args.dry_run,
            order,
            hosts,
        })?;
    }
    Ok(())
}

/// An earlier apply that never finished must be resolved first.
fn refuse_if_unfinished(store: &Store) -> CommandResult {
    let unfinished = store
        .unfinished_applies()
        .map_err(|e| CommandError::new(Kind::Failed, e))?;
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

fn targets<'a>(
    config: &Config,
    changed: &[&'a HostState],
) -> Result<Vec<Target<'a>>, CommandError> {
    let timeout = Duration::from_secs(config.timeout_secs);
    changed
        .iter()
        .map(|state| {
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

/// Asks every host again: all must answer with the plan's digest.
fn precheck(config: &Config, changed: &[&HostState], plan_id: &i64) -> CommandResult {
    let hosts: Vec<&crate::config::HostConfig> = changed
        .iter()
        .filter_map(|s| config.host(&s.host))
        .collect();
    let (reports, unreachable) = split(collect_hosts(config, &hosts)?);
    if !unreachable.is_empty() {
        return Err(super::plan::unreachable_error(
            &unreachable,
            "apply (nothing was written)",
        ));
    }
    let stale: Vec<String> = changed
        .iter()
        .filter_map(|state| {
            let report = reports
                .iter()
                .map(|(_, r)| r)
                .find(|r| r.host == state.host)?;
            (report.jobs_cfg.digest != state.digest).then(|| {
                format!(
                    "{}: jobs.cfg digest is {} now, the plan was made from {}",
                    state.host,
                    short(&report.jobs_cfg.digest),
                    short(&state.digest)
                )
            })
        })
        .collect();
    if !stale.is_empty() {
        return Err(refused(anyhow::anyhow!(
            "refusing to apply plan {plan_id}: jobs.cfg changed on {} host(s) since the plan was made, so nothing was written:\n  {}\nrun `schedctl plan` again and apply the new plan",
            stale.len(),
            stale.join("\n  ")
        )));
    }
    Ok(())
}

/// The write order of the changed hosts (indices into `changed`).
fn rollout_order(
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

fn describe(plan_id: i64, order: &[usize], changed: &[&HostState]) -> String {
    let mut text = format!(
        "Plan {plan_id}: {} host(s), written in this order (no step overlaps more than the one before):",
        order.len()
    );
    for (i, &k) in order.iter().enumerate() {
        let state = changed[k];
        let _ = write!(text, "\n  {}. {} ({})", i + 1, state.host, state.transport);
        if state.kind().rewrites_whole_file() {
            text.push_str(" — Proxmox rewrites the whole jobs.cfg (renormalised)");
        }
        for change in &state.changes {
            let _ = write!(
                text,
                "\n       {}: {} → {}",
                change.job, change.from, change.to
            );
        }
    }
    text
}

fn confirm(hosts: usize) -> CommandResult {
    eprint!("Write {hosts} host(s) now? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if read == 0 || !yes {
        return Err(refused(anyhow::anyhow!(
            "not confirmed, nothing was written (answer y, or give --yes)"
        )));
    }
    Ok(())
}

/// What the rollout did.
struct Rolled {
    results: Vec<HostResult>,
    failure: Option<TransportError>,
}

async fn roll_out(
    store: &Store,
    apply_id: i64,
    targets: &[&Target<'_>],
    timeout: Duration,
    progress: &Progress,
) -> Result<Rolled, CommandError> {
    let record =
        |host: &str, status: &str, before: Option<&str>, after: Option<&str>, error: &str| {
            store
                .set_apply_host(
                    apply_id,
                    host,
                    &HostUpdate {
                        status,
                        digest_before: before,
                        digest_after: after,
                        error,
                        at: now(),
                    },
                )
                .map_err(|e| CommandError::new(Kind::Failed, e))
        };
    // Hosts of one cluster share jobs.cfg: a later write expects what the earlier one left.
    let mut chain: HashMap<String, String> = HashMap::new();
    let mut results: Vec<HostResult> = Vec::new();
    let mut failure = None;
    let total = targets.len();
    for (i, target) in targets.iter().enumerate() {
        let state = target.state;
        let expected = chain
            .get(&state.digest)
            .cloned()
            .unwrap_or_else(|| state.digest.clone());
        record(&state.host, "writing", Some(&expected), None, "")?;
        progress.line(&format!(
            "[{}/{total}] {}: writing {} schedule(s)…",
            i + 1,
            state.host,
            state.changes.len()
        ));
        let mut result = HostResult {
            host: state.host.clone(),
            position: i + 1,
            transport: state.transport.clone(),
            status: String::new(),
            digest_before: expected.clone(),
            digest_after: None,
            error: String::new(),
            changes: state.changes.len(),
        };
        match writes::write_checked(
            target.transport.as_ref(),
            &expected,
            &state.schedule_changes(),
            timeout,
        )
        .await
        {
            Ok(response) => {
                record(&state.host, "written", None, Some(&response.digest), "")?;
                progress.line(&format!(
                    "[{}/{total}] {}: written and read back, digest {} → {}",
                    i + 1,
                    state.host,
                    short(&expected),
                    short(&response.digest)
                ));
                chain.insert(state.digest.clone(), response.digest.clone());
                result.status = "written".to_owned();
                result.digest_after = Some(response.digest);
                results.push(result);
            }
            Err((response, err)) => {
                // A write that landed but did not read back right is undone like the others.
                let landed = response.map(|r| r.digest);
                let status = if landed.is_some() {
                    "written"
                } else {
                    "failed"
                };
                record(
                    &state.host,
                    status,
                    None,
                    landed.as_deref(),
                    &err.to_string(),
                )?;
                progress.line(&format!(
                    "[{}/{total}] {}: FAILED: {err}",
                    i + 1,
                    state.host
                ));
                result.status = status.to_owned();
                result.digest_after = landed;
                result.error = err.to_string();
                results.push(result);
                failure = Some(err);
                break;
            }
        }
    }
    if failure.is_some() {
        undo_written(store, apply_id, targets, &mut results, timeout, progress).await?;
    }
    for target in targets.iter().skip(results.len()) {
        results.push(HostResult {
            host: target.state.host.clone(),
            position: results.len() + 1,
            transport: target.state.transport.clone(),
            status: "not_written".to_owned(),
            digest_before: target.state.digest.clone(),
            digest_after: None,
            error: String::new(),
            changes: target.state.changes.len(),
        });
    }
    Ok(Rolled { results, failure })
}

/// Rolls back every written host, newest first, and records it (also as a rollback of the apply).
async fn undo_written(
    store: &Store,
    apply_id: i64,
    targets: &[&Target<'_>],
    results: &mut [HostResult],
    timeout: Duration,
    progress: &Progress,
) -> CommandResult {
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
    let rollback_id = store
        .start_rollback(apply_id, now(), &current_user())
        .map_err(|e| CommandError::new(Kind::Failed, e))?;
    let mut failed = 0;
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
        let at = now();
        let sql = |e| CommandError::new(Kind::Failed, e);
        match undone {
            Ok(response) => {
                store
                    .set_apply_host(
                        apply_id,
                        &result.host,
                        &HostUpdate {
                            status: "rolled_back",
                            digest_before: None,
                            digest_after: None,
                            error: &result.error,
                            at,
                        },
                    )
                    .map_err(sql)?;
                store
                    .set_rollback_host(
                        rollback_id,
                        &result.host,
                        &HostUpdate {
                            status: "restored",
                            digest_before: Some(&after),
                            digest_after: Some(&response.digest),
                            error: "",
                            at,
                        },
                    )
                    .map_err(sql)?;
                progress.line(&format!(
                    "  {}: rolled back, digest {} → {}",
                    result.host,
                    short(&after),
                    short(&response.digest)
                ));
                replaced.insert(result.digest_before.clone(), response.digest.clone());
                result.status = "rolled_back".to_owned();
                result.digest_after = Some(response.digest);
            }
            Err(err) => {
                failed += 1;
                store
                    .set_apply_host(
                        apply_id,
                        &result.host,
                        &HostUpdate {
                            status: "rollback_failed",
                            digest_before: None,
                            digest_after: None,
                            error: &err.to_string(),
                            at,
                        },
                    )
                    .map_err(sql)?;
                store
                    .set_rollback_host(
                        rollback_id,
                        &result.host,
                        &HostUpdate {
                            status: "failed",
                            digest_before: Some(&after),
                            digest_after: None,
                            error: &err.to_string(),
                            at,
                        },
                    )
                    .map_err(sql)?;
                progress.line(&format!("  {}: ROLLBACK FAILED: {err}", result.host));
                result.status = "rollback_failed".to_owned();
                result.error = err.to_string();
            }
        }
    }
    let (status, message) = if failed == 0 {
        ("ok", "automatic, after a failed write".to_owned())
    } else {
        (
            "failed",
            format!("automatic, after a failed write; {failed} host(s) could not be rolled back"),
        )
    };
    store
        .finish_rollback(rollback_id, status, &message, now())
        .map_err(|e| CommandError::new(Kind::Failed, e))
}

/// The final state of every host, in words.
fn summary(apply_id: i64, status: &str, results: &[HostResult]) -> String {
    let mut out = format!("\nApply {apply_id}: {status}. State of every host:\n");
    for r in results {
        let text = match r.status.as_str() {
            "written" => format!(
                "new schedules in place (jobs.cfg digest {})",
                short(r.digest_after.as_deref().unwrap_or(""))
            ),
            "rolled_back" => format!(
                "rolled back: previous schedules in place (jobs.cfg digest {})",
                short(r.digest_after.as_deref().unwrap_or(""))
            ),
            "rollback_failed" => format!(
                "NEW SCHEDULES STILL IN PLACE, the rollback failed: {}; run `schedctl rollback {apply_id}` once the host answers",
                r.error
            ),
            "failed" => format!("not written, its write failed: {}", r.error),
            _ => "not written (the rollout stopped before it)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}. {} ({}): {text}",
            r.position, r.host, r.transport
        );
    }
    out
}
