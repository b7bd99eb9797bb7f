//! Each job's run history, from the task records, the job states and the
//! hook's events. Pure: [`RunHistory::update`] takes what was read and says
//! which runs started and finished.
//!
//! How a run is tied to its job: a UPID does not name the job, so the agent
//! learns it from the job state file (`vzdump-<id>.json` names the task of
//! the job's current or last run) and from the hook's events (the hook finds
//! the run itself, see `hook::identify`). Once learned, the run is kept in
//! the history with its UPID, so it is followed to its end in the index even
//! after the job state names a newer run.
//!
//! How a run ends: its line in `index` (or its finished line in `active`)
//! gives the end time and status; `OK` → ok, `WARNINGS: n` → warning, any
//! other message → error (vzdump's `job errors` included), `interrupted by
//! signal` → aborted, and a run whose hook saw `job-abort` is aborted too. A
//! job state `stopped` with the run's UPID ends it without an end time. A
//! run that is none of these places any more — not running in `active`, not
//! `started` in its job state, not finished anywhere (the host rebooted, the
//! records rotated away) — ends as unknown.

use std::collections::{BTreeMap, BTreeSet};

use pve_api::{JobPhase, TaskStatus, Upid};
use scheduler_core::report::{RunRecord, RunResult};
use serde::{Deserialize, Serialize};

use super::events::HookEvent;
use super::records::Observation;

/// The history the agent keeps (and persists as `runs.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHistory {
    /// Runs per job id, oldest first.
    pub jobs: BTreeMap<String, Vec<RunRecord>>,
    /// Hook phases seen per run, by UPID, in order.
    #[serde(default)]
    pub phases: BTreeMap<String, Vec<String>>,
}

/// What changed in an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A run was seen for the first time, still running.
    Started {
        /// The job.
        job: String,
        /// Its UPID.
        upid: String,
    },
    /// A run ended (or was first seen already ended).
    Finished {
        /// The job.
        job: String,
        /// The run as it ended.
        run: RunRecord,
    },
}

impl RunHistory {
    /// Checks a history read back from `runs.json`.
    pub fn check(&self) -> Result<(), String> {
        for (job, runs) in &self.jobs {
            if let Some(bad) = runs.iter().find(|r| r.end.is_some_and(|end| end < r.start)) {
                return Err(format!(
                    "job {job}: a run ends ({:?}) before it starts ({})",
                    bad.end, bad.start
                ));
            }
        }
        Ok(())
    }

    /// Takes in the hook's events and what the records say now, for node
    /// `node`; keeps at most `keep` runs per job.
    pub fn update(
        &mut self,
        node: &str,
        seen: &Observation,
        events: &[HookEvent],
        keep: usize,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for event in events {
            let (Some(job), Some(upid)) = (&event.job, &event.upid) else {
                continue;
            };
            let phases = self.phases.entry(upid.clone()).or_default();
            if !phases.contains(&event.phase) {
                phases.push(event.phase.clone());
            }
            self.learn(node, job, upid, keep, &mut changes);
            if event.phase == "job-start" {
                self.note_work_start(job, upid, event);
            }
        }
        for (job, state) in &seen.states {
            let upid = match &state.phase {
                JobPhase::Started { upid } | JobPhase::Stopped { upid, .. } => upid.as_ref(),
                _ => None,
            };
            if let Some(upid) = upid {
                self.learn(node, job, &upid.to_string(), keep, &mut changes);
            }
        }
        self.follow_running(seen, &mut changes);
        self.trim(keep);
        changes
    }

    /// Records that `upid` is a run of `job` (if it is a vzdump task of this node).
    fn learn(&mut self, node: &str, job: &str, upid: &str, keep: usize, changes: &mut Vec<Change>) {
        let Ok(parsed) = upid.parse::<Upid>() else {
            return;
        };
        if parsed.node() != node || parsed.task_type() != "vzdump" {
            return;
        }
        let runs = self.jobs.entry(job.to_owned()).or_default();
        if runs.iter().any(|r| r.upid.as_deref() == Some(upid)) {
            return;
        }
        if runs.len() >= keep.max(1) && runs.first().is_some_and(|r| parsed.starttime() < r.start) {
            // Older than every kept run of a full history: trimmed before, not again.
            return;
        }
        runs.push(RunRecord {
            upid: Some(upid.to_owned()),
            start: parsed.starttime(),
            end: None,
            result: RunResult::Running,
            bytes: None,
            waited_secs: None,
        });
        runs.sort_by_key(|r| (r.start, r.upid.clone()));
        changes.push(Change::Started {
            job: job.to_owned(),
            upid: upid.to_owned(),
        });
    }

