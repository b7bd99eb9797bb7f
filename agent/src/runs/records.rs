//! Reading Proxmox's task records and job state files (FORMATS.md (b), (e)).
//!
//! `<task-dir>/index` and `index.1` list finished tasks, `<task-dir>/active`
//! the running ones and the latest finished; `<job-state-dir>/vzdump-<id>.json`
//! names the task of each job's current or last run. The parsing is
//! `pve_api::tasks`'; this module owns the paths. A line Proxmox is still
//! appending (the index is not replaced atomically) is skipped, not an error.
//!
//! The daemon reads these every few seconds, so [`RecordReader`] keeps the
//! last result and reads a file again only when its size or modification
//! time changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pve_api::tasks::{parse_active_line, parse_index_line, parse_job_state};
use pve_api::{ActiveRecord, JobState, TaskRecord};

/// What the task records and job states say, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Finished tasks from `index` and `index.1`, by UPID text.
    pub finished: BTreeMap<String, TaskRecord>,
    /// The `active` file's entries by UPID text; `None` when it could not be read.
    pub active: Option<BTreeMap<String, ActiveRecord>>,
    /// Job states by job id.
    pub states: BTreeMap<String, JobState>,
}

/// A file's identity for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// A file read again only when it changed.
#[derive(Debug)]
struct Cached<T> {
    path: PathBuf,
    stamp: Option<Stamp>,
    value: T,
}

impl<T: Default> Cached<T> {
    fn new(path: PathBuf) -> Cached<T> {
        Cached {
            path,
            stamp: None,
            value: T::default(),
        }
    }

    /// Re-reads with `read` when the file changed; `read` gets `None` when it is gone.
    fn refresh(&mut self, read: impl FnOnce(Option<String>) -> T) -> &T {
        let now = stamp(&self.path);
        if now.is_none() || now != self.stamp {
            let text = std::fs::read_to_string(&self.path).ok();
            self.value = read(text);
            self.stamp = now;
        }
        &self.value
    }
}

/// Reads a node's task records and job states, re-reading only what changed.
#[derive(Debug)]
pub struct RecordReader {
    index: Cached<Vec<TaskRecord>>,
    index_old: Cached<Vec<TaskRecord>>,
    active: Cached<Option<Vec<ActiveRecord>>>,
    states_dir: PathBuf,
    states_stamp: Option<Stamp>,
    states: BTreeMap<String, JobState>,
}

impl RecordReader {
    /// A reader of `task_dir` (`index`, `index.1`, `active`) and `job_state_dir`.
    pub fn new(task_dir: &Path, job_state_dir: &Path) -> RecordReader {
        RecordReader {
            index: Cached::new(task_dir.join("index")),
            index_old: Cached::new(task_dir.join("index.1")),
            active: Cached::new(task_dir.join("active")),
            states_dir: job_state_dir.to_path_buf(),
            states_stamp: None,
            states: BTreeMap::new(),
        }
    }

    /// What the files say now.
    pub fn observe(&mut self) -> Observation {
        let mut finished = BTreeMap::new();
        for cached in [&mut self.index_old, &mut self.index] {
            for record in cached.refresh(|text| parse_index_lenient(&text.unwrap_or_default())) {
                finished.insert(record.upid.to_string(), record.clone());
            }
        }
        let active = self
            .active
            .refresh(|text| text.map(|t| parse_active_lenient(&t)))
            .as_ref()
            .map(|records| {
                records
                    .iter()
                    .map(|r| (r.record.upid.to_string(), r.clone()))
                    .collect()
            });
        // Proxmox replaces state files by rename, which changes the directory's
        // modification time; individual files are then all read again.
        let states_now = stamp(&self.states_dir);
        if states_now.is_none() || states_now != self.states_stamp {
            self.states = read_job_states(&self.states_dir);
            self.states_stamp = states_now;
        }
        Observation {
            finished,
            active,
            states: self.states.clone(),
        }
    }
}

/// Index lines, skipping those that do not parse (a line being appended).
pub fn parse_index_lenient(text: &str) -> Vec<TaskRecord> {
    text.lines()
        .filter_map(|line| parse_index_line(line.trim_end_matches('\r')).ok())
        .collect()
}

/// Active lines, skipping those that do not parse.
pub fn parse_active_lenient(text: &str) -> Vec<ActiveRecord> {
    text.lines()
        .filter_map(|line| parse_active_line(line.trim_end_matches('\r')).ok())
        .collect()
}

/// Every `vzdump-<id>.json` in `dir` that parses, by job id.
pub fn read_job_states(dir: &Path) -> BTreeMap<String, JobState> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let mut states = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(job) = name
            .strip_prefix("vzdump-")
            .and_then(|rest| rest.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if let Ok(state) = parse_job_state(&text) {
            states.insert(job.to_owned(), state);
        }
    }
    states
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scheduler-core/tests/fixtures/proxmox/fixtures"
    );

    #[test]
    fn the_fixture_records_read_and_changes_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks");
        let states = dir.path().join("jobs");
        std::fs::create_dir_all(&tasks).unwrap();
        std::fs::create_dir_all(&states).unwrap();
        let fixture = |name: &str| std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap();
        std::fs::write(
            tasks.join("index"),
            fixture("tasks-index") + "UPID:pihanga:0015",
        )
        .unwrap();
        std::fs::write(tasks.join("active"), fixture("tasks-active")).unwrap();
        std::fs::write(
            states.join("vzdump-backup-pihanga.json"),
            fixture("state-vzdump-backup-pihanga-stopped.json"),
        )
        .unwrap();
        std::fs::write(states.join("notes.txt"), "ignored").unwrap();
        let mut reader = RecordReader::new(&tasks, &states);
        let seen = reader.observe();
        assert_eq!(
            seen.finished.len(),
            10,
            "the half-written last line is skipped"
        );
        let active = seen.active.as_ref().unwrap();
        let running = "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:";
        assert_eq!(active[running].record.end, None);
        assert!(seen.states.contains_key("backup-pihanga"));

        std::fs::write(
            states.join("vzdump-backup-k8s-cp.json"),
            fixture("state-vzdump-backup-k8s-cp-started.json"),
        )
        .unwrap();
        std::fs::remove_file(tasks.join("active")).unwrap();
        let seen = reader.observe();
        assert!(seen.active.is_none());
        assert_eq!(seen.states.len(), 2);
    }
}
