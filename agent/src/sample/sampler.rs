//! The sampler task: every `sample-interval-secs` it reads the procfs
//! counters, turns the interval since the last reading into a load value
//! (see [`super::reader`]), folds it into the weekly load profile, updates
//! the metrics, and every few minutes persists the profile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::load::WeeklyLoad;
use scheduler_core::report;

use super::procfs::Pressure;
use super::reader::{load_between, ProcReader, Reading};
use crate::context::Agent;
use crate::state;

/// How often the profile is written to `state-dir` (and once more at shutdown).
const PERSIST_EVERY: Duration = Duration::from_secs(300);

/// The load profile and the latest pressure, shared with the report.
#[derive(Debug, Clone)]
pub struct LoadState {
    /// The weekly profile.
    pub profile: WeeklyLoad,
    /// The pressure at the latest reading, when PSI is there.
    pub pressure: Option<report::Pressure>,
    /// Whether the profile changed since it was last persisted.
    pub dirty: bool,
}

impl LoadState {
    /// The profile persisted in `state-dir`, or a new one; `half_life_weeks` from the config.
    pub fn load(
        state_dir: &std::path::Path,
        half_life_weeks: f64,
        now: i64,
    ) -> anyhow::Result<LoadState> {
        let path = state::load_profile_path(state_dir);
        let stored = state::load_or_reset(&path, now, |profile: &WeeklyLoad| {
            profile.check().map_err(|e| e.to_string())
        });
        let profile = match stored {
            Some(mut profile) => {
                profile.set_half_life(half_life_weeks)?;
                profile
            }
            None => WeeklyLoad::new(half_life_weeks)?,
        };
        Ok(LoadState {
            profile,
            pressure: None,
            dirty: false,
        })
    }
}

/// The state the sampler carries from one reading to the next.
pub struct Sampler {
    reader: ProcReader,
    previous: Option<(Reading, Instant, i64)>,
    warned: bool,
}

impl Sampler {
    /// A sampler of the files under the agent's `proc-root`.
    pub fn new(agent: &Agent) -> Sampler {
        Sampler {
            reader: ProcReader::new(&agent.config.proc_root),
            previous: None,
            warned: false,
        }
    }

    /// Takes one reading at wall-clock time `now` (Unix seconds).
    pub fn sample(&mut self, agent: &Agent, now: i64) {
        let (reading, problems) = self.reader.read();
        if !problems.is_empty() && !self.warned {
            // Once: a broken file stays broken, and a log line every 10 s helps nobody.
            tracing::warn!(
                problems = problems.join("; "),
                "Some I/O counters could not be read; the load is measured from the others."
            );
            self.warned = true;
        }
        let measured = Instant::now();
        let load = self.previous.as_ref().and_then(|(before, at, wall)| {
            let secs = measured.duration_since(*at).as_secs_f64();
            let (value, _source) = load_between(before, &reading, secs);
            value.map(|v| (v, *wall))
        });
        agent.metrics.record_reading(&reading, load.map(|(v, _)| v));
        {
            let mut state = agent.load.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((value, since)) = load {
                state.profile.add_sample(since, now, value);
                state.dirty = true;
            }
            state.pressure = reading.pressure.as_ref().map(report_pressure);
            agent.metrics.set_profile_weeks(state.profile.weeks(now));
        }
        self.previous = Some((reading, measured, now));
    }
}

fn report_pressure(pressure: &Pressure) -> report::Pressure {
    let full = pressure.full.unwrap_or_default();
    report::Pressure {
        some_avg10: pressure.some.avg10,
        some_avg60: pressure.some.avg60,
        full_avg10: full.avg10,
        full_avg60: full.avg60,
    }
}

/// Writes the profile if it changed since the last write.
pub fn persist(agent: &Agent) {
    let profile = {
        let mut state = agent.load.lock().unwrap_or_else(|p| p.into_inner());
        if !state.dirty {
            return;
        }
        state.dirty = false;
        state.profile.clone()
    };
    let path = state::load_profile_path(&agent.config.state_dir);
    if let Err(error) = state::save(&path, &profile) {
        tracing::error!(path = %path.display(), "Could not save the load profile: {error:#}");
    }
}

/// Samples every `sample-interval-secs` until `shutdown` fires, then persists once more.
///
/// Each round runs on the blocking pool: a file write (and its fsync) may
/// take long on a disk busy with backups, and must not hold up the API.
pub async fn run(agent: Arc<Agent>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut sampler = Some(Sampler::new(&agent));
    let period = Duration::from_secs(agent.config.sample_interval_secs);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_persist = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => break,
        }
        let Some(mut taken) = sampler.take() else {
            break;
        };
        let persist_now = last_persist.elapsed() >= PERSIST_EVERY;
        let round = agent.clone();
        let done = tokio::task::spawn_blocking(move || {
            taken.sample(&round, state::unix_now());
            if persist_now {
                persist(&round);
            }
            taken
        })
        .await;
        match done {
            Ok(back) => sampler = Some(back),
            Err(error) => {
                tracing::error!(%error, "A sampling round failed; sampling starts over.");
                sampler = Some(Sampler::new(&agent));
            }
        }
        if persist_now {
            last_persist = Instant::now();
        }
    }
    let last = agent.clone();
    let _ = tokio::task::spawn_blocking(move || persist(&last)).await;
}
