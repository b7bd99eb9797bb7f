//! Duration statistics of a job's past backup runs.
//!
//! The planner reserves a window per job from these figures: the median and
//! the 95th percentile of how long the job's runs took, the longest one, and
//! the trend (a job whose guests grow takes longer every week).
//!
//! Which runs count: those that did their work and ended — `ok`, `warning`
//! and `error` (vzdump's `job errors`: one guest failed, the others were
//! backed up, so the run took its real time). Runs still going, aborted at the
//! start (`aborted`) or whose end was never seen (`unknown`) say nothing about
//! how long a run takes and are left out, as are records whose end lies
//! before their start.
//!
//! A run's duration is its backup work: from the task's start to its end,
//! less the time it waited before its first guest (`waited_secs`: vzdump's
//! node lock and the guard's lease). A run held back by the guard must not
//! teach the planner that the job takes longer.
//!
//! Percentiles interpolate linearly between the two nearest ranks (the
//! "type 7" estimate of R and NumPy); the trend is the least-squares slope of
//! duration against start time, in seconds per week.
//!
//! ```
//! use scheduler_core::history::duration_stats;
//! use scheduler_core::report::{RunRecord, RunResult};
//!
//! let run = |start: i64, secs: i64| RunRecord {
//!     upid: None, start, end: Some(start + secs), result: RunResult::Ok, bytes: None,
//!     waited_secs: None,
//! };
//! let runs = [run(0, 600), run(86_400, 900), run(172_800, 1200)];
//! let stats = duration_stats(&runs).expect("finished runs");
//! assert_eq!((stats.count, stats.p50_secs, stats.max_secs), (3, 900.0, 1200.0));
//! assert!((stats.trend_secs_per_week - 300.0 * 7.0).abs() < 1e-6); // 5 min longer per day
//! ```

use crate::report::{DurationStats, RunRecord, RunResult};

/// Seconds per week, the unit of the trend.
const WEEK_SECS: f64 = 7.0 * 86_400.0;

/// Whether a run's duration counts towards the statistics (see the module doc).
pub fn counts(run: &RunRecord) -> bool {
    matches!(
        run.result,
        RunResult::Ok | RunResult::Warning | RunResult::Error
    ) && run.end.is_some_and(|end| end >= run.start)
}

/// The duration of a finished run's backup work, seconds (see the module doc).
pub fn duration_secs(run: &RunRecord) -> Option<f64> {
    let end = run.end?;
    let task = end.checked_sub(run.start).filter(|secs| *secs >= 0)?;
    let waited = run.waited_secs.unwrap_or(0).clamp(0, task);
    Some((task - waited) as f64)
}

/// Statistics over the runs that count, or `None` when none does.
pub fn duration_stats(runs: &[RunRecord]) -> Option<DurationStats> {
    let points: Vec<(f64, f64)> = runs
        .iter()
        .filter(|run| counts(run))
        .filter_map(|run| Some((run.start as f64, duration_secs(run)?)))
        .collect();
    if points.is_empty() {
        return None;
    }
    let mut durations: Vec<f64> = points.iter().map(|(_, d)| *d).collect();
    durations.sort_by(f64::total_cmp);
    Some(DurationStats {
        count: u32::try_from(durations.len()).unwrap_or(u32::MAX),
        p50_secs: percentile(&durations, 0.50),
        p95_secs: percentile(&durations, 0.95),
        max_secs: durations[durations.len() - 1],
        trend_secs_per_week: slope(&points) * WEEK_SECS,
    })
}

/// The `q` quantile of `sorted` (ascending, not empty), interpolating
/// linearly between the nearest ranks.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted {
        [] => 0.0,
        [only] => *only,
        _ => {
            let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
            let below = rank.floor() as usize;
            let above = rank.ceil() as usize;
            let fraction = rank - below as f64;
            sorted[below] + (sorted[above] - sorted[below]) * fraction
        }
    }
}

/// Least-squares slope of y over x; 0 when x does not vary.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    if sxx > 0.0 {
        sxy / sxx
    } else {
        0.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(start: i64, secs: i64, result: RunResult) -> RunRecord {
        RunRecord {
            upid: None,
            start,
            end: Some(start + secs),
            result,
            bytes: None,
            waited_secs: None,
        }
    }

    #[test]
    fn only_runs_that_did_their_work_count() {
        let mut running = run(50, 0, RunResult::Running);
        running.end = None;
        let runs = vec![
            run(0, 100, RunResult::Ok),
            run(10, 300, RunResult::Warning),
            run(20, 200, RunResult::Error),
            run(30, 2, RunResult::Aborted),
            run(40, 9_000, RunResult::Unknown),
            running,
            run(60, -5, RunResult::Ok),
        ];
        let stats = duration_stats(&runs).unwrap();
        assert_eq!(stats.count, 3);
        assert_eq!(stats.p50_secs, 200.0);
        assert_eq!(stats.max_secs, 300.0);
        assert!(duration_stats(&runs[3..]).is_none());
        assert!(duration_stats(&[]).is_none());
    }

    #[test]
    fn the_wait_before_the_first_guest_is_not_part_of_the_duration() {
        let mut held_back = run(0, 1260, RunResult::Ok);
        held_back.waited_secs = Some(960);
        assert_eq!(duration_secs(&held_back), Some(300.0));
        held_back.waited_secs = Some(5000);
        assert_eq!(duration_secs(&held_back), Some(0.0), "never negative");
        let stats = duration_stats(&[held_back.clone(), run(86_400, 300, RunResult::Ok)]);
        assert_eq!(stats.map(|s| s.max_secs), Some(300.0));
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let sorted: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 10.5);
        assert!((percentile(&sorted, 0.95) - 19.05).abs() < 1e-9);
        assert_eq!(percentile(&sorted, 1.0), 20.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
    }

    #[test]
    fn the_trend_is_seconds_per_week() {
        let day = 86_400;
        let growing: Vec<RunRecord> = (0..14)
            .map(|i| run(i * day, 3600 + i * 60, RunResult::Ok))
            .collect();
        let stats = duration_stats(&growing).unwrap();
        assert!(
            (stats.trend_secs_per_week - 420.0).abs() < 1e-6,
            "{stats:?}"
        );
        let same_start = vec![run(0, 10, RunResult::Ok), run(0, 20, RunResult::Ok)];
        assert_eq!(
            duration_stats(&same_start).unwrap().trend_secs_per_week,
            0.0
        );
    }

    proptest! {
        #[test]
        fn statistics_are_ordered_and_bounded(
            runs in proptest::collection::vec((0i64..10_000_000, 0i64..100_000), 1..100),
        ) {
            let records: Vec<RunRecord> = runs.iter().map(|(s, d)| run(*s, *d, RunResult::Ok)).collect();
            let stats = duration_stats(&records).unwrap();
            let min = runs.iter().map(|(_, d)| *d).min().unwrap() as f64;
            prop_assert_eq!(stats.count as usize, runs.len());
            prop_assert!(min <= stats.p50_secs);
            prop_assert!(stats.p50_secs <= stats.p95_secs);
            prop_assert!(stats.p95_secs <= stats.max_secs);
            prop_assert!(stats.trend_secs_per_week.is_finite());
        }
    }
}
