//! Every metric the agent serves on `/metrics`, in one place.
//!
//! Names follow `stagger_<name>_<unit>[_total]` in base units (the registry
//! adds the `stagger_` prefix; counters get `_total` from the encoder).
//! Every series carries `host` (the node name, a label of the whole
//! registry), so pressure and runs of one host are joined and filtered by the
//! same label as the coordinator's series; per-job series add `job_id` — not
//! `job`, which Prometheus itself sets to the scrape job. Label sets are bounded:
//! results, reasons and routes are fixed lists, jobs are the node's jobs.
//!
//! Where something is both logged and counted, the function here that
//! counts it also logs it, so the two never drift apart.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use scheduler_core::report::RunResult;

use crate::sample::procfs::{Pressure, USER_HZ};
use crate::sample::reader::Reading;

/// A gauge holding an `f64`.
type FloatGauge = Gauge<f64, AtomicU64>;
/// A counter holding an `f64`.
type FloatCounter = Counter<f64, AtomicU64>;
/// A family of histograms, one per label set.
type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// `version`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// `window` of a PSI average.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    window: &'static str,
}

/// `job_id` of a backup job (`host` comes with every series of the registry).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct JobLabels {
    /// The job id.
    pub job_id: String,
}

/// A job's labels and a run result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job_id: String,
    result: &'static str,
}

/// How an apply or a rollback ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values are lowercase on the wire
pub enum ApplyResult {
    /// Written (or nothing to change).
    ok,
    /// Refused: jobs.cfg was not at the digest the caller named.
    stale,
    /// Refused: the request cannot be carried out (422, 404).
    refused,
    /// Failed: the lock, the file system or Proxmox's API.
    error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: ApplyResult,
}

/// Why the hook let a backup go without a lease.
#[derive(
    Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue, serde::Serialize, serde::Deserialize,
)]
#[allow(non_camel_case_types)] // label values are lowercase on the wire
pub enum FailOpen {
    /// No usable configuration, or no `[coordinator]` in it.
    no_config,
    /// The coordinator could not be reached.
    unreachable,
    /// `lease-wait-max-secs` ran out before a grant.
    timeout,
    /// The coordinator answered something unreadable.
    bad_answer,
    /// The coordinator refused the request (4xx/5xx).
    refused,
    /// Anything else (the run could not be identified, a local failure).
    other,
}

impl FailOpen {
    /// Every reason, for pre-created series.
    pub const ALL: [FailOpen; 6] = [
        FailOpen::no_config,
        FailOpen::unreachable,
        FailOpen::timeout,
        FailOpen::bad_answer,
        FailOpen::refused,
        FailOpen::other,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: FailOpen,
}

/// `route` (the matched route, never the raw path) and `code`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    code: u16,
}

/// The agent's metrics.
pub struct Metrics {
    registry: Registry,
    pressure_some: Family<WindowLabels, FloatGauge>,
    pressure_full: Family<WindowLabels, FloatGauge>,
    pressure_some_total: FloatCounter,
    pressure_full_total: FloatCounter,
    disk_io_time: FloatCounter,
    cpu_iowait: FloatCounter,
    io_load: FloatGauge,
    profile_span: FloatGauge,
    backup_running: Family<JobLabels, Gauge>,
    backup_running_secs: Family<JobLabels, FloatGauge>,
    backup_duration: HistogramFamily<JobLabels>,
    backup_last_duration: Family<JobLabels, FloatGauge>,
    backup_runs: Family<RunLabels, Counter>,
    applies: Family<ResultLabels, Counter>,
    rollbacks: Family<ResultLabels, Counter>,
    lock_wait: Histogram,
    lease_wait: Histogram,
    fail_opens: Family<ReasonLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    /// The jobs with series, to remove those of jobs that left jobs.cfg.
    jobs: Mutex<BTreeSet<JobLabels>>,
    /// The counters last read, to add only what they grew by.
    last: Mutex<Option<Reading>>,
}

fn duration_histogram() -> Histogram {
    // 1 min … 16 h: backups of a few minutes to a long night.
    Histogram::new([
        60.0, 300.0, 600.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 10800.0, 14400.0,
        21600.0, 28800.0, 43200.0, 57600.0,
    ])
}

