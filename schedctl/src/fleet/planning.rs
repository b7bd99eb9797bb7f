//! Making a plan of the fleet as collected: the snapshot of the reports, the
//! planner within its time limit, each host's changes, and the plan stored.
//!
//! `schedctl plan` plans the reports it has just collected; the
//! coordinator's rounds plan the reports they collected for their metrics
//! (no second collection). Both store the plan the same way, under the name
//! of whoever made it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use scheduler_core::fleet::{self as core_fleet, FleetSnapshot, ScheduleZone};
use scheduler_core::plan::Plan;
use scheduler_core::planner::{self, Deadline, Options};
use scheduler_core::report::HostReport;
use scheduler_core::snapshot::Model;

use super::planned::{self, PlanBody, Unreachable};
use crate::config::{Config, TransportKind};
use crate::store::Store;

/// The planner's settings: `schedctl plan`'s flags, the coordinator's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// Seconds the planner may take, counted from when planning starts.
    pub time_limit_secs: f64,
    /// Seed of the planner's random choices.
    pub seed: u64,
    /// Worker threads (the planner sizes its work by them).
    pub threads: usize,
}

/// `schedctl plan --time-limit`'s default.
pub const DEFAULT_TIME_LIMIT_SECS: f64 = 10.0;

/// `schedctl plan --threads`'s default.
pub const DEFAULT_THREADS: usize = 2;

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            time_limit_secs: DEFAULT_TIME_LIMIT_SECS,
            seed: 0,
            threads: DEFAULT_THREADS,
        }
    }
}

/// The wall clock's deadline, handed to the pure planner; `stopped` ends it
/// early (the coordinator shutting down).
struct WallDeadline<'a> {
    end: Instant,
    stopped: &'a (dyn Fn() -> bool + Sync),
}

impl Deadline for WallDeadline<'_> {
    fn expired(&self) -> bool {
        Instant::now() >= self.end || (self.stopped)()
    }

    fn remaining(&self) -> Option<Duration> {
        Some(self.end.saturating_duration_since(Instant::now()))
    }
}

/// Plans `model` within the time limit, counted from `started`; `stopped`
/// makes the planner return the best plan it has at once.
pub fn solve(
    model: &Model,
    options: &PlanOptions,
    started: Instant,
    stopped: &(dyn Fn() -> bool + Sync),
) -> Plan {
    // Leave a little of the limit for printing.
    let budget = Duration::from_secs_f64(options.time_limit_secs * 0.9);
    let deadline = WallDeadline {
        end: started + budget,
        stopped,
    };
    // The planner sizes its fixed work from the limit itself, not from the
    // time left after reading: the same snapshot, seed and limit then give the
    // same plan however long the reading took.
    let planner_options = Options {
        seed: options.seed,
        time_limit_secs: budget.as_secs_f64(),
        threads: options.threads.max(1),
    };
    let mut plan = planner::plan(model, &planner_options, &deadline);
    plan.solve_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    plan
}

/// The fleet snapshot of the reports that answered, as of `made_at`.
pub fn build(
    config: &Config,
    reports: &[(TransportKind, HostReport)],
    made_at: i64,
) -> FleetSnapshot {
    let host_reports: Vec<HostReport> = reports.iter().map(|(_, r)| r.clone()).collect();
    core_fleet::build(&host_reports, &super::settings(config), made_at)
}

/// What a live plan starts from: the reports, their snapshot (built at
/// `made_at`) and the hosts left out.
pub struct Collected {
    /// The reports of the hosts that answered, in configuration order.
    pub reports: Vec<(TransportKind, HostReport)>,
    /// Their snapshot.
    pub fleet: FleetSnapshot,
    /// When the snapshot was built, Unix seconds.
    pub made_at: i64,
    /// The hosts that could not be asked.
    pub unreachable: Vec<Unreachable>,
}

/// Plans the collected fleet (`model` is its snapshot's): the planner's
/// answer and the changes it makes on each host, written in `zone`.
pub fn plan_live(
    collected: Collected,
    model: &Model,
    zone: ScheduleZone,
    options: &PlanOptions,
    started: Instant,
    stopped: &(dyn Fn() -> bool + Sync),
) -> anyhow::Result<PlanBody> {
    let plan = solve(model, options, started, stopped);
    let hosts = planned::host_states(
        &collected.reports,
        &collected.fleet,
        &plan,
        zone,
        collected.made_at,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(PlanBody {
        made_at: collected.made_at,
        schedule_zone: match zone {
            ScheduleZone::Utc => "utc".to_owned(),
            ScheduleZone::Local => "local".to_owned(),
        },
        fleet: collected.fleet,
        plan,
        hosts,
        unreachable: collected.unreachable,
    })
}

/// Stores `body` as made by `who` from `source` (`live`, `snapshot FILE`); returns its id.
pub fn store(store: &Store, body: &PlanBody, source: &str, who: &str) -> anyhow::Result<i64> {
    let hosts = body.hosts.iter().filter(|h| !h.changes.is_empty()).count();
    let summary = format!(
        "{} schedule(s) on {hosts} host(s); overflow {}, objective {:.4}",
        body.changes(),
        body.plan.overflow,
        body.plan.objective
    );
    let text = serde_json::to_string(body).context("cannot serialise the plan")?;
    Ok(store.insert_plan(super::now(), who, source, &summary, &text)?)
}
