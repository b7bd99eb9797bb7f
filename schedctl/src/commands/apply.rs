//! `schedctl apply [PLAN]`: write a stored plan, host by host.
//!
//! 1. Every host the plan changes is asked again; if any cannot be reached or
//!    its jobs.cfg no longer has the plan's digest, nothing is written.
//! 2. The rollout order ([`scheduler_core::fleet::rollout`]): no intermediate
//!    state overlaps more than the one before.
//! 3. After the confirmation (or `--yes`), the rollout of [`fleet::rollout`]:
//!    the apply is recorded as started, then each host is recorded as
//!    `writing`, written (digest-checked) and read back, and recorded with
//!    its result.
//! 4. On the first failure the hosts already written are rolled back, newest
//!    first, and the state of every host is printed.
//!
//! Hosts of one cluster share jobs.cfg: the second one's write expects the
//! digest the first one's left.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{collect_hosts, confirm, open_store, stored_plan, unreachable_error, Context};
use crate::config::Config;
use crate::exit::{bad_input, refused, CommandResult};
use crate::fleet::collect::{self, split};
use crate::fleet::planned::{short, HostState};
use crate::fleet::rollout::{self, HostResult, Progress};
use crate::output::{self, Format};
use crate::store::current_user;

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
    let store = open_store(&config)?;
    rollout::refuse_if_unfinished(&store)?;
    let (row, body) = stored_plan(&store, args.plan)?;
    if body.hosts.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "plan {} was made from a snapshot file ({}): it has no host digests to write against; make a live plan with `schedctl plan`",
            row.id, row.source
        )));
    }
    let changed = body.changed_hosts();
    let progress = Progress::beside(args.format);
    if changed.is_empty() {
        progress.line(&format!(
            "Plan {} changes nothing: nothing to write.",
            row.id
        ));
        return finish_output(args, row.id, None, "ok", Vec::new(), Vec::new());
    }
    let targets = rollout::targets(&config, &changed)?;
    precheck(&config, &changed, row.id)?;
    let order = rollout::order(&body, &changed, args.any_order)?;
    let names: Vec<String> = order.iter().map(|&k| changed[k].host.clone()).collect();
    progress.line(&describe(row.id, &order, &changed));
    if args.dry_run {
        progress.line("Dry run: nothing written.");
        return finish_output(args, row.id, None, "dry_run", names, Vec::new());
    }
    if !args.yes {
        confirm(
            &format!("Write {} host(s) now?", order.len()),
            "nothing was written",
        )?;
    }
    let store = Mutex::new(store);
    let timeout = Duration::from_secs(config.timeout_secs);
    let applied = collect::runtime()?.block_on(rollout::apply(
        &store,
        row.id,
        &current_user(),
        &targets,
        &order,
        timeout,
        progress,
    ))?;
    if args.format == Format::Text {
        output::print_text(&summary(applied.apply_id, applied.status, &applied.results))?;
    }
    let error = applied.error();
    finish_output(
        args,
        row.id,
        Some(applied.apply_id),
        applied.status,
        names,
        applied.results,
    )?;
    error.map_or(Ok(()), Err)
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

/// Asks every host again: all must answer with the plan's digest.
fn precheck(config: &Config, changed: &[&HostState], plan_id: i64) -> CommandResult {
    let hosts: Vec<&crate::config::HostConfig> = changed
        .iter()
        .filter_map(|s| config.host(&s.host))
        .collect();
    let (reports, unreachable) = split(collect_hosts(config, &hosts)?);
    if !unreachable.is_empty() {
        return Err(unreachable_error(
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
