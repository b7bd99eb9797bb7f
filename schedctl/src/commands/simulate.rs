//! `schedctl simulate`: replay noisy nights of a fleet snapshot under its
//! current starts or a plan, and show the I/O storms and overlaps
//! (`scheduler_core::sim` explains what is counted).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use scheduler_core::sim::{
    Fleet, Options, Report, Schedule, SimError, StormCell, Timeline, CELL_BACKUP, CELL_BUSY,
    CELL_STORM,
};

use scheduler_core::fleet as core_fleet;
use scheduler_core::report::HostReport;

use super::{collect_all, unreachable_error};
use super::{open_store, stored_plan, Context};
use crate::exit::{bad_input, CommandError, CommandResult};
use crate::fleet::collect::split;
use crate::output::{self, Format};

/// Timeline rows shown in text; the JSON has them all.
const TIMELINE_ROWS_SHOWN: usize = 40;

/// Storm time ranges shown per host in text.
const STORM_RANGES_SHOWN: usize = 3;

/// Replay nights of a fleet and report storms and overlaps.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Replay this fleet snapshot (JSON, see PLANNING-MODEL.md) instead of the live fleet.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// A plan (JSON, as `schedctl plan --format json` prints) whose starts to
    /// replay on --snapshot; without it, every job keeps its current start.
    #[arg(long, value_name = "PLAN", requires = "snapshot")]
    pub plan: Option<PathBuf>,
    /// Replay a stored plan (an id from `schedctl history`) on the snapshot it was made from,
    /// compared with that fleet's current starts.
    #[arg(long, value_name = "ID", conflicts_with = "snapshot")]
    pub plan_id: Option<i64>,
    /// Nights to replay, from a Monday (1 to 366).
    #[arg(long, value_name = "N", default_value_t = Options::default().nights)]
    pub nights: u32,
    /// Seed of the run-duration draws: the same seed gives the same report.
    #[arg(long, value_name = "N", default_value_t = Options::default().seed)]
    pub seed: u64,
    /// Spread (log-normal sigma) of run durations around duration_minutes; 0 means exact.
    #[arg(long, value_name = "SIGMA", default_value_t = Options::default().spread)]
    pub spread: f64,
    /// A host is busy when its load is at least this (0 to 1); backup I/O
    /// during busy load counts as storm.
    #[arg(long, value_name = "LOAD", default_value_t = Options::default().busy_threshold)]
    pub busy_threshold: f64,
    /// When each simulated night starts (HH:MM UTC); by default the middle of
    /// the longest stretch of the day in which no backup runs.
    #[arg(long, value_name = "HH:MM", value_parser = parse_time_of_day)]
    pub night_start: Option<u32>,
    /// Output format: tables for people or the report as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Runs `schedctl simulate`.
pub fn run(context: &Context, args: &SimulateArgs) -> CommandResult {
    let mut options = Options {
        nights: args.nights,
        seed: args.seed,
        spread: args.spread,
        busy_threshold: args.busy_threshold,
        night_start: args.night_start,
    };
    options.validate().map_err(bad_input)?;
    let (fleet, plan, label) = match &args.snapshot {
        Some(path) => {
            let fleet = read_fleet(path)?;
            let plan = read_plan(args, path, &fleet)?;
            (fleet, plan, schedule_label(args))
        }
        None => live_or_stored(context, args)?,
    };
    let compare = plan.is_some();
    let schedule = plan.unwrap_or_else(|| fleet.current_schedule());
    // Fix the nights' start so that the comparison below uses the same nights.
    options.night_start = Some(
        args.night_start
            .unwrap_or_else(|| schedule.quiet_minute(fleet.durations())),
    );
    let report = fleet.simulate(&schedule, &options).map_err(bad_input)?;
    match args.format {
        Format::Json => output::print_json(&report)?,
        Format::Text => {
            let mut text = render_text(&report, &label);
            if compare {
                let current = fleet
                    .simulate(&fleet.current_schedule(), &options)
                    .context("cannot simulate the current starts for comparison")?;
                text.push_str(&comparison_line(&current));
            }
            output::print_text(&text)?;
        }
    }
    Ok(())
}

