//! The copies of jobs.cfg the agent keeps before each change
//! (`state-dir/backups/<unix time>-<digest>.cfg`, the newest `backups-keep`),
//! and the audit log (`state-dir/audit.log`, one JSON line per change).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use scheduler_core::jobs_cfg::Digest;
use serde::Serialize;

/// The kept copies in one directory.
#[derive(Debug, Clone)]
pub struct Kept {
    dir: PathBuf,
    keep: usize,
}

impl Kept {
    /// The copies in `dir`, at most `keep` of them.
    pub fn new(dir: PathBuf, keep: usize) -> Kept {
        Kept { dir, keep }
    }

    /// Keeps `text` (whose digest is `digest`) as the newest copy, then
    /// removes the oldest beyond the limit and older copies of the same bytes.
    pub fn keep(&self, text: &str, digest: &Digest, now: i64) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{:011}-{digest}.cfg", now.max(0)));
        stagger_service::files::write_atomic(&path, text.as_bytes(), 0o600)?;
        let mut copies = self.list();
        let same: Vec<PathBuf> = copies
            .iter()
            .filter(|(d, p)| d == digest && *p != path)
            .map(|(_, p)| p.clone())
            .collect();
        for old in same {
            let _ = std::fs::remove_file(old);
        }
        copies.retain(|(d, p)| d != digest || *p == path);
        if copies.len() > self.keep {
            for (_, old) in &copies[..copies.len() - self.keep] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(path)
    }

    /// The kept copy with `digest`, its text checked against the digest.
    pub fn find(&self, digest: &Digest) -> Option<String> {
        self.list()
            .into_iter()
            .rev()
            .filter(|(d, _)| d == digest)
            .find_map(|(_, path)| {
                let text = std::fs::read_to_string(path).ok()?;
                (Digest::of(text.as_bytes()) == *digest).then_some(text)
            })
    }

    /// The copies, oldest first, with their digests.
    fn list(&self) -> Vec<(Digest, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut copies: Vec<(Digest, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (_, digest) = name.strip_suffix(".cfg")?.split_once('-')?;
                Some((digest.parse().ok()?, entry.path()))
            })
            .collect();
        copies.sort_by(|a, b| a.1.cmp(&b.1));
        copies
    }
}

/// One line of the audit log: one changed job (or, for a rollback that
/// changed no schedule, the file as a whole).
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// Unix time of the change.
    pub time: i64,
    /// Who asked: the peer that presented the bearer token.
    pub who: &'a str,
    /// `apply` or `rollback`.
    pub action: &'a str,
    /// `file` or `api`.
    pub backend: &'a str,
    /// The job, when one changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<&'a str>,
    /// Its schedule before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<&'a str>,
    /// Its schedule after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<&'a str>,
    /// jobs.cfg's digest before.
    pub digest_before: String,
    /// jobs.cfg's digest after.
    pub digest_after: String,
}

/// Appends `records` to the audit log at `path` (one JSON line each, fsynced).
pub fn audit(path: &Path, records: &[AuditRecord<'_>]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record)?);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // One write: concurrent appenders never interleave inside a line.
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn copies_are_bounded_and_found_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::new(dir.path().join("backups"), 3);
        let texts: Vec<String> = (0..5)
            .map(|i| format!("vzdump: j{i}\n\tschedule 0{i}:00\n"))
            .collect();
        for (i, text) in texts.iter().enumerate() {
            kept.keep(text, &Digest::of(text.as_bytes()), 100 + i as i64)
                .unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("backups"))
                .unwrap()
                .count(),
            3
        );
        assert!(kept.find(&Digest::of(texts[0].as_bytes())).is_none());
        assert_eq!(
            kept.find(&Digest::of(texts[4].as_bytes())).as_deref(),
            Some(texts[4].as_str())
        );
        // The same bytes again: one copy, the newest.
        kept.keep(&texts[2], &Digest::of(texts[2].as_bytes()), 200)
            .unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("backups"))
                .unwrap()
                .count(),
            3
        );
        assert!(kept.find(&Digest::of(texts[3].as_bytes())).is_some());
        // A copy whose bytes were changed no longer matches its name.
        let path = kept
            .keep(&texts[1], &Digest::of(texts[1].as_bytes()), 300)
            .unwrap();
        std::fs::write(path, "tampered").unwrap();
        assert!(kept.find(&Digest::of(texts[1].as_bytes())).is_none());
    }

    #[test]
    fn the_audit_log_is_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let record = AuditRecord {
            time: 1,
            who: "127.0.0.1:5000",
            action: "apply",
            backend: "file",
            job: Some("backup-a"),
            old: Some("02:00"),
            new: Some("02:35 UTC"),
            digest_before: "a".into(),
            digest_after: "b".into(),
        };
        audit(&path, &[record.clone(), record]).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["new"], "02:35 UTC");
    }
}
