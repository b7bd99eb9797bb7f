//! The simulation report: per host, per shared resource, per job, per night
//! and for the fleet, plus an ASCII timeline of the worst night. Built from
//! the raw [`Outcome`] of a replay; serialises to the JSON that
//! `schedctl simulate --format json` prints.

use serde::Serialize;

use super::engine::{Outcome, Run, CELLS_PER_DAY, DAY_MINUTES};
use super::{Fleet, Options, Schedule, CELL_MINUTES};
use crate::snapshot::Model;

/// Weekday names, 0 = Monday.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Timeline cell: a backup disturbs the host during its busy load.
pub const CELL_STORM: char = '#';
/// Timeline cell: a backup disturbs the host, load below busy.
pub const CELL_BACKUP: char = '=';
/// Timeline cell: busy load, no backup.
pub const CELL_BUSY: char = '.';
/// Timeline cell: neither.
pub const CELL_IDLE: char = ' ';

/// What a simulation found. Means are per night over all nights replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Nights replayed; night `n` starts on UTC day `n` (weekday `n mod 7`,
    /// from a Monday) at `night_start` and lasts 24 hours.
    pub nights: u32,
    /// When nights start, `HH:MM` UTC.
    pub night_start: String,
    /// Seed of the duration draws.
    pub seed: u64,
    /// Shape of the log-normal durations.
    pub spread: f64,
    /// Load from which a host counts as busy.
    pub busy_threshold: f64,
    /// Fleet-wide figures.
    pub fleet: FleetSummary,
    /// One entry per host, in snapshot order.
    pub hosts: Vec<HostReport>,
    /// One entry per explicit shared resource, in snapshot order.
    pub resources: Vec<ResourceReport>,
    /// One entry per job, in snapshot order.
    pub jobs: Vec<JobReport>,
    /// Fleet-wide figures of each night.
    pub by_night: Vec<NightReport>,
    /// The night with the most weighted storm, with its timeline.
    pub worst_night: WorstNight,
}

/// Fleet-wide figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetSummary {
    /// Storm minutes per night, summed over hosts.
    pub storm_minutes_mean: f64,
    /// Weighted storm per night, summed over hosts.
    pub storm_weighted_mean: f64,
    /// Exposure per night, summed over hosts.
    pub exposure_mean: f64,
    /// Nights with at least one storm minute on some host.
    pub nights_with_storm: u32,
    /// Nights in which some shared resource held more runs than its capacity.
    pub nights_with_overlap: u32,
}

/// What one host went through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// The host's name.
    pub name: String,
    /// Storm minutes per night.
    pub storm_minutes_mean: f64,
    /// Weighted storm per night.
    pub storm_weighted_mean: f64,
    /// Exposure per night.
    pub exposure_mean: f64,
    /// Fraction of nights with at least one storm minute.
    pub storm_probability: f64,
    /// Storm minutes of each night.
    pub storm_minutes_by_night: Vec<u32>,
    /// Weighted storm of each night.
    pub storm_weighted_by_night: Vec<f64>,
    /// When in the day the storm falls: the 5-minute cells with storm, in time order.
    pub storm_times: Vec<StormCell>,
    /// Fraction of nights in which one of its runs waited for the host lock.
    pub wait_probability: f64,
}

/// Storm in one 5-minute cell of the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StormCell {
    /// Start of the cell, `HH:MM` UTC.
    pub time: String,
    /// Storm minutes in the cell per night (0 to 5).
    pub storm_minutes_mean: f64,
}

/// What one shared resource went through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceReport {
    /// The resource's name.
    pub name: String,
    /// Its capacity.
    pub capacity: u32,
    /// Fraction of nights in which more runs than its capacity were active at once.
    pub overlap_probability: f64,
    /// Minutes over capacity per night.
    pub overlap_minutes_mean: f64,
    /// The most runs active on it at once.
    pub max_active: u32,
}

/// How one job's runs went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobReport {
    /// The job's id.
    pub id: String,
    /// Its host.
    pub host: String,
    /// Its start in the simulated schedule, `HH:MM` UTC.
    pub start: String,
    /// Runs replayed.
    pub runs: u32,
    /// The snapshot's `duration_minutes` (the median of the draws).
    pub duration_minutes: f64,
    /// Mean real duration, from its start past the host lock to its end.
    pub real_minutes_mean: f64,
    /// 95th percentile of the real duration (nearest rank).
    pub real_minutes_p95: f64,
    /// Longest real duration.
    pub real_minutes_max: f64,
    /// Mean minutes spent waiting for the host lock.
    pub wait_minutes_mean: f64,
    /// Fraction of runs that ended after their reservation
    /// (start + `duration_minutes` + guard).
    pub overrun_probability: f64,
}

