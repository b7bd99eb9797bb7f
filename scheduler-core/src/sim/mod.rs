//! The storm simulator: replays nights of a fleet under a schedule, with
//! noisy run durations, and reports the I/O storms and overlaps it sees.
//!
//! The planner reasons on reserved lengths (`duration_minutes` plus the
//! guard); real runs drift, and a run that overlaps another on a shared
//! datastore slows both down, which lengthens them further: the cascade that
//! defeated the origin's hand stagger (02:00, 02:20, 02:45). The simulator
//! shows what a schedule does on noisy nights.
//!
//! # Semantics
//!
//! * **Time.** The simulation steps one minute at a time from Monday 00:00
//!   UTC. A job runs on each UTC day whose weekday is one of its `days`,
//!   released at its start (a minute of the day: plans on the slot grid,
//!   hand-written ones at any minute). Nights are 24 hours that start at
//!   `night_start`, by default the middle of the longest stretch of the day
//!   in which no job of the schedule nominally runs (so one night holds a
//!   fleet's whole backup window, even one that wraps past midnight):
//!   night `n` runs from day `n` at `night_start` to day `n + 1`, and its
//!   weekday is day `n`'s (`n mod 7`, 0 = Monday). A start before
//!   `night_start` is released on day `n + 1`. The first night starts on an
//!   empty fleet. A run goes on until it ends, whenever that is; everything
//!   it causes counts for its night.
//! * **Durations.** Each run needs `W` work minutes, drawn from a log-normal
//!   with median `duration_minutes` and shape `sigma = spread`
//!   (`W = duration * exp(spread * Z)`, `Z` standard normal by Box–Muller).
//!   `spread = 0` gives exactly `duration_minutes`; a draw is cut at
//!   [`MAX_WORK_MINUTES`]. Draws are made day by day, job by job in
//!   snapshot order, from a ChaCha8 generator seeded with `seed`: the same
//!   seed gives the same report, and two schedules of the same snapshot see
//!   the same draw for a job's run of a day (a paired comparison). The guard
//!   is planning slack only; it is not simulated time.
//! * **Shared resources slow runs down.** In each minute, a run progresses
//!   `min over its resources r of min(1, capacity(r) / k(r))` work minutes,
//!   where `k(r)` is the number of runs active on `r` in that minute
//!   (a resource of capacity 0 counts as 1 here; any run on it is an
//!   overload). A run that ends part-way through a minute frees its share
//!   from the next minute on.
//! * **Hosts queue their own runs**, as vzdump's node lock does: the
//!   implicit `host:<name>` resource is a lock with the host's capacity (at
//!   least 1). A run whose host locks are full waits, doing no I/O, and
//!   starts in the first minute one frees, in release order (vzdump's 3-hour
//!   `lockwait` abort is not modelled). A queued run never slows others.
//! * **Storm minutes.** A run disturbs the hosts in its `impacts` with a
//!   weight > 0 while it is active (from the minute it starts to its end,
//!   waiting excluded). For host `h` and minute `m` with at least one such
//!   run, `x = sum of impacts(j)[h] * sensitivity(h) * load_h(m)` over the
//!   active runs. The minute is a **storm minute** of `h` when
//!   `load_h(m) >= busy_threshold` (the host is in its busy hours: backup I/O
//!   on top of the host's own heavy I/O; the default 0.5 separates, in the
//!   origin's snapshot, Pihanga's nightly work at 0.85 from quiet hours at
//!   0.1–0.45); the **weighted storm** adds `x`
//!   over storm minutes. **Exposure** adds `x` over every minute, busy or not:
//!   the minute-level counterpart of the planner's load cost. The minutes of
//!   `h` count for the night of the oldest active run disturbing it.
//! * **Overlap.** An explicit resource overflows in a minute when more runs
//!   are active on it than its capacity; its overlap probability is the
//!   fraction of nights with at least one such minute. The **worst night**
//!   has the most weighted storm fleet-wide (then most storm minutes, then
//!   most exposure; the earliest on a tie).
//!
//! # Example
//!
//! ```
//! use scheduler_core::sim::{Fleet, Options};
//!
//! // Two-hour slots; pve1's load is 0.9 all day.
//! let snapshot = r#"{ "version": 1, "slot_minutes": 120,
//!   "hosts": [ { "name": "pve1", "load": [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] } ],
//!   "jobs": [ { "id": "b1", "host": "pve1", "current_start": "02:00", "duration_minutes": 30 } ] }"#;
//! let fleet = Fleet::from_json(snapshot)?;
//! let options = Options { nights: 7, spread: 0.0, ..Options::default() };
//! let report = fleet.simulate(&fleet.current_schedule(), &options)?;
//! // Every minute of the daily run falls on busy load (0.9 >= 0.5).
//! assert_eq!(report.hosts[0].storm_minutes_mean, 30.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod report;
mod schedule;

use crate::snapshot::{Model, Problem, Snapshot, SnapshotError};

pub use report::{
    FleetSummary, HostReport, JobReport, NightReport, Report, ResourceReport, StormCell, Timeline,
    TimelineRow, WorstNight, CELL_BACKUP, CELL_BUSY, CELL_IDLE, CELL_STORM,
};
pub use schedule::Schedule;

/// The most nights one simulation replays (a year).
pub const MAX_NIGHTS: u32 = 366;

