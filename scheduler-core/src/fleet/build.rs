//! Reports + fleet settings → a [`Snapshot`].
//!
//! Each job of each report becomes a snapshot job `host/job` (ids are unique
//! per host only, so the host is part of the id):
//!
//! * its calendar event becomes UTC days and a UTC start ([`event::pattern`]),
//!   floored to the slot grid (the reserved duration grows by what the floor
//!   took, so the run still ends when it did);
//! * events that fire several times a day become one **pinned** job per time
//!   of day (`host/job@HH:MM`): they count for capacity but never move; an
//!   event without a weekly pattern (`monthly`, a date) and a disabled job are
//!   **left out**; each with a [`Note`] that says why;
//! * a job without `node` that several hosts of one cluster report (the same
//!   jobs.cfg digest) fires on all of them at once: one pinned job per node,
//!   with a note (one schedule cannot give them different starts);
//! * a job whose reserved time does not fit the window is pinned too (the
//!   snapshot would be invalid otherwise);
//! * the duration is the policy's percentile of its finished runs
//!   ([`DurationStats`](crate::report::DurationStats), else
//!   [`history::duration_stats`] of its runs), or
//!   `unknown_duration_minutes` when it has none;
//! * its resources are the `[[resource]]`s whose storages contain the job's
//!   storage; its impacts are its own host (1.0) plus each resource's
//!   impacts (the larger weight where both name a host);
//! * hosts carry their settings and the report's load profile, resampled to
//!   the slot grid.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::event::{self, DailyRun, Pattern};
use crate::calendar::CalendarEvent;
use crate::history;
use crate::report::{HostReport, JobReport};
use crate::snapshot::{self, Snapshot, Window};

/// Which of a job's past durations a plan reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Percentile {
    /// The median.
    P50,
    /// The 95th percentile.
    P95,
    /// The longest run.
    Max,
}

/// A host's settings (from schedctl.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct HostSettings {
    /// The Proxmox node name.
    pub name: String,
    /// How much its workloads suffer from I/O.
    pub sensitivity: f64,
    /// How many of its own backups run at once.
    pub capacity: u32,
}

/// A shared resource's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSettings {
    /// Its name.
    pub name: String,
    /// How many backups it takes at once.
    pub capacity: u32,
    /// The jobs.cfg storages that write to it.
    pub storages: Vec<String>,
    /// Hosts disturbed while a job using it runs, with weights.
    pub impacts: BTreeMap<String, f64>,
}

/// Everything besides the reports that a snapshot needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    /// The planning grid, minutes (divides 1440).
    pub slot_minutes: u32,
    /// Minutes kept free after each run.
    pub guard_minutes: f64,
    /// Cost of moving one job.
    pub stability_weight: f64,
    /// When backups may run, UTC `HH:MM` on the grid; `None`: all day.
    pub window: Option<Window>,
    /// Which duration to reserve.
    pub percentile: Percentile,
    /// Minutes reserved for a job without a finished run.
    pub unknown_duration_minutes: f64,
    /// Per-host settings; a reporting host not listed gets sensitivity 1, capacity 1.
    pub hosts: Vec<HostSettings>,
    /// Shared resources.
    pub resources: Vec<ResourceSettings>,
}

/// Something the builder decided that the admin should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The host.
    pub host: String,
    /// The job, when the note is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// What was decided and why.
    pub text: String,
}

/// How a snapshot job stands for a host's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// The job's one daily run: the planner may move it.
    Movable,
    /// Counted, never moved (repeating events, shared jobs without `node`, runs too long for the window).
    Pinned,
}

/// A snapshot job and the host job it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedJob {
    /// The snapshot job id (`host/job`, `host/job@HH:MM`).
    pub id: String,
    /// The host.
    pub host: String,
    /// The jobs.cfg job id.
    pub job: String,
    /// The calendar event as written in jobs.cfg.
    pub schedule: String,
    /// Movable or pinned.
    pub kind: RunKind,
    /// The UTC start before flooring to the grid, seconds after midnight.
    pub start_secs: u32,
}

