//! Proxmox's task records on a node, read from text the caller supplies:
//! `/var/log/pve/tasks/index` (finished tasks), `/var/log/pve/tasks/active`
//! (running and recent tasks) and the job state files
//! `/var/lib/pve-manager/jobs/<type>-<id>.json` (FORMATS.md (b), (e)).
//!
//! Everything here is a pure function on `&str`: reading the files (and
//! reading `index` before `index.1`) is the caller's job, so the agent and
//! pve-sim share one reading of Proxmox's data.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::types::de;
use crate::upid::Upid;

/// How a task ended, as Proxmox records it in the index, the task list API
/// (`status`) and the task status API (`exitstatus`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// `OK`.
    Ok,
    /// `WARNINGS: <n>`: finished, with this many warnings.
    Warnings(u64),
    /// Any other message, e.g. `job errors` (a guest failed) or a hook's
    /// failure: the task failed.
    Error(String),
    /// Still running (`RUNNING` in the task list, no end in `active`).
    Running,
    /// Proxmox could not tell (`unexpected status`, or `unable to get last
    /// line from task log ...`): the outcome is unknown, so neither counted as
    /// a success nor as a failure of the backup itself.
    Unknown(String),
}

impl TaskStatus {
    /// Whether the task has finished (with any outcome).
    pub fn is_finished(&self) -> bool {
        !matches!(self, TaskStatus::Running)
    }

    /// Whether the task finished without error (`OK` or `WARNINGS`).
    pub fn is_success(&self) -> bool {
        matches!(self, TaskStatus::Ok | TaskStatus::Warnings(_))
    }
}

impl FromStr for TaskStatus {
    type Err = std::convert::Infallible;

    /// Reads a status text the way pve-common's `upid_normalize_status_type`
    /// does, keeping the message. Every text has a meaning, so this never
    /// fails.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text == "OK" {
            return Ok(TaskStatus::Ok);
        }
        if text == "RUNNING" {
            return Ok(TaskStatus::Running);
        }
        if let Some(count) = text.strip_prefix("WARNINGS: ") {
            if !count.is_empty() && count.chars().all(|c| c.is_ascii_digit()) {
                if let Ok(n) = count.parse() {
                    return Ok(TaskStatus::Warnings(n));
                }
            }
        }
        if text == "unexpected status" || text.starts_with("unable to get last line from task log")
        {
            return Ok(TaskStatus::Unknown(text.to_string()));
        }
        Ok(TaskStatus::Error(text.to_string()))
    }
}

impl fmt::Display for TaskStatus {
    /// The text Proxmox writes for this status.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskStatus::Ok => f.write_str("OK"),
            TaskStatus::Warnings(n) => write!(f, "WARNINGS: {n}"),
            TaskStatus::Error(msg) | TaskStatus::Unknown(msg) => f.write_str(msg),
            TaskStatus::Running => f.write_str("RUNNING"),
        }
    }
}

/// One task as a task record file lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task.
    pub upid: Upid,
    /// When it ended (seconds since the epoch); `None` while running.
    pub end: Option<i64>,
    /// How it ended.
    pub status: TaskStatus,
}

/// One line of `/var/log/pve/tasks/active`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveRecord {
    /// The task, its end and status.
    pub record: TaskRecord,
    /// Whether Proxmox has already copied it to the index.
    pub saved: bool,
}

impl TaskRecord {
    /// The line Proxmox writes for this task in `tasks/index`
    /// (`<UPID> <ENDTIME> <STATUS>`); `None` while it runs.
    pub fn index_line(&self) -> Option<String> {
        self.end
            .map(|end| format!("{} {end:08X} {}", self.upid, self.status))
    }
}

impl ActiveRecord {
    /// The line Proxmox writes for this task in `tasks/active`
    /// (`<UPID> <saved>[ <ENDTIME> <STATUS>]`).
    pub fn active_line(&self) -> String {
        let saved = u8::from(self.saved);
        match self.record.end {
            Some(end) => format!(
                "{} {saved} {end:08X} {}",
                self.record.upid, self.record.status
            ),
            None => format!("{} {saved}", self.record.upid),
        }
    }
}

const INDEX: &str = "tasks/index";
const ACTIVE: &str = "tasks/active";

