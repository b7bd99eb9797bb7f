//! The crate's error type.
//!
//! Setting things up (certificate, token, files) fails with a path and the
//! reason; a client call fails in a way the caller can act on: the peer is
//! unreachable, it is not the pinned peer, it refused (with its own
//! [`ErrorBody`]), or it answered something unreadable.

use std::path::PathBuf;

use pve_api::Fingerprint;
use scheduler_core::report::ErrorBody;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `create`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The certificate or its key is missing, unreadable or unusable.
    #[error("{path}: {message}")]
    Certificate {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The token file is unusable.
    #[error("{path}: {message}")]
    Token {
        /// The token file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The HTTP client could not be built (a bad URL, a bad header value).
    #[error("cannot build a client for {url}: {message}")]
    ClientBuild {
        /// The base URL.
        url: String,
        /// The reason.
        message: String,
    },
    /// The peer could not be reached: refused, timed out, or the connection broke.
    #[error("{url}: unreachable: {detail}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The peer presented a certificate other than the pinned one.
    #[error(
        "{url}: the server's certificate has the fingerprint {seen}, but {pinned} is pinned; \
         if its certificate was replaced on purpose, pin the new fingerprint, \
         otherwise something else answers at this address"
    )]
    Identity {
        /// The URL requested.
        url: String,
        /// The pinned fingerprint.
        pinned: Fingerprint,
        /// The fingerprint presented.
        seen: Fingerprint,
    },
    /// The TLS handshake failed for another reason.
    #[error("{url}: TLS handshake failed: {detail}")]
    Tls {
        /// The URL requested.
        url: String,
        /// The reason.
        detail: String,
    },
    /// The peer answered with an error status.
    #[error("{url}: {status}: {}", body.error)]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The peer's explanation (its text when it sent no JSON).
        body: ErrorBody,
    },
    /// The peer's answer could not be read.
    #[error("{url}: unreadable answer: {detail}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
