//! Typed request and response bodies of the endpoints Stagger uses
//! (FORMATS.md (e), (f)).
//!
//! Proxmox is written in Perl, so a value's JSON type depends on where it
//! came from: integers and booleans stored in jobs.cfg are numbers
//! (`"enabled": 1`), values decoded from property strings are strings
//! (`"max-workers": "4"`), ids may be either. Every numeric or boolean field
//! here therefore accepts numbers and numeric strings alike (the [`de`]
//! helpers). Serialising writes Proxmox's own shape (booleans as 0/1,
//! absent fields left out), so a simulated server can reuse these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tasks::TaskStatus;
use crate::upid::Upid;

/// `GET /version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The pve-manager package version, e.g. `9.1.2`.
    pub version: String,
    /// The release, `x.y`.
    pub release: String,
    /// The source repository id of the build.
    #[serde(default)]
    pub repoid: String,
    /// The default console viewer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
}

/// `GET /nodes/{node}/time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTime {
    /// The node's time zone, e.g. `Pacific/Auckland`.
    pub timezone: String,
    /// Seconds since the epoch (UTC).
    #[serde(deserialize_with = "de::i64")]
    pub time: i64,
    /// The node's local wall-clock time written as if it were UTC seconds.
    #[serde(deserialize_with = "de::i64")]
    pub localtime: i64,
}

impl NodeTime {
    /// The node's offset from UTC in seconds (`localtime - time`).
    pub fn utc_offset_secs(&self) -> i64 {
        self.localtime - self.time
    }
}

/// A backup job from `GET /cluster/backup` or `GET /cluster/backup/{id}`:
/// the keys Stagger reads, typed, and every other key in
/// [`other`](Self::other), so nothing Proxmox sent is lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupJob {
    /// The job id, e.g. `backup-pihanga`.
    pub id: String,
    /// The section type (`vzdump`); absent for legacy `vzdump.cron` jobs.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    /// The calendar event; absent for legacy jobs (they have
    /// `starttime`/`dow` in [`other`](Self::other)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Whether the job runs (Proxmox's default: yes).
    #[serde(
        default = "enabled_by_default",
        deserialize_with = "de::bool",
        serialize_with = "ser::bool"
    )]
    pub enabled: bool,
    /// The node the job runs on; `None` means every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The target storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// The next run (seconds since the epoch), computed by the answering node
    /// in its time zone; only in the job list.
    #[serde(
        rename = "next-run",
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_run: Option<i64>,
    /// The job's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The guests backed up, a comma list of VMIDs.
    #[serde(
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub vmid: Option<String>,
    /// Back up all guests (minus [`exclude`](Self::exclude)).
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        serialize_with = "ser::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub all: Option<bool>,
    /// The guests excluded from `all`, a comma list of VMIDs.
    #[serde(
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude: Option<String>,
    /// The pool whose guests are backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// `snapshot`, `suspend` or `stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Whether missed runs are repeated after pvescheduler starts.
    #[serde(
        rename = "repeat-missed",
        default,
        deserialize_with = "de::opt_bool",
        serialize_with = "ser::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub repeat_missed: Option<bool>,
    /// Every other key, as Proxmox sent it (e.g. `bwlimit`, `fleecing`,
    /// `prune-backups`, `notes-template`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn enabled_by_default() -> bool {
    true
}

/// The body of `PUT /cluster/backup/{id}`: what to set and what to delete.
///
/// Proxmox has no digest parameter here: an update is not checked against
/// concurrent edits (the caller checks the file's digest itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobUpdate {
    /// New calendar event.
    pub schedule: Option<String>,
    /// Enable or disable the job.
    pub enabled: Option<bool>,
    /// New comment.
    pub comment: Option<String>,
    /// Repeat missed runs or not.
    pub repeat_missed: Option<bool>,
    /// Other keys to set, with values as Proxmox's API takes them (property
    /// strings as text, e.g. `prune-backups` = `keep-daily=7,keep-weekly=4`).
    pub set: BTreeMap<String, String>,
    /// Keys to remove from the job.
    pub delete: Vec<String>,
}

