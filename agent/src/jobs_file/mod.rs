//! Changing jobs.cfg: the transaction behind `PUT /v1/schedules` and
//! `POST /v1/rollback`.
//!
//! The **file backend** (the default) follows FORMATS.md (b) step by step:
//!
//! 1. check the request: digest syntax, no control character or newline in
//!    any value, each job named once;
//! 2. take Proxmox's cluster lock ([`lock`]), waiting at most
//!    `lock-timeout-secs` (Proxmox's own 10 s by default);
//! 3. read jobs.cfg and compare its SHA-1 with the caller's digest (stale: 409
//!    with the current digest);
//! 4. refuse jobs this agent does not own: unknown, not a backup job, bound
//!    by `node` to another node;
//! 5. change only the schedule values, with the lossless codec, and refuse a
//!    result that Proxmox would read with new warnings or could not write back;
//! 6. keep a copy of the previous file in `state-dir/backups/` ([`kept`]);
//! 7. write `jobs.cfg.tmp.<pid>` (created exclusively), fsync it, rename it
//!    over jobs.cfg, fsync the directory — whoever reads, and a `kill -9` at
//!    any point, sees the old file or the new one;
//! 8. release the lock, then append the change to the audit log.
//!
//! The lock is held for milliseconds; a write that somehow has held it for
//! [`MAX_HOLD`] is abandoned before the rename, far from Proxmox's 60 s.
//!
//! The **API backend** ([`api`]) checks the digest and every change the same
//! way against the file as it is, then sends `PUT /cluster/backup/{id}` per
//! changed job, and Proxmox writes (and renormalises) the file under its own
//! lock.

pub mod api;
pub mod kept;
pub mod lock;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use scheduler_core::jobs_cfg::{Digest, JobsCfg, VzdumpJob};
use scheduler_core::report::{ApplyRequest, ApplyResponse, RollbackRequest, ScheduleChange};

use kept::{AuditRecord, Kept};
use prometheus_client::metrics::histogram::Histogram;

/// The longest the agent holds the lock before it abandons a write.
pub const MAX_HOLD: Duration = Duration::from_secs(45);

/// Why a change was not made; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 409: jobs.cfg is not at the digest the caller named.
    #[error("jobs.cfg changed: its digest is {current}, not {expected}")]
    Stale {
        /// The digest the caller named.
        expected: String,
        /// The digest now.
        current: Digest,
    },
    /// 422: well-formed, but it cannot be carried out.
    #[error("{0}")]
    Refused(String),
    /// 404: no kept copy with that digest.
    #[error("{0}")]
    NotFound(String),
    /// 503: the cluster lock was not had in time; retry.
    #[error("{0}")]
    Busy(String),
    /// 500: reading, writing or Proxmox's API failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Where jobs.cfg, its lock, the kept copies and the audit log are.
#[derive(Debug, Clone)]
pub struct JobsFile {
    /// `<pve-root>/jobs.cfg`.
    pub path: PathBuf,
    /// `<pve-root>/priv/lock`.
    pub lock_dir: PathBuf,
    /// The kept copies.
    pub kept: Kept,
    /// `<state-dir>/audit.log`.
    pub audit_log: PathBuf,
    /// How long to wait for the lock.
    pub lock_timeout: Duration,
    /// This node.
    pub node: String,
    /// `<state-dir>`, where a test pause point leaves its marker.
    pub state_dir: PathBuf,
    /// Where each wait for the cluster lock is observed (`stagger_jobs_cfg_lock_wait_seconds`).
    pub lock_waits: Histogram,
}

/// A change of jobs.cfg's bytes, checked and ready to write.
struct Edit {
    before: String,
    after: String,
    changed: Vec<(String, String, String)>,
}

impl JobsFile {
    /// Reads jobs.cfg; a missing file is an empty one (as Proxmox reads it).
    pub fn read(&self) -> Result<String, ChangeError> {
        read_text(&self.path)
    }

