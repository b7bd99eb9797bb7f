//! `GET /metrics`: OpenMetrics text, or the classic text format when the
//! client asks only for `text/plain` (as `promtool` needs).

use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::HeaderMap;
use axum::response::Response;
use stagger_service::auth::Authorized;

use super::ApiState;

/// The exposition.
pub async fn get(State(state): State<ApiState>, _auth: Authorized, headers: HeaderMap) -> Response {
    stagger_service::metrics::respond(state.agent.metrics.registry(), headers.get(ACCEPT))
}