impl Metrics {
    /// A registry with every metric of the agent on `node`, `stagger_build_info` set.
    pub fn new(node: &str) -> Metrics {
        let host = (Cow::Borrowed("host"), Cow::Owned(node.to_owned()));
        let mut registry = Registry::with_prefix_and_labels("stagger", std::iter::once(host));
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register(
            "build_info",
            "The agent's version (value always 1)",
            build_info,
        );
        let metrics = Metrics {
            pressure_some: Family::default(),
            pressure_full: Family::default(),
            pressure_some_total: FloatCounter::default(),
            pressure_full_total: FloatCounter::default(),
            disk_io_time: FloatCounter::default(),
            cpu_iowait: FloatCounter::default(),
            io_load: FloatGauge::default(),
            profile_span: FloatGauge::default(),
            backup_running: Family::default(),
            backup_running_secs: Family::default(),
            backup_duration: Family::new_with_constructor(duration_histogram),
            backup_last_duration: Family::default(),
            backup_runs: Family::default(),
            applies: Family::default(),
            rollbacks: Family::default(),
            lock_wait: Histogram::new([
                0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
            ]),
            lease_wait: Histogram::new([
                0.1, 1.0, 5.0, 30.0, 60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
            ]),
            fail_opens: Family::default(),
            http_requests: Family::default(),
            jobs: Mutex::new(BTreeSet::new()),
            last: Mutex::new(None),
            registry,
        };
        metrics.register_all()
    }

    fn register_all(mut self) -> Metrics {
        for result in [
            ApplyResult::ok,
            ApplyResult::stale,
            ApplyResult::refused,
            ApplyResult::error,
        ] {
            let _ = self.applies.get_or_create(&ResultLabels { result });
            let _ = self.rollbacks.get_or_create(&ResultLabels { result });
        }
        for reason in FailOpen::ALL {
            let _ = self.fail_opens.get_or_create(&ReasonLabels { reason });
        }
        let r = &mut self.registry;
        r.register(
            "io_pressure_some_ratio",
            "Share of time some task stalled on I/O (/proc/pressure/io some avgN)",
            self.pressure_some.clone(),
        );
        r.register(
            "io_pressure_full_ratio",
            "Share of time all non-idle tasks stalled on I/O (/proc/pressure/io full avgN)",
            self.pressure_full.clone(),
        );
        r.register(
            "io_pressure_some_seconds",
            "Time some task stalled on I/O (/proc/pressure/io some total)",
            self.pressure_some_total.clone(),
        );
        r.register(
            "io_pressure_full_seconds",
            "Time all non-idle tasks stalled on I/O (/proc/pressure/io full total)",
            self.pressure_full_total.clone(),
        );
        r.register(
            "disk_io_time_seconds",
            "Time the whole disks spent doing I/O, summed over disks (/proc/diskstats io_ticks)",
            self.disk_io_time.clone(),
        );
        r.register(
            "cpu_iowait_seconds",
            "CPU time idle waiting for I/O, all CPUs (/proc/stat iowait)",
            self.cpu_iowait.clone(),
        );
        r.register(
            "io_load_ratio",
            "The latest load sample folded into the weekly profile, in [0, 1]",
            self.io_load.clone(),
        );
        // Not `load_profile_weeks`: promtool refuses a name in a non-base unit.
        r.register(
            "load_profile_span_seconds",
            "How much time of samples the weekly load profile holds, weighted (weeks × 604800)",
            self.profile_span.clone(),
        );
        r.register(
            "backup_running",
            "1 while a run of the backup job is going on this node",
            self.backup_running.clone(),
        );
        r.register(
            "backup_running_seconds",
            "Elapsed time of the job's current run (0 when idle)",
            self.backup_running_secs.clone(),
        );
        r.register(
            "backup_duration_seconds",
            "Durations of the job's finished runs",
            self.backup_duration.clone(),
        );
        r.register(
            "backup_last_duration_seconds",
            "Duration of the job's last finished run",
            self.backup_last_duration.clone(),
        );
        r.register(
            "backup_runs",
            "Finished runs of the job, by result",
            self.backup_runs.clone(),
        );
        r.register(
            "schedule_applies",
            "Schedule changes asked for (PUT /v1/schedules), by result",
            self.applies.clone(),
        );
        r.register(
            "rollbacks",
            "Rollbacks of jobs.cfg asked for (POST /v1/rollback), by result",
            self.rollbacks.clone(),
        );
        r.register(
            "jobs_cfg_lock_wait_seconds",
            "Time spent waiting for Proxmox's cluster lock on jobs.cfg",
            self.lock_wait.clone(),
        );
        r.register(
            "hook_lease_wait_seconds",
            "Time the vzdump hook waited for the coordinator's lease",
            self.lease_wait.clone(),
        );
        r.register(
            "hook_fail_open",
            "Hook runs that let a backup start without a lease, by reason",
            self.fail_opens.clone(),
        );
        r.register(
            "http_requests",
            "Requests answered, by matched route and status code",
            self.http_requests.clone(),
        );
        self
    }