/// The largest duration spread accepted: with sigma 1, one run in twenty
/// already takes over 5 times its median (or under a fifth of it).
pub const MAX_SPREAD: f64 = 1.0;

/// The most work minutes one run draws (a week): the far tail of the
/// log-normal is cut there so that a replay always ends soon.
pub const MAX_WORK_MINUTES: f64 = 7.0 * 1440.0;

/// Minutes per cell of the time-of-day storm cells and of the timeline.
pub const CELL_MINUTES: u32 = 5;

/// How a simulation runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Nights to replay, 1 ..= [`MAX_NIGHTS`].
    pub nights: u32,
    /// Seed of the duration draws: the same seed gives the same report.
    pub seed: u64,
    /// Shape (sigma) of the log-normal run durations, 0 ..= [`MAX_SPREAD`]; 0 means exact.
    pub spread: f64,
    /// A host is busy in a minute when its load is at least this, in `[0, 1]`.
    pub busy_threshold: f64,
    /// When nights start, minutes after 00:00 UTC; `None` picks the
    /// schedule's quietest time ([`Schedule::quiet_minute`]).
    pub night_start: Option<u32>,
}

impl Default for Options {
    /// Four weeks, seed 0, spread 0.25 (a run takes 0.6–1.6 times its median
    /// 95% of the time), busy from load 0.5, nights from the quietest time.
    fn default() -> Self {
        Options {
            nights: 28,
            seed: 0,
            spread: 0.25,
            busy_threshold: 0.5,
            night_start: None,
        }
    }
}

impl Options {
    /// Checks every option, naming the first that is out of range.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(1..=MAX_NIGHTS).contains(&self.nights) {
            return Err(SimError::Option {
                name: "nights",
                message: format!("{} nights, expected 1 to {MAX_NIGHTS}", self.nights),
            });
        }
        if !(self.spread.is_finite() && (0.0..=MAX_SPREAD).contains(&self.spread)) {
            return Err(SimError::Option {
                name: "spread",
                message: format!(
                    "{}, expected a number from 0 (exact durations) to {MAX_SPREAD}",
                    self.spread
                ),
            });
        }
        if !(self.busy_threshold.is_finite() && (0.0..=1.0).contains(&self.busy_threshold)) {
            return Err(SimError::Option {
                name: "busy threshold",
                message: format!("{}, expected a load from 0 to 1", self.busy_threshold),
            });
        }
        if let Some(start) = self.night_start.filter(|&m| m >= 1440) {
            return Err(SimError::Option {
                name: "night start",
                message: format!("minute {start} is not a time of day, expected 0 to 1439"),
            });
        }
        Ok(())
    }
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// An option is out of range.
    #[error("{name}: {message}")]
    Option {
        /// The option's name.
        name: &'static str,
        /// The value and the accepted range.
        message: String,
    },
    /// The plan text is not JSON or has no `assignments` list of `{id, start}`.
    #[error("the plan is not a valid plan: {message} at line {line}, column {column}")]
    PlanJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The plan does not match the snapshot's jobs; every problem found.
    #[error("{}", list_problems(.0))]
    Plan(Vec<Problem>),
}

fn list_problems(problems: &[Problem]) -> String {
    let mut text = match problems.len() {
        1 => "the plan does not fit the snapshot (1 problem):".to_owned(),
        n => format!("the plan does not fit the snapshot ({n} problems):"),
    };
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

/// A validated snapshot with what the simulator needs beyond the planner's
/// [`Model`]: the run durations themselves (the model keeps only occupied
/// slots) and the guard.
#[derive(Debug, Clone)]
pub struct Fleet {
    model: Model,
    durations: Vec<f64>,
    guard_minutes: f64,
}

impl Fleet {
    /// Validates `snapshot` (see [`Snapshot::validate`]) and keeps its durations.
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<Fleet, SnapshotError> {
        let model = snapshot.validate()?;
        // validate() keeps the jobs in snapshot order, one model job per job.
        let durations = snapshot.jobs.iter().map(|j| j.duration_minutes).collect();
        Ok(Fleet {
            model,
            durations,
            guard_minutes: snapshot.guard_minutes,
        })
    }

    /// Reads and validates a snapshot from JSON text.
    pub fn from_json(text: &str) -> Result<Fleet, SnapshotError> {
        Fleet::from_snapshot(&Snapshot::from_json(text)?)
    }

    /// The planner's model of the fleet.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// `duration_minutes` of each job, in snapshot order.
    pub fn durations(&self) -> &[f64] {
        &self.durations
    }

    /// Minutes reserved after each run.
    pub fn guard_minutes(&self) -> f64 {
        self.guard_minutes
    }

    /// Every job at its `current_start`.
    pub fn current_schedule(&self) -> Schedule {
        Schedule::current(&self.model)
    }

    /// Replays `options.nights` nights of the fleet under `schedule`.
    pub fn simulate(&self, schedule: &Schedule, options: &Options) -> Result<Report, SimError> {
        options.validate()?;
        schedule.check_fits(&self.model)?;
        let night_start = options
            .night_start
            .unwrap_or_else(|| schedule.quiet_minute(&self.durations));
        let outcome = engine::run(self, schedule, options, night_start);
        Ok(report::build(self, schedule, options, &outcome))
    }
}
