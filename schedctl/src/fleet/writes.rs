//! One host's write and one host's undo, each checked: a write must start
//! from the digest it expects and is read back afterwards; an undo must find
//! the digest the write left.

use std::time::Duration;

use scheduler_core::report::{ApplyRequest, ApplyResponse, RollbackRequest, ScheduleChange};

use crate::transport::{HostTransport, Rollback, TransportError};

/// Writes `changes` if jobs.cfg is at `expected`, then reads the host again:
/// its digest must be the one the write reported and every changed job must
/// have its new schedule.
pub async fn write_checked(
    transport: &dyn HostTransport,
    expected: &str,
    changes: &[ScheduleChange],
    timeout: Duration,
) -> Result<ApplyResponse, (Option<ApplyResponse>, TransportError)> {
    let request = ApplyRequest {
        digest: expected.to_owned(),
        changes: changes.to_vec(),
    };
    let host = transport.host().to_owned();
    let timed_out = |what: &str| TransportError::Unreachable {
        host: host.clone(),
        detail: format!("no answer to the {what} within {} s", timeout.as_secs()),
    };
    let response = match tokio::time::timeout(timeout, transport.apply(&request)).await {
        Err(_) => return Err((None, timed_out("write"))),
        Ok(Err(err)) => return Err((None, err)),
        Ok(Ok(response)) => response,
    };
    if response.previous_digest != expected {
        let err = TransportError::Protocol {
            host: host.clone(),
            detail: format!(
                "the write started from digest {}, not the expected {expected}",
                response.previous_digest
            ),
        };
        return Err((Some(response), err));
    }
    let report = match tokio::time::timeout(timeout, transport.report()).await {
        Err(_) => return Err((Some(response), timed_out("read-back"))),
        Ok(Err(err)) => return Err((Some(response), err)),
        Ok(Ok(report)) => report,
    };
    if report.jobs_cfg.digest != response.digest {
        let err = TransportError::Protocol {
            host: host.clone(),
            detail: format!(
                "read back, jobs.cfg has digest {} instead of {} that the write reported: it changed again",
                report.jobs_cfg.digest, response.digest
            ),
        };
        return Err((Some(response), err));
    }
    for change in changes {
        let now = report
            .jobs
            .iter()
            .find(|j| j.id == change.job)
            .map(|j| j.schedule.trim());
        if now != Some(change.schedule.trim()) {
            let err = TransportError::Protocol {
                host: host.clone(),
                detail: format!(
                    "read back, job '{}' has schedule {now:?} instead of '{}'",
                    change.job, change.schedule
                ),
            };
            return Err((Some(response), err));
        }
    }
    Ok(response)
}

/// Undoes one host's write: back to `before` if jobs.cfg is still at `after`.
pub async fn undo(
    transport: &dyn HostTransport,
    before: &str,
    after: &str,
    previous: &[ScheduleChange],
    timeout: Duration,
) -> Result<ApplyResponse, TransportError> {
    let rollback = Rollback {
        request: RollbackRequest {
            to_digest: before.to_owned(),
            expect_digest: after.to_owned(),
        },
        schedules: previous.to_vec(),
    };
    match tokio::time::timeout(timeout, transport.rollback(&rollback)).await {
        Err(_) => Err(TransportError::Unreachable {
            host: transport.host().to_owned(),
            detail: format!("no answer to the rollback within {} s", timeout.as_secs()),
        }),
        Ok(result) => result,
    }
}
