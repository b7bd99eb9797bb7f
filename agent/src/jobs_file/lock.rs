//! Proxmox's cluster lock on jobs.cfg, taken the way
//! `PVE::Cluster::cfs_lock_file('jobs.cfg', ...)` takes it (FORMATS.md (b)).
//!
//! The lock is the directory `<pve-root>/priv/lock/file-jobs_cfg`: `mkdir`
//! takes it (atomic cluster-wide on pmxcfs), `rmdir` releases it. When it is
//! held, the taker sends an *unlock request* and retries: it sleeps
//! `min(remaining seconds, 10) × 100 ms` between tries and gives up after the
//! timeout (Proxmox: 10 s) with Proxmox's own message. On pmxcfs the unlock
//! request is `utime(lockdir, 0, 0)`, and pmxcfs removes the lock if it is
//! older than 120 s (a holder that died). Anywhere else (tests, `pve-sim`
//! trees) nobody would act on the request, so the agent applies the same
//! 120 s rule itself — exactly as `pve-sim` does.
//!
//! The lock is advisory: it orders the writers that take it (Proxmox's API,
//! pvescheduler's minutely sync, the agent) but does not stop a plain write.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The lock id of jobs.cfg.
pub const LOCK_ID: &str = "file-jobs_cfg";
/// Age after which pmxcfs removes a lock on an unlock request.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another holder kept it for the whole timeout.
    #[error("cfs-lock '{LOCK_ID}' error: got lock request timeout")]
    Timeout,
    /// The lock directory could not be made for another reason.
    #[error("cfs-lock '{LOCK_ID}' error: cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
}

/// A held lock: released (`rmdir`) when dropped.
#[derive(Debug)]
pub struct ClusterLock {
    path: PathBuf,
    taken: Instant,
}

impl ClusterLock {
    /// How long the lock has been held.
    pub fn held_for(&self) -> Duration {
        self.taken.elapsed()
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir(&self.path) {
            // Proxmox releases best effort too; the 120 s rule frees it otherwise.
            tracing::warn!(path = %self.path.display(), %error, "Could not release the cluster lock.");
        }
    }
}

/// Takes the lock in `lock_dir` within `timeout`; also returns how long it waited.
pub fn acquire(lock_dir: &Path, timeout: Duration) -> (Result<ClusterLock, LockError>, Duration) {
    let path = lock_dir.join(LOCK_ID);
    let started = Instant::now();
    if let Err(source) = std::fs::create_dir_all(lock_dir) {
        return (Err(LockError::Io { path, source }), started.elapsed());
    }
    let pmxcfs = on_pmxcfs(lock_dir);
    let mut told = false;
    loop {
        match std::fs::create_dir(&path) {
            Ok(()) => {
                let lock = ClusterLock {
                    path,
                    taken: Instant::now(),
                };
                return (Ok(lock), started.elapsed());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return (Err(LockError::Io { path, source }), started.elapsed()),
        }
        unlock_request(&path, pmxcfs);
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return (Err(LockError::Timeout), elapsed);
        }
        if !told {
            tracing::info!("Trying to acquire cfs lock '{LOCK_ID}' ...");
            told = true;
        }
        let remaining = timeout - elapsed;
        let sleep = Duration::from_millis(remaining.as_secs().clamp(1, 10) * 100);
        std::thread::sleep(sleep.min(remaining));
    }
}

/// Asks for a dead holder's lock to be removed (see the module doc).
fn unlock_request(path: &Path, pmxcfs: bool) {
    if pmxcfs {
        // pmxcfs reads utime(0, 0) on a lock directory as the request.
        if let Ok(dir) = std::fs::File::open(path) {
            let epoch = std::fs::FileTimes::new()
                .set_accessed(SystemTime::UNIX_EPOCH)
                .set_modified(SystemTime::UNIX_EPOCH);
            let _ = dir.set_times(epoch);
        }
        return;
    }
    let age = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok());
    if age.is_some_and(|age| age > STALE_AFTER) {
        tracing::warn!(
            path = %path.display(),
            "Removing a cluster lock older than 120 s: its holder is gone."
        );
        let _ = std::fs::remove_dir(path);
    }
}

/// Whether `dir` lies on a FUSE file system — pmxcfs is one — by the mount
/// table of this process.
fn on_pmxcfs(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mount_fstype(&table, &dir).is_some_and(|fstype| fstype.starts_with("fuse"))
}

/// The file system type of the deepest mount point holding `path`, from the
/// text of `/proc/self/mountinfo`.
fn mount_fstype(table: &str, path: &Path) -> Option<String> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = unescape(fields.get(4)?);
            let dash = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(dash + 1)?;
            path.starts_with(&mount_point)
                .then(|| (mount_point.len(), (*fstype).to_owned()))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, fstype)| fstype)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_with_proxmoxs_message_and_is_free_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let (held, waited) = acquire(dir.path(), Duration::from_secs(1));
        let held = held.unwrap();
        assert!(waited < Duration::from_millis(100));
        assert!(dir.path().join(LOCK_ID).is_dir());
        let (second, waited) = acquire(dir.path(), Duration::from_millis(300));
        let err = second.unwrap_err();
        assert_eq!(
            err.to_string(),
            "cfs-lock 'file-jobs_cfg' error: got lock request timeout"
        );
        assert!(waited >= Duration::from_millis(300));
        drop(held);
        assert!(!dir.path().join(LOCK_ID).exists());
        assert!(acquire(dir.path(), Duration::from_millis(300)).0.is_ok());
    }

    #[test]
    fn a_lock_older_than_120_s_is_broken_and_a_young_one_respected() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(LOCK_ID);
        std::fs::create_dir(&lock).unwrap();
        assert!(acquire(dir.path(), Duration::from_millis(250)).0.is_err());
        let old = SystemTime::now() - Duration::from_secs(121);
        std::fs::File::open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let (taken, _) = acquire(dir.path(), Duration::from_secs(2));
        assert!(taken.is_ok(), "{taken:?}");
    }

    #[test]
    fn the_deepest_mount_decides() {
        let table = "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n\
                     40 22 0:40 / /etc/pve rw,nosuid - fuse /dev/fuse rw,user_id=0\n\
                     41 22 0:41 / /mnt/my\\040disk rw - xfs /dev/sdb1 rw\n";
        assert_eq!(
            mount_fstype(table, Path::new("/etc/pve/priv/lock")).unwrap(),
            "fuse"
        );
        assert_eq!(mount_fstype(table, Path::new("/etc/pvex")).unwrap(), "ext4");
        assert_eq!(
            mount_fstype(table, Path::new("/mnt/my disk/x")).unwrap(),
            "xfs"
        );
    }
}