    /// `PUT /v1/schedules` through the file backend.
    pub fn apply(
        &self,
        request: &ApplyRequest,
        who: &str,
        now: i64,
    ) -> Result<ApplyResponse, ChangeError> {
        let expected = parse_digest(&request.digest, "digest")?;
        check_changes(&request.changes)?;
        let lock = self.lock()?;
        let edit = self.apply_edit(request, &expected)?;
        self.write_recorded(&edit, lock, &expected, who, "apply", now)
    }

    /// `POST /v1/rollback` through the file backend: puts back the kept copy
    /// with `to_digest`, if jobs.cfg is still at `expect_digest`.
    pub fn rollback(
        &self,
        request: &RollbackRequest,
        who: &str,
        now: i64,
    ) -> Result<ApplyResponse, ChangeError> {
        let target_digest = parse_digest(&request.to_digest, "to_digest")?;
        let expected = parse_digest(&request.expect_digest, "expect_digest")?;
        let target = self.kept_copy(&target_digest)?;
        let lock = self.lock()?;
        let edit = self.rollback_edit(request, &expected, &target)?;
        self.write_recorded(&edit, lock, &expected, who, "rollback", now)
    }

    /// The edit `request` asks for, checked against jobs.cfg as it is now
    /// (still at `expected`); both backends make it the same way.
    fn apply_edit(&self, request: &ApplyRequest, expected: &Digest) -> Result<Edit, ChangeError> {
        let before = self.read()?;
        check_digest(&before, expected, &request.digest)?;
        edit_schedules(&before, &request.changes, &self.node)
    }

    /// The edit back to the kept copy `target`, checked against jobs.cfg as
    /// it is now (still at `expected`); both backends make it the same way.
    fn rollback_edit(
        &self,
        request: &RollbackRequest,
        expected: &Digest,
        target: &str,
    ) -> Result<Edit, ChangeError> {
        let before = self.read()?;
        check_digest(&before, expected, &request.expect_digest)?;
        restore(&before, target, &self.node)
    }

    /// Writes a checked edit under the lock; answers with the digests and
    /// records it in the audit log as `action`.
    fn write_recorded(
        &self,
        edit: &Edit,
        lock: lock::ClusterLock,
        expected: &Digest,
        who: &str,
        action: &str,
        now: i64,
    ) -> Result<ApplyResponse, ChangeError> {
        let digest_after = self.write_locked(edit, lock, now)?;
        let response = ApplyResponse {
            previous_digest: expected.to_string(),
            digest: digest_after.to_string(),
            changed: changes_of(edit),
        };
        self.record(edit, &response, who, action, "file", now);
        Ok(response)
    }

    /// The kept copy with `digest`, or 404.
    pub fn kept_copy(&self, digest: &Digest) -> Result<String, ChangeError> {
        self.kept.find(digest).ok_or_else(|| {
            ChangeError::NotFound(format!(
                "no kept copy of jobs.cfg has the digest {digest}; the agent keeps the files \
                 it replaced, the newest `backups-keep` of them"
            ))
        })
    }

    fn lock(&self) -> Result<lock::ClusterLock, ChangeError> {
        let (lock, waited) = lock::acquire(&self.lock_dir, self.lock_timeout);
        self.lock_waits.observe(waited.as_secs_f64());
        match lock {
            Ok(lock) => Ok(lock),
            Err(lock::LockError::Timeout) => Err(ChangeError::Busy(format!(
                "{}: another writer (Proxmox's API, pvescheduler) held jobs.cfg's cluster lock \
                 for {} s; nothing was changed, try again",
                lock::LockError::Timeout,
                self.lock_timeout.as_secs()
            ))),
            Err(other) => Err(ChangeError::Failed(other.into())),
        }
    }

    /// Steps 6–8 with the lock held: keep the old file, replace it, release.
    fn write_locked(
        &self,
        edit: &Edit,
        lock: lock::ClusterLock,
        now: i64,
    ) -> Result<Digest, ChangeError> {
        let after = Digest::of(edit.after.as_bytes());
        if edit.after == edit.before {
            return Ok(after);
        }
        pause_point(&self.state_dir, "locked");
        let before = Digest::of(edit.before.as_bytes());
        self.kept.keep(&edit.before, &before, now).map_err(|e| {
            anyhow::anyhow!("cannot keep a copy of jobs.cfg before changing it: {e:#}")
        })?;
        pause_point(&self.state_dir, "kept");
        if lock.held_for() > MAX_HOLD {
            return Err(ChangeError::Busy(
                "the write took too long while holding jobs.cfg's cluster lock and was abandoned \
                 before replacing the file; nothing was changed, try again"
                    .into(),
            ));
        }
        replace(&self.path, &edit.after, &self.state_dir)?;
        drop(lock);
        pause_point(&self.state_dir, "released");
        Ok(after)
    }

