//! How schedctl reaches a host: the agent's API, `pvesh` over SSH, or the Proxmox API.
//!
//! Every transport answers the same three questions, with the agent API's
//! types from `scheduler_core::report`: what does the host have
//! ([`HostTransport::report`]), write these schedules if jobs.cfg still has
//! this digest ([`HostTransport::apply`]), and put back the copy with that
//! digest ([`HostTransport::rollback`]).

use std::future::Future;
use std::pin::Pin;

use scheduler_core::report::{ApplyRequest, ApplyResponse, HostReport, RollbackRequest};

/// A boxed future, so transports of different kinds sit in one list.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One host's connection, whatever carries it.
pub trait HostTransport: Send + Sync {
    /// The host's name as configured.
    fn host(&self) -> &str;
    /// The host's jobs, their runs, its load and jobs.cfg's digest and text.
    fn report(&self) -> BoxFuture<'_, Result<HostReport, TransportError>>;
    /// Writes new schedules if jobs.cfg still has `request.digest`.
    fn apply<'a>(
        &'a self,
        request: &'a ApplyRequest,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>>;
    /// Restores the kept copy of jobs.cfg with `request.to_digest`.
    fn rollback<'a>(
        &'a self,
        request: &'a RollbackRequest,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>>;
}

/// Why a host could not be asked or refused what was asked.
#[derive(Debug, thiserror::Error)]
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
    /// The host answered something that makes no sense.
    #[error("{host}: bad answer: {detail}")]
    Protocol {
        /// The host.
        host: String,
        /// What was wrong with the answer.
        detail: String,
    },
}