/// Parses the text of `/var/log/pve/tasks/index` (or `index.1`): one
/// `<UPID> <ENDTIME hex> <STATUS>` per line, in file order. Blank lines are
/// skipped; the first malformed line is an error naming its number.
pub fn parse_index(text: &str) -> Result<Vec<TaskRecord>> {
    numbered_lines(text)
        .map(|(line, content)| parse_index_line(content).map_err(|e| at_line(e, line)))
        .collect()
}

/// Parses the text of `/var/log/pve/tasks/active`: one
/// `<UPID> <saved 0|1>[ <ENDTIME hex> <STATUS>]` per line; a task without an
/// end is running.
pub fn parse_active(text: &str) -> Result<Vec<ActiveRecord>> {
    numbered_lines(text)
        .map(|(line, content)| parse_active_line(content).map_err(|e| at_line(e, line)))
        .collect()
}

/// Parses one line of the index file (see [`parse_index`]).
pub fn parse_index_line(line: &str) -> Result<TaskRecord> {
    let invalid = |reason: &str| record_error(INDEX, line, reason);
    let (upid, rest) = line
        .split_once(' ')
        .ok_or_else(|| invalid("expected <UPID> <ENDTIME> <STATUS>"))?;
    let upid = parse_upid(upid, INDEX, line)?;
    let (end, status) = rest
        .split_once(' ')
        .ok_or_else(|| invalid("expected a status after the end time"))?;
    Ok(TaskRecord {
        upid,
        end: Some(parse_endtime(end, INDEX, line)?),
        status: parse_status(status),
    })
}

/// Parses one line of the active file (see [`parse_active`]).
pub fn parse_active_line(line: &str) -> Result<ActiveRecord> {
    let invalid = |reason: &str| record_error(ACTIVE, line, reason);
    let mut parts = line.splitn(4, ' ');
    let upid = parse_upid(parts.next().unwrap_or_default(), ACTIVE, line)?;
    let saved = match parts.next() {
        Some("0") => false,
        Some("1") => true,
        _ => return Err(invalid("expected the saved flag 0 or 1 after the UPID")),
    };
    let record = match (parts.next(), parts.next()) {
        (None, _) => TaskRecord {
            upid,
            end: None,
            status: TaskStatus::Running,
        },
        (Some(end), Some(status)) => TaskRecord {
            upid,
            end: Some(parse_endtime(end, ACTIVE, line)?),
            status: parse_status(status),
        },
        (Some(_), None) => return Err(invalid("expected a status after the end time")),
    };
    Ok(ActiveRecord { record, saved })
}

fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty())
}

fn parse_upid(text: &str, file: &'static str, line: &str) -> Result<Upid> {
    text.parse::<Upid>().map_err(|e| match e {
        Error::InvalidUpid { reason, .. } => {
            record_error(file, line, &format!("bad UPID: {reason}"))
        }
        other => other,
    })
}

fn parse_endtime(text: &str, file: &'static str, line: &str) -> Result<i64> {
    if text.is_empty() || text.len() > 8 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(record_error(
            file,
            line,
            &format!("end time {text:?} is not 8 hex digits"),
        ));
    }
    i64::from_str_radix(text, 16)
        .map_err(|e| record_error(file, line, &format!("end time {text:?}: {e}")))
}

fn parse_status(text: &str) -> TaskStatus {
    match text.parse() {
        Ok(status) => status,
        Err(never) => match never {},
    }
}

fn record_error(file: &'static str, line: &str, reason: &str) -> Error {
    Error::InvalidTaskRecord {
        file,
        line: 0,
        text: line.to_string(),
        reason: reason.to_string(),
    }
}

/// Puts the 1-based line number into a record error.
fn at_line(error: Error, number: usize) -> Error {
    match error {
        Error::InvalidTaskRecord {
            file, text, reason, ..
        } => Error::InvalidTaskRecord {
            file,
            line: number,
            text,
            reason,
        },
        other => other,
    }
}

/// The state of a job on one node, from
/// `/var/lib/pve-manager/jobs/<type>-<id>.json` (pve-manager `PVE/Jobs.pm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    /// Where the job is in its cycle.
    pub phase: JobPhase,
    /// The copy of the job's `enabled` and `schedule` that the scheduler
    /// compares with jobs.cfg to notice changes.
    pub config: Option<JobStateConfig>,
    /// When the schedule or `enabled` last changed, or a missed run was
    /// discarded (seconds since the epoch).
    pub updated: Option<i64>,
}

