//! `schedctl plan`: collect the live fleet (or read a snapshot file), plan
//! its start times (PLANNING-MODEL.md), show what moves and why, store the plan.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use scheduler_core::fleet::{self as core_fleet, FleetSnapshot};
use scheduler_core::plan::Plan;
use scheduler_core::snapshot::Model;
use serde::Serialize;

use super::{collect_all, open_store, unreachable_error, Context};
use crate::config::Config;
use crate::exit::{bad_input, CommandError, CommandResult, Kind};
use crate::fleet::collect::split;
use crate::fleet::planned::{self, PlanBody, Unreachable};
use crate::fleet::planning::{self, Collected, PlanOptions};
use crate::fleet::{self, now};
use crate::output;
use crate::store::current_user;
use crate::timeline::{self, Schedule};

/// Plan backup start times for the fleet.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan this fleet snapshot (JSON, see PLANNING-MODEL.md) instead of the live fleet.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Write the snapshot built from the live fleet to FILE (JSON).
    #[arg(long, value_name = "FILE", conflicts_with = "snapshot")]
    pub save_snapshot: Option<PathBuf>,
    /// Plan without the hosts that cannot be reached (their jobs are not counted).
    #[arg(long, conflicts_with = "snapshot")]
    pub skip_unreachable: bool,
    /// Output format: a table for people or the plan as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: PlanFormat,
    /// Stop improving after this many seconds and print the best plan found.
    #[arg(long, value_name = "SECONDS", default_value_t = planning::DEFAULT_TIME_LIMIT_SECS)]
    pub time_limit: f64,
    /// Seed of the planner's random choices: the same snapshot and seed give the same plan.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Worker threads. The planner sizes its work by them: use the same number to reproduce a plan.
    #[arg(long, value_name = "N", default_value_t = planning::DEFAULT_THREADS)]
    pub threads: usize,
}

/// How `schedctl plan` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PlanFormat {
    /// Readable text and tables.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
    /// The week's timeline (SVG): the current schedule beside the plan.
    Svg,
    /// The status page (HTML with inline SVG) for the snapshot and the plan.
    Html,
}

/// Runs `schedctl plan`.
pub fn run(context: &Context, args: &PlanArgs) -> CommandResult {
    let started = Instant::now();
    if !(args.time_limit.is_finite() && args.time_limit > 0.0) {
        return Err(bad_input(anyhow::anyhow!(
            "--time-limit: expected a positive number of seconds, got {}",
            args.time_limit
        )));
    }
    match &args.snapshot {
        Some(path) => plan_snapshot_file(context, args, path, started),
        None => plan_live(context, args, started),
    }
}

impl PlanArgs {
    /// The planner's settings.
    fn options(&self) -> PlanOptions {
        PlanOptions {
            time_limit_secs: self.time_limit,
            seed: self.seed,
            threads: self.threads,
        }
    }
}

fn plan_snapshot_file(
    context: &Context,
    args: &PlanArgs,
    path: &Path,
    started: Instant,
) -> CommandResult {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the snapshot {}", path.display()))
        .map_err(bad_input)?;
    let model = Model::from_json(&text)
        .with_context(|| format!("{} is not a valid snapshot", path.display()))
        .map_err(bad_input)?;
    let plan = planning::solve(&model, &args.options(), started, &|| false);
    // With a configuration the plan is kept for `history` and `simulate --plan-id`
    // (it has no host digests: it cannot be applied).
    if let Some(config) = context.optional_config()? {
        let snapshot = scheduler_core::snapshot::Snapshot::from_json(&text).map_err(bad_input)?;
        let body = PlanBody {
            made_at: now(),
            schedule_zone: "utc".to_owned(),
            fleet: FleetSnapshot {
                snapshot,
                jobs: Vec::new(),
                notes: Vec::new(),
            },
            plan: plan.clone(),
            hosts: Vec::new(),
            unreachable: Vec::new(),
        };
        let id = store_plan(&config, &body, &format!("snapshot {}", path.display()))?;
        eprintln!(
            "schedctl: stored as plan {id} (made from a snapshot file: it cannot be applied)"
        );
    }
    match args.format {
        PlanFormat::Json => output::print_json(&plan)?,
        PlanFormat::Text => output::print_text(&render_text(&model, &plan))?,
        PlanFormat::Svg | PlanFormat::Html => {
            output::print_text(&render_timeline(&model, &plan, args.format)?)?;
        }
    }
    Ok(())
}

