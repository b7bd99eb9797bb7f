//! What Stagger's two daemons, `sched-agent` and `schedctl serve`, share at
//! their edge, and what their clients need to talk to them.
//!
//! Both serve a small JSON API over HTTPS with a self-signed certificate that
//! clients pin by its SHA-256 fingerprint (the way Proxmox's port 8006 is
//! pinned), both ask for a bearer token read from a root-only file, both
//! answer errors with [`scheduler_core::report::ErrorBody`] and both serve
//! `/metrics` to Prometheus. The pieces:
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`tls`] | the certificate: made once, kept in a state directory, its fingerprint, the rustls server config |
//! | [`token`] | the bearer token: read from a file, compared in constant time, never printed |
//! | [`auth`] | the [`auth::Authorized`] extractor: a handler that takes it runs only for a caller with the token |
//! | [`api`] | [`api::ApiError`] (status + JSON body, internal details logged, not shown) and the [`api::Json`] extractor |
//! | [`serve`] | serving a router on a bound listener, HTTPS or loopback HTTP, with a graceful drain |
//! | [`metrics`] | the exposition: OpenMetrics, or the classic text format for `promtool` |
//! | [`client`] | a JSON client with a pinned certificate and the bearer token |
//! | [`files`] | atomic replacement of a file |
//! | [`logging`], [`notify`] | journald under systemd, stderr otherwise; `READY=1` for `Type=notify` |
//! | [`error`] | the crate's error type |
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod client;
pub mod error;
pub mod files;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod serve;
pub mod tls;
pub mod token;

pub use error::{Error, Result};