fn schedule_label(args: &SimulateArgs) -> String {
    match &args.plan {
        Some(path) => format!("the plan {}", path.display()),
        None => "the current starts".to_owned(),
    }
}

fn read_fleet(path: &Path) -> Result<Fleet, CommandError> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the snapshot {}", path.display()))
        .map_err(bad_input)?;
    Fleet::from_json(&text)
        .with_context(|| format!("{} is not a valid snapshot", path.display()))
        .map_err(bad_input)
}

/// The live fleet under its current starts, or a stored plan on its own snapshot.
fn live_or_stored(
    context: &Context,
    args: &SimulateArgs,
) -> Result<(Fleet, Option<Schedule>, String), CommandError> {
    let config = context.config()?;
    if let Some(id) = args.plan_id {
        let store = open_store(&config)?;
        let (row, body) = stored_plan(&store, Some(id))?;
        let fleet = Fleet::from_snapshot(&body.fleet.snapshot)
            .with_context(|| format!("plan {} holds a snapshot that is not valid", row.id))?;
        let schedule = Schedule::from_plan(fleet.model(), &body.plan)
            .with_context(|| format!("plan {} does not fit its own snapshot", row.id))?;
        return Ok((fleet, Some(schedule), format!("plan {}", row.id)));
    }
    let (reports, unreachable) = split(collect_all(&config)?);
    if !unreachable.is_empty() {
        return Err(unreachable_error(&unreachable, "simulate"));
    }
    let reports: Vec<HostReport> = reports.into_iter().map(|(_, r)| r).collect();
    let built = core_fleet::build(
        &reports,
        &crate::fleet::settings(&config),
        crate::fleet::now(),
    );
    let fleet = Fleet::from_snapshot(&built.snapshot)
        .context("internal error: the snapshot built from the reports is not valid")?;
    Ok((fleet, None, "the live fleet's current schedules".to_owned()))
}

/// The plan's schedule, when `--plan` is given.
fn read_plan(
    args: &SimulateArgs,
    snapshot: &Path,
    fleet: &Fleet,
) -> Result<Option<Schedule>, CommandError> {
    let Some(path) = &args.plan else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan {}", path.display()))
        .map_err(bad_input)?;
    let schedule = Schedule::from_plan_json(fleet.model(), &text).map_err(|e| {
        let context = match e {
            SimError::PlanJson { .. } => format!("cannot read the plan {}", path.display()),
            _ => format!(
                "the plan {} does not match the snapshot {}: make the plan from this snapshot (schedctl plan --snapshot {} --format json)",
                path.display(),
                snapshot.display(),
                snapshot.display()
            ),
        };
        bad_input(anyhow::Error::new(e).context(context))
    })?;
    Ok(Some(schedule))
}

/// The whole text report: settings, hosts, resources, jobs, worst night, fleet.
fn render_text(report: &Report, label: &str) -> String {
    let mut out = format!(
        "Replayed {} night(s) under {label}, each from {} UTC, the first on a Monday: seed {}, duration spread {}, busy from load {}.\n",
        report.nights, report.night_start, report.seed, report.spread, report.busy_threshold
    );
    let _ = writeln!(
        out,
        "Storm: backup I/O on a host while its load is at least {}; weighted by impact x sensitivity x load.\n",
        report.busy_threshold
    );
    out.push_str(&hosts_table(report));
    if !report.resources.is_empty() {
        out.push('\n');
        out.push_str(&resources_table(report));
    }
    out.push('\n');
    out.push_str(&jobs_table(report));
    out.push('\n');
    out.push_str(&worst_night(report));
    out.push('\n');
    out.push_str(&fleet_line(report));
    out
}

