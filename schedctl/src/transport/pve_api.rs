//! The Proxmox API transport, through `pve-api`: jobs via `GET`/`PUT
//! /cluster/backup`, the zone via `/nodes/{node}/time`, runs via
//! `/nodes/{node}/tasks`.
//!
//! The API shows no jobs.cfg digest and its `PUT` takes none, so this
//! transport defines its own **job-list digest**: the SHA-1 (hex) of the job
//! list of `GET /cluster/backup` as JSON, in the API's order, each job's keys
//! sorted, without `next-run` (which moves with the clock). Any change to any
//! job changes it; it never equals a file digest. An apply reads the list and
//! compares the digest right before writing, writes each changed schedule
//! with `PUT /cluster/backup/{id}` (Proxmox rewrites the whole jobs.cfg in
//! its canonical form), sets back the ones already written if a later one
//! fails, and reads the list again for the new digest and the new schedules.

use std::time::Duration;

use pve_api::{BackupJob, Client, JobUpdate, TaskQuery, TaskSource};
use scheduler_core::calendar::CalendarEvent;
use scheduler_core::report::{
    ApplyRequest, ApplyResponse, HostReport, JobReport, JobsCfgState, ScheduleChange,
};
use sha1::{Digest as _, Sha1};

use super::proxmox_writes::{effective_changes, set_each, ProxmoxWrites, SetSchedule};
use super::runs;
use super::{read_secret, SetupError, TransportError};
use crate::config::{PveApiTransport, TransportKind};

/// vzdump tasks asked for per report.
const TASKS_LIMIT: u64 = 500;

/// A host reached through the Proxmox API.
pub struct PveApiHost {
    host: String,
    client: Client,
}

impl PveApiHost {
    /// Reads the token file and checks the settings; does not connect.
    pub fn new(
        host: &str,
        config: &PveApiTransport,
        timeout: Duration,
    ) -> Result<PveApiHost, SetupError> {
        let setup = |message: String| SetupError {
            host: host.to_owned(),
            message,
        };
        let token = read_secret(host, &config.token_file, "API token")?
            .parse()
            .map_err(|e| {
                setup(format!(
                    "{} holds no usable API token: {e}",
                    config.token_file.display()
                ))
            })?;
        let fingerprint = config
            .fingerprint
            .parse()
            .map_err(|e| setup(format!("pve-api.fingerprint: {e}")))?;
        let client = Client::new(pve_api::Config {
            base_url: config.url.clone(),
            token,
            trust: pve_api::Trust::Fingerprint(fingerprint),
            timeout,
        })
        .map_err(|e| setup(format!("pve-api: {e}")))?;
        Ok(PveApiHost {
            host: host.to_owned(),
            client,
        })
    }

    fn error(&self, err: pve_api::Error) -> TransportError {
        let host = self.host.clone();
        match err {
            pve_api::Error::Connect { .. }
            | pve_api::Error::Timeout { .. }
            | pve_api::Error::Transport { .. } => TransportError::Unreachable {
                host,
                detail: err.to_string(),
            },
            pve_api::Error::FingerprintMismatch { .. } | pve_api::Error::Tls { .. } => {
                TransportError::Identity {
                    host,
                    detail: err.to_string(),
                }
            }
            pve_api::Error::Decode { .. } => TransportError::Protocol {
                host,
                detail: err.to_string(),
            },
            pve_api::Error::Unauthorized { .. }
            | pve_api::Error::Forbidden { .. }
            | pve_api::Error::NoSuchJob { .. }
            | pve_api::Error::Http {
                status: 400..=499, ..
            } => TransportError::Refused {
                host,
                message: err.to_string(),
            },
            _ => TransportError::Failed {
                host,
                detail: err.to_string(),
            },
        }
    }

    async fn jobs(&self) -> Result<(Vec<BackupJob>, String), TransportError> {
        let jobs = self.client.backup_jobs().await.map_err(|e| self.error(e))?;
        let digest = job_list_digest(&jobs);
        Ok((jobs, digest))
    }

    fn check(&self, jobs: &[BackupJob], changes: &[ScheduleChange]) -> Result<(), TransportError> {
        let refused = |message: String| TransportError::Refused {
            host: self.host.clone(),
            message,
        };
        for change in changes {
            let Some(job) = jobs.iter().find(|j| j.id == change.job) else {
                return Err(refused(format!("there is no backup job '{}'", change.job)));
            };
            if let Some(node) = job.node.as_deref().filter(|n| *n != self.host) {
                return Err(refused(format!(
                    "job '{}' runs on node '{node}', not on {}",
                    change.job, self.host
                )));
            }
            if change.schedule.chars().any(char::is_control) {
                return Err(refused(format!(
                    "schedule {:?} holds a control character",
                    change.schedule
                )));
            }
            CalendarEvent::parse(change.schedule.trim()).map_err(|e| {
                refused(format!(
                    "job '{}': '{}' is not a calendar event: {e}",
                    change.job, change.schedule
                ))
            })?;
        }
        Ok(())
    }
}

