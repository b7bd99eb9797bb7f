//! The crate's one error type.
//!
//! Policy: every variant is one a caller can match on (a bad token is not a
//! missing job is not an unreachable host), and its `Display` says what went
//! wrong, where (the URL, the line, the field) and what to do about it.
//! Proxmox's own message text is kept as sent (only trailing newlines are
//! trimmed), so nothing Proxmox said is lost. Secrets never appear in a
//! message: an [`crate::ApiToken`] only ever shows its id.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::tls::Fingerprint;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `pve-api`: configuration, transport, TLS,
/// Proxmox's error answers, undecodable bodies and malformed task records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API token text is not `USER@REALM!TOKENID=SECRET`.
    #[error("invalid API token: {reason}; expected USER@REALM!TOKENID=SECRET (e.g. stagger@pve!agent=9f0c…), as shown by `pveum user token add`")]
    InvalidToken {
        /// What is wrong with it (never contains the secret).
        reason: String,
    },

    /// A certificate fingerprint is not 32 hex pairs.
    #[error("invalid certificate fingerprint {input:?}: {reason}; expected 32 colon-separated hex pairs as `pvenode cert info` prints them (AA:BB:…)")]
    InvalidFingerprint {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The base URL cannot be used.
    #[error("invalid Proxmox base URL {url:?}: {reason}; expected e.g. https://pve1.example.org:8006/api2/json")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The CA certificate PEM text holds no usable certificate.
    #[error("invalid CA certificate: {reason}; give the PEM text of the cluster CA (/etc/pve/pve-root-ca.pem)")]
    InvalidCaPem {
        /// What is wrong with it.
        reason: String,
    },

    /// [`crate::Trust::System`] was asked for but the system has no usable CA
    /// certificates.
    #[error("no system CA certificates: {reason}; install the ca-certificates package, or pin the host's fingerprint instead")]
    NoSystemRoots {
        /// What the loader reported.
        reason: String,
    },

    /// The HTTP client could not be built from the configuration.
    #[error("cannot build the HTTP client: {message}")]
    ClientBuild {
        /// The underlying error.
        message: String,
    },

    /// A [`crate::JobUpdate`] that neither sets nor deletes anything (Proxmox
    /// answers "no options specified").
    #[error("refusing to update backup job {id:?}: the update sets and deletes nothing")]
    EmptyUpdate {
        /// The job id.
        id: String,
    },

    /// The host could not be reached (refused, unreachable, DNS).
    #[error("cannot connect to {url}: {message}; check that the host is up, that pveproxy listens on that port and that no firewall is in the way")]
    Connect {
        /// The URL requested.
        url: String,
        /// The underlying error chain.
        message: String,
    },

    /// No answer within the configured timeout.
    #[error("no answer from {url} within {timeout:?}; the host or pveproxy may be overloaded, or the timeout too short")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The server's certificate does not have the pinned fingerprint.
    #[error("certificate of {host} has fingerprint {seen}; expected {expected}; if this is the right host, set fingerprint = \"{seen}\" (compare with `pvenode cert info` on the host)")]
    FingerprintMismatch {
        /// `host:port` connected to.
        host: String,
        /// The SHA-256 fingerprint of the certificate the server presented.
        seen: Fingerprint,
        /// The pinned fingerprint.
        expected: Fingerprint,
    },

    /// The TLS handshake failed for another reason (e.g. a certificate not
    /// signed by the configured CA).
    #[error("TLS handshake with {host} failed: {message}{}", pin_hint(.seen))]
    Tls {
        /// `host:port` connected to.
        host: String,
        /// What rustls reported.
        message: String,
        /// The fingerprint of the certificate presented, if one was seen.
        seen: Option<Fingerprint>,
    },

    /// HTTP 401: the token was refused.
    #[error("authentication failed at {url} for API token {token_id}: {message}; check the API token (USER@REALM!TOKENID=SECRET, not expired, not removed); Proxmox delays a bad token by 3 s")]
    Unauthorized {
        /// The URL requested.
        url: String,
        /// The token id (`user@realm!tokenid`), never the secret.
        token_id: String,
        /// Proxmox's message.
        message: String,
    },

    /// HTTP 403: the token lacks a privilege.
    #[error("permission denied at {url}: {}", forbidden_hint(.path, .privilege, .message, .token_id))]
    Forbidden {
        /// The URL requested.
        url: String,
        /// The token id (`user@realm!tokenid`).
        token_id: String,
        /// The ACL path Proxmox checked, when its message names it.
        path: Option<String>,
        /// The missing privilege, when Proxmox's message names it.
        privilege: Option<String>,
        /// Proxmox's message.
        message: String,
    },

    /// Proxmox has no backup job with this id.
    #[error("no backup job {id:?} on the cluster (Proxmox: {message}); list the jobs with GET /cluster/backup")]
    NoSuchJob {
        /// The job id asked for.
        id: String,
        /// Proxmox's message.
        message: String,
    },

    /// Any other error answer in Proxmox's shape
    /// `{"data":null,"message":"...","errors":{...}}`.
    #[error("{method} {url} failed with HTTP {status}: {message}{}", param_errors(.errors))]
    Http {
        /// The request method.
        method: String,
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// Proxmox's message (trailing newlines trimmed).
        message: String,
        /// Per-parameter messages (trailing newlines trimmed).
        errors: BTreeMap<String, String>,
    },

    /// The answer did not have the expected shape.
    #[error("unexpected answer from {url}: {reason}; body: {body}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What did not parse.
        reason: String,
        /// The start of the body.
        body: String,
    },

    /// Another transport failure (e.g. the connection broke mid-answer).
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The underlying error chain.
        message: String,
    },

    /// A UPID that does not match Proxmox's format.
    #[error("invalid UPID {input:?}: {reason}; expected UPID:<node>:<pid 8 hex>:<pstart 8-9 hex>:<starttime 8 hex>:<type>:<id>:<user>:")]
    InvalidUpid {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A line of a task record file (`index`, `active`) that does not parse.
    #[error("{file}{}: {reason}: {text:?}", line_suffix(*.line))]
    InvalidTaskRecord {
        /// Which kind of file (`tasks/index` or `tasks/active`).
        file: &'static str,
        /// 1-based line number; 0 when one line was parsed on its own.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A job state file (`/var/lib/pve-manager/jobs/<type>-<id>.json`) that
    /// does not parse.
    #[error("invalid job state: {reason}")]
    InvalidJobState {
        /// What is wrong with it.
        reason: String,
    },
}

fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" line {line}")
    }
}

fn pin_hint(seen: &Option<Fingerprint>) -> String {
    match seen {
        Some(fp) => format!(
            "; the certificate's fingerprint is {fp}: if this is the right host, pin it with fingerprint = \"{fp}\""
        ),
        None => String::new(),
    }
}

fn forbidden_hint(
    path: &Option<String>,
    privilege: &Option<String>,
    message: &str,
    token_id: &str,
) -> String {
    match (path, privilege) {
        (Some(path), Some(privilege)) => format!(
            "API token {token_id} lacks privilege {privilege} on {path} (Proxmox: {message}); grant a role with {privilege} on {path} to the token (and to its user, if the token is privilege-separated)"
        ),
        _ => format!("API token {token_id} was refused: {message}"),
    }
}

fn param_errors(errors: &BTreeMap<String, String>) -> String {
    errors
        .iter()
        .map(|(param, msg)| format!("; {param}: {msg}"))
        .collect()
}

/// The error and its causes, joined with ": ", repeats removed.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}