/// A snapshot made from reports, with what each job stands for and the notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSnapshot {
    /// The snapshot (PLANNING-MODEL.md).
    pub snapshot: Snapshot,
    /// One entry per snapshot job, in the snapshot's order.
    pub jobs: Vec<PlannedJob>,
    /// What was left out, pinned or split, and why.
    pub notes: Vec<Note>,
}

/// Builds the snapshot of `reports` as of `now` (Unix seconds).
pub fn build(reports: &[HostReport], settings: &FleetSettings, now: i64) -> FleetSnapshot {
    let mut builder = Builder {
        settings,
        reporting: reports.iter().map(|r| r.host.clone()).collect(),
        now,
        snapshot: Snapshot {
            version: snapshot::VERSION,
            slot_minutes: settings.slot_minutes,
            guard_minutes: settings.guard_minutes,
            stability_weight: settings.stability_weight,
            window: settings.window.clone(),
            resources: settings
                .resources
                .iter()
                .map(|r| snapshot::Resource {
                    name: r.name.clone(),
                    capacity: r.capacity,
                })
                .collect(),
            hosts: Vec::new(),
            jobs: Vec::new(),
        },
        jobs: Vec::new(),
        notes: Vec::new(),
    };
    let shared = shared_jobs(reports);
    for (job, hosts) in &shared {
        builder.notes.push(Note {
            host: hosts.join(", "),
            job: Some(job.clone()),
            text: format!(
                "has no `node`: it fires on every node of the cluster at once ({}); planned as one \
                 pinned job per node, since one schedule cannot give them different starts; give each \
                 node its own job (with `node`) to let Stagger stagger them",
                hosts.join(", ")
            ),
        });
    }
    for report in reports {
        builder.add_host(report);
        for job in &report.jobs {
            let is_shared = job.node.is_none()
                && shared
                    .get(&job.id)
                    .is_some_and(|hosts| hosts.contains(&report.host));
            builder.add_job(report, job, is_shared);
        }
    }
    FleetSnapshot {
        snapshot: builder.snapshot,
        jobs: builder.jobs,
        notes: builder.notes,
    }
}

/// Jobs without `node` reported by several hosts with the same jobs.cfg
/// (one cluster): job id → hosts, sorted.
fn shared_jobs(reports: &[HostReport]) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for report in reports {
        for job in report.jobs.iter().filter(|j| j.node.is_none() && j.enabled) {
            seen.entry((report.jobs_cfg.digest.as_str(), job.id.as_str()))
                .or_default()
                .push(report.host.clone());
        }
    }
    let mut shared = BTreeMap::new();
    for ((_, job), mut hosts) in seen {
        if hosts.len() > 1 {
            hosts.sort();
            shared.insert(job.to_owned(), hosts);
        }
    }
    shared
}

struct Builder<'a> {
    settings: &'a FleetSettings,
    /// The hosts that reported: only they can be named in impacts.
    reporting: BTreeSet<String>,
    now: i64,
    snapshot: Snapshot,
    jobs: Vec<PlannedJob>,
    notes: Vec<Note>,
}

