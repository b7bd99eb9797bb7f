//! Replacing a file so that a reader, or the next start after a crash, sees
//! either the old content or the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically with permission bits `mode`: a temporary
/// file in the same directory (created exclusively), written and fsynced, then
/// renamed over `path`, then the directory fsynced so the rename survives a
/// power loss. On any error the temporary file is removed and `path` is as
/// it was.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temp = temp_path(path);
    let written = write_new(&temp, bytes, mode).and_then(|()| {
        fs::rename(&temp, path).map_err(|source| Error::io("rename into place", path, source))
    });
    if written.is_err() {
        let _ = fs::remove_file(&temp);
        return written;
    }
    sync_dir(path)
}

/// `.<name>.tmp.<unique>` beside `path`: hidden, and unique per write.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", unique_suffix()))
}

/// `<pid>-<n>`: different for every call in this process and from every
/// other running process.
pub fn unique_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

fn write_new(temp: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    // A leftover from a crashed earlier process with the same pid is ours to replace.
    let _ = fs::remove_file(temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)
        .map_err(|source| Error::io("create", temp, source))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| Error::io("write", temp, source))
}

/// Fsyncs the directory holding `path`.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::io("sync", dir, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_replaced_file_has_the_new_bytes_and_mode_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        fs::write(&path, "old").expect("old file");
        write_atomic(&path, b"new", 0o600).expect("replaced");
        assert_eq!(fs::read_to_string(&path).expect("read"), "new");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("missing-dir").join("state.json");
        let err = write_atomic(&path, b"new", 0o600).expect_err("no directory");
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }
}