    /// At `job-start` the run holds the node's lock; once its lease wait is
    /// over its guests begin. What came before is waiting, not backup work
    /// (see `scheduler_core::history`). The hook's clock is the host's, as
    /// the task's start is; a wait that does not fit between the start and
    /// the end is not believed (see `follow_running`).
    fn note_work_start(&mut self, job: &str, upid: &str, event: &HookEvent) {
        let Some(run) = self
            .jobs
            .get_mut(job)
            .and_then(|runs| runs.iter_mut().find(|r| r.upid.as_deref() == Some(upid)))
        else {
            return;
        };
        let lease_wait = event.lease_wait_secs.unwrap_or(0.0).max(0.0).round() as i64;
        run.waited_secs = Some(event.time + lease_wait - run.start).filter(|secs| *secs >= 0);
    }

    /// Ends the runs the records say have ended.
    fn follow_running(&mut self, seen: &Observation, changes: &mut Vec<Change>) {
        for (job, runs) in &mut self.jobs {
            for run in runs.iter_mut().filter(|r| r.result == RunResult::Running) {
                let Some(upid) = run.upid.clone() else {
                    continue;
                };
                let aborted = self
                    .phases
                    .get(&upid)
                    .is_some_and(|p| p.iter().any(|p| p == "job-abort"));
                let Some((end, status)) = outcome(&upid, job, seen) else {
                    continue;
                };
                run.end = end.filter(|end| *end >= run.start);
                // A wait longer than the whole run: the hook and the task
                // records disagree about the time (a clock step, or a
                // simulated host's fast clock), so the wait is unknown.
                run.waited_secs = run
                    .waited_secs
                    .filter(|secs| run.end.is_some_and(|end| *secs <= end - run.start));
                run.result = match status {
                    _ if aborted => RunResult::Aborted,
                    Some(status) => result_of(&status),
                    None => RunResult::Unknown,
                };
                changes.push(Change::Finished {
                    job: job.clone(),
                    run: run.clone(),
                });
            }
        }
    }

    /// Keeps the newest `keep` runs per job and the phases of kept runs only.
    fn trim(&mut self, keep: usize) {
        for runs in self.jobs.values_mut() {
            if runs.len() > keep {
                runs.drain(..runs.len() - keep);
            }
        }
        self.jobs.retain(|_, runs| !runs.is_empty());
        let kept: BTreeSet<&str> = self
            .jobs
            .values()
            .flatten()
            .filter_map(|r| r.upid.as_deref())
            .collect();
        self.phases.retain(|upid, _| kept.contains(upid.as_str()));
    }
}

/// How a running run of `job` stands in the records: `None` while it runs,
/// `Some((end, status))` once ended (`status` `None`: the end was not seen).
fn outcome(upid: &str, job: &str, seen: &Observation) -> Option<(Option<i64>, Option<TaskStatus>)> {
    if let Some(record) = seen.finished.get(upid) {
        return Some((record.end, Some(record.status.clone())));
    }
    let active = seen.active.as_ref().and_then(|active| active.get(upid));
    match active {
        Some(entry) if entry.record.end.is_some() => {
            return Some((entry.record.end, Some(entry.record.status.clone())));
        }
        Some(_) => return None,
        None => {}
    }
    let named =
        |candidate: &Option<Upid>| candidate.as_ref().is_some_and(|u| u.to_string() == upid);
    match seen.states.get(job).map(|s| &s.phase) {
        Some(JobPhase::Started { upid: current }) if named(current) => None,
        Some(JobPhase::Stopped {
            upid: current,
            status,
            ..
        }) if named(current) => Some((None, Some(status.clone()))),
        // Not in the records at all: only gone if the active file was read.
        _ if seen.active.is_some() => Some((None, None)),
        _ => None,
    }
}