fn hosts_table(report: &Report) -> String {
    let rows: Vec<Vec<String>> = report
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                format!("{:.1}", h.storm_minutes_mean),
                format!("{:.2}", h.storm_weighted_mean),
                percent(h.storm_probability),
                storm_ranges(&h.storm_times),
            ]
        })
        .collect();
    output::aligned_table(
        &[
            "HOST",
            "STORM MIN/NIGHT",
            "WEIGHTED/NIGHT",
            "NIGHTS WITH STORM",
            "STORM TIMES (UTC)",
        ],
        &[false, true, true, true, false],
        &rows,
    )
}

fn resources_table(report: &Report) -> String {
    let rows: Vec<Vec<String>> = report
        .resources
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.capacity.to_string(),
                percent(r.overlap_probability),
                format!("{:.1}", r.overlap_minutes_mean),
                r.max_active.to_string(),
            ]
        })
        .collect();
    output::aligned_table(
        &[
            "RESOURCE",
            "CAPACITY",
            "NIGHTS OVER CAPACITY",
            "MIN OVER/NIGHT",
            "MOST AT ONCE",
        ],
        &[false, true, true, true, true],
        &rows,
    )
}

fn jobs_table(report: &Report) -> String {
    let rows: Vec<Vec<String>> = report
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.host.clone(),
                j.start.clone(),
                format!("{:.1}", j.duration_minutes),
                format!("{:.1}", j.real_minutes_mean),
                format!("{:.1}", j.real_minutes_p95),
                format!("{:.1}", j.real_minutes_max),
                format!("{:.1}", j.wait_minutes_mean),
                percent(j.overrun_probability),
            ]
        })
        .collect();
    output::aligned_table(
        &[
            "JOB", "HOST", "START", "MEDIAN", "MEAN", "P95", "MAX", "WAIT", "OVERRUN",
        ],
        &[false, false, false, true, true, true, true, true, true],
        &rows,
    )
}

/// The worst night's figures and its timeline.
fn worst_night(report: &Report) -> String {
    let w = &report.worst_night;
    let mut out = format!(
        "Worst night: night {}, from {} {} UTC: {} storm minutes, weighted {:.2}.\n",
        w.night.night,
        w.night.weekday,
        report.night_start,
        w.night.storm_minutes,
        w.night.storm_weighted
    );
    out.push_str(&timeline(&w.timeline));
    out
}

/// The timeline with an hour ruler; storm rows first when there are too many.
fn timeline(t: &Timeline) -> String {
    if t.rows.is_empty() {
        return "  (no backup ran that night)\n".to_owned();
    }
    let mut rows: Vec<_> = t.rows.iter().collect();
    rows.sort_by_key(|r| !r.cells.contains(CELL_STORM));
    let width = rows
        .iter()
        .map(|r| r.host.chars().count())
        .max()
        .unwrap_or(0);
    let cells = rows
        .iter()
        .map(|r| r.cells.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "  {}  {}\n",
        " ".repeat(width),
        ruler(&t.from, t.cell_minutes, cells)
    );
    for row in rows.iter().take(TIMELINE_ROWS_SHOWN) {
        let _ = writeln!(out, "  {:<width$} |{}|", row.host, row.cells);
    }
    if rows.len() > TIMELINE_ROWS_SHOWN {
        let _ = writeln!(
            out,
            "  ({} more hosts; --format json has them all)",
            rows.len() - TIMELINE_ROWS_SHOWN
        );
    }
    let _ = writeln!(
        out,
        "  ({} minutes per cell: {CELL_STORM} backup during busy load, {CELL_BACKUP} backup, {CELL_BUSY} busy load)",
        t.cell_minutes
    );
    out
}