/// The `state` of a [`JobState`] with the fields that go with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobPhase {
    /// `created`: the job is known but never ran; `time` is when.
    Created {
        /// When the state was created.
        time: Option<i64>,
    },
    /// `starting`: pvescheduler is starting it.
    Starting {
        /// When it began starting.
        time: Option<i64>,
    },
    /// `started`: the task `upid` runs it.
    Started {
        /// The running task.
        upid: Option<Upid>,
    },
    /// `stopped`: the last run ended with `msg`.
    Stopped {
        /// The task's status text.
        status: TaskStatus,
        /// The task that ran, if there was one.
        upid: Option<Upid>,
        /// When it stopped, when there was no task.
        time: Option<i64>,
    },
}

/// The `config` object of a [`JobState`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct JobStateConfig {
    /// Whether the job was enabled.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enabled: Option<bool>,
    /// The schedule the scheduler last saw.
    #[serde(default)]
    pub schedule: Option<String>,
}

impl JobState {
    /// The time the scheduler computes the next run from, as `PVE/Jobs.pm`
    /// does: `updated` if present, else the start of the last task, else
    /// `time`.
    pub fn last_run(&self) -> Option<i64> {
        if let Some(updated) = self.updated {
            return Some(updated);
        }
        match &self.phase {
            JobPhase::Started { upid } => upid.as_ref().map(Upid::starttime),
            JobPhase::Stopped { upid, time, .. } => upid.as_ref().map(Upid::starttime).or(*time),
            JobPhase::Created { time } | JobPhase::Starting { time } => *time,
        }
    }
}

#[derive(Deserialize)]
struct RawJobState {
    state: String,
    #[serde(default, deserialize_with = "de::opt_i64")]
    time: Option<i64>,
    #[serde(default)]
    upid: Option<Upid>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    updated: Option<i64>,
    #[serde(default)]
    config: Option<JobStateConfig>,
}

