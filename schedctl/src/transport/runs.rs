//! Proxmox's vzdump tasks as the runs of the jobs they belong to.
//!
//! Over SSH and the Proxmox API there is no agent that saw each run start, and
//! a vzdump task does not name its job. A scheduled run is a task of
//! `root@pam` (pvescheduler) that starts within [`START_SLACK_SECS`] of an
//! event of the job's schedule (pvescheduler checks once a minute); a task
//! that matches exactly one job of the node is that job's run. On a node
//! with a single enabled job every scheduled vzdump task is its run (so runs
//! from before a schedule change still count).
//!
//! [`host_report`] is the report both transports make of a node from its
//! jobs, its time and its tasks.

use chrono_tz::Tz;
use pve_api::{NodeTime, TaskStatus, TaskSummary};
use scheduler_core::calendar::CalendarEvent;
use scheduler_core::history::duration_stats;
use scheduler_core::report::{
    HostReport, JobReport, JobsCfgState, RunRecord, RunResult, REPORT_VERSION,
};

/// How long after its event a scheduled run may start.
pub const START_SLACK_SECS: i64 = 120;

/// Runs kept per job, newest last.
pub const RUNS_KEPT: usize = 200;

/// The job ids and schedules of one node, and its zone.
pub struct NodeJobs<'a> {
    /// `(job id, schedule, enabled)`.
    pub jobs: Vec<(&'a str, &'a str, bool)>,
    /// The node's zone, for schedules without `UTC`.
    pub tz: Tz,
}

/// The report of node `host` from its `jobs` (their runs not yet known),
/// its time and its vzdump tasks: each job gets its runs among the tasks and
/// the statistics of their durations.
pub fn host_report(
    host: &str,
    mut jobs: Vec<JobReport>,
    time: &NodeTime,
    tasks: &[TaskSummary],
    source: &str,
    jobs_cfg: JobsCfgState,
) -> HostReport {
    let node = NodeJobs {
        jobs: jobs
            .iter()
            .map(|j| (j.id.as_str(), j.schedule.as_str(), j.enabled))
            .collect(),
        tz: time.timezone.parse().unwrap_or(Tz::UTC),
    };
    let runs = attribute(&node, tasks);
    for (job, runs) in jobs.iter_mut().zip(runs) {
        job.stats = duration_stats(&runs);
        job.runs = runs;
    }
    HostReport {
        version: REPORT_VERSION,
        host: host.to_owned(),
        timezone: time.timezone.clone(),
        clock: time.time,
        source: source.to_owned(),
        jobs_cfg,
        jobs,
        load: None,
        pressure: None,
    }
}

/// The runs of each job of `node` among `tasks` (any order), oldest first.
pub fn attribute(node: &NodeJobs<'_>, tasks: &[TaskSummary]) -> Vec<Vec<RunRecord>> {
    let events: Vec<Option<CalendarEvent>> = node
        .jobs
        .iter()
        .map(|(_, schedule, _)| CalendarEvent::parse(schedule.trim()).ok())
        .collect();
    let enabled: Vec<usize> = (0..node.jobs.len()).filter(|&j| node.jobs[j].2).collect();
    let mut runs: Vec<Vec<RunRecord>> = vec![Vec::new(); node.jobs.len()];
    for task in tasks {
        if task.task.task_type != "vzdump" || task.task.user != "root@pam" {
            continue;
        }
        let start = task.task.starttime;
        let matching: Vec<usize> = (0..node.jobs.len())
            .filter(|&j| {
                events[j].as_ref().is_some_and(|event| {
                    event
                        .next_after(start - START_SLACK_SECS - 1, node.tz)
                        .is_some_and(|fired| fired <= start)
                })
            })
            .collect();
        let owner = match (matching.as_slice(), enabled.as_slice()) {
            ([only], _) => Some(*only),
            ([], [only]) => Some(*only),
            _ => None,
        };
        if let Some(job) = owner {
            runs[job].push(record(task));
        }
    }
    for list in &mut runs {
        list.sort_by_key(|r| r.start);
        if list.len() > RUNS_KEPT {
            list.drain(..list.len() - RUNS_KEPT);
        }
    }
    runs
}

fn record(task: &TaskSummary) -> RunRecord {
    let result = match task.outcome() {
        TaskStatus::Running => RunResult::Running,
        TaskStatus::Ok => RunResult::Ok,
        TaskStatus::Warnings(_) => RunResult::Warning,
        TaskStatus::Error(message) if message.contains("interrupted") => RunResult::Aborted,
        TaskStatus::Error(_) => RunResult::Error,
        TaskStatus::Unknown(_) => RunResult::Unknown,
    };
    RunRecord {
        upid: Some(task.task.upid.to_string()),
        start: task.task.starttime,
        end: task.endtime,
        result,
        bytes: None,
        waited_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(start: i64, end: i64, user: &str) -> TaskSummary {
        let upid =
            pve_api::Upid::new("pihanga", 0x1234, 100, start, "vzdump", "", user).expect("upid");
        serde_json::from_value(serde_json::json!({
            "upid": upid.to_string(), "node": "pihanga", "pid": 0x1234, "pstart": 100,
            "starttime": start, "type": "vzdump", "id": "", "user": user,
            "endtime": end, "status": "OK"
        }))
        .expect("task")
    }

    #[test]
    fn a_scheduled_task_belongs_to_the_job_whose_event_it_follows() {
        // 2024-11-04 02:00:30 and 02:45:10 UTC.
        let day = 1_730_678_400;
        let tasks = [
            task(day + 7230, day + 9000, "root@pam"),
            task(day + 9910, day + 12000, "root@pam"),
            task(day + 20000, day + 21000, "admin@pve"),
        ];
        let node = NodeJobs {
            jobs: vec![("a", "02:00", true), ("b", "02:45", true)],
            tz: Tz::UTC,
        };
        let runs = attribute(&node, &tasks);
        assert_eq!(runs[0].len(), 1);
        assert_eq!(runs[0][0].end, Some(day + 9000));
        assert_eq!(runs[1].len(), 1);
        assert_eq!(runs[1][0].result, RunResult::Ok);
    }

    #[test]
    fn the_only_job_of_a_node_owns_its_runs_from_before_a_schedule_change() {
        let day = 1_730_678_400;
        let node = NodeJobs {
            jobs: vec![("a", "04:00", true)],
            tz: Tz::UTC,
        };
        let runs = attribute(&node, &[task(day + 7230, day + 9000, "root@pam")]);
        assert_eq!(runs[0].len(), 1);
    }
}
