//! The minute-by-minute replay (semantics in the module doc of [`super`]):
//! draw every run's work, then step minutes: release runs at their start,
//! admit them past their host locks, count storm and overflow, progress each
//! active run at its shared-resource rate.
//!
//! The result is an [`Outcome`]: per-run records and raw per-night counters,
//! which [`super::report`] turns into the report.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::{Fleet, Options, Schedule, CELL_MINUTES, MAX_WORK_MINUTES};
use crate::snapshot::Model;

/// Minutes in a day.
pub(super) const DAY_MINUTES: u64 = 1440;

/// Cells of [`CELL_MINUTES`] in a day.
pub(super) const CELLS_PER_DAY: usize = (DAY_MINUTES / CELL_MINUTES as u64) as usize;

/// One run of one job on one night.
#[derive(Debug, Clone)]
pub(super) struct Run {
    /// Model index of the job.
    pub job: usize,
    /// The night it belongs to.
    pub night: usize,
    /// Minute (since the first Monday 00:00) it was released at.
    pub scheduled: u64,
    /// Work minutes still to do.
    left: f64,
    /// Minute it started, past the host lock; `None` while waiting.
    pub began: Option<u64>,
    /// Minute (fractional) it ended.
    pub ended: f64,
}

impl Run {
    /// Whether the run was active (started, not ended) in minute `m`.
    pub fn active_in(&self, m: u64) -> bool {
        self.began.is_some_and(|b| b <= m) && (m as f64) < self.ended
    }
}

/// What one replay produced: the runs and counters indexed `[x * nights + night]`.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    /// Nights replayed.
    pub nights: usize,
    /// When nights start, minutes after 00:00 UTC.
    pub night_start: u32,
    /// Every run, in release order.
    pub runs: Vec<Run>,
    /// Storm minutes per host and night.
    pub storm_minutes: Vec<u32>,
    /// Weighted storm per host and night.
    pub storm_weighted: Vec<f64>,
    /// Exposure per host and night.
    pub exposure: Vec<f64>,
    /// Storm minutes per host and time-of-day cell, over all nights.
    pub storm_cells: Vec<u32>,
    /// Minutes over capacity per resource and night.
    pub overflow_minutes: Vec<u32>,
    /// Most runs active at once per resource.
    pub max_active: Vec<u32>,
}

/// Replays `options.nights` nights of `fleet` under `schedule`, nights
/// starting at `night_start` (minutes after 00:00 UTC).
pub(super) fn run(
    fleet: &Fleet,
    schedule: &Schedule,
    options: &Options,
    night_start: u32,
) -> Outcome {
    let runs = draw_runs(fleet, schedule, options, night_start);
    let mut replay = Replay::new(fleet.model(), runs, options, night_start);
    replay.play();
    replay.outcome
}

/// Every run of every night, in order of release minute then job.
///
/// Night `n` is `[day n + night_start, day n+1 + night_start)`: a start
/// before `night_start` is released on the next day. Work is drawn day by
/// day, job by job, for every run of days `0 ..= nights` (kept or not), so
/// two schedules of one snapshot see the same draw for a job's run of a day.
fn draw_runs(fleet: &Fleet, schedule: &Schedule, options: &Options, night_start: u32) -> Vec<Run> {
    let model = fleet.model();
    let nights = options.nights as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut runs = Vec::new();
    for day in 0..=nights {
        let weekday = (day % 7) as u8;
        for (job, j) in model.jobs.iter().enumerate() {
            if !j.days.contains(&weekday) {
                continue;
            }
            let work = draw_work(&mut rng, fleet.durations()[job], options.spread);
            let start = schedule.starts()[job];
            let night = if start >= night_start {
                Some(day)
            } else {
                day.checked_sub(1)
            };
            let Some(night) = night.filter(|&n| n < nights) else {
                continue;
            };
            runs.push(Run {
                job,
                night,
                scheduled: day as u64 * DAY_MINUTES + u64::from(start),
                left: work,
                began: None,
                ended: f64::NAN,
            });
        }
    }
    runs.sort_by_key(|r| (r.scheduled, r.job));
    runs
}

