//! `schedctl status`: every host — reachable?, its jobs and schedules, the
//! next runs, the last run and its duration against the reserved one, the
//! I/O pressure — and the fleet's overlap risk under its current schedules
//! (the storm simulator on the live snapshot).

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono_tz::Tz;
use clap::Args;
use scheduler_core::calendar::CalendarEvent;
use scheduler_core::fleet as core_fleet;
use scheduler_core::report::{HostReport, RunResult};
use scheduler_core::sim::{self, Fleet};
use serde::Serialize;

use super::{collect_hosts, open_store, Context};
use crate::exit::{bad_input, CommandError, CommandResult, Kind};
use crate::fleet::collect::Outcome;
use crate::fleet::{self, now};
use crate::output::{self, Format};

/// Show the fleet's state.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these hosts (repeatable); default: every configured host.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Nights the simulator replays for the overlap risk (0: skip it).
    #[arg(long, value_name = "N", default_value_t = 14)]
    pub risk_nights: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Serialize)]
struct HostStatus {
    host: String,
    transport: String,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    /// I/O pressure `some avg10`, as a ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    io_pressure: Option<f64>,
    jobs: Vec<JobStatus>,
    answered_ms: u64,
}

#[derive(Serialize)]
struct JobStatus {
    id: String,
    schedule: String,
    enabled: bool,
    /// The next two runs, Unix seconds.
    next_runs: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run: Option<LastRun>,
    /// Minutes a plan reserves for one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved_minutes: Option<f64>,
}

#[derive(Serialize)]
struct LastRun {
    start: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<i64>,
    result: RunResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_secs: Option<i64>,
}

#[derive(Serialize)]
struct Risk {
    nights: u32,
    nights_with_overlap: u32,
    /// Fraction of simulated nights in which some shared resource held more runs than its capacity.
    overlap_risk_ratio: f64,
    resources: Vec<ResourceRisk>,
}

#[derive(Serialize)]
struct ResourceRisk {
    name: String,
    overlap_risk_ratio: f64,
}

#[derive(Serialize)]
struct StatusOutput {
    hosts: Vec<HostStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overlap_risk: Option<Risk>,
    notes: Vec<core_fleet::Note>,
    unfinished_applies: Vec<i64>,
}

/// Runs `schedctl status`.
pub fn run(context: &Context, args: &StatusArgs) -> CommandResult {
    let config = context.config()?;
    let mut hosts = Vec::new();
    for name in &args.hosts {
        hosts.push(config.host(name).ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "--host {name}: no such [[host]] in {}",
                context.path().display()
            ))
        })?);
    }
    if hosts.is_empty() {
        hosts = config.hosts.iter().collect();
    }
    let outcomes = collect_hosts(&config, &hosts)?;
    let reports: Vec<HostReport> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok().cloned())
        .collect();
    let built = core_fleet::build(&reports, &fleet::settings(&config), now());
    // What a plan reserves for each job (its first run in the snapshot), by host and job.
    let mut reserved: HashMap<(&str, &str), f64> = HashMap::new();
    for (planned, job) in built.jobs.iter().zip(&built.snapshot.jobs) {
        reserved
            .entry((planned.host.as_str(), planned.job.as_str()))
            .or_insert(job.duration_minutes);
    }
    let statuses: Vec<HostStatus> = outcomes
        .iter()
        .map(|outcome| {
            host_status(outcome, |job| {
                reserved.get(&(outcome.host.as_str(), job)).copied()
            })
        })
        .collect();
    let unreachable = statuses.iter().filter(|s| !s.reachable).count();
    let overlap_risk = if args.risk_nights == 0 || built.snapshot.jobs.is_empty() {
        None
    } else {
        Some(risk(&built.snapshot, args.risk_nights)?)
    };
    let store = open_store(&config)?;
    let unfinished_applies = store.unfinished_applies()?.iter().map(|a| a.id).collect();
    let out = StatusOutput {
        hosts: statuses,
        overlap_risk,
        notes: built.notes,
        unfinished_applies,
    };
    match args.format {
        Format::Json => output::print_json(&out)?,
        Format::Text => output::print_text(&render(&out))?,
    }
    if unreachable == 0 {
        Ok(())
    } else {
        Err(CommandError::new(
            Kind::Failed,
            anyhow::anyhow!(
                "{unreachable} of {} host(s) could not be reached (see above)",
                outcomes.len()
            ),
        ))
    }
}