impl JobUpdate {
    /// An update that only sets the schedule.
    pub fn schedule(schedule: impl Into<String>) -> Self {
        JobUpdate {
            schedule: Some(schedule.into()),
            ..JobUpdate::default()
        }
    }

    /// Whether the update neither sets nor deletes anything.
    pub fn is_empty(&self) -> bool {
        self.form_pairs().is_empty()
    }

    /// The form fields Proxmox's API takes, in a fixed order.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut push = |key: &str, value: String| pairs.push((key.to_string(), value));
        if let Some(schedule) = &self.schedule {
            push("schedule", schedule.clone());
        }
        if let Some(enabled) = self.enabled {
            push("enabled", bool_text(enabled));
        }
        if let Some(comment) = &self.comment {
            push("comment", comment.clone());
        }
        if let Some(repeat) = self.repeat_missed {
            push("repeat-missed", bool_text(repeat));
        }
        for (key, value) in &self.set {
            push(key, value.clone());
        }
        if !self.delete.is_empty() {
            push("delete", self.delete.join(","));
        }
        pairs
    }
}

fn bool_text(value: bool) -> String {
    if value { "1" } else { "0" }.to_string()
}

/// Which task records `GET /nodes/{node}/tasks` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskSource {
    /// Finished tasks (the index; Proxmox's default).
    Archive,
    /// Running tasks.
    Active,
    /// Both.
    All,
}

impl TaskSource {
    fn as_str(self) -> &'static str {
        match self {
            TaskSource::Archive => "archive",
            TaskSource::Active => "active",
            TaskSource::All => "all",
        }
    }
}

/// The filters of `GET /nodes/{node}/tasks`; `None` leaves Proxmox's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Skip this many (Proxmox: 0).
    pub start: Option<u64>,
    /// At most this many (Proxmox: 50).
    pub limit: Option<u64>,
    /// Substring of the user.
    pub userfilter: Option<String>,
    /// Exact task type, e.g. `vzdump`.
    pub typefilter: Option<String>,
    /// Exact task id: multi-guest vzdump tasks have an empty id and never
    /// match.
    pub vmid: Option<u32>,
    /// Only failed tasks.
    pub errors: Option<bool>,
    /// Which records to read.
    pub source: Option<TaskSource>,
    /// Tasks that started at or after this time (seconds since the epoch).
    pub since: Option<i64>,
    /// Tasks that started at or before this time.
    pub until: Option<i64>,
    /// Status types to keep: `ok`, `warning`, `error`, `unknown`.
    pub statusfilter: Vec<String>,
}

impl TaskQuery {
    /// The query parameters, in a fixed order.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let mut opt = |key: &'static str, value: Option<String>| {
            if let Some(value) = value {
                pairs.push((key, value));
            }
        };
        opt("start", self.start.map(|v| v.to_string()));
        opt("limit", self.limit.map(|v| v.to_string()));
        opt("userfilter", self.userfilter.clone());
        opt("typefilter", self.typefilter.clone());
        opt("vmid", self.vmid.map(|v| v.to_string()));
        opt("errors", self.errors.map(bool_text));
        opt("source", self.source.map(|s| s.as_str().to_string()));
        opt("since", self.since.map(|v| v.to_string()));
        opt("until", self.until.map(|v| v.to_string()));
        if !self.statusfilter.is_empty() {
            opt("statusfilter", Some(self.statusfilter.join(",")));
        }
        pairs
    }
}

/// `GET /nodes/{node}/tasks`: the tasks (newest first) and Proxmox's total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskList {
    /// The tasks of this page.
    pub tasks: Vec<TaskSummary>,
    /// How many tasks matched in all (for paging).
    pub total: Option<u64>,
}