/// `median * exp(spread * Z)`, `Z` standard normal from two uniforms
/// (Box–Muller), at most [`MAX_WORK_MINUTES`]. Always draws both uniforms
/// so every run uses the same amount of the stream.
fn draw_work(rng: &mut ChaCha8Rng, median: f64, spread: f64) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln stays finite
    let u2: f64 = rng.random::<f64>();
    if spread == 0.0 {
        return median;
    }
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (median * (spread * z).exp()).min(MAX_WORK_MINUTES)
}

/// The state of a replay in progress.
struct Replay<'a> {
    model: &'a Model,
    busy_threshold: f64,
    /// Per resource: is it a host lock (queue) rather than a shared resource (slow-down)?
    is_lock: Vec<bool>,
    /// Per resource: capacity used for queueing and slow-down (at least 1).
    effective_capacity: Vec<u32>,
    /// Runs still waiting for their start minute are `runs[next..]`.
    next: usize,
    /// Released runs waiting for a host lock, in release order.
    waiting: Vec<usize>,
    /// Started runs that have not ended.
    active: Vec<usize>,
    /// Active runs per resource.
    count: Vec<u32>,
    /// Scratch per host for one minute: summed impact weight and oldest night.
    host_weight: Vec<f64>,
    host_night: Vec<usize>,
    touched_hosts: Vec<usize>,
    /// Scratch per resource for one minute: oldest night of its active runs.
    resource_night: Vec<usize>,
    touched_resources: Vec<usize>,
    outcome: Outcome,
}

impl<'a> Replay<'a> {
    fn new(model: &'a Model, runs: Vec<Run>, options: &Options, night_start: u32) -> Self {
        let nights = options.nights as usize;
        let (hosts, resources) = (model.hosts.len(), model.resources.len());
        let mut is_lock = vec![false; resources];
        for h in &model.hosts {
            is_lock[h.resource] = true;
        }
        Replay {
            model,
            busy_threshold: options.busy_threshold,
            is_lock,
            effective_capacity: model.resources.iter().map(|r| r.capacity.max(1)).collect(),
            next: 0,
            waiting: Vec::new(),
            active: Vec::new(),
            count: vec![0; resources],
            host_weight: vec![0.0; hosts],
            host_night: vec![usize::MAX; hosts],
            touched_hosts: Vec::new(),
            resource_night: vec![usize::MAX; resources],
            touched_resources: Vec::new(),
            outcome: Outcome {
                nights,
                night_start,
                runs,
                storm_minutes: vec![0; hosts * nights],
                storm_weighted: vec![0.0; hosts * nights],
                exposure: vec![0.0; hosts * nights],
                storm_cells: vec![0; hosts * CELLS_PER_DAY],
                overflow_minutes: vec![0; resources * nights],
                max_active: vec![0; resources],
            },
        }
    }

    /// Steps minutes until every run has ended, skipping idle stretches.
    fn play(&mut self) {
        let Some(first) = self.outcome.runs.first() else {
            return;
        };
        let mut minute = first.scheduled;
        loop {
            self.release(minute);
            self.admit(minute);
            if self.active.is_empty() {
                // Nothing holds a lock, so admit() started every waiting run:
                // nothing waits, and the next release is in the future.
                debug_assert!(self.waiting.is_empty());
                match self.outcome.runs.get(self.next) {
                    Some(run) => minute = run.scheduled,
                    None => return,
                }
                continue;
            }
            self.count_hosts(minute);
            self.count_resources();
            self.progress(minute);
            minute += 1;
        }
    }

    /// Runs whose start minute has come join the waiting list.
    fn release(&mut self, minute: u64) {
        let runs = &self.outcome.runs;
        while self.next < runs.len() && runs[self.next].scheduled <= minute {
            self.waiting.push(self.next);
            self.next += 1;
        }
    }

    /// Starts every waiting run whose host locks all have room, in release order.
    fn admit(&mut self, minute: u64) {
        let mut still_waiting = Vec::with_capacity(self.waiting.len());
        for &i in &self.waiting {
            let job = &self.model.jobs[self.outcome.runs[i].job];
            let free = job
                .resources
                .iter()
                .filter(|&&r| self.is_lock[r])
                .all(|&r| self.count[r] < self.effective_capacity[r]);
            if free {
                for &r in &job.resources {
                    self.count[r] += 1;
                }
                self.outcome.runs[i].began = Some(minute);
                self.active.push(i);
            } else {
                still_waiting.push(i);
            }
        }
        self.waiting = still_waiting;
    }