    fn record(
        &self,
        edit: &Edit,
        response: &ApplyResponse,
        who: &str,
        action: &str,
        backend: &str,
        now: i64,
    ) {
        if edit.before == edit.after {
            return;
        }
        let base = AuditRecord {
            time: now,
            who,
            action,
            backend,
            job: None,
            old: None,
            new: None,
            digest_before: response.previous_digest.clone(),
            digest_after: response.digest.clone(),
        };
        let mut records: Vec<AuditRecord<'_>> = edit
            .changed
            .iter()
            .map(|(job, old, new)| AuditRecord {
                job: Some(job),
                old: Some(old),
                new: Some(new),
                ..base.clone()
            })
            .collect();
        if records.is_empty() {
            records.push(base);
        }
        if let Err(error) = kept::audit(&self.audit_log, &records) {
            tracing::error!(
                path = %self.audit_log.display(),
                "jobs.cfg was changed but the audit log could not be written: {error:#}"
            );
        }
        for (job, old, new) in &edit.changed {
            tracing::info!(
                who,
                action,
                backend,
                job = job.as_str(),
                old = old.as_str(),
                new = new.as_str(),
                digest = response.digest.as_str(),
                "Changed a backup schedule in jobs.cfg."
            );
        }
    }
}

fn read_text(path: &Path) -> Result<String, ChangeError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            ChangeError::Refused(format!(
                "{} is not UTF-8 text; Stagger does not edit it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display()).into()),
    }
}

/// A digest field of the request, or 400.
pub fn parse_digest(text: &str, field: &str) -> Result<Digest, ChangeError> {
    text.parse()
        .map_err(|e| ChangeError::BadRequest(format!("`{field}`: {e}")))
}

/// Step 1: each job once, no control characters.
pub fn check_changes(changes: &[ScheduleChange]) -> Result<(), ChangeError> {
    let mut seen = BTreeSet::new();
    for change in changes {
        for (what, value) in [("job id", &change.job), ("schedule", &change.schedule)] {
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                return Err(ChangeError::Refused(format!(
                    "the {what} {value:?} contains the control character {c:?}; jobs.cfg values \
                     must be one line of printable text (a newline would forge a new line or \
                     section)"
                )));
            }
        }
        if !seen.insert(change.job.as_str()) {
            return Err(ChangeError::BadRequest(format!(
                "job '{}' appears more than once in `changes`; give one schedule per job",
                change.job
            )));
        }
    }
    Ok(())
}

/// Step 3.
pub fn check_digest(text: &str, expected: &Digest, given: &str) -> Result<(), ChangeError> {
    let current = Digest::of(text.as_bytes());
    if current == *expected {
        Ok(())
    } else {
        Err(ChangeError::Stale {
            expected: given.to_owned(),
            current,
        })
    }
}

/// The backup jobs this node runs: `node` is this node or absent.
pub fn node_jobs(cfg: &JobsCfg, node: &str) -> Vec<VzdumpJob> {
    cfg.vzdump_jobs()
        .into_iter()
        .filter(|job| job.node.as_deref().is_none_or(|n| n == node))
        .collect()
}