/// The fields every task answer of Proxmox carries: the UPID and its parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFields {
    /// The task id.
    pub upid: Upid,
    /// The node.
    pub node: String,
    /// The worker's process id.
    #[serde(deserialize_with = "de::i64")]
    pub pid: i64,
    /// The worker's start in clock ticks since boot.
    #[serde(deserialize_with = "de::i64")]
    pub pstart: i64,
    /// Start, seconds since the epoch.
    #[serde(deserialize_with = "de::i64")]
    pub starttime: i64,
    /// The worker type.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The worker id (VMID for a one-guest vzdump, else empty).
    #[serde(default, deserialize_with = "de::string")]
    pub id: String,
    /// The user, without a token part.
    pub user: String,
    /// The token that started the task, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenid: Option<String>,
}

/// One item of `GET /nodes/{node}/tasks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Who ran what, where and when (the UPID and its parts).
    #[serde(flatten)]
    pub task: TaskFields,
    /// End, for finished tasks.
    #[serde(
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub endtime: Option<i64>,
    /// The status (`RUNNING` for running tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// Whether a running task has been written to the index (`"0"`).
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        serialize_with = "ser::opt_bool_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub saved: Option<bool>,
}

impl TaskSummary {
    /// The task's outcome: its status, or running when it has no status and
    /// no end.
    pub fn outcome(&self) -> TaskStatus {
        match (&self.status, self.endtime) {
            (Some(status), _) => status.clone(),
            (None, None) => TaskStatus::Running,
            (None, Some(_)) => TaskStatus::Unknown("no status".to_string()),
        }
    }
}

/// `running` or `stopped`, from the task status endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// The task is running.
    Running,
    /// The task has ended; see the exit status.
    Stopped,
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    /// Running or stopped.
    pub status: RunState,
    /// How it ended, once stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exitstatus: Option<TaskStatus>,
    /// Who ran what, where and when (the UPID and its parts).
    #[serde(flatten)]
    pub task: TaskFields,
}

impl TaskState {
    /// The task's outcome: running, or its exit status once stopped.
    pub fn outcome(&self) -> TaskStatus {
        match (self.status, &self.exitstatus) {
            (RunState::Running, _) => TaskStatus::Running,
            (RunState::Stopped, Some(status)) => status.clone(),
            (RunState::Stopped, None) => TaskStatus::Unknown("no exit status".to_string()),
        }
    }
}

/// One event of `GET /cluster/jobs/schedule-analyze`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEvent {
    /// Seconds since the epoch.
    #[serde(deserialize_with = "de::i64")]
    pub timestamp: i64,
    /// The same instant in UTC, in Perl's ctime form
    /// (`Sat Nov  2 13:45:00 2024`).
    pub utc: String,
}

impl Serialize for TaskStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.parse() {
            Ok(status) => Ok(status),
            Err(never) => match never {},
        }
    }
}

/// Deserialisers that accept what Perl's JSON output produces: numbers and
/// numeric strings alike, booleans as `0`/`1`, `"0"`/`"1"` or `true`/`false`.
pub mod de {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn value_to_i64(value: &Value) -> Result<i64, String> {
        match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| format!("{n} is not an integer")),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not an integer")),
            other => Err(format!("expected an integer, found {other}")),
        }
    }

    fn value_to_bool(value: &Value) -> Result<bool, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::Number(_) => value_to_i64(value).map(|n| n != 0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(format!("{s:?} is not a boolean")),
            },
            other => Err(format!("expected a boolean, found {other}")),
        }
    }

    fn value_to_string(value: &Value) -> Result<String, String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("expected a string, found {other}")),
        }
    }

    /// An integer, from a number or a numeric string.
    pub fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        value_to_i64(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }

    /// An optional integer; `null` is `None`.
    pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(None),
            value => value_to_i64(&value).map(Some).map_err(D::Error::custom),
        }
    }

    /// A boolean, from a bool, a number or a string.
    pub fn bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        value_to_bool(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }

    /// An optional boolean; `null` is `None`.
    pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(None),
            value => value_to_bool(&value).map(Some).map_err(D::Error::custom),
        }
    }

    /// A string, from a string or a number (ids such as `310`).
    pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        value_to_string(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }

    /// An optional string, from a string or a number; `null` is `None`.
    pub fn opt_string<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(None),
            value => value_to_string(&value).map(Some).map_err(D::Error::custom),
        }
    }
}