/// Parses a job state file's JSON text.
pub fn parse_job_state(text: &str) -> Result<JobState> {
    let raw: RawJobState = serde_json::from_str(text).map_err(|e| Error::InvalidJobState {
        reason: e.to_string(),
    })?;
    let phase = match raw.state.as_str() {
        "created" => JobPhase::Created { time: raw.time },
        "starting" => JobPhase::Starting { time: raw.time },
        "started" => JobPhase::Started { upid: raw.upid },
        "stopped" => JobPhase::Stopped {
            status: parse_status(raw.msg.as_deref().unwrap_or("unexpected status")),
            upid: raw.upid,
            time: raw.time,
        },
        other => {
            return Err(Error::InvalidJobState {
                reason: format!(
                    "unknown state {other:?}; expected created, starting, started or stopped"
                ),
            })
        }
    };
    Ok(JobState {
        phase,
        config: raw.config,
        updated: raw.updated,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_read_like_proxmox() {
        assert_eq!("OK".parse(), Ok(TaskStatus::Ok));
        assert_eq!("WARNINGS: 2".parse(), Ok(TaskStatus::Warnings(2)));
        assert_eq!("RUNNING".parse(), Ok(TaskStatus::Running));
        assert_eq!(
            "job errors".parse(),
            Ok(TaskStatus::Error("job errors".into()))
        );
        assert_eq!(
            "WARNINGS: many".parse(),
            Ok(TaskStatus::Error("WARNINGS: many".into()))
        );
        assert_eq!(
            "unexpected status".parse(),
            Ok(TaskStatus::Unknown("unexpected status".into()))
        );
        assert!(matches!(
            "unable to get last line from task log - x".parse(),
            Ok(TaskStatus::Unknown(_))
        ));
        for text in ["OK", "WARNINGS: 7", "job errors", "RUNNING"] {
            assert_eq!(text.parse::<TaskStatus>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn index_line_with_spaces_in_status() {
        let record = parse_index_line(
            "UPID:pihanga:001211E7:067990DD:6724DB5E:vzdump::root@pam: 6724E64C job errors",
        )
        .unwrap();
        assert_eq!(record.end, Some(0x6724E64C));
        assert_eq!(record.status, TaskStatus::Error("job errors".into()));
    }

    #[test]
    fn bad_lines_name_their_number() {
        let text = "UPID:pihanga:001211E7:067990DD:6724DB5E:vzdump::root@pam: 6724E64C OK\r\n\
                    \r\n\
                    UPID:pihanga:001211E7:067990DD:6724DB5E:vzdump::root@pam: 6724E64Z OK\n";
        let err = parse_index(text).unwrap_err();
        match &err {
            Error::InvalidTaskRecord { file, line, .. } => {
                assert_eq!((*file, *line), (INDEX, 3));
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("end time \"6724E64Z\""), "{err}");
    }

    #[test]
    fn active_lines_in_every_shape() {
        let running =
            parse_active_line("UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam: 0")
                .unwrap();
        assert!(!running.saved);
        assert_eq!(running.record.status, TaskStatus::Running);
        assert_eq!(running.record.end, None);
        let unsaved = parse_active_line(
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam: 0 672958FF WARNINGS: 1",
        )
        .unwrap();
        assert!(!unsaved.saved);
        assert_eq!(unsaved.record.status, TaskStatus::Warnings(1));
        for bad in [
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam: 2",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam: 1 672958FF",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump: 1",
        ] {
            assert!(parse_active_line(bad).is_err(), "{bad}");
        }
    }

    fn status_strategy() -> impl Strategy<Value = TaskStatus> {
        prop_oneof![
            Just(TaskStatus::Ok),
            any::<u16>().prop_map(|n| TaskStatus::Warnings(u64::from(n))),
            // Messages as vzdump and hooks write them: no line breaks, not
            // one of the special forms.
            "[a-z][ -~]{0,40}[a-z]".prop_map(TaskStatus::Error),
            Just(TaskStatus::Unknown("unexpected status".into())),
        ]
    }

    fn upid_strategy() -> impl Strategy<Value = Upid> {
        (
            "[a-z][a-z0-9-]{0,8}[a-z0-9]",
            any::<u32>(),
            any::<u32>(),
            "[0-9]{0,4}",
        )
            .prop_map(|(node, pid, start, id)| {
                Upid::new(
                    &node,
                    pid,
                    u64::from(pid) * 7,
                    i64::from(start),
                    "vzdump",
                    &id,
                    "root@pam",
                )
                .unwrap()
            })
    }

    proptest! {
        #[test]
        fn index_lines_read_back(upid in upid_strategy(), end in any::<u32>(), status in status_strategy()) {
            let record = TaskRecord { upid, end: Some(i64::from(end)), status };
            let line = record.index_line().unwrap();
            prop_assert_eq!(parse_index_line(&line).unwrap(), record);
        }

        #[test]
        fn active_lines_read_back(
            upid in upid_strategy(),
            saved in any::<bool>(),
            finished in proptest::option::of((any::<u32>(), status_strategy())),
        ) {
            let record = match finished {
                Some((end, status)) => TaskRecord { upid, end: Some(i64::from(end)), status },
                None => TaskRecord { upid, end: None, status: TaskStatus::Running },
            };
            let active = ActiveRecord { record, saved };
            prop_assert_eq!(parse_active_line(&active.active_line()).unwrap(), active);
        }

        #[test]
        fn reading_any_text_never_panics(text in "[ -~\n]{0,200}") {
            let _ = parse_index(&text);
            let _ = parse_active(&text);
            let _ = parse_job_state(&text);
        }
    }

    #[test]
    fn job_state_last_run_prefers_updated_then_task_then_time() {
        let stopped = parse_job_state(
            r#"{"state":"stopped","msg":"OK","updated":"100","upid":"UPID:n1:00000001:00000002:00000200:vzdump::root@pam:"}"#,
        )
        .unwrap();
        assert_eq!(stopped.last_run(), Some(100));
        let started = parse_job_state(
            r#"{"state":"started","upid":"UPID:n1:00000001:00000002:00000200:vzdump::root@pam:"}"#,
        )
        .unwrap();
        assert_eq!(started.last_run(), Some(0x200));
        let starting = parse_job_state(r#"{"state":"starting","time":300}"#).unwrap();
        assert_eq!(starting.last_run(), Some(300));
        let failed =
            parse_job_state(r#"{"state":"stopped","msg":"no such storage","time":400}"#).unwrap();
        assert_eq!(failed.last_run(), Some(400));
        assert!(parse_job_state(r#"{"state":"paused"}"#).is_err());
        assert!(parse_job_state("{").is_err());
    }
}
