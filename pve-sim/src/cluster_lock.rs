//! The pmxcfs cluster lock as `PVE::Cluster::cfs_lock_file` takes it, and the
//! atomic replace of `PVE::File::file_set_contents` (FORMATS.md (b)).
//!
//! The lock is the directory `<lock_dir>/file-<name with . and / as _>`:
//! `mkdir` takes it, `rmdir` releases it. On contention the taker touches the
//! directory's times to 0 (an "unlock request": pmxcfs removes a lock older
//! than 120 s, which this module does itself since there is no pmxcfs), sleeps
//! min(remaining, 10) × 100 ms and retries until 10 s have passed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long a taker retries before giving up (`cfs_lock` default timeout).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Age after which pmxcfs removes a lock on an unlock request (`CFS_LOCK_TIMEOUT`).
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// Why the lock or the write failed, with Proxmox's words where it has some.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Not taken within the timeout.
    #[error("cfs-lock '{id}' error: got lock request timeout")]
    Timeout {
        /// The lock id (`file-jobs_cfg`).
        id: String,
    },
    /// The lock directory could not be created for another reason.
    #[error("cfs-lock '{id}' error: cannot create {path}: {source}")]
    Io {
        /// The lock id.
        id: String,
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A held cluster lock; released (rmdir) on drop.
#[derive(Debug)]
pub struct ClusterLock {
    path: PathBuf,
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        // Releasing is best effort, as in Proxmox (the 120 s rule cleans up).
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The lock id Proxmox uses for a file under /etc/pve: `file-jobs_cfg`.
pub fn lock_id(file_name: &str) -> String {
    format!("file-{}", file_name.replace(['.', '/'], "_"))
}

/// Takes the lock for `file_name` in `lock_dir`, retrying as Proxmox does.
pub fn acquire(lock_dir: &Path, file_name: &str) -> Result<ClusterLock, LockError> {
    acquire_within(lock_dir, file_name, LOCK_TIMEOUT)
}

/// [`acquire`] with another timeout (tests).
pub fn acquire_within(
    lock_dir: &Path,
    file_name: &str,
    timeout: Duration,
) -> Result<ClusterLock, LockError> {
    let id = lock_id(file_name);
    let path = lock_dir.join(&id);
    let io_error = |source| LockError::Io {
        id: id.clone(),
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(lock_dir).map_err(io_error)?;
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(ClusterLock { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(e)),
        }
        unlock_request(&path);
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(LockError::Timeout { id });
        }
        let remaining_secs = (timeout - elapsed).as_secs().max(1);
        let sleep = Duration::from_millis(remaining_secs.min(10) * 100);
        std::thread::sleep(sleep.min(timeout - elapsed));
    }
}

/// What pmxcfs does on `utime(lockdir, 0, 0)`: remove the lock when it is
/// older than [`STALE_AFTER`]. The age is the directory's modification time.
fn unlock_request(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let Ok(modified) = meta.modified() else {
        return;
    };
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    if age > STALE_AFTER {
        let _ = std::fs::remove_dir(path);
    }
}

/// `file_set_contents`: write `<file>.tmp.<pid>` (O_EXCL, unlink and retry up
/// to 3 times if it exists), then rename it over `file`; the temp file is
/// removed on any error. No fsync, as in Proxmox.
pub fn replace_file(file: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp.{}", file.display(), std::process::id()));
    let mut tries = 0;
    let mut handle = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(handle) => break handle,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 2 => {
                tries += 1;
                let _ = std::fs::remove_file(&tmp);
            }
            Err(e) => return Err(e),
        }
    };
    let written = handle
        .write_all(contents.as_bytes())
        .and_then(|()| handle.flush());
    drop(handle);
    let result = written.and_then(|()| std::fs::rename(&tmp, file));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_proxmox_ones() {
        assert_eq!(lock_id("jobs.cfg"), "file-jobs_cfg");
        assert_eq!(lock_id("vzdump.cron"), "file-vzdump_cron");
        assert_eq!(lock_id("nodes/a/x.cfg"), "file-nodes_a_x_cfg");
    }

    #[test]
    fn a_held_lock_times_out_and_is_free_after_release() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = acquire(dir.path(), "jobs.cfg").expect("first taker");
        assert!(dir.path().join("file-jobs_cfg").is_dir());
        let second = acquire_within(dir.path(), "jobs.cfg", Duration::from_millis(300));
        assert!(matches!(second, Err(LockError::Timeout { .. })));
        assert_eq!(
            second.map(|_| ()).map_err(|e| e.to_string()),
            Err("cfs-lock 'file-jobs_cfg' error: got lock request timeout".to_owned())
        );
        drop(held);
        assert!(!dir.path().join("file-jobs_cfg").exists());
        acquire_within(dir.path(), "jobs.cfg", Duration::from_millis(300)).expect("free again");
    }

    #[test]
    fn a_lock_older_than_120_s_is_broken_by_the_next_taker() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stale = dir.path().join("file-jobs_cfg");
        std::fs::create_dir(&stale).expect("left-over lock");
        let old = SystemTime::now() - Duration::from_secs(121);
        std::fs::File::open(&stale)
            .and_then(|d| d.set_modified(old))
            .expect("age the lock");
        let taken = acquire_within(dir.path(), "jobs.cfg", Duration::from_secs(2));
        assert!(taken.is_ok(), "stale lock not broken: {taken:?}");
    }

    #[test]
    fn a_young_lock_is_respected() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("file-jobs_cfg")).expect("held lock");
        let taken = acquire_within(dir.path(), "jobs.cfg", Duration::from_millis(250));
        assert!(matches!(taken, Err(LockError::Timeout { .. })));
    }

    #[test]
    fn replace_file_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("jobs.cfg");
        std::fs::write(&file, "old").expect("write");
        replace_file(&file, "new").expect("replace");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("jobs.cfg")]);
    }
}
