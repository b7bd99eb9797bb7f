//! The API backend: schedules written through Proxmox's own API
//! (`PUT /cluster/backup/{id}`), which writes jobs.cfg under its own cluster
//! lock and renormalises the whole file (comments and hand formatting go).
//!
//! Proxmox's API has no digest parameter, so the agent first reads jobs.cfg
//! itself, compares the digest and checks every change exactly as the file
//! backend does; only then does it send one update per changed job. Between
//! the check and Proxmox's write another writer may come in: that window is
//! the API's, and the file backend (the default) has none.

use scheduler_core::jobs_cfg::{Digest, JobsCfg};
use scheduler_core::report::{ApplyRequest, ApplyResponse, RollbackRequest};

use super::{check_changes, parse_digest, ChangeError, Edit, JobsFile};

impl JobsFile {
    /// `PUT /v1/schedules` through Proxmox's API.
    pub async fn apply_via_api(
        &self,
        client: &pve_api::Client,
        request: &ApplyRequest,
        who: &str,
        now: i64,
    ) -> Result<ApplyResponse, ChangeError> {
        let expected = parse_digest(&request.digest, "digest")?;
        check_changes(&request.changes)?;
        let edit = self.apply_edit(request, &expected)?;
        self.send(client, &edit, now, who, "apply").await
    }

    /// `POST /v1/rollback` through Proxmox's API: the schedules of the kept
    /// copy are put back job by job (Proxmox rewrites the file, so its digest
    /// afterwards is that of Proxmox's rendering, not the kept copy's).
    pub async fn rollback_via_api(
        &self,
        client: &pve_api::Client,
        request: &RollbackRequest,
        who: &str,
        now: i64,
    ) -> Result<ApplyResponse, ChangeError> {
        let target_digest = parse_digest(&request.to_digest, "to_digest")?;
        let expected = parse_digest(&request.expect_digest, "expect_digest")?;
        let target = self.kept_copy(&target_digest)?;
        let mut edit = self.rollback_edit(request, &expected, &target)?;
        // Only the schedules go back through the API; keep the rest as it is.
        let mut cfg = JobsCfg::parse(&edit.before);
        for (job, _, new) in &edit.changed {
            cfg.set_schedule(job, new)
                .map_err(|e| ChangeError::Refused(format!("job '{job}': {e}")))?;
        }
        edit.after = cfg.render();
        self.send(client, &edit, now, who, "rollback").await
    }

    async fn send(
        &self,
        client: &pve_api::Client,
        edit: &Edit,
        now: i64,
        who: &str,
        action: &str,
    ) -> Result<ApplyResponse, ChangeError> {
        let previous = Digest::of(edit.before.as_bytes());
        if !edit.changed.is_empty() {
            self.kept
                .keep(&edit.before, &previous, now)
                .map_err(|e| anyhow::anyhow!("cannot keep a copy of jobs.cfg: {e:#}"))?;
        }
        for (job, _, new) in &edit.changed {
            client
                .update_backup_job(job, &pve_api::JobUpdate::schedule(new.clone()))
                .await
                .map_err(|e| api_error(job, e))?;
        }
        let after = self.read()?;
        let response = ApplyResponse {
            previous_digest: previous.to_string(),
            digest: Digest::of(after.as_bytes()).to_string(),
            changed: super::changes_of(edit),
        };
        let written = Edit {
            before: edit.before.clone(),
            after,
            changed: edit.changed.clone(),
        };
        self.record(&written, &response, who, action, "api", now);
        Ok(response)
    }
}

/// What a failed Proxmox update means for the caller.
fn api_error(job: &str, error: pve_api::Error) -> ChangeError {
    match &error {
        pve_api::Error::Http { status: 400, .. } | pve_api::Error::NoSuchJob { .. } => {
            ChangeError::Refused(format!(
                "Proxmox refused the schedule of job '{job}': {error}"
            ))
        }
        pve_api::Error::Http { message, .. } if message.contains("got lock request timeout") => {
            ChangeError::Busy(format!(
                "Proxmox could not take jobs.cfg's cluster lock for job '{job}': {error}; try again"
            ))
        }
        _ => ChangeError::Failed(anyhow::anyhow!(
            "Proxmox's API failed to update job '{job}': {error}"
        )),
    }
}