/// The current schedule beside the plan, as SVG or as the status page.
fn render_timeline(model: &Model, plan: &Plan, format: PlanFormat) -> anyhow::Result<String> {
    let current = Schedule::current(model);
    let planned = Schedule::from_plan(model, plan, "Plan")?;
    Ok(if format == PlanFormat::Html {
        timeline::render_page(&timeline::Page {
            model,
            current: &current,
            pending: Some(&planned),
            now: chrono::Utc::now(),
        })
    } else {
        timeline::render_svg(model, &current, Some(&planned))
    })
}

/// What `plan --format json` prints for the live fleet.
#[derive(Serialize)]
struct LivePlanOutput<'a> {
    plan_id: i64,
    plan: &'a Plan,
    hosts: Vec<HostChanges<'a>>,
    notes: &'a [core_fleet::Note],
    unreachable: &'a [Unreachable],
}

#[derive(Serialize)]
struct HostChanges<'a> {
    host: &'a str,
    transport: &'a str,
    digest: &'a str,
    rewrites_whole_file: bool,
    changes: &'a [planned::Change],
}

fn plan_live(context: &Context, args: &PlanArgs, started: Instant) -> CommandResult {
    let config = context.config()?;
    let (reports, unreachable) = split(collect_all(&config)?);
    if !unreachable.is_empty() && !args.skip_unreachable {
        return Err(unreachable_error(&unreachable, "plan"));
    }
    if reports.is_empty() {
        return Err(CommandError::new(
            Kind::Failed,
            anyhow::anyhow!("no host answered: nothing to plan"),
        ));
    }
    let made_at = now();
    let built = planning::build(&config, &reports, made_at);
    let model = built
        .snapshot
        .validate()
        .context("internal error: the snapshot built from the reports is not valid; save it with --save-snapshot and report it")?;
    if let Some(path) = &args.save_snapshot {
        std::fs::write(path, built.snapshot.to_json() + "\n")
            .with_context(|| format!("cannot write the snapshot to {}", path.display()))?;
    }
    let collected = Collected {
        reports,
        fleet: built,
        made_at,
        unreachable,
    };
    let body = planning::plan_live(
        collected,
        &model,
        fleet::schedule_zone(&config),
        &args.options(),
        started,
        &|| false,
    )?;
    let id = store_plan(&config, &body, "live")?;
    match args.format {
        PlanFormat::Svg | PlanFormat::Html => {
            output::print_text(&render_timeline(&model, &body.plan, args.format)?)?;
        }
        PlanFormat::Json => output::print_json(&LivePlanOutput {
            plan_id: id,
            plan: &body.plan,
            hosts: body
                .hosts
                .iter()
                .map(|h| HostChanges {
                    host: &h.host,
                    transport: &h.transport,
                    digest: &h.digest,
                    rewrites_whole_file: h.kind().rewrites_whole_file(),
                    changes: &h.changes,
                })
                .collect(),
            notes: &body.fleet.notes,
            unreachable: &body.unreachable,
        })?,
        PlanFormat::Text => output::print_text(&render_live(id, &body))?,
    }
    Ok(())
}

fn store_plan(config: &Config, body: &PlanBody, source: &str) -> Result<i64, CommandError> {
    let store = open_store(config)?;
    Ok(planning::store(&store, body, source, &current_user())?)
}