    /// The registry, for the exposition.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Takes in one reading of the procfs counters and the load value it gave.
    pub fn record_reading(&self, reading: &Reading, load: Option<f64>) {
        if let Some(pressure) = &reading.pressure {
            self.set_pressure(pressure);
        }
        if let Some(load) = load {
            self.io_load.set(load);
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let before = last.as_ref();
        let grow = |counter: &FloatCounter, now: Option<u64>, then: Option<u64>, unit: f64| {
            // The first reading adds the whole total, later ones what it grew by.
            let delta = match (now, then) {
                (Some(now), Some(then)) => now.saturating_sub(then),
                (Some(now), None) => now,
                (None, _) => 0,
            };
            if delta > 0 {
                counter.inc_by(delta as f64 / unit);
            }
        };
        let some = |r: &Reading| r.pressure.map(|p| p.some.total_us);
        let full = |r: &Reading| r.pressure.and_then(|p| p.full).map(|f| f.total_us);
        let iowait = |r: &Reading| r.cpu.map(|c| c.iowait);
        grow(
            &self.pressure_some_total,
            some(reading),
            before.and_then(some),
            1e6,
        );
        grow(
            &self.pressure_full_total,
            full(reading),
            before.and_then(full),
            1e6,
        );
        grow(
            &self.disk_io_time,
            reading.disk_io_ms(),
            before.and_then(Reading::disk_io_ms),
            1000.0,
        );
        grow(
            &self.cpu_iowait,
            iowait(reading),
            before.and_then(iowait),
            USER_HZ,
        );
        *last = Some(reading.clone());
    }

    fn set_pressure(&self, pressure: &Pressure) {
        let windows = [("10s", 0), ("60s", 1), ("300s", 2)];
        let pick = |line: &crate::sample::procfs::PsiLine, i: usize| match i {
            0 => line.avg10,
            1 => line.avg60,
            _ => line.avg300,
        };
        for (window, i) in windows {
            let labels = WindowLabels { window };
            self.pressure_some
                .get_or_create(&labels)
                .set(pick(&pressure.some, i));
            if let Some(full) = &pressure.full {
                self.pressure_full.get_or_create(&labels).set(pick(full, i));
            }
        }
    }

    /// Sets the weeks the load profile holds (exposed in seconds).
    pub fn set_profile_weeks(&self, weeks: f64) {
        self.profile_span
            .set(weeks * scheduler_core::load::WEEK_SECS as f64);
    }

    /// Keeps per-job series for exactly `jobs` (the node's jobs now).
    ///
    /// A new job's runs counters (one per result) and duration histogram
    /// start at 0, so that `increase()` and `rate()` over them have a first
    /// sample before the job's first run ends, and its first run counts.
    /// The last-duration gauge appears only with a known duration
    /// ([`Metrics::set_last_duration`]): a 0 there would claim a run.
    pub fn set_jobs(&self, jobs: BTreeSet<JobLabels>) {
        let mut known = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for gone in known.difference(&jobs) {
            self.backup_running.remove(gone);
            self.backup_running_secs.remove(gone);
            self.backup_duration.remove(gone);
            self.backup_last_duration.remove(gone);
            for result in RESULTS {
                self.backup_runs.remove(&run_labels(gone, result));
            }
        }
        for job in &jobs {
            let _ = self.backup_running.get_or_create(job);
            let _ = self.backup_running_secs.get_or_create(job);
            let _ = self.backup_duration.get_or_create(job);
            for result in RESULTS {
                let _ = self.backup_runs.get_or_create(&run_labels(job, result));
            }
        }
        *known = jobs;
    }

    /// Whether the job currently runs, and for how long.
    pub fn set_running(&self, job: &JobLabels, running_secs: Option<f64>) {
        self.backup_running
            .get_or_create(job)
            .set(i64::from(running_secs.is_some()));
        self.backup_running_secs
            .get_or_create(job)
            .set(running_secs.unwrap_or(0.0).max(0.0));
    }

    /// A run of the job finished with `result` after `secs` (when known).
    pub fn run_finished(&self, job: &JobLabels, result: RunResult, secs: Option<f64>) {
        let result = match result {
            RunResult::Running => return,
            other => other.as_str(),
        };
        self.backup_runs
            .get_or_create(&run_labels(job, result))
            .inc();
        if let Some(secs) = secs {
            self.backup_duration.get_or_create(job).observe(secs);
            self.backup_last_duration.get_or_create(job).set(secs);
        }
    }

    /// The duration of the job's last finished run, from the run history
    /// (so the gauge is back after a restart, before the next run ends).
    pub fn set_last_duration(&self, job: &JobLabels, secs: f64) {
        self.backup_last_duration.get_or_create(job).set(secs);
    }

    /// An apply ended with `result`.
    pub fn apply(&self, result: ApplyResult) {
        self.applies.get_or_create(&ResultLabels { result }).inc();
    }

    /// A rollback ended with `result`.
    pub fn rollback(&self, result: ApplyResult) {
        self.rollbacks.get_or_create(&ResultLabels { result }).inc();
    }

    /// The histogram of cluster lock waits, for the jobs.cfg transaction to
    /// observe each wait (taken or not) where it happens.
    pub fn lock_wait_histogram(&self) -> Histogram {
        self.lock_wait.clone()
    }

    /// The hook waited `secs` for a lease.
    pub fn lease_waited(&self, secs: f64) {
        self.lease_wait.observe(secs);
    }

    /// The hook let a backup go without a lease; logged here as well.
    pub fn hook_failed_open(&self, reason: FailOpen, job: Option<&str>, message: &str) {
        tracing::warn!(
            reason = ?reason,
            job = job.unwrap_or("?"),
            "The vzdump hook let a backup start without a lease: {message}"
        );
        self.fail_opens
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A request to `route` was answered with `code`.
    pub fn http_request(&self, route: &str, code: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                code,
            })
            .inc();
    }
}

