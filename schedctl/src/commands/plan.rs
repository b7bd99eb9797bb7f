//! `schedctl plan`: read a fleet snapshot, print the plan (PLANNING-MODEL.md).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use scheduler_core::plan::Plan;
use scheduler_core::planner::{self, Deadline, Options};
use scheduler_core::snapshot::Model;

use crate::exit::{bad_input, CommandResult};
use crate::output;
use crate::timeline::{self, Schedule};

/// Plan backup start times for a fleet snapshot.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The fleet snapshot (JSON, see PLANNING-MODEL.md).
    #[arg(long, value_name = "FILE")]
    pub snapshot: PathBuf,
    /// Output format: a table for people, the plan as JSON, or the week's
    /// timeline, current schedule beside the plan, as SVG or as the HTML status page.
    #[arg(long, value_enum, default_value_t)]
    pub format: PlanFormat,
    /// Stop improving after this many seconds and print the best plan found.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub time_limit: f64,
    /// Seed of the planner's random choices: the same snapshot and seed give the same plan.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Worker threads. The planner sizes its work by them: use the same number to reproduce a plan.
    #[arg(long, value_name = "N", default_value_t = 2)]
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

/// The wall clock's deadline, handed to the pure planner.
struct WallDeadline {
    end: Instant,
}

impl Deadline for WallDeadline {
    fn expired(&self) -> bool {
        Instant::now() >= self.end
    }

    fn remaining(&self) -> Option<Duration> {
        Some(self.end.saturating_duration_since(Instant::now()))
    }
}

/// Runs `schedctl plan`.
pub fn run(args: &PlanArgs) -> CommandResult {
    let started = Instant::now();
    if !(args.time_limit.is_finite() && args.time_limit > 0.0) {
        return Err(bad_input(anyhow::anyhow!(
            "--time-limit: expected a positive number of seconds, got {}",
            args.time_limit
        )));
    }
    let text = std::fs::read_to_string(&args.snapshot)
        .with_context(|| format!("cannot read the snapshot {}", args.snapshot.display()))
        .map_err(bad_input)?;
    let model = Model::from_json(&text)
        .with_context(|| format!("{} is not a valid snapshot", args.snapshot.display()))
        .map_err(bad_input)?;
    // Leave a little of the limit for printing.
    let budget = Duration::from_secs_f64(args.time_limit * 0.9);
    let deadline = WallDeadline {
        end: started + budget,
    };
    // The planner sizes its fixed work from the limit itself, not from the
    // time left after reading: the same snapshot, seed and limit then give the
    // same plan however long the reading took.
    let options = Options {
        seed: args.seed,
        time_limit_secs: budget.as_secs_f64(),
        threads: args.threads.max(1),
    };
    let mut plan = planner::plan(&model, &options, &deadline);
    plan.solve_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
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

/// The plan as a table (job, host, from → to, why) and its totals.
fn render_text(model: &Model, plan: &Plan) -> String {
    let rows: Vec<[String; 4]> = plan
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
            [
                a.id.clone(),
                model.hosts[job.host].name.clone(),
                change,
                a.why.clone(),
            ]
        })
        .collect();
    let header = ["JOB", "HOST", "START", "WHY"];
    let width = |k: usize| {
        rows.iter()
            .map(|r| r[k].chars().count())
            .chain([header[k].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let mut text = String::new();
        for (k, cell) in cells.iter().enumerate().take(3) {
            let pad = widths[k].saturating_sub(cell.chars().count());
            let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
        }
        text.push_str(cells[3]);
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }
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