/// Notes for people; the same text for many jobs is said once, with a few of their names.
pub fn render_notes(notes: &[core_fleet::Note]) -> String {
    const NAMES_SHOWN: usize = 3;
    let mut by_text: Vec<(&str, Vec<String>)> = Vec::new();
    for note in notes {
        let name = match &note.job {
            Some(job) => format!("{}/{job}", note.host),
            None => note.host.clone(),
        };
        match by_text.iter_mut().find(|(text, _)| *text == note.text) {
            Some((_, names)) => names.push(name),
            None => by_text.push((&note.text, vec![name])),
        }
    }
    let mut out = String::new();
    for (text, names) in by_text {
        if names.len() <= NAMES_SHOWN {
            for name in names {
                let _ = writeln!(out, "  {name}: {text}");
            }
        } else {
            let _ = writeln!(
                out,
                "  {} jobs ({}, ... {}): {text}",
                names.len(),
                names[..NAMES_SHOWN - 1].join(", "),
                names[names.len() - 1]
            );
        }
    }
    out
}

/// The live plan for people: what moves on each host and why, the notes, what to do next.
fn render_live(id: i64, body: &PlanBody) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = body
        .hosts
        .iter()
        .flat_map(|h| h.changes.iter().map(move |c| (h, c)))
        .map(|(h, c)| {
            vec![
                h.host.clone(),
                c.job.clone(),
                format!("{} → {}", c.from, c.to),
                c.why.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("Nothing moves: the current schedules are already the plan.\n");
    } else {
        out.push_str(&output::table(&["HOST", "JOB", "SCHEDULE", "WHY"], &rows));
    }
    let warnings: Vec<String> = body
        .hosts
        .iter()
        .flat_map(|h| {
            h.changes.iter().flat_map(move |c| {
                c.warnings
                    .iter()
                    .map(move |w| format!("{}/{}: {w}", h.host, c.job))
            })
        })
        .collect();
    if !warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    if !body.fleet.notes.is_empty() {
        out.push_str("\nNotes:\n");
        out.push_str(&render_notes(&body.fleet.notes));
    }
    for u in &body.unreachable {
        let _ = writeln!(out, "\nLeft out: {} ({})", u.error, u.hint);
    }
    let rewrites: Vec<&str> = body
        .hosts
        .iter()
        .filter(|h| !h.changes.is_empty() && h.kind().rewrites_whole_file())
        .map(|h| h.host.as_str())
        .collect();
    if !rewrites.is_empty() {
        let _ = writeln!(
            out,
            "\nOn {} Proxmox itself writes jobs.cfg (SSH or Proxmox API): it renormalises the whole file.",
            rewrites.join(", ")
        );
    }
    out.push('\n');
    out.push_str(&totals(&body.plan, body.fleet.snapshot.jobs.len()));
    if body.changes() > 0 {
        let _ = writeln!(
            out,
            "Stored as plan {id}. Review: schedctl diff {id}   Write: schedctl apply {id}"
        );
    } else {
        let _ = writeln!(out, "Stored as plan {id}.");
    }
    out
}

/// The plan as a table (job, host, from → to, why) and its totals.
fn render_text(model: &Model, plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .assignments
        .iter()
        .zip(&model.jobs)
        .map(|(a, job)| {
            let from = a.current.clone().unwrap_or_default();
            let change = if a.moved {
                format!("{from} → {}", a.start)
            } else {
                format!("{} (kept)", a.start)
            };
            vec![
                a.id.clone(),
                model.hosts[job.host].name.clone(),
                change,
                a.why.clone(),
            ]
        })
        .collect();
    let mut out = output::table(&["JOB", "HOST", "START", "WHY"], &rows);
    out.push('\n');
    out.push_str(&totals(plan, model.jobs.len()));
    out
}

fn totals(plan: &Plan, jobs: usize) -> String {
    let bound = plan
        .bound
        .map_or_else(|| "unknown".to_owned(), |b| format!("{b:.4}"));
    let proven = if plan.proven_optimal {
        " (proven optimal)"
    } else {
        ""
    };
    let mut text = format!(
        "objective {:.4}{proven}, bound {bound}, moved {} of {jobs}, ",
        plan.objective, plan.moved
    );
    if plan.feasible {
        text.push_str("no overflow");
    } else {
        let _ = write!(
            text,
            "overflow {} (no plan fits every capacity; this is the least possible overlap found)",
            plan.overflow
        );
    }
    let _ = writeln!(text, ", solved in {} ms", plan.solve_ms);
    text
}