/// The result labels of finished runs.
const RESULTS: [&str; 5] = ["ok", "warning", "error", "aborted", "unknown"];

fn run_labels(job: &JobLabels, result: &'static str) -> RunLabels {
    RunLabels {
        job_id: job.job_id.clone(),
        result,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::sample::procfs::PsiLine;
    use stagger_service::metrics::{encode, Format};

    fn job(id: &str) -> JobLabels {
        JobLabels { job_id: id.into() }
    }

    #[test]
    fn every_series_carries_the_host_and_job_series_their_job_id() {
        let metrics = Metrics::new("pihanga");
        metrics.set_jobs([job("backup-a")].into());
        metrics.set_running(&job("backup-a"), Some(12.0));
        metrics.run_finished(&job("backup-a"), RunResult::Warning, Some(600.0));
        let text = encode(metrics.registry(), Format::ClassicText).unwrap();
        assert!(
            text.contains(r#"stagger_backup_running{host="pihanga",job_id="backup-a"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"stagger_backup_runs_total{host="pihanga",job_id="backup-a",result="warning"} 1"#
        ));
        assert!(text.contains("stagger_backup_duration_seconds_bucket"));
        assert!(
            text.contains(r#"stagger_hook_fail_open_total{host="pihanga",reason="no_config"} 0"#)
        );
        assert!(text.contains(r#"stagger_schedule_applies_total{host="pihanga",result="stale"} 0"#));
        assert!(text.contains(r#"stagger_build_info{host="pihanga",version="#));
        assert!(!text.contains(r#"job=""#));

        metrics.set_jobs(BTreeSet::new());
        let text = encode(metrics.registry(), Format::ClassicText).unwrap();
        assert!(!text.contains("backup-a"), "{text}");
    }

    #[test]
    fn a_new_jobs_runs_counters_and_histogram_start_at_zero_without_a_last_duration() {
        let metrics = Metrics::new("pihanga");
        metrics.set_jobs([job("backup-a")].into());
        let text = encode(metrics.registry(), Format::ClassicText).unwrap();
        for result in RESULTS {
            let line = format!(
                r#"stagger_backup_runs_total{{host="pihanga",job_id="backup-a",result="{result}"}} 0"#
            );
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
        assert!(
            text.contains(
                r#"stagger_backup_duration_seconds_count{host="pihanga",job_id="backup-a"} 0"#
            ),
            "{text}"
        );
        assert!(
            !text.contains("stagger_backup_last_duration_seconds{"),
            "{text}"
        );

        metrics.set_last_duration(&job("backup-a"), 1800.0);
        metrics.set_jobs([job("backup-a")].into()); // the next poll keeps the series
        let text = encode(metrics.registry(), Format::ClassicText).unwrap();
        assert!(text.contains(
            r#"stagger_backup_last_duration_seconds{host="pihanga",job_id="backup-a"} 1800"#
        ));
    }

    #[test]
    fn counters_follow_the_kernel_totals() {
        let metrics = Metrics::new("pihanga");
        let reading = |some_us| Reading {
            pressure: Some(Pressure {
                some: PsiLine {
                    avg10: 0.5,
                    total_us: some_us,
                    ..PsiLine::default()
                },
                full: None,
            }),
            ..Reading::default()
        };
        metrics.record_reading(&reading(2_000_000), Some(0.3));
        metrics.record_reading(&reading(5_000_000), Some(0.3));
        metrics.record_reading(&reading(1_000_000), None); // replaced file: no negative step
        assert_eq!(metrics.pressure_some_total.get(), 5.0);
        let text = encode(metrics.registry(), Format::ClassicText).unwrap();
        assert!(
            text.contains(r#"stagger_io_pressure_some_ratio{host="pihanga",window="10s"} 0.5"#),
            "{text}"
        );
        assert!(text.contains(r#"stagger_io_load_ratio{host="pihanga"} 0.3"#));
    }
}
