//! The wire contract between `sched-agent`, the vzdump hook and the coordinator.
//!
//! Every body the agent API (`/v1/report`, `/v1/schedules`, `/v1/rollback`) and
//! the coordinator's lease service (`/v1/lease`, `/v1/lease/release`) send or
//! receive is one of these types, as JSON. Times are Unix seconds, UTC;
//! durations are seconds; digests are the SHA-1 hex of jobs.cfg's bytes as
//! Proxmox computes it. Fields added later are optional, so an older peer
//! still reads a newer body (`version` says which contract a report follows).

use serde::{Deserialize, Serialize};

/// The contract version a report follows.
pub const REPORT_VERSION: u32 = 1;

/// Slots of the weekly load profile: one per five minutes of a UTC week.
pub const LOAD_SLOTS_PER_WEEK: usize = 2016;

/// `GET /v1/report`: what one host knows about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The Proxmox node name (the `node` key of jobs.cfg).
    pub host: String,
    /// The host's IANA time zone (`Europe/Vienna`), used for events without `UTC`.
    pub timezone: String,
    /// The host's clock when the report was made, Unix seconds.
    pub clock: i64,
    /// Version of the software that made the report (`sched-agent 0.1.0`, `ssh pvesh`).
    pub source: String,
    /// jobs.cfg as the host has it.
    pub jobs_cfg: JobsCfgState,
    /// The vzdump jobs that run on this host (`node` is this host or absent).
    pub jobs: Vec<JobReport>,
    /// The weekly I/O load profile, when the host measures one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadProfile>,
    /// The I/O pressure right now, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
}

/// jobs.cfg on a host: its digest, its text (for diffs) and Proxmox's warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsCfgState {
    /// SHA-1 hex of the file's bytes; the digest an apply must name.
    pub digest: String,
    /// The file's text, when the transport can read it (absent over the Proxmox API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What Proxmox would warn about when reading it (`line 7: ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One vzdump job as the host reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job id (`backup-pihanga`).
    pub id: String,
    /// The calendar event as written in jobs.cfg.
    pub schedule: String,
    /// `enabled` of jobs.cfg (absent there means true).
    pub enabled: bool,
    /// The `node` key, when the job is bound to one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The `storage` key: the datastore the backup writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Past runs, oldest first (bounded by the agent).
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// Duration statistics over the finished runs, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<DurationStats>,
}

/// How a backup run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// Still running.
    Running,
    /// Ended `OK`.
    Ok,
    /// Ended with warnings (`WARNINGS: n`).
    Warning,
    /// Ended with an error.
    Error,
    /// Aborted (`job-abort`, or `interrupted by signal`).
    Aborted,
    /// The end was not seen (the host rebooted, the record is gone).
    Unknown,
}

impl RunResult {
    /// The label value used in metrics (`ok`, `warning`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Running => "running",
            RunResult::Ok => "ok",
            RunResult::Warning => "warning",
            RunResult::Error => "error",
            RunResult::Aborted => "aborted",
            RunResult::Unknown => "unknown",
        }
    }
}

/// One backup run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Proxmox's task id, when the run came from the task records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upid: Option<String>,
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    /// How it ended.
    pub result: RunResult,
    /// Bytes written, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Seconds from the task's start until its backup work began: vzdump's
    /// wait for the node's lock and the guard's wait for its lease. Known when
    /// the agent's hook saw the run's `job-start`; not part of the duration a
    /// plan reserves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_secs: Option<i64>,
}

/// Duration statistics of a job's finished runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurationStats {
    /// How many finished runs the statistics cover.
    pub count: u32,
    /// Median duration, seconds.
    pub p50_secs: f64,
    /// 95th percentile duration, seconds.
    pub p95_secs: f64,
    /// Longest duration, seconds.
    pub max_secs: f64,
    /// Least-squares slope of duration over time, seconds per week (positive: growing).
    pub trend_secs_per_week: f64,
}