impl SetSchedule for PveApiHost {
    type Error = pve_api::Error;

    async fn set_schedule(&self, job: &str, schedule: &str) -> Result<(), pve_api::Error> {
        self.client
            .update_backup_job(job, &JobUpdate::schedule(schedule))
            .await
    }

    fn failed(&self, error: pve_api::Error) -> TransportError {
        self.error(error)
    }
}

impl ProxmoxWrites for PveApiHost {
    const KIND: TransportKind = TransportKind::PveApi;

    fn name(&self) -> &str {
        &self.host
    }

    async fn read_report(&self) -> Result<HostReport, TransportError> {
        let query = TaskQuery {
            typefilter: Some("vzdump".to_owned()),
            source: Some(TaskSource::All),
            limit: Some(TASKS_LIMIT),
            ..TaskQuery::default()
        };
        let (time, jobs, tasks) = tokio::join!(
            self.client.node_time(&self.host),
            self.jobs(),
            self.client.node_tasks(&self.host, &query),
        );
        let time = time.map_err(|e| self.error(e))?;
        let (jobs, digest) = jobs?;
        let tasks = tasks.map_err(|e| self.error(e))?.tasks;
        let own: Vec<&BackupJob> = jobs
            .iter()
            .filter(|j| j.job_type.as_deref().unwrap_or("vzdump") == "vzdump")
            .filter(|j| j.node.as_deref().is_none_or(|n| n == self.host))
            .filter(|j| j.schedule.is_some())
            .collect();
        let own = own
            .into_iter()
            .map(|j| JobReport {
                id: j.id.clone(),
                schedule: j.schedule.clone().unwrap_or_default(),
                enabled: j.enabled,
                node: j.node.clone(),
                storage: j.storage.clone(),
                runs: Vec::new(),
                stats: None,
            })
            .collect();
        let jobs_cfg = JobsCfgState {
            digest,
            text: None,
            warnings: Vec::new(),
        };
        Ok(runs::host_report(
            &self.host, own, &time, &tasks, "pve-api", jobs_cfg,
        ))
    }

    async fn write(&self, request: &ApplyRequest) -> Result<ApplyResponse, TransportError> {
        let (jobs, previous_digest) = self.jobs().await?;
        if previous_digest != request.digest {
            return Err(TransportError::Stale {
                host: self.host.clone(),
                current_digest: previous_digest,
            });
        }
        self.check(&jobs, &request.changes)?;
        let current = |id: &str| {
            jobs.iter()
                .find(|j| j.id == id)
                .and_then(|j| j.schedule.clone())
        };
        let changes = effective_changes(&request.changes, current);
        set_each(self, &self.host, &changes).await?;
        let (after, digest) = self.jobs().await?;
        for (change, _) in &changes {
            let now = after
                .iter()
                .find(|j| j.id == change.job)
                .and_then(|j| j.schedule.clone());
            if now.as_deref() != Some(change.schedule.trim()) {
                return Err(TransportError::Protocol {
                    host: self.host.clone(),
                    detail: format!(
                        "after the write, the API shows schedule {now:?} for job '{}', not '{}'",
                        change.job, change.schedule
                    ),
                });
            }
        }
        Ok(ApplyResponse {
            previous_digest,
            digest,
            changed: changes.into_iter().map(|(c, _)| c.clone()).collect(),
        })
    }
}

/// The job-list digest (see the module doc): SHA-1 hex of the job list as
/// JSON, API order, keys sorted, `next-run` removed.
pub fn job_list_digest(jobs: &[BackupJob]) -> String {
    let list: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            let mut value = serde_json::to_value(job).unwrap_or(serde_json::Value::Null);
            if let Some(map) = value.as_object_mut() {
                map.remove("next-run");
            }
            value
        })
        .collect();
    // serde_json's maps are sorted by key (no `preserve_order`): the text is canonical.
    let text = serde_json::Value::Array(list).to_string();
    hex::encode(Sha1::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: serde_json::Value) -> BackupJob {
        serde_json::from_value(json).expect("job")
    }

    #[test]
    fn the_job_list_digest_ignores_next_run_and_key_order_but_not_schedules() {
        let a = job(
            serde_json::json!({"id": "b", "type": "vzdump", "schedule": "02:00", "storage": "pbs", "next-run": 1}),
        );
        let b = job(
            serde_json::json!({"storage": "pbs", "next-run": 99, "schedule": "02:00", "type": "vzdump", "id": "b"}),
        );
        let c = job(
            serde_json::json!({"id": "b", "type": "vzdump", "schedule": "02:35 UTC", "storage": "pbs"}),
        );
        assert_eq!(
            job_list_digest(std::slice::from_ref(&a)),
            job_list_digest(&[b])
        );
        assert_ne!(
            job_list_digest(std::slice::from_ref(&a)),
            job_list_digest(&[c])
        );
        assert_eq!(job_list_digest(&[a]).len(), 40);
    }
}