impl Builder<'_> {
    fn note(&mut self, host: &str, job: Option<&str>, text: String) {
        self.notes.push(Note {
            host: host.to_owned(),
            job: job.map(str::to_owned),
            text,
        });
    }

    fn add_host(&mut self, report: &HostReport) {
        let settings = self.settings.hosts.iter().find(|h| h.name == report.host);
        let load = match &report.load {
            Some(profile) => match resample(
                &profile.values,
                profile.slot_minutes,
                self.settings.slot_minutes,
            ) {
                Some(load) => Some(load),
                None => {
                    self.note(
                        &report.host,
                        None,
                        format!(
                            "its load profile ({} values of {} minutes) is not a week of slots; planned as if idle",
                            profile.values.len(),
                            profile.slot_minutes
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        self.snapshot.hosts.push(snapshot::Host {
            name: report.host.clone(),
            timezone: report.timezone.clone(),
            sensitivity: settings.map_or(1.0, |s| s.sensitivity),
            capacity: settings.map_or(1, |s| s.capacity),
            load,
        });
    }

    fn add_job(&mut self, report: &HostReport, job: &JobReport, shared: bool) {
        let host = report.host.as_str();
        if !job.enabled {
            self.note(
                host,
                Some(&job.id),
                "is disabled: left out of the plan".to_owned(),
            );
            return;
        }
        let event = match CalendarEvent::parse(job.schedule.trim()) {
            Ok(event) => event,
            Err(err) => {
                self.note(
                    host,
                    Some(&job.id),
                    format!("has a schedule Proxmox cannot read ({err}): left out of the plan"),
                );
                return;
            }
        };
        let tz: Tz = match report.timezone.parse() {
            Ok(tz) => tz,
            Err(_) if event.is_utc() => Tz::UTC,
            Err(_) => {
                self.note(
                    host,
                    Some(&job.id),
                    format!(
                        "runs in the host's zone '{}', which is not an IANA zone name: left out of the plan",
                        report.timezone
                    ),
                );
                return;
            }
        };
        let (duration, known) = self.duration(job);
        let planned_before = self.jobs.len();
        match event::pattern(&event, tz, self.now) {
            Pattern::Daily(run) => {
                if let Some(note) = &run.note {
                    self.note(host, Some(&job.id), note.clone());
                }
                let kind = if shared {
                    RunKind::Pinned
                } else if !self.fits_window(duration) {
                    self.note(
                        host,
                        Some(&job.id),
                        format!(
                            "reserves {duration:.0} minutes plus the guard, more than the window holds: pinned at its current start"
                        ),
                    );
                    RunKind::Pinned
                } else {
                    RunKind::Movable
                };
                let id = format!("{host}/{}", job.id);
                self.push_job(report, job, id, &run, duration, kind);
            }
            Pattern::Repeating(runs) => {
                let least_gap = least_gap_minutes(&runs);
                if duration + self.settings.guard_minutes > least_gap {
                    self.note(
                        host,
                        Some(&job.id),
                        format!(
                            "fires every {least_gap:.0} minutes or more often but reserves {duration:.0}: its runs would overlap each other; left out of the plan"
                        ),
                    );
                    return;
                }
                self.note(
                    host,
                    Some(&job.id),
                    format!(
                        "fires {} times a day ('{}'): counted as pinned runs, never moved",
                        runs.len(),
                        job.schedule
                    ),
                );
                for run in &runs {
                    let id = format!("{host}/{}@{}", job.id, hhmm(run.start_secs));
                    self.push_job(report, job, id, run, duration, RunKind::Pinned);
                }
            }
            Pattern::Irregular(reason) => {
                self.note(
                    host,
                    Some(&job.id),
                    format!(
                        "'{}' cannot be planned: {reason}; left out of the plan",
                        job.schedule
                    ),
                );
            }
        }
        if !known && self.jobs.len() > planned_before {
            self.note(
                host,
                Some(&job.id),
                format!(
                    "has no finished run yet: reserving {duration} minutes (policy.unknown-duration-minutes)"
                ),
            );
        }
    }

    fn push_job(
        &mut self,
        report: &HostReport,
        job: &JobReport,
        id: String,
        run: &DailyRun,
        duration: f64,
        kind: RunKind,
    ) {
        let slot_secs = self.settings.slot_minutes * 60;
        let floored = run.start_secs / slot_secs * slot_secs;
        // The floor moves the start earlier: reserve that much more so the run still ends when it did.
        let extra = f64::from(run.start_secs - floored) / 60.0;
        let pinned = kind == RunKind::Pinned;
        self.snapshot.jobs.push(snapshot::Job {
            id: id.clone(),
            host: report.host.clone(),
            days: (run.days.len() < 7).then(|| run.days.clone()),
            current_start: hhmm(floored),
            duration_minutes: round_up_hundredth(duration + extra),
            resources: self.resources_of(job),
            impacts: Some(self.impacts_of(&report.host, job)),
            // A pinned run may lie outside the fleet's window: it is counted, not placed.
            window: pinned.then(|| Window {
                start: "00:00".to_owned(),
                end: "00:00".to_owned(),
            }),
            pinned,
        });
        self.jobs.push(PlannedJob {
            id,
            host: report.host.clone(),
            job: job.id.clone(),
            schedule: job.schedule.clone(),
            kind,
            start_secs: run.start_secs,
        });
    }

    /// The minutes to reserve for one run of `job`, and whether they come from its runs.
    fn duration(&self, job: &JobReport) -> (f64, bool) {
        let stats = job
            .stats
            .clone()
            .or_else(|| history::duration_stats(&job.runs));
        match stats {
            Some(stats) if stats.count > 0 => {
                let secs = match self.settings.percentile {
                    Percentile::P50 => stats.p50_secs,
                    Percentile::P95 => stats.p95_secs,
                    Percentile::Max => stats.max_secs,
                };
                ((secs / 60.0).max(1.0), true)
            }
            _ => (self.settings.unknown_duration_minutes, false),
        }
    }

    fn fits_window(&self, duration: f64) -> bool {
        let span = match &self.settings.window {
            None => 1440.0,
            Some(w) => match (minutes_of(&w.start), minutes_of(&w.end)) {
                (Some(s), Some(e)) if s == e => 1440.0,
                (Some(s), Some(e)) => f64::from((e + 1440 - s) % 1440),
                _ => 1440.0,
            },
        };
        let slot = f64::from(self.settings.slot_minutes);
        let slots = ((duration + self.settings.guard_minutes) / slot).ceil();
        slots * slot <= span
    }

    fn resources_of(&self, job: &JobReport) -> Vec<String> {
        let Some(storage) = &job.storage else {
            return Vec::new();
        };
        self.settings
            .resources
            .iter()
            .filter(|r| r.storages.iter().any(|s| s == storage))
            .map(|r| r.name.clone())
            .collect()
    }

    fn impacts_of(&self, host: &str, job: &JobReport) -> BTreeMap<String, f64> {
        let mut impacts = BTreeMap::from([(host.to_owned(), 1.0)]);
        let used = self.resources_of(job);
        for resource in self
            .settings
            .resources
            .iter()
            .filter(|r| used.contains(&r.name))
        {
            for (other, &weight) in &resource.impacts {
                // Only hosts in the snapshot can be named; an unreachable one is left out.
                if !self.reporting.contains(other) {
                    continue;
                }
                let entry = impacts.entry(other.clone()).or_insert(0.0);
                *entry = f64::max(*entry, weight);
            }
        }
        impacts
    }
}

/// The smallest gap between two consecutive daily times, minutes (wrapping).
fn least_gap_minutes(runs: &[DailyRun]) -> f64 {
    let mut starts: Vec<u32> = runs.iter().map(|r| r.start_secs).collect();
    starts.sort_unstable();
    starts.dedup();
    if starts.len() < 2 {
        return 1440.0;
    }
    let mut least = 86_400 + starts[0] - starts[starts.len() - 1];
    for pair in starts.windows(2) {
        least = least.min(pair[1] - pair[0]);
    }
    f64::from(least) / 60.0
}

/// A load profile of `from` minutes per slot, resampled to `to` minutes per
/// slot over the week (the mean of the minutes each new slot covers).
fn resample(values: &[f64], from: u32, to: u32) -> Option<Vec<f64>> {
    if from == 0 || to == 0 || values.len() as u64 * u64::from(from) != 7 * 1440 {
        return None;
    }
    if from == to {
        return Some(values.iter().map(|v| v.clamp(0.0, 1.0)).collect());
    }
    let slots = (7 * 1440 / to) as usize;
    let per_slot = to as usize;
    Some(
        (0..slots)
            .map(|s| {
                let sum: f64 = (0..per_slot)
                    .map(|m| values[(s * per_slot + m) / from as usize])
                    .sum();
                (sum / per_slot as f64).clamp(0.0, 1.0)
            })
            .collect(),
    )
}

fn hhmm(secs: u32) -> String {
    format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
}

fn minutes_of(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

/// Rounds up to a hundredth of a minute, so the JSON stays readable and the
/// reserved time never shrinks.
fn round_up_hundredth(minutes: f64) -> f64 {
    (minutes * 100.0).ceil() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        DurationStats, JobsCfgState, LoadProfile, RunRecord, RunResult, REPORT_VERSION,
    };

    /// 2024-11-04 00:00 UTC, a Monday.
    const MONDAY: i64 = 1_730_678_400;

    fn job(id: &str, schedule: &str, storage: &str) -> JobReport {
        JobReport {
            id: id.to_owned(),
            schedule: schedule.to_owned(),
            enabled: true,
            node: None,
            storage: Some(storage.to_owned()),
            runs: Vec::new(),
            stats: None,
        }
    }

    fn report(host: &str, tz: &str, digest: &str, jobs: Vec<JobReport>) -> HostReport {
        HostReport {
            version: REPORT_VERSION,
            host: host.to_owned(),
            timezone: tz.to_owned(),
            clock: MONDAY,
            source: "test".to_owned(),
            jobs_cfg: JobsCfgState {
                digest: digest.to_owned(),
                text: None,
                warnings: Vec::new(),
            },
            jobs,
            load: None,
            pressure: None,
        }
    }

    fn settings() -> FleetSettings {
        FleetSettings {
            slot_minutes: 5,
            guard_minutes: 5.0,
            stability_weight: 0.01,
            window: Some(Window {
                start: "00:00".to_owned(),
                end: "07:00".to_owned(),
            }),
            percentile: Percentile::P95,
            unknown_duration_minutes: 60.0,
            hosts: vec![HostSettings {
                name: "pihanga".to_owned(),
                sensitivity: 3.0,
                capacity: 1,
            }],
            resources: vec![ResourceSettings {
                name: "pbs-main".to_owned(),
                capacity: 1,
                storages: vec!["pbs".to_owned()],
                impacts: BTreeMap::from([("pihanga".to_owned(), 0.5)]),
            }],
        }
    }

    #[test]
    fn the_origin_fleet_becomes_a_valid_snapshot() {
        let mut pihanga = job("backup-pihanga", "02:45", "pbs");
        pihanga.stats = Some(DurationStats {
            count: 10,
            p50_secs: 2000.0,
            p95_secs: 2400.0,
            max_secs: 2600.0,
            trend_secs_per_week: 0.0,
        });
        let reports = vec![
            report(
                "hikurangi",
                "UTC",
                "a",
                vec![job("backup-hikurangi", "02:00 UTC", "pbs")],
            ),
            report("pihanga", "UTC", "b", vec![pihanga]),
        ];
        let built = build(&reports, &settings(), MONDAY);
        let model = built.snapshot.validate().expect("valid snapshot");
        assert_eq!(model.jobs.len(), 2);
        let p = &built.snapshot.jobs[1];
        assert_eq!(p.id, "pihanga/backup-pihanga");
        assert_eq!(p.current_start, "02:45");
        assert_eq!(p.duration_minutes, 40.0);
        assert_eq!(p.resources, vec!["pbs-main".to_owned()]);
        assert_eq!(built.snapshot.hosts[1].sensitivity, 3.0);
        // hikurangi's job writes to the datastore served from pihanga: it disturbs pihanga too.
        let impacts = built.snapshot.jobs[0].impacts.clone().expect("impacts");
        assert_eq!(impacts.get("pihanga"), Some(&0.5));
        // No finished run: the unknown duration, with a note.
        assert_eq!(built.snapshot.jobs[0].duration_minutes, 60.0);
        assert!(built
            .notes
            .iter()
            .any(|n| n.text.contains("no finished run")));
    }

    #[test]
    fn an_off_grid_start_is_floored_and_the_run_keeps_its_end() {
        let mut j = job("b", "02:17 UTC", "local");
        j.runs = vec![RunRecord {
            upid: None,
            start: MONDAY,
            end: Some(MONDAY + 1200),
            result: RunResult::Ok,
            bytes: None,
            waited_secs: None,
        }];
        let built = build(
            &[report("pihanga", "UTC", "a", vec![j])],
            &settings(),
            MONDAY,
        );
        let planned = &built.snapshot.jobs[0];
        assert_eq!(planned.current_start, "02:15");
        assert_eq!(planned.duration_minutes, 22.0);
        assert_eq!(built.jobs[0].start_secs, 2 * 3600 + 17 * 60);
    }

    #[test]
    fn a_shared_job_without_node_becomes_one_pinned_job_per_node() {
        let reports = vec![
            report("a", "UTC", "same", vec![job("all-nodes", "01:00", "pbs")]),
            report("b", "UTC", "same", vec![job("all-nodes", "01:00", "pbs")]),
        ];
        let built = build(&reports, &settings(), MONDAY);
        let ids: Vec<&str> = built.snapshot.jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, vec!["a/all-nodes", "b/all-nodes"]);
        assert!(built.snapshot.jobs.iter().all(|j| j.pinned));
        assert!(built
            .notes
            .iter()
            .any(|n| n.text.contains("every node of the cluster")));
        built.snapshot.validate().expect("valid");
    }

    #[test]
    fn unplannable_events_are_left_out_or_pinned_with_a_reason() {
        let mut disabled = job("off", "03:00", "pbs");
        disabled.enabled = false;
        let reports = vec![report(
            "pihanga",
            "UTC",
            "a",
            vec![
                job("monthly", "monthly", "pbs"),
                job("six-hourly", "0/6:00", "local"),
                job("minutely", "*/5", "local"),
                disabled,
            ],
        )];
        let built = build(&reports, &settings(), MONDAY);
        let ids: Vec<&str> = built.snapshot.jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "pihanga/six-hourly@00:00",
                "pihanga/six-hourly@06:00",
                "pihanga/six-hourly@12:00",
                "pihanga/six-hourly@18:00"
            ]
        );
        let about = |id: &str| {
            let texts: Vec<&str> = built
                .notes
                .iter()
                .filter(|n| n.job.as_deref() == Some(id))
                .map(|n| n.text.as_str())
                .collect();
            texts.join("; ")
        };
        assert!(
            about("monthly").contains("cannot be planned"),
            "{}",
            about("monthly")
        );
        assert!(about("minutely").contains("left out"));
        assert!(about("off").contains("disabled"));
        built.snapshot.validate().expect("valid");
    }

    #[test]
    fn load_profiles_are_resampled_to_the_grid() {
        let mut r = report("pihanga", "UTC", "a", vec![job("b", "02:00", "pbs")]);
        let mut values = vec![0.0; 2016];
        values[1] = 1.0;
        r.load = Some(LoadProfile {
            slot_minutes: 5,
            values,
            weeks: 2.0,
        });
        let mut s = settings();
        s.slot_minutes = 10;
        s.window = None;
        let built = build(&[r], &s, MONDAY);
        let load = built.snapshot.hosts[0].load.clone().expect("load");
        assert_eq!(load.len(), 1008);
        assert_eq!(load[0], 0.5);
        built.snapshot.validate().expect("valid");
    }
}
