//! The hook's side of the lease service: ask the coordinator for a lease at
//! `job-start` and wait for the grant (bounded), release it at the end.
//!
//! Every error is "go": the caller gets a [`Wait::FailOpen`] with the reason,
//! records it and lets the backup start. Connecting is given
//! [`CONNECT_TIMEOUT`], so a coordinator that is down costs about a second;
//! the whole wait never goes past the deadline the caller sets
//! (`lease-wait-max-secs` after the hook started).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scheduler_core::report::{LeaseRelease, LeaseRequest, LeaseResponse};
use serde::{Deserialize, Serialize};
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;

use crate::config::CoordinatorConfig;
use crate::metrics::FailOpen;

/// How long connecting to the coordinator may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);
/// The longest the coordinator holds one request open (CONTRACTS: min(wait, 60)).
const HOLD_MAX_SECS: u64 = 60;
/// Time allowed beyond the held-open wait for the answer to arrive.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// How the wait for a lease ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// Granted after waiting `waited`.
    Granted {
        /// The grant.
        lease: LeaseResponse,
        /// How long the hook waited.
        waited: Duration,
    },
    /// Not granted: go anyway.
    FailOpen {
        /// Why.
        reason: FailOpen,
        /// What happened, for the log.
        message: String,
        /// How long the hook waited.
        waited: Duration,
    },
}

/// A client for the coordinator of `config`.
pub fn client(config: &CoordinatorConfig) -> Result<Client, (FailOpen, String)> {
    let token =
        Secret::load(&config.token_file).map_err(|e| (FailOpen::no_config, e.to_string()))?;
    let trust = match &config.fingerprint {
        Some(fingerprint) => pve_api::Trust::Fingerprint(
            fingerprint
                .parse()
                .map_err(|e: pve_api::Error| (FailOpen::no_config, e.to_string()))?,
        ),
        None => pve_api::Trust::System,
    };
    Client::new(Endpoint {
        url: config.url.clone(),
        token: Some(token),
        trust,
        timeout: Duration::from_secs(HOLD_MAX_SECS) + ANSWER_MARGIN,
        connect_timeout: CONNECT_TIMEOUT,
    })
    .map_err(|e| (FailOpen::no_config, e.to_string()))
}

/// Asks for the lease of `request` until it is granted or `deadline` passes.
pub async fn wait_for_lease(client: &Client, mut request: LeaseRequest, deadline: Instant) -> Wait {
    let started = Instant::now();
    let fail = |reason, message: String| Wait::FailOpen {
        reason,
        message,
        waited: started.elapsed(),
    };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(100) {
            return fail(
                FailOpen::timeout,
                format!("no grant within {} s", started.elapsed().as_secs()),
            );
        }
        // Ask the server to hold the request a little less than what is left,
        // so its answer arrives before the deadline.
        let hold = remaining
            .saturating_sub(ANSWER_MARGIN)
            .as_secs()
            .min(HOLD_MAX_SECS);
        request.wait_secs = hold;
        let asked = Instant::now();
        let answer = tokio::time::timeout(
            remaining,
            client.post::<_, LeaseResponse>("/v1/lease", &request),
        )
        .await;
        match answer {
            Err(_) => {
                return fail(
                    FailOpen::timeout,
                    format!("no grant within {} s", started.elapsed().as_secs()),
                )
            }
            Ok(Ok(lease)) if lease.granted => {
                return Wait::Granted {
                    lease,
                    waited: started.elapsed(),
                }
            }
            Ok(Ok(queued)) => {
                tracing::debug!(
                    reason = queued.reason.as_str(),
                    "Still queued for the lease."
                );
                // A server that answered at once instead of holding: do not spin.
                let held = asked.elapsed();
                if held < Duration::from_secs(hold.min(5)) {
                    let pause = Duration::from_secs(hold.min(5)) - held;
                    tokio::time::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
            }
            Ok(Err(error)) => {
                let reason = match &error {
                    stagger_service::Error::Status { .. } => FailOpen::refused,
                    stagger_service::Error::Decode { .. } => FailOpen::bad_answer,
                    stagger_service::Error::Unreachable { .. }
                    | stagger_service::Error::Tls { .. }
                    | stagger_service::Error::Identity { .. } => FailOpen::unreachable,
                    _ => FailOpen::other,
                };
                return fail(reason, error.to_string());
            }
        }
    }
}

/// Releases a lease (best effort: an unknown lease is already gone).
pub async fn release(client: &Client, lease_id: &str) -> Result<(), String> {
    let body = LeaseRelease {
        lease_id: lease_id.to_owned(),
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        client.post::<_, serde_json::Value>("/v1/lease/release", &body),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(stagger_service::Error::Status { status: 404, .. })) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

/// A lease the hook holds, kept in `state-dir/leases/` from `job-start` to `job-end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldLease {
    /// The run's task.
    pub upid: String,
    /// The job.
    pub job: String,
    /// The lease id.
    pub lease_id: String,
    /// When it expires on its own, Unix seconds.
    #[serde(default)]
    pub expires: Option<i64>,
}

/// The file of the lease held by run `upid`.
pub fn lease_file(dir: &Path, upid: &str) -> PathBuf {
    dir.join(format!("{}.json", upid.replace([':', '/'], "_")))
}

/// Removes the lease files in `dir` whose lease expired before `now` (a run
/// that never reached `job-end`: the host rebooted) or that cannot be read.
pub fn forget_expired(dir: &Path, now: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let held = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<HeldLease>(&bytes).ok());
        if held.is_none_or(|h| h.expires.is_some_and(|expires| expires < now)) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn expired_and_unreadable_lease_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let lease = |upid: &str, expires| HeldLease {
            upid: upid.into(),
            job: "backup-a".into(),
            lease_id: "l1".into(),
            expires,
        };
        for held in [
            lease("UPID:a:1", Some(100)),
            lease("UPID:a:2", Some(300)),
            lease("UPID:a:3", None),
        ] {
            let path = lease_file(dir.path(), &held.upid);
            std::fs::write(path, serde_json::to_vec(&held).unwrap()).unwrap();
        }
        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        forget_expired(dir.path(), 200);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["UPID_a_2.json", "UPID_a_3.json"]);
    }
}