/// Fleet-wide figures of one night.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NightReport {
    /// The night, from 0.
    pub night: u32,
    /// The UTC weekday it starts on.
    pub weekday: String,
    /// Storm minutes, summed over hosts.
    pub storm_minutes: u32,
    /// Weighted storm, summed over hosts.
    pub storm_weighted: f64,
    /// Exposure, summed over hosts.
    pub exposure: f64,
}

/// The night with the most weighted storm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstNight {
    /// Its figures.
    #[serde(flatten)]
    pub night: NightReport,
    /// What each disturbed host went through that night.
    pub timeline: Timeline,
}

/// An ASCII timeline of one night, whole hours around its runs, in cells of
/// [`CELL_MINUTES`]: `#` backup during busy load, `=` backup, `.` busy load,
/// ` ` neither.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Time of day of the first cell, `HH:MM` UTC.
    pub from: String,
    /// Minutes per cell.
    pub cell_minutes: u32,
    /// One row per host that a backup disturbed in the shown hours.
    pub rows: Vec<TimelineRow>,
}

/// One host's cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineRow {
    /// The host's name.
    pub host: String,
    /// One character per cell.
    pub cells: String,
}

impl Report {
    /// The report of the host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostReport> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The report of the job `id`.
    pub fn job(&self, id: &str) -> Option<&JobReport> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// The report of the shared resource named `name`.
    pub fn resource(&self, name: &str) -> Option<&ResourceReport> {
        self.resources.iter().find(|r| r.name == name)
    }
}

impl HostReport {
    /// Storm minutes per night in the cells that start within `[from, to)`,
    /// minutes after 00:00 UTC (`to < from` wraps past midnight).
    pub fn storm_minutes_between(&self, from: u32, to: u32) -> f64 {
        let inside = |m: u32| {
            if from <= to {
                (from..to).contains(&m)
            } else {
                m >= from || m < to
            }
        };
        self.storm_times
            .iter()
            .filter(|c| parse_cell_time(&c.time).is_some_and(inside))
            .map(|c| c.storm_minutes_mean)
            .sum()
    }
}