/// Hour labels above the cells: `|02:00       03:00 ...`.
fn ruler(from: &str, cell_minutes: u32, cells: usize) -> String {
    let start = parse_hhmm(from).unwrap_or(0);
    let per_hour = (60 / cell_minutes.max(1)).max(1) as usize;
    let mut line = String::from(" ");
    for hour in 0..cells.div_ceil(per_hour) {
        let minutes = (start + hour as u32 * 60) % 1440;
        let label = format!("{:02}:{:02}", minutes / 60, minutes % 60);
        let _ = write!(line, "{label:<per_hour$}");
    }
    line.truncate(cells + 1);
    line.trim_end().to_owned()
}

fn fleet_line(report: &Report) -> String {
    let f = &report.fleet;
    format!(
        "Fleet: {:.1} storm minutes per night (weighted {:.2}, exposure {:.2}); storm on {} of {} nights; shared resources over capacity on {} of {} nights.\n",
        f.storm_minutes_mean,
        f.storm_weighted_mean,
        f.exposure_mean,
        f.nights_with_storm,
        report.nights,
        f.nights_with_overlap,
        report.nights
    )
}

/// The current starts' fleet figures, to compare a plan with.
fn comparison_line(current: &Report) -> String {
    let f = &current.fleet;
    format!(
        "Current starts on the same nights and draws: {:.1} storm minutes per night (weighted {:.2}, exposure {:.2}); storm on {} of {} nights; shared resources over capacity on {} of {} nights.\n",
        f.storm_minutes_mean,
        f.storm_weighted_mean,
        f.exposure_mean,
        f.nights_with_storm,
        current.nights,
        f.nights_with_overlap,
        current.nights
    )
}

/// Consecutive storm cells as `HH:MM–HH:MM` ranges, the first few.
fn storm_ranges(cells: &[StormCell]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in cells {
        let Some(start) = parse_hhmm(&c.time) else {
            continue;
        };
        match ranges.last_mut() {
            Some((_, end)) if *end == start => *end = start + 5,
            _ => ranges.push((start, start + 5)),
        }
    }
    if ranges.is_empty() {
        return "-".to_owned();
    }
    let hhmm = |m: u32| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    let mut shown: Vec<String> = ranges
        .iter()
        .take(STORM_RANGES_SHOWN)
        .map(|&(a, b)| format!("{}–{}", hhmm(a), hhmm(b)))
        .collect();
    if ranges.len() > STORM_RANGES_SHOWN {
        shown.push(format!("+{} more", ranges.len() - STORM_RANGES_SHOWN));
    }
    shown.join(", ")
}

/// Clap's parser of `--night-start`: a strict `HH:MM` as minutes after 00:00.
fn parse_time_of_day(text: &str) -> Result<u32, String> {
    let strict = text.len() == 5 && text.as_bytes()[2] == b':';
    match parse_hhmm(text) {
        Some(m) if strict && m < 1440 && text[3..].parse::<u32>().is_ok_and(|m| m < 60) => Ok(m),
        _ => Err(format!(
            "'{text}' is not a time of day, expected HH:MM from 00:00 to 23:59"
        )),
    }
}

fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(time: &str) -> StormCell {
        StormCell {
            time: time.to_owned(),
            storm_minutes_mean: 1.0,
        }
    }

    #[test]
    fn storm_cells_merge_into_ranges() {
        let cells = [
            cell("02:45"),
            cell("02:50"),
            cell("02:55"),
            cell("03:25"),
            cell("23:55"),
        ];
        assert_eq!(
            storm_ranges(&cells),
            "02:45–03:00, 03:25–03:30, 23:55–00:00"
        );
        assert_eq!(storm_ranges(&[]), "-");
    }

    #[test]
    fn night_start_is_a_strict_time_of_day() {
        assert_eq!(parse_time_of_day("14:00"), Ok(840));
        assert_eq!(parse_time_of_day("00:05"), Ok(5));
        for bad in ["24:00", "2:00", "02:60", "noon", "02:000"] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ruler_labels_every_hour_over_the_cells() {
        assert_eq!(ruler("02:00", 5, 24), " 02:00       03:00");
        assert_eq!(ruler("23:00", 5, 24), " 23:00       00:00");
    }
}
