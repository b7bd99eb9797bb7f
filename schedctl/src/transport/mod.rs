//! How schedctl reaches a host: the agent's API, `pvesh` over SSH, or the Proxmox API.
//!
//! Every transport answers the same three questions, with the agent API's
//! types from `scheduler_core::report`: what does the host have
//! ([`HostTransport::report`]), write these schedules if jobs.cfg still has
//! this digest ([`HostTransport::apply`]), and undo an apply
//! ([`HostTransport::rollback`]).
//!
//! | file | transport |
//! | --- | --- |
//! | `agent.rs` | the agent API over HTTPS, pinned certificate, bearer token (`stagger_service::client`) |
//! | `ssh.rs` | russh to the host's sshd, pinned host key; `pvesh get|set` and jobs.cfg's bytes there |
//! | `pve_api.rs` | the Proxmox API through `pve-api`, pinned certificate |
//! | `proxmox_writes.rs` | what SSH and the Proxmox API share: Proxmox writes one job at a time, a rollback writes the previous schedules |
//! | `runs.rs` | Proxmox's vzdump tasks as the runs of the jobs they belong to (SSH and Proxmox API) |
//!
//! The agent writes jobs.cfg byte for byte and keeps the previous file; over
//! SSH and the Proxmox API, Proxmox itself writes, which renormalises the
//! whole file ([`TransportKind::rewrites_whole_file`]), and a rollback sets
//! the previous schedules back ([`Rollback::schedules`]).

pub mod agent;
mod proxmox_writes;
pub mod pve_api;
mod runs;
pub mod ssh;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use scheduler_core::report::{
    ApplyRequest, ApplyResponse, HostReport, RollbackRequest, ScheduleChange,
};

use crate::config::{HostConfig, TransportKind};

/// A boxed future, so transports of different kinds sit in one list.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One host's connection, whatever carries it.
pub trait HostTransport: Send + Sync {
    /// The host's name as configured.
    fn host(&self) -> &str;
    /// Which transport this is.
    fn kind(&self) -> TransportKind;
    /// The host's jobs, their runs, its load and jobs.cfg's digest and text.
    fn report(&self) -> BoxFuture<'_, Result<HostReport, TransportError>>;
    /// Writes new schedules if jobs.cfg still has `request.digest`.
    fn apply<'a>(
        &'a self,
        request: &'a ApplyRequest,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>>;
    /// Undoes an apply: restores the kept copy with `to_digest` (agent) or sets
    /// the previous schedules back (SSH, Proxmox API), if jobs.cfg is still at
    /// `expect_digest`.
    fn rollback<'a>(
        &'a self,
        rollback: &'a Rollback,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>>;
}

/// What undoing one host's apply needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The agent's request: the digest to go back to and the one jobs.cfg must have now.
    pub request: RollbackRequest,
    /// The schedules before the apply, for transports that keep no copy of the file.
    pub schedules: Vec<ScheduleChange>,
}

/// Why a host could not be asked or refused what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The host could not be reached (connection refused, timeout, TLS or SSH handshake).
    #[error("{host}: unreachable: {detail}")]
    Unreachable {
        /// The host.
        host: String,
        /// What failed, and what to check.
        detail: String,
    },
    /// The host's identity is not the pinned one (certificate fingerprint or SSH host key).
    #[error("{host}: {detail}")]
    Identity {
        /// The host.
        host: String,
        /// The pinned and the presented identity, and what to do.
        detail: String,
    },
    /// jobs.cfg changed since the plan was made.
    #[error("{host}: jobs.cfg changed since the plan was made (digest now {current_digest}); plan again")]
    Stale {
        /// The host.
        host: String,
        /// jobs.cfg's digest now.
        current_digest: String,
    },
    /// The host refused the request (bad token, a job not on this node, a value Proxmox cannot read).
    #[error("{host}: refused: {message}")]
    Refused {
        /// The host.
        host: String,
        /// The host's reason.
        message: String,
    },
    /// The host tried and failed (a `pvesh` error, a lock it could not take).
    #[error("{host}: failed: {detail}")]
    Failed {
        /// The host.
        host: String,
        /// What failed, and the state it left.
        detail: String,
    },
    /// The host answered something that makes no sense.
    #[error("{host}: bad answer: {detail}")]
    Protocol {
        /// The host.
        host: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl TransportError {
    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            TransportError::Unreachable { host, .. }
            | TransportError::Identity { host, .. }
            | TransportError::Stale { host, .. }
            | TransportError::Refused { host, .. }
            | TransportError::Failed { host, .. }
            | TransportError::Protocol { host, .. } => host,
        }
    }

    /// What to do about it, in a sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            TransportError::Unreachable { .. } => {
                "check that the host is up and the address, port and firewall in schedctl.toml"
            }
            TransportError::Identity { .. } => {
                "compare the presented identity with the host's own; if the change is expected, pin the new one in schedctl.toml"
            }
            TransportError::Stale { .. } => "run `schedctl plan` again, then apply the new plan",
            TransportError::Refused { .. } => "fix what the host names, then plan again",
            TransportError::Failed { .. } => "look at the host's state with `schedctl status`, fix the cause and retry",
            TransportError::Protocol { .. } => "check that the host runs a matching version of the agent or of Proxmox",
        }
    }
}

/// Why a transport could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("host \"{host}\": {message}")]
pub struct SetupError {
    /// The host.
    pub host: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The transport of one configured host; `timeout` bounds each connection and request.
pub fn for_host(
    host: &HostConfig,
    timeout: Duration,
) -> Result<Box<dyn HostTransport>, SetupError> {
    match (&host.agent, &host.ssh, &host.pve_api) {
        (None, Some(ssh), None) => Ok(Box::new(ssh::SshHost::new(&host.name, ssh, timeout)?)),
        (None, None, Some(api)) => Ok(Box::new(pve_api::PveApiHost::new(
            &host.name, api, timeout,
        )?)),
        (Some(agent), None, None) => {
            Ok(Box::new(agent::AgentHost::new(&host.name, agent, timeout)?))
        }
        _ => Err(SetupError {
            host: host.name.clone(),
            message: "needs exactly one of [host.agent], [host.ssh] or [host.pve-api]".to_owned(),
        }),
    }
}

/// Reads a one-line secret file (a token), trimmed; refuses an empty one.
fn read_secret(host: &str, path: &std::path::Path, what: &str) -> Result<String, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| SetupError {
        host: host.to_owned(),
        message: format!("cannot read the {what} file {}: {e}", path.display()),
    })?;
    let first = text.lines().next().unwrap_or("").trim().to_owned();
    if first.is_empty() {
        return Err(SetupError {
            host: host.to_owned(),
            message: format!(
                "the {what} file {} is empty; put the {what} on its first line",
                path.display()
            ),
        });
    }
    Ok(first)
}