fn parse_cell_time(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

/// Builds the report of one replay.
pub(super) fn build(
    fleet: &Fleet,
    schedule: &Schedule,
    options: &Options,
    outcome: &Outcome,
) -> Report {
    let by_night = nights(outcome);
    let worst = worst_night(&by_night);
    let worst_night = WorstNight {
        night: by_night[worst].clone(),
        timeline: timeline(fleet, outcome, options, worst),
    };
    Report {
        nights: options.nights,
        night_start: time_of_day(u64::from(outcome.night_start)),
        seed: options.seed,
        spread: options.spread,
        busy_threshold: options.busy_threshold,
        fleet: fleet_summary(fleet, outcome, &by_night),
        hosts: hosts(fleet, outcome),
        resources: resources(fleet, outcome),
        jobs: jobs(fleet, schedule, outcome),
        by_night,
        worst_night,
    }
}

/// `HH:MM` of a minute (of any day).
fn time_of_day(minute: u64) -> String {
    let m = minute % DAY_MINUTES;
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// `part / whole` as a fraction (0 when `whole` is 0).
fn fraction(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Fleet-wide sums of each night.
fn nights(outcome: &Outcome) -> Vec<NightReport> {
    let n = outcome.nights;
    let hosts = outcome.storm_minutes.len() / n.max(1);
    (0..n)
        .map(|night| {
            let at = |h: usize| h * n + night;
            NightReport {
                night: night as u32,
                weekday: WEEKDAYS[night % 7].to_owned(),
                storm_minutes: (0..hosts).map(|h| outcome.storm_minutes[at(h)]).sum(),
                storm_weighted: (0..hosts).map(|h| outcome.storm_weighted[at(h)]).sum(),
                exposure: (0..hosts).map(|h| outcome.exposure[at(h)]).sum(),
            }
        })
        .collect()
}

/// Index of the night with most weighted storm, then storm minutes, then
/// exposure; the earliest on a tie.
fn worst_night(nights: &[NightReport]) -> usize {
    let mut worst = 0;
    for (i, n) in nights.iter().enumerate().skip(1) {
        let w = &nights[worst];
        let order = n
            .storm_weighted
            .total_cmp(&w.storm_weighted)
            .then(n.storm_minutes.cmp(&w.storm_minutes))
            .then(n.exposure.total_cmp(&w.exposure));
        if order.is_gt() {
            worst = i;
        }
    }
    worst
}

/// Fleet-wide means over the nights.
fn fleet_summary(fleet: &Fleet, outcome: &Outcome, nights: &[NightReport]) -> FleetSummary {
    let n = nights.len().max(1) as f64;
    let resources = fleet.model().resources.len();
    let overlap = (0..outcome.nights)
        .filter(|&night| {
            (0..resources).any(|r| outcome.overflow_minutes[r * outcome.nights + night] > 0)
        })
        .count();
    FleetSummary {
        storm_minutes_mean: nights
            .iter()
            .map(|x| f64::from(x.storm_minutes))
            .sum::<f64>()
            / n,
        storm_weighted_mean: nights.iter().map(|x| x.storm_weighted).sum::<f64>() / n,
        exposure_mean: nights.iter().map(|x| x.exposure).sum::<f64>() / n,
        nights_with_storm: nights.iter().filter(|x| x.storm_minutes > 0).count() as u32,
        nights_with_overlap: overlap as u32,
    }
}

/// One report per host, in model order.
fn hosts(fleet: &Fleet, outcome: &Outcome) -> Vec<HostReport> {
    let n = outcome.nights;
    let waited = nights_with_wait(fleet, outcome);
    fleet
        .model()
        .hosts
        .iter()
        .enumerate()
        .map(|(h, host)| {
            let minutes = outcome.storm_minutes[h * n..(h + 1) * n].to_vec();
            let weighted = outcome.storm_weighted[h * n..(h + 1) * n].to_vec();
            let exposure: f64 = outcome.exposure[h * n..(h + 1) * n].iter().sum();
            HostReport {
                name: host.name.clone(),
                storm_minutes_mean: minutes.iter().map(|&m| f64::from(m)).sum::<f64>() / n as f64,
                storm_weighted_mean: weighted.iter().sum::<f64>() / n as f64,
                exposure_mean: exposure / n as f64,
                storm_probability: fraction(minutes.iter().filter(|&&m| m > 0).count(), n),
                storm_minutes_by_night: minutes,
                storm_weighted_by_night: weighted,
                storm_times: storm_times(outcome, h),
                wait_probability: fraction(
                    waited[h * n..(h + 1) * n].iter().filter(|&&w| w).count(),
                    n,
                ),
            }
        })
        .collect()
}

/// Per host and night: did one of its runs wait for a host lock?
fn nights_with_wait(fleet: &Fleet, outcome: &Outcome) -> Vec<bool> {
    let n = outcome.nights;
    let mut waited = vec![false; fleet.model().hosts.len() * n];
    for run in &outcome.runs {
        if run.began.is_some_and(|b| b > run.scheduled) {
            waited[fleet.model().jobs[run.job].host * n + run.night] = true;
        }
    }
    waited
}

/// The host's time-of-day cells with storm, as means per night.
fn storm_times(outcome: &Outcome, host: usize) -> Vec<StormCell> {
    let cells = &outcome.storm_cells[host * CELLS_PER_DAY..(host + 1) * CELLS_PER_DAY];
    cells
        .iter()
        .enumerate()
        .filter(|(_, &m)| m > 0)
        .map(|(c, &m)| StormCell {
            time: time_of_day(c as u64 * u64::from(CELL_MINUTES)),
            storm_minutes_mean: f64::from(m) / outcome.nights as f64,
        })
        .collect()
}

/// One report per explicit shared resource (host locks left out: they queue, never overflow).
fn resources(fleet: &Fleet, outcome: &Outcome) -> Vec<ResourceReport> {
    let model = fleet.model();
    let n = outcome.nights;
    let locks: Vec<usize> = model.hosts.iter().map(|h| h.resource).collect();
    model
        .resources
        .iter()
        .enumerate()
        .filter(|(r, _)| !locks.contains(r))
        .map(|(r, res)| {
            let minutes = &outcome.overflow_minutes[r * n..(r + 1) * n];
            ResourceReport {
                name: res.name.clone(),
                capacity: res.capacity,
                overlap_probability: fraction(minutes.iter().filter(|&&m| m > 0).count(), n),
                overlap_minutes_mean: minutes.iter().map(|&m| f64::from(m)).sum::<f64>() / n as f64,
                max_active: outcome.max_active[r],
            }
        })
        .collect()
}

/// One report per job, from its runs.
fn jobs(fleet: &Fleet, schedule: &Schedule, outcome: &Outcome) -> Vec<JobReport> {
    let model = fleet.model();
    let mut runs_of: Vec<Vec<&Run>> = vec![Vec::new(); model.jobs.len()];
    for run in &outcome.runs {
        runs_of[run.job].push(run);
    }
    model
        .jobs
        .iter()
        .enumerate()
        .map(|(j, job)| {
            let duration = fleet.durations()[j];
            let stats = RunStats::of(&runs_of[j], duration + fleet.guard_minutes());
            JobReport {
                id: job.id.clone(),
                host: model.hosts[job.host].name.clone(),
                start: schedule.format_start(j),
                runs: runs_of[j].len() as u32,
                duration_minutes: duration,
                real_minutes_mean: stats.mean,
                real_minutes_p95: stats.p95,
                real_minutes_max: stats.max,
                wait_minutes_mean: stats.wait_mean,
                overrun_probability: stats.overrun_probability,
            }
        })
        .collect()
}

/// Duration statistics of one job's runs (all 0 without runs).
#[derive(Default)]
struct RunStats {
    mean: f64,
    p95: f64,
    max: f64,
    wait_mean: f64,
    overrun_probability: f64,
}

impl RunStats {
    /// Statistics of `runs`, each reserved `reserved` minutes from its release.
    fn of(runs: &[&Run], reserved: f64) -> RunStats {
        if runs.is_empty() {
            return RunStats::default();
        }
        let began = |r: &Run| r.began.unwrap_or(r.scheduled) as f64;
        let mut real: Vec<f64> = runs.iter().map(|r| r.ended - began(r)).collect();
        real.sort_by(f64::total_cmp);
        let n = real.len() as f64;
        // Nearest rank: the smallest value with at least 95% of the runs at or below it.
        let rank = ((0.95 * n).ceil() as usize).clamp(1, real.len()) - 1;
        let overran = runs
            .iter()
            .filter(|r| r.ended - r.scheduled as f64 > reserved + 1e-9)
            .count();
        RunStats {
            mean: real.iter().sum::<f64>() / n,
            p95: real[rank],
            max: real[real.len() - 1],
            wait_mean: runs
                .iter()
                .map(|r| began(r) - r.scheduled as f64)
                .sum::<f64>()
                / n,
            overrun_probability: fraction(overran, runs.len()),
        }
    }
}

/// The timeline of `night`: whole hours from the first release of its runs
/// to the last end (at most a day), one row per disturbed host.
fn timeline(fleet: &Fleet, outcome: &Outcome, options: &Options, night: usize) -> Timeline {
    let of_night: Vec<&Run> = outcome.runs.iter().filter(|r| r.night == night).collect();
    let (Some(first), Some(last)) = (
        of_night.iter().map(|r| r.scheduled).min(),
        of_night.iter().map(|r| r.ended.ceil() as u64).max(),
    ) else {
        return Timeline {
            from: time_of_day(u64::from(outcome.night_start)),
            cell_minutes: CELL_MINUTES,
            rows: Vec::new(),
        };
    };
    let from = first - first % 60;
    let to = (last.div_ceil(60) * 60).clamp(from + 60, from + DAY_MINUTES);
    let model = fleet.model();
    let disturbing = runs_disturbing_each_host(fleet, outcome, from, to);
    let rows = model
        .hosts
        .iter()
        .zip(&disturbing)
        .enumerate()
        .filter(|(_, (_, runs))| !runs.is_empty())
        .map(|(h, (host, runs))| TimelineRow {
            host: host.name.clone(),
            cells: host_cells(model, options.busy_threshold, h, runs, from, to),
        })
        .collect();
    Timeline {
        from: time_of_day(from),
        cell_minutes: CELL_MINUTES,
        rows,
    }
}

/// Per host, the runs active at some time in `[from, to)` that disturb it.
fn runs_disturbing_each_host<'a>(
    fleet: &Fleet,
    outcome: &'a Outcome,
    from: u64,
    to: u64,
) -> Vec<Vec<&'a Run>> {
    let model = fleet.model();
    let mut per_host: Vec<Vec<&Run>> = vec![Vec::new(); model.hosts.len()];
    let overlapping = outcome
        .runs
        .iter()
        .filter(|r| r.began.is_some_and(|b| b < to) && r.ended > from as f64);
    for run in overlapping {
        for &(h, weight) in &model.jobs[run.job].impacts {
            if weight > 0.0 {
                per_host[h].push(run);
            }
        }
    }
    per_host
}

/// One host's cells over `[from, to)`, given the runs that disturb it.
fn host_cells(
    model: &Model,
    busy_threshold: f64,
    host: usize,
    disturbing: &[&Run],
    from: u64,
    to: u64,
) -> String {
    let slot = u64::from(model.slot_minutes);
    let week = model.slots_per_week as u64;
    let cell = u64::from(CELL_MINUTES);
    (from..to)
        .step_by(cell as usize)
        .map(|start| {
            let (mut backup, mut busy, mut storm) = (false, false, false);
            for m in start..(start + cell).min(to) {
                let b = model.host_load(host, ((m / slot) % week) as usize) >= busy_threshold;
                let a = disturbing.iter().any(|r| r.active_in(m));
                backup |= a;
                busy |= b;
                storm |= a && b;
            }
            match (storm, backup, busy) {
                (true, _, _) => CELL_STORM,
                (_, true, _) => CELL_BACKUP,
                (_, _, true) => CELL_BUSY,
                _ => CELL_IDLE,
            }
        })
        .collect()
}
