//! `POST /v1/rollback`: puts back a kept copy of jobs.cfg, with the same
//! lock and checks as an apply.

use axum::extract::State;
use scheduler_core::report::{ApplyResponse, RollbackRequest};
use stagger_service::api::{ApiError, Json};
use stagger_service::auth::Authorized;

use super::{change_error, who, ApiState};
use crate::config::Backend;
use crate::metrics::ApplyResult;
use crate::state::unix_now;

/// Rolls back; the answer names the digest jobs.cfg has now.
pub async fn post(
    State(state): State<ApiState>,
    auth: Authorized,
    Json(request): Json<RollbackRequest>,
) -> Result<axum::Json<ApplyResponse>, ApiError> {
    let agent = state.agent.clone();
    let _one_at_a_time = agent.writes.lock().await;
    let who = who(&auth);
    let outcome = match (&agent.config.backend, &agent.pve) {
        (Backend::Api, Some(client)) => {
            agent
                .jobs_file
                .rollback_via_api(client, &request, &who, unix_now())
                .await
        }
        _ => {
            let file = agent.jobs_file.clone();
            tokio::task::spawn_blocking(move || file.rollback(&request, &who, unix_now()))
                .await
                .map_err(ApiError::internal)?
        }
    };
    match outcome {
        Ok(outcome) => {
            agent.metrics.rollback(ApplyResult::ok);
            Ok(axum::Json(outcome))
        }
        Err(error) => {
            let (error, result) = change_error(error);
            agent.metrics.rollback(result);
            Err(error)
        }
    }
}
