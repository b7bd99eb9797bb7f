//! The agent's own state in `state-dir`, and how it is kept.
//!
//! ```text
//! <state-dir>/load-profile.json     the weekly load profile (scheduler_core::load)
//! <state-dir>/runs.json             run history per job (runs::history)
//! <state-dir>/hook-spool/           events of the vzdump hook, one file each, for the daemon
//! <state-dir>/leases/               leases the hook holds, one file per run
//! <state-dir>/tls/                  the agent's certificate and key (stagger_service::tls)
//! <state-dir>/backups/              previous copies of jobs.cfg, at most `backups-keep`
//! <state-dir>/audit.log             one JSON line per change of jobs.cfg
//! ```
//!
//! Every file is replaced atomically (temporary file, fsync, rename). A file
//! that cannot be read back — truncated by a full disk, edited by hand,
//! written by another version — is logged, renamed aside as
//! `<name>.corrupt-<unix time>` and started afresh: the agent never
//! refuses to start, or crash-loops, over its own state.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// `<state-dir>/load-profile.json`.
pub fn load_profile_path(state_dir: &Path) -> PathBuf {
    state_dir.join("load-profile.json")
}

/// `<state-dir>/runs.json`.
pub fn runs_path(state_dir: &Path) -> PathBuf {
    state_dir.join("runs.json")
}

/// `<state-dir>/hook-spool`.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("hook-spool")
}

/// `<state-dir>/leases`.
pub fn leases_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("leases")
}

/// `<state-dir>/backups`.
pub fn backups_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("backups")
}

/// `<state-dir>/audit.log`.
pub fn audit_log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit.log")
}

/// Reads the JSON state file `path`, checked by `check`.
///
/// `None` when there is none yet, and also when it is unreadable, is not the
/// expected JSON or fails `check`: then it is logged and renamed aside, and
/// the caller starts afresh.
pub fn load_or_reset<T, F>(path: &Path, now: i64, check: F) -> Option<T>
where
    T: DeserializeOwned,
    F: FnOnce(&T) -> Result<(), String>,
{
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            set_aside(path, now, &format!("cannot be read: {e}"));
            return None;
        }
    };
    let value = serde_json::from_slice::<T>(&text)
        .map_err(|e| e.to_string())
        .and_then(|value| check(&value).map(|()| value));
    match value {
        Ok(value) => Some(value),
        Err(reason) => {
            set_aside(path, now, &reason);
            None
        }
    }
}

/// Renames a state file that cannot be used to `<name>.corrupt-<now>`, logging why.
pub fn set_aside(path: &Path, now: i64, reason: &str) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = path.with_file_name(format!("{name}.corrupt-{now}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::error!(
            path = %path.display(),
            moved_to = %aside.display(),
            "A state file could not be used ({reason}); it was set aside and the agent starts it afresh."
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            "A state file could not be used ({reason}) nor set aside ({e}); the agent starts it afresh and will overwrite it."
        ),
    }
}

/// Writes `value` as JSON to `path` atomically (mode 0600), creating the directory.
pub fn save<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec(value)?;
    stagger_service::files::write_atomic(path, &bytes, 0o600)?;
    Ok(())
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_set_aside_and_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.json");
        std::fs::write(&path, "{\"truncat").unwrap();
        let loaded: Option<Vec<u32>> = load_or_reset(&path, 1234, |_| Ok(()));
        assert!(loaded.is_none());
        assert!(!path.exists());
        assert!(dir.path().join("runs.json.corrupt-1234").exists());

        save(&path, &vec![1u32, 2]).unwrap();
        let loaded: Option<Vec<u32>> = load_or_reset(&path, 1235, |_| Ok(()));
        assert_eq!(loaded, Some(vec![1, 2]));

        let refused: Option<Vec<u32>> = load_or_reset(&path, 1236, |v: &Vec<u32>| {
            Err(format!("{} values", v.len()))
        });
        assert!(refused.is_none());
        assert!(dir.path().join("runs.json.corrupt-1236").exists());
        let missing: Option<Vec<u32>> = load_or_reset(&path, 1237, |_| Ok(()));
        assert!(missing.is_none());
    }
}