/// Steps 4 and 5: the edited text, or why not.
fn edit_schedules(
    before: &str,
    changes: &[ScheduleChange],
    node: &str,
) -> Result<Edit, ChangeError> {
    let mut cfg = JobsCfg::parse(before);
    let jobs = cfg.vzdump_jobs();
    let reading_before = cfg.proxmox_reading("jobs.cfg");
    let mut changed = Vec::new();
    for change in changes {
        let job = jobs.iter().find(|j| j.id == change.job).ok_or_else(|| {
            let known: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
            ChangeError::Refused(format!(
                "no backup job '{}' in jobs.cfg; its backup jobs are: {}",
                change.job,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        if let Some(owner) = job.node.as_deref().filter(|n| *n != node) {
            return Err(ChangeError::Refused(format!(
                "job '{}' runs on node '{owner}', not on this node '{node}'; change it through \
                 the agent of '{owner}'",
                job.id
            )));
        }
        cfg.set_schedule(&change.job, &change.schedule)
            .map_err(|e| ChangeError::Refused(format!("job '{}': {e}", change.job)))?;
        let new = cfg
            .vzdump_jobs()
            .into_iter()
            .find(|j| j.id == change.job)
            .map(|j| j.schedule)
            .unwrap_or_default();
        if new != job.schedule {
            changed.push((job.id.clone(), job.schedule.clone(), new));
        }
    }
    let after = cfg.render();
    check_written_form(&cfg, &reading_before)?;
    Ok(Edit {
        before: before.to_owned(),
        after,
        changed,
    })
}

/// Refuses an edited file that Proxmox would read with warnings or errors
/// the original did not have, or could not write back.
fn check_written_form(
    cfg: &JobsCfg,
    before: &scheduler_core::jobs_cfg::Reading,
) -> Result<(), ChangeError> {
    let after = cfg.proxmox_reading("jobs.cfg");
    let new_warning = after
        .warnings
        .iter()
        .map(|w| &w.message)
        .find(|m| !before.warnings.iter().any(|b| b.message == **m));
    if after.errors.len() > before.errors.len() || new_warning.is_some() {
        return Err(ChangeError::Refused(format!(
            "the changed jobs.cfg would read differently in Proxmox: {}; nothing was changed",
            new_warning
                .map(String::as_str)
                .unwrap_or("a value would be rejected")
        )));
    }
    cfg.proxmox_rewrite().map_err(|e| {
        ChangeError::Refused(format!(
            "Proxmox could not write the changed jobs.cfg back: {e}; nothing was changed"
        ))
    })?;
    Ok(())
}

/// The rollback's "edit": the kept copy in place of the current file.
fn restore(before: &str, target: &str, node: &str) -> Result<Edit, ChangeError> {
    let target_cfg = JobsCfg::parse(target);
    target_cfg.proxmox_rewrite().map_err(|e| {
        ChangeError::Refused(format!(
            "the kept copy is a file Proxmox could not write back: {e}; it is not restored"
        ))
    })?;
    let old = node_jobs(&JobsCfg::parse(before), node);
    let changed = node_jobs(&target_cfg, node)
        .into_iter()
        .filter_map(|job| {
            let was = old.iter().find(|o| o.id == job.id)?;
            (was.schedule != job.schedule).then(|| (job.id, was.schedule.clone(), job.schedule))
        })
        .collect();
    Ok(Edit {
        before: before.to_owned(),
        after: target.to_owned(),
        changed,
    })
}

fn changes_of(edit: &Edit) -> Vec<ScheduleChange> {
    edit.changed
        .iter()
        .map(|(job, _, new)| ScheduleChange {
            job: job.clone(),
            schedule: new.clone(),
        })
        .collect()
}

/// Step 7: `jobs.cfg.tmp.<pid>` (exclusive; a leftover is removed and the
/// create retried, three tries as Proxmox), fsync, rename, fsync the directory.
fn replace(path: &Path, text: &str, state_dir: &Path) -> Result<(), ChangeError> {
    let temp = PathBuf::from(format!("{}.tmp.{}", path.display(), std::process::id()));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o640);
    let failed = |step: &str, e: std::io::Error| {
        ChangeError::Failed(anyhow::anyhow!("cannot {step} {}: {e}", temp.display()))
    };
    let mut tries = 0;
    let mut file = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
        {
            Ok(file) => break file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 2 => {
                tries += 1;
                let _ = std::fs::remove_file(&temp);
            }
            Err(e) => return Err(failed("create", e)),
        }
    };
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| {
            pause_point(state_dir, "temp-written");
            file.sync_all()
        })
        .map_err(|e| failed("write", e))
        .and_then(|()| {
            pause_point(state_dir, "temp-synced");
            std::fs::rename(&temp, path).map_err(|e| failed("rename", e))
        });
    drop(file);
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    pause_point(state_dir, "renamed");
    if let Err(error) = stagger_service::files::sync_dir(path) {
        // pmxcfs replicates the rename itself; a directory fsync it refuses is no loss.
        tracing::debug!(%error, "Could not fsync the directory of jobs.cfg.");
    }
    Ok(())
}

/// The environment variable naming a step where the agent stops (tests only:
/// the crash-injection test kills it there with SIGKILL).
pub const PAUSE_ENV: &str = "STAGGER_AGENT_TEST_PAUSE_AT";

/// At step `name`, if [`PAUSE_ENV`] names it: leaves `<state-dir>/paused-at-<name>`
/// and waits for the kill. Does nothing otherwise.
fn pause_point(state_dir: &Path, name: &str) {
    if std::env::var_os(PAUSE_ENV).is_some_and(|v| v == name) {
        let _ = std::fs::write(state_dir.join(format!("paused-at-{name}")), b"");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const CFG: &str = "# hand-written, keep this comment\n\
        vzdump: backup-a\n\tschedule 02:00\n\tnode pihanga\n\tstorage pbs\n\n\
        vzdump: backup-b\n\tschedule 03:00\n\tnode ruapehu\n\n\
        vzdump: backup-all\n\tschedule 04:00\n\tall 1\n\n\
        realm-sync: ldap\n\trealm ldap\n\tschedule daily\n\tscope users\n";

    struct Fixture {
        _dir: tempfile::TempDir,
        file: JobsFile,
    }

    fn fixture(text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pve = dir.path().join("pve");
        std::fs::create_dir_all(&pve).unwrap();
        std::fs::write(pve.join("jobs.cfg"), text).unwrap();
        let state = dir.path().join("state");
        let file = JobsFile {
            path: pve.join("jobs.cfg"),
            lock_dir: pve.join("priv/lock"),
            kept: Kept::new(state.join("backups"), 5),
            audit_log: state.join("audit.log"),
            lock_timeout: Duration::from_millis(500),
            node: "pihanga".into(),
            state_dir: state,
            lock_waits: Histogram::new([1.0]),
        };
        Fixture { _dir: dir, file }
    }

    fn request(digest: &str, changes: &[(&str, &str)]) -> ApplyRequest {
        ApplyRequest {
            digest: digest.into(),
            changes: changes
                .iter()
                .map(|(job, schedule)| ScheduleChange {
                    job: (*job).into(),
                    schedule: (*schedule).into(),
                })
                .collect(),
        }
    }

    fn digest(text: &str) -> String {
        Digest::of(text.as_bytes()).to_string()
    }

    #[test]
    fn an_apply_changes_only_the_schedule_values_and_keeps_the_old_file() {
        let f = fixture(CFG);
        let outcome = f
            .file
            .apply(
                &request(
                    &digest(CFG),
                    &[("backup-a", " 02:35 UTC "), ("backup-all", "04:00")],
                ),
                "test",
                100,
            )
            .unwrap();
        let now = std::fs::read_to_string(&f.file.path).unwrap();
        assert_eq!(now, CFG.replace("schedule 02:00", "schedule 02:35 UTC"));
        assert_eq!(outcome.digest, digest(&now));
        assert_eq!(outcome.previous_digest, digest(CFG));
        assert_eq!(outcome.changed.len(), 1, "backup-all did not change");
        assert_eq!(
            f.file.kept.find(&Digest::of(CFG.as_bytes())).as_deref(),
            Some(CFG)
        );
        let audit = std::fs::read_to_string(&f.file.audit_log).unwrap();
        assert!(
            audit.contains(r#""job":"backup-a","old":"02:00","new":"02:35 UTC""#),
            "{audit}"
        );
        assert!(
            !f.file.lock_dir.join(lock::LOCK_ID).exists(),
            "lock released"
        );
        let names: Vec<_> = std::fs::read_dir(f.file.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp.")), "{names:?}");
    }

    #[test]
    fn an_unchanged_schedule_leaves_the_file_and_digest_alone() {
        let f = fixture(CFG);
        let outcome = f
            .file
            .apply(&request(&digest(CFG), &[("backup-a", "02:00")]), "t", 1)
            .unwrap();
        assert_eq!(outcome.digest, digest(CFG));
        assert!(outcome.changed.is_empty());
        assert!(!f.file.audit_log.exists());
    }

    #[test]
    fn refusals_leave_the_file_untouched() {
        let f = fixture(CFG);
        let d = digest(CFG);
        let cases: Vec<(ApplyRequest, &str)> = vec![
            (request("abc", &[("backup-a", "02:10")]), "400"),
            (request(&"0".repeat(40), &[("backup-a", "02:10")]), "409"),
            (
                request(&d, &[("backup-b", "02:10")]),
                "runs on node 'ruapehu'",
            ),
            (request(&d, &[("backup-nope", "02:10")]), "no backup job"),
            (request(&d, &[("ldap", "02:10")]), "no backup job"),
            (
                request(&d, &[("backup-a", "02:10\n\tnode x")]),
                "control character",
            ),
            (
                request(&d, &[("backup-a", "02:10\n\nvzdump: evil")]),
                "control character",
            ),
            (request(&d, &[("backup-a", "25:61")]), "invalid schedule"),
            (
                request(&d, &[("backup-a", "02:10"), ("backup-a", "02:20")]),
                "more than once",
            ),
        ];
        for (req, expect) in cases {
            let err = f.file.apply(&req, "t", 1).unwrap_err();
            let text = match &err {
                ChangeError::BadRequest(_) => format!("400 {err}"),
                ChangeError::Stale { .. } => format!("409 {err}"),
                other => other.to_string(),
            };
            assert!(text.contains(expect), "{req:?}: {text}");
            assert_eq!(std::fs::read_to_string(&f.file.path).unwrap(), CFG);
        }
        assert!(!f.file.lock_dir.join(lock::LOCK_ID).exists());
    }

    #[test]
    fn a_file_proxmox_cannot_write_back_is_not_edited() {
        let broken = "vzdump: backup-a\n\tschedule 02:00\n\tnode pihanga\n\n\
                      vzdump: no-schedule\n\tstorage local\n";
        let f = fixture(broken);
        let err = f
            .file
            .apply(&request(&digest(broken), &[("backup-a", "02:10")]), "t", 1)
            .unwrap_err();
        assert!(matches!(err, ChangeError::Refused(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&f.file.path).unwrap(), broken);
    }

    #[test]
    fn a_held_lock_gives_busy() {
        let f = fixture(CFG);
        std::fs::create_dir_all(f.file.lock_dir.join(lock::LOCK_ID)).unwrap();
        let err = f
            .file
            .apply(&request(&digest(CFG), &[("backup-a", "02:10")]), "t", 1)
            .unwrap_err();
        assert!(matches!(err, ChangeError::Busy(_)), "{err}");
        assert!(
            err.to_string().contains("got lock request timeout"),
            "{err}"
        );
    }

    #[test]
    fn a_rollback_restores_the_kept_copy() {
        let f = fixture(CFG);
        let applied = f
            .file
            .apply(&request(&digest(CFG), &[("backup-a", "05:00")]), "t", 10)
            .unwrap();
        let back = f
            .file
            .rollback(
                &RollbackRequest {
                    to_digest: digest(CFG),
                    expect_digest: applied.digest.clone(),
                },
                "t",
                20,
            )
            .unwrap();
        assert_eq!(std::fs::read_to_string(&f.file.path).unwrap(), CFG);
        assert_eq!(back.digest, digest(CFG));
        assert_eq!(back.changed[0].schedule, "02:00");
        let stale = f.file.rollback(
            &RollbackRequest {
                to_digest: applied.digest.clone(),
                expect_digest: applied.digest.clone(),
            },
            "t",
            30,
        );
        assert!(matches!(stale, Err(ChangeError::Stale { .. })));
        let missing = f.file.rollback(
            &RollbackRequest {
                to_digest: "1".repeat(40),
                expect_digest: digest(CFG),
            },
            "t",
            30,
        );
        assert!(matches!(missing, Err(ChangeError::NotFound(_))));
    }
}