/// The weekly I/O load profile: one value in `[0, 1]` per five-minute UTC slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadProfile {
    /// Minutes per slot (5).
    pub slot_minutes: u32,
    /// [`LOAD_SLOTS_PER_WEEK`] values; slot 0 starts Monday 00:00 UTC.
    pub values: Vec<f64>,
    /// How many weeks of samples the profile holds (fractional: weighted).
    pub weeks: f64,
}

/// I/O pressure as `/proc/pressure/io` states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pressure {
    /// `some avg10`, as a ratio in `[0, 1]`.
    pub some_avg10: f64,
    /// `some avg60`, as a ratio.
    pub some_avg60: f64,
    /// `full avg10`, as a ratio.
    pub full_avg10: f64,
    /// `full avg60`, as a ratio.
    pub full_avg60: f64,
}

/// One new schedule for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleChange {
    /// The job id.
    pub job: String,
    /// The new calendar event (`2:35 UTC`).
    pub schedule: String,
}

/// `PUT /v1/schedules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRequest {
    /// The digest of the jobs.cfg the plan was made from.
    pub digest: String,
    /// The new schedules.
    pub changes: Vec<ScheduleChange>,
}

/// The answer to an apply or a rollback that was carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    /// The digest of jobs.cfg before the write.
    pub previous_digest: String,
    /// The digest of jobs.cfg after the write.
    pub digest: String,
    /// The schedules that changed (old values are in the audit log).
    pub changed: Vec<ScheduleChange>,
}

/// `POST /v1/rollback`: put back a kept copy of jobs.cfg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The digest of the kept copy to restore.
    pub to_digest: String,
    /// The digest jobs.cfg must have now (the one the apply left), so a later
    /// edit on the host is never overwritten.
    pub expect_digest: String,
}

/// The body of every refusal (4xx) and failure (5xx) of the agent and the
/// coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    pub error: String,
    /// What to do about it, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// On 409 (stale digest): jobs.cfg's digest now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_digest: Option<String>,
}

/// `POST /v1/lease` (coordinator): the hook asks to start a job's backup.
///
/// A request is identified by `host`, `job` and `started`: asking again with
/// the same three refers to the same place in the queue (or the same grant),
/// so a hook whose wait ran out simply asks again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// The host the job runs on.
    pub host: String,
    /// The job id (`backup-pihanga`); the coordinator knows its resources.
    pub job: String,
    /// When vzdump started the job, Unix seconds: queued requests are served in this order.
    pub started: i64,
    /// How long to hold the request open waiting for a grant, seconds (0: answer at once).
    #[serde(default)]
    pub wait_secs: u64,
    /// The storage the run writes to (vzdump's `STOREID`), so the coordinator
    /// finds the shared resources of a job it has no report for yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseResponse {
    /// Whether the job may start now.
    pub granted: bool,
    /// The lease id, to release it (also set while queued, to ask again).
    pub lease_id: String,
    /// When a granted lease expires on its own, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// While queued: the jobs holding the resources, and the place in the queue.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// `POST /v1/lease/release`: the job ended (or aborted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRelease {
    /// The lease id a [`LeaseResponse`] gave.
    pub lease_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_without_optional_parts_reads_back() {
        let text = r#"{"version":1,"host":"pihanga","timezone":"UTC","clock":1700000000,
            "source":"ssh pvesh","jobs_cfg":{"digest":"ab"},
            "jobs":[{"id":"backup-pihanga","schedule":"02:45","enabled":true}]}"#;
        let report: HostReport = serde_json::from_str(text).expect("reads");
        assert_eq!(report.jobs[0].runs, vec![]);
        assert!(report.load.is_none());
        let again: HostReport =
            serde_json::from_str(&serde_json::to_string(&report).expect("writes")).expect("reads");
        assert_eq!(again, report);
    }

    #[test]
    fn run_results_are_lowercase_on_the_wire() {
        let json = serde_json::to_string(&RunResult::Warning).expect("writes");
        assert_eq!(json, "\"warning\"");
        assert_eq!(RunResult::Aborted.as_str(), "aborted");
    }
}
