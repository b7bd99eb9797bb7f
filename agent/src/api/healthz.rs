//! `GET /healthz`: `ok` while the agent serves (no token: for load balancers and systemd checks).

/// Answers `ok`.
pub async fn get() -> &'static str {
    "ok"
}
