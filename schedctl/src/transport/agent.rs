//! The agent transport: the agent API of CONTRACTS.md (`GET /v1/report`,
//! `PUT /v1/schedules`, `POST /v1/rollback`) over HTTPS with the agent's
//! certificate pinned and its bearer token, through `stagger_service::client`.
//!
//! The agent writes jobs.cfg byte for byte under Proxmox's cluster lock,
//! refuses a stale digest with 409 (naming the current one) and keeps the
//! previous file, which a rollback restores by its digest.

use std::time::Duration;

use pve_api::Trust;
use scheduler_core::report::{ApplyRequest, ApplyResponse, HostReport};
use stagger_service::client::{Client, Endpoint};
use stagger_service::error::Error as ClientError;
use stagger_service::token::Secret;

use super::{BoxFuture, HostTransport, Rollback, SetupError, TransportError};
use crate::config::{AgentTransport, TransportKind};

/// A host reached through its agent.
pub struct AgentHost {
    host: String,
    client: Client,
}

impl AgentHost {
    /// Reads the token file and checks the settings; does not connect.
    pub fn new(
        host: &str,
        config: &AgentTransport,
        timeout: Duration,
    ) -> Result<AgentHost, SetupError> {
        let setup = |message: String| SetupError {
            host: host.to_owned(),
            message,
        };
        let token = Secret::load(&config.token_file)
            .map_err(|e| setup(format!("agent.token-file: {e}")))?;
        let plain = config.url.starts_with("http://");
        let trust = match (&config.fingerprint, plain) {
            (Some(fingerprint), _) => Trust::Fingerprint(
                fingerprint
                    .parse()
                    .map_err(|e| setup(format!("agent.fingerprint: {e}")))?,
            ),
            // Plain HTTP has no certificate; the client refuses it except on loopback.
            (None, true) => Trust::System,
            (None, false) => {
                return Err(setup(format!(
                    "agent.fingerprint is missing for {}; pin the agent's certificate: run `sched-agent fingerprint` on the host and set fingerprint = \"AA:BB:...\"",
                    config.url
                )))
            }
        };
        if plain && !is_loopback_url(&config.url) {
            return Err(setup(format!(
                "agent.url {} is plain HTTP on a non-loopback address; the token would cross the network unencrypted: use https://",
                config.url
            )));
        }
        let client = Client::new(Endpoint {
            url: config.url.clone(),
            token: Some(token),
            trust,
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(5)),
        })
        .map_err(|e| setup(format!("agent: {e}")))?;
        Ok(AgentHost {
            host: host.to_owned(),
            client,
        })
    }

    fn error(&self, err: ClientError) -> TransportError {
        let host = self.host.clone();
        match err {
            ClientError::Unreachable { .. } | ClientError::Tls { .. } => {
                TransportError::Unreachable {
                    host,
                    detail: err.to_string(),
                }
            }
            ClientError::Identity { .. } => TransportError::Identity {
                host,
                detail: err.to_string(),
            },
            ClientError::Status {
                status: 409,
                ref body,
                ..
            } if body.current_digest.is_some() => TransportError::Stale {
                host,
                current_digest: body.current_digest.clone().unwrap_or_default(),
            },
            ClientError::Status {
                status: 503,
                ref body,
                ..
            } => TransportError::Failed {
                host,
                detail: with_hint(&body.error, body.hint.as_deref()),
            },
            ClientError::Status { status: 401, .. } => TransportError::Refused {
                host,
                message:
                    "the agent refused the token (401); put the agent's token in agent.token-file"
                        .to_owned(),
            },
            ClientError::Status {
                status, ref body, ..
            } if (400..500).contains(&status) => TransportError::Refused {
                host,
                message: format!("{status}: {}", with_hint(&body.error, body.hint.as_deref())),
            },
            ClientError::Status {
                status, ref body, ..
            } => TransportError::Failed {
                host,
                detail: format!("{status}: {}", with_hint(&body.error, body.hint.as_deref())),
            },
            ClientError::Decode { .. } => TransportError::Protocol {
                host,
                detail: err.to_string(),
            },
            other => TransportError::Failed {
                host,
                detail: other.to_string(),
            },
        }
    }

    async fn get_report(&self) -> Result<HostReport, TransportError> {
        self.client
            .get("/v1/report")
            .await
            .map_err(|e| self.error(e))
    }

    async fn put_schedules(&self, request: &ApplyRequest) -> Result<ApplyResponse, TransportError> {
        self.client
            .put("/v1/schedules", request)
            .await
            .map_err(|e| self.error(e))
    }

    async fn post_rollback(&self, rollback: &Rollback) -> Result<ApplyResponse, TransportError> {
        self.client
            .post("/v1/rollback", &rollback.request)
            .await
            .map_err(|e| self.error(e))
    }
}

fn with_hint(error: &str, hint: Option<&str>) -> String {
    match hint {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_owned(),
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.trim_start_matches("http://");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl HostTransport for AgentHost {
    fn host(&self) -> &str {
        &self.host
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Agent
    }

    fn report(&self) -> BoxFuture<'_, Result<HostReport, TransportError>> {
        Box::pin(self.get_report())
    }

    fn apply<'a>(
        &'a self,
        request: &'a ApplyRequest,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>> {
        Box::pin(self.put_schedules(request))
    }

    fn rollback<'a>(
        &'a self,
        rollback: &'a Rollback,
    ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>> {
        Box::pin(self.post_rollback(rollback))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_count_as_loopback() {
        assert!(is_loopback_url("http://127.0.0.1:8150"));
        assert!(is_loopback_url("http://localhost:8150/"));
        assert!(!is_loopback_url("http://10.0.0.3:8150"));
        assert!(!is_loopback_url("http://127.0.0.1.example.org:8150"));
    }
}