/// The run result a task status stands for.
pub fn result_of(status: &TaskStatus) -> RunResult {
    match status {
        TaskStatus::Ok => RunResult::Ok,
        TaskStatus::Warnings(_) => RunResult::Warning,
        TaskStatus::Error(message) if message.contains("interrupted by signal") => {
            RunResult::Aborted
        }
        TaskStatus::Error(_) => RunResult::Error,
        TaskStatus::Running => RunResult::Running,
        TaskStatus::Unknown(_) => RunResult::Unknown,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use pve_api::tasks::{parse_active_line, parse_index_line, parse_job_state};
    use pve_api::ActiveRecord;

    const DONE: &str = "UPID:pihanga:001402BC:06FD6679:67262CDD:vzdump::root@pam:";
    const RUNNING: &str = "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:";

    fn observation(
        index: &[&str],
        active: Option<&[&str]>,
        states: &[(&str, &str)],
    ) -> Observation {
        Observation {
            finished: index
                .iter()
                .map(|l| {
                    let r = parse_index_line(l).unwrap();
                    (r.upid.to_string(), r)
                })
                .collect(),
            active: active.map(|lines| {
                lines
                    .iter()
                    .map(|l| {
                        let r: ActiveRecord = parse_active_line(l).unwrap();
                        (r.record.upid.to_string(), r)
                    })
                    .collect()
            }),
            states: states
                .iter()
                .map(|(job, text)| ((*job).to_owned(), parse_job_state(text).unwrap()))
                .collect(),
        }
    }

    fn event(phase: &str, job: &str, upid: &str) -> HookEvent {
        HookEvent {
            time: 0,
            phase: phase.into(),
            job: Some(job.into()),
            upid: Some(upid.into()),
            storage: None,
            fail_open: None,
            lease_wait_secs: None,
            message: None,
        }
    }

    #[test]
    fn a_job_state_ties_a_finished_run_to_its_job() {
        let mut history = RunHistory::default();
        let seen = observation(
            &[&format!("{DONE} 6726372F WARNINGS: 2")],
            Some(&[]),
            &[(
                "backup-pihanga",
                &format!(r#"{{"state":"stopped","msg":"WARNINGS: 2","upid":"{DONE}"}}"#),
            )],
        );
        let changes = history.update("pihanga", &seen, &[], 10);
        assert_eq!(changes.len(), 2, "{changes:?}");
        let run = &history.jobs["backup-pihanga"][0];
        assert_eq!(run.result, RunResult::Warning);
        assert_eq!(run.start, 0x67262CDD);
        assert_eq!(run.end, Some(0x6726372F));
        assert!(
            history.update("pihanga", &seen, &[], 10).is_empty(),
            "nothing new"
        );
        assert!(history.check().is_ok());
    }

    #[test]
    fn a_run_is_followed_from_start_to_end() {
        let mut history = RunHistory::default();
        let started = format!(r#"{{"state":"started","upid":"{RUNNING}"}}"#);
        // job-init: the job state names the task before `active` lists it.
        let seen = observation(&[], Some(&[]), &[("backup-k8s-cp", &started)]);
        let changes = history.update(
            "pihanga",
            &seen,
            &[event("job-init", "backup-k8s-cp", RUNNING)],
            10,
        );
        assert!(
            matches!(&changes[..], [Change::Started { .. }]),
            "{changes:?}"
        );
        let running = format!("{RUNNING} 0");
        let seen = observation(&[], Some(&[&running]), &[("backup-k8s-cp", &started)]);
        assert!(history.update("pihanga", &seen, &[], 10).is_empty());
        let ended = format!("{RUNNING} 672961F9 OK");
        let seen = observation(&[&ended], Some(&[]), &[("backup-k8s-cp", &started)]);
        let changes = history.update("pihanga", &seen, &[], 10);
        let [Change::Finished { run, .. }] = &changes[..] else {
            panic!("{changes:?}");
        };
        assert_eq!(run.result, RunResult::Ok);
        assert_eq!(run.end, Some(0x672961F9));
        assert_eq!(history.phases[RUNNING], vec!["job-init"]);
    }

    #[test]
    fn the_wait_for_the_lock_and_the_lease_is_not_backup_work() {
        let mut history = RunHistory::default();
        let started = format!(r#"{{"state":"started","upid":"{RUNNING}"}}"#);
        let seen = observation(&[], Some(&[]), &[("backup-k8s-cp", &started)]);
        // The task started at 0x672958F9; the node's lock came 5 min later,
        // the lease 11 min after that.
        let mut job_start = event("job-start", "backup-k8s-cp", RUNNING);
        job_start.time = 0x672958F9 + 300;
        job_start.lease_wait_secs = Some(660.4);
        history.update("pihanga", &seen, &[job_start], 10);
        let ended = format!("{RUNNING} {:X} OK", 0x672958F9 + 300 + 660 + 1200);
        let seen = observation(&[&ended], Some(&[]), &[("backup-k8s-cp", &started)]);
        let changes = history.update("pihanga", &seen, &[], 10);
        let [Change::Finished { run, .. }] = &changes[..] else {
            panic!("{changes:?}");
        };
        assert_eq!(run.waited_secs, Some(960));
        assert_eq!(scheduler_core::history::duration_secs(run), Some(1200.0));
    }

    #[test]
    fn a_wait_the_task_records_cannot_hold_is_not_believed() {
        let started = format!(r#"{{"state":"started","upid":"{RUNNING}"}}"#);
        let seen = observation(&[], Some(&[]), &[("backup-k8s-cp", &started)]);
        let ended = format!("{RUNNING} {:X} OK", 0x672958F9 + 1200);
        let done = observation(&[&ended], Some(&[]), &[("backup-k8s-cp", &started)]);
        // The hook's clock two years ahead of the task's (a simulated host),
        // and one behind it: the whole run is backup work in both.
        for skew in [2 * 365 * 86_400, -3600] {
            let mut history = RunHistory::default();
            let mut job_start = event("job-start", "backup-k8s-cp", RUNNING);
            job_start.time = 0x672958F9 + skew;
            history.update("pihanga", &seen, &[job_start], 10);
            let changes = history.update("pihanga", &done, &[], 10);
            let [Change::Finished { run, .. }] = &changes[..] else {
                panic!("{changes:?}");
            };
            assert_eq!(run.waited_secs, None, "skew {skew}");
            assert_eq!(scheduler_core::history::duration_secs(run), Some(1200.0));
        }
    }

    #[test]
    fn a_hook_abort_and_a_vanished_run_have_their_results() {
        let mut history = RunHistory::default();
        let failed = format!("{RUNNING} 672958FF command 'hook job-start' failed: exit code 1");
        let seen = observation(&[&failed], Some(&[]), &[]);
        history.update(
            "pihanga",
            &seen,
            &[event("job-abort", "backup-k8s-cp", RUNNING)],
            10,
        );
        assert_eq!(history.jobs["backup-k8s-cp"][0].result, RunResult::Aborted);

        let mut history = RunHistory::default();
        let seen = observation(&[], Some(&[]), &[]);
        history.update(
            "pihanga",
            &seen,
            &[event("job-start", "backup-x", DONE)],
            10,
        );
        assert_eq!(history.jobs["backup-x"][0].result, RunResult::Unknown);
        assert_eq!(history.jobs["backup-x"][0].end, None);

        let mut history = RunHistory::default();
        let unreadable = observation(&[], None, &[]);
        history.update(
            "pihanga",
            &unreadable,
            &[event("job-start", "backup-x", DONE)],
            10,
        );
        assert_eq!(
            history.jobs["backup-x"][0].result,
            RunResult::Running,
            "no verdict without `active`"
        );
    }

    #[test]
    fn other_nodes_and_task_types_are_ignored_and_history_is_bounded() {
        let mut history = RunHistory::default();
        let other = "UPID:ruapehu:00156567:083AA169:672958F9:vzdump::root@pam:";
        let qm = "UPID:pihanga:00144F37:071FBB25:672684C0:qmsnapshot:311:root@pam:";
        history.update(
            "pihanga",
            &observation(&[], Some(&[]), &[]),
            &[event("job-start", "a", other), event("job-start", "a", qm)],
            10,
        );
        assert!(history.jobs.is_empty());
        for i in 0..5u32 {
            let upid = format!(
                "UPID:pihanga:{:08X}:083AA169:{:08X}:vzdump::root@pam:",
                100 + i,
                0x6729_0000 + i
            );
            let line = format!("{upid} {:08X} OK", 0x6729_0100 + i);
            history.update(
                "pihanga",
                &observation(&[&line], Some(&[]), &[]),
                &[event("job-start", "a", &upid)],
                3,
            );
        }
        let runs = &history.jobs["a"];
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].start, 0x6729_0002);
        assert_eq!(history.phases.len(), 3);
    }
}
