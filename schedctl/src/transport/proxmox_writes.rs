//! What the SSH and the Proxmox API transports share: Proxmox itself writes
//! jobs.cfg, one job's schedule at a time (`pvesh set`, `PUT
//! /cluster/backup/{id}`), and keeps no copy of the file.
//!
//! A write sets each changed schedule in turn and, when one fails, sets the
//! ones already written back before it reports the failure ([`set_each`]). A
//! rollback is a write of the previous schedules, expecting the digest the
//! apply left ([`ProxmoxWrites`] gives both transports their
//! [`HostTransport`] this way).

use std::fmt::Display;
use std::future::Future;

use scheduler_core::report::{ApplyRequest, ApplyResponse, HostReport, ScheduleChange};

use super::{BoxFuture, HostTransport, Rollback, TransportError};
use crate::config::TransportKind;

/// A host where Proxmox writes jobs.cfg: its report and its checked write.
pub(super) trait ProxmoxWrites: Send + Sync {
    /// Which transport this is.
    const KIND: TransportKind;

    /// The host's name as configured.
    fn name(&self) -> &str;

    /// The host's jobs, their runs and jobs.cfg's digest.
    fn read_report(&self) -> impl Future<Output = Result<HostReport, TransportError>> + Send;

    /// Writes the schedules of `request` if the digest is still `request.digest`.
    fn write(
        &self,
        request: &ApplyRequest,
    ) -> impl Future<Output = Result<ApplyResponse, TransportError>> + Send;
}

impl<T: ProxmoxWrites> HostTransport for T {
    fn host(&self) -> &str {
        self.name()
    }

    fn kind(&self) -> TransportKind {
        T::KIND
    }

    fn report(&self) -> BoxFuture<'_, Result<HostReport, TransportError>> {
        Box::pin(self.read_report())
    }

    fn apply<'a>(
        &'a self,
        request: &'a ApplyRequest,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>> {
        Box::pin(self.write(request))
    }

    /// Writes the previous schedules back, if jobs.cfg is still where the apply left it.
    fn rollback<'a>(
        &'a self,
        rollback: &'a Rollback,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>> {
        Box::pin(async move {
            let request = ApplyRequest {
                digest: rollback.request.expect_digest.clone(),
                changes: rollback.schedules.clone(),
            };
            self.write(&request).await
        })
    }
}

/// Sets one job's schedule through Proxmox.
pub(super) trait SetSchedule: Sync {
    /// What a failed set reports.
    type Error: Display + Send;

    /// Sets `job`'s schedule to `schedule`.
    fn set_schedule(
        &self,
        job: &str,
        schedule: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The transport's error for a set that failed.
    fn failed(&self, error: Self::Error) -> TransportError;
}

/// The changes of `request` that set a schedule other than the current one,
/// each with the schedule it replaces.
pub(super) fn effective_changes(
    request: &[ScheduleChange],
    current: impl Fn(&str) -> Option<String>,
) -> Vec<(&ScheduleChange, String)> {
    request
        .iter()
        .filter_map(|c| {
            let old = current(&c.job);
            (old.as_deref() != Some(c.schedule.trim())).then(|| (c, old.unwrap_or_default()))
        })
        .collect()
}

/// Sets each change's schedule in turn; when one fails, sets the ones
/// already set back (newest first) and fails with what that left.
pub(super) async fn set_each<S: SetSchedule>(
    setter: &S,
    host: &str,
    changes: &[(&ScheduleChange, String)],
) -> Result<(), TransportError> {
    for (written, (change, _)) in changes.iter().enumerate() {
        if let Err(error) = setter
            .set_schedule(&change.job, change.schedule.trim())
            .await
        {
            let error = setter.failed(error);
            let restored = set_back(setter, &changes[..written]).await;
            return Err(TransportError::Failed {
                host: host.to_owned(),
                detail: format!("{error}; {restored}"),
            });
        }
    }
    Ok(())
}

/// Sets the schedules of `done` back; says what state that left.
async fn set_back<S: SetSchedule>(setter: &S, done: &[(&ScheduleChange, String)]) -> String {
    if done.is_empty() {
        return "nothing had been written on this host".to_owned();
    }
    let mut failed = Vec::new();
    for (change, old) in done.iter().rev() {
        if let Err(err) = setter.set_schedule(&change.job, old).await {
            failed.push(format!(
                "{} (still '{}': {err})",
                change.job, change.schedule
            ));
        }
    }
    if failed.is_empty() {
        format!(
            "the {} schedule(s) already written on this host were set back",
            done.len()
        )
    } else {
        format!("setting back failed for {}", failed.join(", "))
    }
}
