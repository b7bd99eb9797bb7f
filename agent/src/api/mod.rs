//! The agent's HTTP API: `router()` and one file per endpoint.
//!
//! | route | file | |
//! | --- | --- | --- |
//! | `GET /healthz` | `healthz.rs` | no token |
//! | `GET /v1/report` | `report.rs` | the host's jobs, runs, load profile |
//! | `PUT /v1/schedules` | `schedules.rs` | apply new schedules |
//! | `POST /v1/rollback` | `rollback.rs` | put back a kept jobs.cfg |
//! | `GET /metrics` | `metrics.rs` | Prometheus exposition |
//!
//! Every route but `/healthz` takes [`Authorized`](stagger_service::auth::Authorized),
//! so its handler cannot run without the bearer token. Bodies are limited to
//! 64 KiB; errors are [`ApiError`](stagger_service::api::ApiError)s with an
//! `ErrorBody`. Each answer is counted in `stagger_http_requests_total` by
//! its matched route.

mod healthz;
mod metrics;
mod report;
mod rollback;
mod schedules;

use std::sync::Arc;

use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use scheduler_core::report::{ApplyRequest, ApplyResponse, RollbackRequest};
use stagger_service::api::{body_limit, ApiError};
use stagger_service::auth::Authorized;
use stagger_service::token::Token;

use crate::config::Backend;
use crate::context::Agent;
use crate::jobs_file::ChangeError;
use crate::metrics::{ApplyResult, Metrics};
use crate::state::unix_now;

/// The state every handler gets.
#[derive(Clone)]
pub struct ApiState {
    /// The agent.
    pub agent: Arc<Agent>,
}

impl FromRef<ApiState> for Arc<Token> {
    fn from_ref(state: &ApiState) -> Arc<Token> {
        state.agent.token.clone()
    }
}

/// The agent's router; tests call it directly with `oneshot`.
pub fn router(agent: Arc<Agent>) -> Router {
    let state = ApiState { agent };
    Router::new()
        .route("/healthz", get(healthz::get))
        .route("/v1/report", get(report::get))
        .route("/v1/schedules", put(schedules::put))
        .route("/v1/rollback", post(rollback::post))
        .route("/metrics", get(metrics::get))
        .route_layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(body_limit())
        .with_state(state)
}

/// Counts each answer by matched route and status.
async fn count(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let response = next.run(request).await;
    state
        .agent
        .metrics
        .http_request(&route, response.status().as_u16());
    response
}

/// Who asked, for the audit log: the token's holder at its address.
fn who(auth: &Authorized) -> String {
    match auth.peer {
        Some(peer) => format!("bearer token from {peer}"),
        None => "bearer token".to_owned(),
    }
}

/// A change of jobs.cfg a request asks for.
enum Change {
    /// `PUT /v1/schedules`: new schedules.
    Apply(ApplyRequest),
    /// `POST /v1/rollback`: a kept copy back.
    Rollback(RollbackRequest),
}

/// Makes one change of jobs.cfg at a time from this agent, through the
/// configured backend, and counts its result; the answer names the digest
/// jobs.cfg has now.
async fn change(
    state: ApiState,
    auth: Authorized,
    request: Change,
) -> Result<axum::Json<ApplyResponse>, ApiError> {
    let agent = state.agent;
    let count = match request {
        Change::Apply(_) => Metrics::apply,
        Change::Rollback(_) => Metrics::rollback,
    };
    let _one_at_a_time = agent.writes.lock().await;
    let who = who(&auth);
    let file = &agent.jobs_file;
    let outcome = match (&agent.config.backend, &agent.pve, request) {
        (Backend::Api, Some(client), Change::Apply(r)) => {
            file.apply_via_api(client, &r, &who, unix_now()).await
        }
        (Backend::Api, Some(client), Change::Rollback(r)) => {
            file.rollback_via_api(client, &r, &who, unix_now()).await
        }
        (_, _, request) => {
            let file = file.clone();
            tokio::task::spawn_blocking(move || match request {
                Change::Apply(r) => file.apply(&r, &who, unix_now()),
                Change::Rollback(r) => file.rollback(&r, &who, unix_now()),
            })
            .await
            .map_err(ApiError::internal)?
        }
    };
    match outcome {
        Ok(outcome) => {
            count(&agent.metrics, ApplyResult::ok);
            Ok(axum::Json(outcome))
        }
        Err(error) => {
            let (error, result) = change_error(error);
            count(&agent.metrics, result);
            Err(error)
        }
    }
}

/// The HTTP answer of a refused or failed change, and how it is counted.
fn change_error(error: ChangeError) -> (ApiError, ApplyResult) {
    match error {
        ChangeError::BadRequest(message) => (ApiError::bad_request(message), ApplyResult::refused),
        ChangeError::Stale { current, .. } => (
            ApiError::conflict(error_text(&current), current.to_string()).with_hint(
                "jobs.cfg changed since the plan was made: read GET /v1/report again and plan from its digest",
            ),
            ApplyResult::stale,
        ),
        ChangeError::Refused(message) => (ApiError::unprocessable(message), ApplyResult::refused),
        ChangeError::NotFound(message) => (ApiError::not_found(message), ApplyResult::refused),
        ChangeError::Busy(message) => (
            ApiError::unavailable(message).with_hint("retry in a few seconds"),
            ApplyResult::error,
        ),
        ChangeError::Failed(error) => (ApiError::internal(format!("{error:#}")), ApplyResult::error),
    }
}

fn error_text(current: &scheduler_core::jobs_cfg::Digest) -> String {
    format!("jobs.cfg is not at the digest the request names; its digest is {current}")
}