/// One host as collected; `reserved` gives what a plan reserves for each of its jobs.
fn host_status(outcome: &Outcome, reserved: impl Fn(&str) -> Option<f64>) -> HostStatus {
    let mut status = HostStatus {
        host: outcome.host.clone(),
        transport: outcome.kind.as_str().to_owned(),
        reachable: false,
        error: None,
        hint: None,
        timezone: None,
        digest: None,
        io_pressure: None,
        jobs: Vec::new(),
        answered_ms: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    match &outcome.result {
        Ok(report) => {
            status.reachable = true;
            status.timezone = Some(report.timezone.clone());
            status.digest = Some(report.jobs_cfg.digest.clone());
            status.io_pressure = report.pressure.as_ref().map(|p| p.some_avg10);
            status.jobs = report
                .jobs
                .iter()
                .map(|j| job_status(report, j, reserved(&j.id)))
                .collect();
        }
        Err(err) => {
            status.error = Some(err.to_string());
            status.hint = Some(err.hint().to_owned());
        }
    }
    status
}

fn job_status(
    report: &HostReport,
    job: &scheduler_core::report::JobReport,
    reserved: Option<f64>,
) -> JobStatus {
    let tz: Tz = report.timezone.parse().unwrap_or(Tz::UTC);
    let mut next_runs = Vec::new();
    if let (true, Ok(event)) = (job.enabled, CalendarEvent::parse(job.schedule.trim())) {
        let mut last = report.clock;
        for _ in 0..2 {
            match event.next_after(last, tz) {
                Some(next) => {
                    next_runs.push(next);
                    last = next;
                }
                None => break,
            }
        }
    }
    let last_run = job.runs.iter().max_by_key(|r| r.start).map(|r| LastRun {
        start: r.start,
        end: r.end,
        result: r.result,
        duration_secs: scheduler_core::history::duration_secs(r).map(|secs| secs as i64),
    });
    JobStatus {
        id: job.id.clone(),
        schedule: job.schedule.clone(),
        enabled: job.enabled,
        next_runs,
        last_run,
        reserved_minutes: reserved,
    }
}

fn risk(snapshot: &scheduler_core::snapshot::Snapshot, nights: u32) -> Result<Risk, CommandError> {
    let fleet = Fleet::from_snapshot(snapshot).map_err(|e| {
        CommandError::new(
            Kind::Failed,
            anyhow::anyhow!("internal error: the live snapshot is not valid: {e}"),
        )
    })?;
    let options = sim::Options {
        nights: nights.min(sim::MAX_NIGHTS),
        ..sim::Options::default()
    };
    let report = fleet
        .simulate(&fleet.current_schedule(), &options)
        .map_err(|e| {
            CommandError::new(
                Kind::Failed,
                anyhow::anyhow!("the overlap simulation failed: {e}"),
            )
        })?;
    Ok(Risk {
        nights: report.nights,
        nights_with_overlap: report.fleet.nights_with_overlap,
        overlap_risk_ratio: f64::from(report.fleet.nights_with_overlap)
            / f64::from(report.nights.max(1)),
        resources: report
            .resources
            .iter()
            .map(|r| ResourceRisk {
                name: r.name.clone(),
                overlap_risk_ratio: r.overlap_probability,
            })
            .collect(),
    })
}

fn render(out: &StatusOutput) -> String {
    let mut text = String::new();
    let mut rows = Vec::new();
    for host in &out.hosts {
        if !host.reachable {
            rows.push(vec![
                host.host.clone(),
                host.transport.clone(),
                "UNREACHABLE".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        }
        let pressure = host
            .io_pressure
            .map_or("-".to_owned(), |p| format!("{:.0}%", p * 100.0));
        if host.jobs.is_empty() {
            rows.push(vec![
                host.host.clone(),
                host.transport.clone(),
                "(no backup jobs)".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                pressure.clone(),
            ]);
        }
        for job in &host.jobs {
            let next = job.next_runs.first().map_or_else(
                || {
                    if job.enabled {
                        "never".to_owned()
                    } else {
                        "disabled".to_owned()
                    }
                },
                |&t| output::utc_time(t),
            );
            let last = job.last_run.as_ref().map_or("-".to_owned(), |r| {
                let took = r
                    .duration_secs
                    .map_or("running".to_owned(), output::duration);
                format!("{} {took} {}", output::utc_time(r.start), r.result.as_str())
            });
            let reserved = job
                .reserved_minutes
                .map_or("-".to_owned(), |m| format!("{m:.0} min"));
            rows.push(vec![
                host.host.clone(),
                host.transport.clone(),
                job.id.clone(),
                job.schedule.clone(),
                next,
                format!("{last} / reserved {reserved}"),
                pressure.clone(),
            ]);
        }
    }
    text.push_str(&output::table(
        &[
            "HOST",
            "VIA",
            "JOB",
            "SCHEDULE",
            "NEXT RUN",
            "LAST RUN / RESERVED",
            "IO PRESSURE",
        ],
        &rows,
    ));
    for host in out.hosts.iter().filter(|h| !h.reachable) {
        let _ = writeln!(
            text,
            "\n{}: {}\n  what to do: {}",
            host.host,
            host.error.as_deref().unwrap_or(""),
            host.hint.as_deref().unwrap_or("")
        );
    }
    if let Some(risk) = &out.overlap_risk {
        let _ = writeln!(
            text,
            "\nOverlap risk of the current schedules: {:.0}% of {} simulated nights have a shared resource over capacity.",
            risk.overlap_risk_ratio * 100.0,
            risk.nights
        );
        for r in &risk.resources {
            let _ = writeln!(text, "  {}: {:.0}%", r.name, r.overlap_risk_ratio * 100.0);
        }
    }
    for id in &out.unfinished_applies {
        let _ = writeln!(
            text,
            "\nApply {id} did not finish: `schedctl history` shows which hosts it wrote, `schedctl rollback {id}` puts them back."
        );
    }
    text
}
