//! The hook's events and their spool: `<state-dir>/hook-spool/`.
//!
//! Each run of `sched-agent hook <phase>` writes one event file, atomically
//! (a hidden temporary file renamed into place), so the daemon never reads a
//! half-written event and two hooks never write into the same file. The
//! daemon folds the events into the run history, saves the history, and only
//! then deletes the files it folded: an event is always in the spool or in the
//! saved history, which is what the hook reads back to tell which run it
//! belongs to.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::FailOpen;

/// What one run of the hook saw and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookEvent {
    /// When the hook ran, Unix seconds (the host's clock).
    pub time: i64,
    /// The phase vzdump called it for (`job-start`, `backup-end`, ...).
    pub phase: String,
    /// The job the run belongs to, when the hook could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The run's task, when the hook could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upid: Option<String>,
    /// vzdump's `STOREID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Set when the hook let the backup go without a lease, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_open: Option<FailOpen>,
    /// How long the hook waited for its lease, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_wait_secs: Option<f64>,
    /// A sentence for the log: what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Writes `event` into the spool `dir` as its own file.
pub fn write_event(dir: &Path, event: &HookEvent) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "{:011}-{:09}-{}.json",
        event.time.max(0),
        nanos,
        std::process::id()
    );
    let path = dir.join(name);
    stagger_service::files::write_atomic(&path, &serde_json::to_vec(event)?, 0o600)?;
    Ok(path)
}

/// The spooled events in `dir`, oldest first, with their files. A file that
/// is not an event is returned as `Err` with its path, for the caller to set aside.
pub fn read_spool(dir: &Path) -> Vec<(PathBuf, Result<HookEvent, String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".json") && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let event = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
            (path, event)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("hook-spool");
        let event = |time, phase: &str| HookEvent {
            time,
            phase: phase.into(),
            job: Some("backup-a".into()),
            upid: None,
            storage: Some("pbs-main".into()),
            fail_open: None,
            lease_wait_secs: None,
            message: None,
        };
        write_event(&spool, &event(20, "job-end")).unwrap();
        write_event(&spool, &event(10, "job-start")).unwrap();
        std::fs::write(spool.join("zz-broken.json"), "{").unwrap();
        std::fs::write(spool.join(".x.json.tmp.1"), "{").unwrap();
        let events = read_spool(&spool);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].1.as_ref().unwrap().phase, "job-start");
        assert_eq!(events[1].1.as_ref().unwrap().phase, "job-end");
        assert!(events[2].1.is_err());
        assert!(read_spool(&dir.path().join("none")).is_empty());
    }
}