/// Serialisers that write Proxmox's shapes.
mod ser {
    use serde::Serializer;

    /// A boolean as the number 0 or 1, as Proxmox writes jobs.cfg values.
    pub fn bool<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(u8::from(*value))
    }

    /// An optional boolean as 0 or 1 (only called when present).
    pub fn opt_bool<S: Serializer>(value: &Option<bool>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(b) => bool(b, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// An optional boolean as the string "0" or "1" (the task list's `saved`).
    pub fn opt_bool_string<S: Serializer>(
        value: &Option<bool>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(b) => serializer.serialize_str(if *b { "1" } else { "0" }),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn numbers_and_numeric_strings_are_read_alike() {
        let a: NodeTime =
            serde_json::from_str(r#"{"timezone":"UTC","time":5,"localtime":"7"}"#).unwrap();
        assert_eq!(a.utc_offset_secs(), 2);
        let job: BackupJob = serde_json::from_str(
            r#"{"id":"j","enabled":"0","vmid":100,"all":"1","repeat-missed":true}"#,
        )
        .unwrap();
        assert!(!job.enabled);
        assert_eq!(job.vmid.as_deref(), Some("100"));
        assert_eq!(job.all, Some(true));
        assert_eq!(job.repeat_missed, Some(true));
        assert!(serde_json::from_str::<BackupJob>(r#"{"id":"j","enabled":"maybe"}"#).is_err());
        assert!(
            serde_json::from_str::<NodeTime>(r#"{"timezone":"UTC","time":1.5,"localtime":1}"#)
                .is_err()
        );
    }

    #[test]
    fn a_job_without_enabled_is_enabled_and_keeps_unknown_keys() {
        let job: BackupJob =
            serde_json::from_str(r#"{"id":"legacy","starttime":"02:00","dow":"sat"}"#).unwrap();
        assert!(job.enabled);
        assert_eq!(job.job_type, None);
        assert_eq!(job.other["dow"], "sat");
        let back = serde_json::to_value(&job).unwrap();
        assert_eq!(back["enabled"], 1);
        assert_eq!(back["starttime"], "02:00");
    }

    #[test]
    fn job_update_form_fields() {
        let mut update = JobUpdate::schedule("mon..fri 23:30 UTC");
        update.enabled = Some(false);
        update
            .set
            .insert("prune-backups".into(), "keep-daily=7".into());
        update.delete = vec!["comment".into(), "bwlimit".into()];
        assert_eq!(
            update.form_pairs(),
            [
                ("schedule", "mon..fri 23:30 UTC"),
                ("enabled", "0"),
                ("prune-backups", "keep-daily=7"),
                ("delete", "comment,bwlimit"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(JobUpdate::default().is_empty());
        assert!(!update.is_empty());
    }

    #[test]
    fn task_query_parameters() {
        let query = TaskQuery {
            typefilter: Some("vzdump".into()),
            source: Some(TaskSource::All),
            since: Some(10),
            limit: Some(500),
            statusfilter: vec!["ok".into(), "error".into()],
            ..TaskQuery::default()
        };
        assert_eq!(
            query.query_pairs(),
            [
                ("limit", "500".to_string()),
                ("typefilter", "vzdump".to_string()),
                ("source", "all".to_string()),
                ("since", "10".to_string()),
                ("statusfilter", "ok,error".to_string()),
            ]
        );
    }
}