    /// Storm minutes, weighted storm and exposure of every host a run disturbs.
    fn count_hosts(&mut self, minute: u64) {
        for &i in &self.active {
            let run = &self.outcome.runs[i];
            for &(h, weight) in &self.model.jobs[run.job].impacts {
                if weight <= 0.0 {
                    continue;
                }
                if self.host_night[h] == usize::MAX {
                    self.touched_hosts.push(h);
                }
                self.host_weight[h] += weight;
                self.host_night[h] = self.host_night[h].min(run.night);
            }
        }
        let slot =
            (minute / u64::from(self.model.slot_minutes)) as usize % self.model.slots_per_week;
        let cell = (minute % DAY_MINUTES) as usize / CELL_MINUTES as usize;
        let nights = self.outcome.nights;
        for &h in &self.touched_hosts {
            let load = self.model.host_load(h, slot);
            let x = self.host_weight[h] * self.model.hosts[h].sensitivity * load;
            let at = h * nights + self.host_night[h];
            self.outcome.exposure[at] += x;
            if load >= self.busy_threshold {
                self.outcome.storm_minutes[at] += 1;
                self.outcome.storm_weighted[at] += x;
                self.outcome.storm_cells[h * CELLS_PER_DAY + cell] += 1;
            }
            self.host_weight[h] = 0.0;
            self.host_night[h] = usize::MAX;
        }
        self.touched_hosts.clear();
    }

    /// Minutes over capacity and the most concurrent runs of each shared resource.
    fn count_resources(&mut self) {
        for &i in &self.active {
            let run = &self.outcome.runs[i];
            for &r in &self.model.jobs[run.job].resources {
                if self.is_lock[r] {
                    continue;
                }
                if self.resource_night[r] == usize::MAX {
                    self.touched_resources.push(r);
                }
                self.resource_night[r] = self.resource_night[r].min(run.night);
            }
        }
        let nights = self.outcome.nights;
        for &r in &self.touched_resources {
            let k = self.count[r];
            self.outcome.max_active[r] = self.outcome.max_active[r].max(k);
            if k > self.model.resources[r].capacity {
                self.outcome.overflow_minutes[r * nights + self.resource_night[r]] += 1;
            }
            self.resource_night[r] = usize::MAX;
        }
        self.touched_resources.clear();
    }

    /// The work one run does in a minute: its slowest shared resource's share.
    fn rate(&self, job: usize) -> f64 {
        self.model.jobs[job]
            .resources
            .iter()
            .filter(|&&r| !self.is_lock[r])
            .map(|&r| (f64::from(self.effective_capacity[r]) / f64::from(self.count[r])).min(1.0))
            .fold(1.0, f64::min)
    }

    /// Every active run does a minute of work at its rate; runs that finish
    /// record their end and free their resources.
    fn progress(&mut self, minute: u64) {
        let rates: Vec<f64> = self
            .active
            .iter()
            .map(|&i| self.rate(self.outcome.runs[i].job))
            .collect();
        let mut ended = Vec::new();
        for (&i, rate) in self.active.iter().zip(rates) {
            let run = &mut self.outcome.runs[i];
            if run.left <= rate {
                run.ended = minute as f64 + run.left / rate;
                run.left = 0.0;
                ended.push(i);
            } else {
                run.left -= rate;
            }
        }
        for &i in &ended {
            for &r in &self.model.jobs[self.outcome.runs[i].job].resources {
                self.count[r] -= 1;
            }
        }
        self.active.retain(|i| !ended.contains(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_normal_draws_have_the_median_and_spread_asked() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut logs: Vec<f64> = (0..20_000)
            .map(|_| draw_work(&mut rng, 40.0, 0.25).ln())
            .collect();
        logs.sort_by(f64::total_cmp);
        let median = logs[logs.len() / 2].exp();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / logs.len() as f64;
        assert!((median - 40.0).abs() < 0.5, "median {median}");
        assert!((var.sqrt() - 0.25).abs() < 0.01, "sigma {}", var.sqrt());
    }

    #[test]
    fn spread_zero_draws_the_median_exactly() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((0..100).all(|_| draw_work(&mut rng, 25.3, 0.0) == 25.3));
    }
}
