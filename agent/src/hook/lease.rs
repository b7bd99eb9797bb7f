//! The hook's side of the lease service: ask the coordinator for a lease at
//! `job-start` and wait for the grant (bounded), release it at the end.
//!
//! Every error is "go": the caller gets a [`Wait::FailOpen`] with the reason,
//! records it and lets the backup start. Connecting is given
//! [`CONNECT_TIMEOUT`], so a coordinator that is down costs about a second;
//! the whole wait never goes past the deadline the caller sets
//! (`lease-wait-max-secs` after the hook started).
//!
//! A hook that gives up while its request is queued withdraws it (a release
//! of the queued lease id): left in the queue, the request would be granted
//! once the resource frees, to a backup that is already running, and that
//! grant would hold the resource until it expires, since no `job-end` knows
//! of it. Between two asks the hook pauses at least [`MIN_ASK_INTERVAL`], so
//! a short wait is held by the server rather than asked in a tight loop.

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
/// The shortest time between two asks for the same lease.
pub const MIN_ASK_INTERVAL: Duration = Duration::from_millis(500);
/// How long a withdrawal may take: the hook is past its wait already.
pub const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(1);

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
        /// The id of the request the coordinator queued, if it did: the
        /// caller withdraws it.
        queued: Option<String>,
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
    let mut queued: Option<String> = None;
    let fail = |reason, message: String, queued: Option<String>| Wait::FailOpen {
        reason,
        message,
        waited: started.elapsed(),
        queued,
    };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(100) {
            return fail(
                FailOpen::timeout,
                format!("no grant within {} s", started.elapsed().as_secs()),
                queued,
            );
        }
        let hold = hold_secs(remaining);
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
                    queued,
                )
            }
            Ok(Ok(lease)) if lease.granted => {
                return Wait::Granted {
                    lease,
                    waited: started.elapsed(),
                }
            }
            Ok(Ok(answer)) => {
                tracing::debug!(
                    reason = answer.reason.as_str(),
                    "Still queued for the lease."
                );
                queued = Some(answer.lease_id);
                let pause = pause_before_asking_again(hold, asked.elapsed());
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
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
                return fail(reason, error.to_string(), queued);
            }
        }
    }
}

/// How long to ask the server to hold a request open when `remaining` is
/// left before the deadline: a little less, so that the answer arrives in
/// time ([`ANSWER_MARGIN`], or a quarter of what is left when that is
/// short), and at most [`HOLD_MAX_SECS`].
pub fn hold_secs(remaining: Duration) -> u64 {
    let margin = ANSWER_MARGIN.min(remaining / 4);
    remaining
        .saturating_sub(margin)
        .as_secs()
        .min(HOLD_MAX_SECS)
}

/// The pause before asking again after a "still queued" answer that came
/// `held` after asking for a hold of `hold` s: a server that answered
/// sooner (or a hold of 0) is not asked again in a tight loop.
pub fn pause_before_asking_again(hold: u64, held: Duration) -> Duration {
    Duration::from_secs(hold.min(5))
        .max(MIN_ASK_INTERVAL)
        .saturating_sub(held)
}

/// Releases a lease, granted or still queued (best effort: an unknown lease
/// is already gone), waiting at most `limit` for the answer.
pub async fn release(client: &Client, lease_id: &str, limit: Duration) -> Result<(), String> {
    let body = LeaseRelease {
        lease_id: lease_id.to_owned(),
    };
    match tokio::time::timeout(
        limit,
        client.post::<_, serde_json::Value>("/v1/lease/release", &body),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(stagger_service::Error::Status { status: 404, .. })) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs_f64())),
    }
}

/// A lease the hook holds, kept in `state-dir/leases/` from `job-start` to
/// `job-end`; also a queued request the hook could not withdraw when it gave
/// up, so that `job-end` withdraws it.
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
    fn a_short_lease_wait_is_held_by_the_server_not_asked_in_a_loop() {
        // lease-wait-max-secs = 2 once asked for a hold of 0 s, and answered
        // at once the hook asked again at once, for two seconds.
        assert_eq!(hold_secs(Duration::from_secs(2)), 1);
        assert_eq!(hold_secs(Duration::from_millis(900)), 0);
        assert!(
            pause_before_asking_again(0, Duration::from_millis(3)) >= Duration::from_millis(497)
        );
        // Long waits as before: five seconds for the answer, at most 60 s held.
        assert_eq!(hold_secs(Duration::from_secs(30)), 25);
        assert_eq!(hold_secs(Duration::from_secs(1800)), 60);
        assert_eq!(
            pause_before_asking_again(25, Duration::from_secs(25)),
            Duration::ZERO
        );
        assert_eq!(
            pause_before_asking_again(25, Duration::from_secs(1)),
            Duration::from_secs(4)
        );
    }

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
