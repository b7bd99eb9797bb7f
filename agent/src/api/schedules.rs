//! `PUT /v1/schedules`: new schedules for jobs of this node, written
//! through the configured backend (see `jobs_file`).

use axum::extract::State;
use scheduler_core::report::{ApplyRequest, ApplyResponse};
use stagger_service::api::{ApiError, Json};
use stagger_service::auth::Authorized;

use super::{change_error, who, ApiState};
use crate::config::Backend;
use crate::metrics::ApplyResult;
use crate::state::unix_now;

/// Applies the request; the answer names the new digest.
pub async fn put(
    State(state): State<ApiState>,
    auth: Authorized,
    Json(request): Json<ApplyRequest>,
) -> Result<axum::Json<ApplyResponse>, ApiError> {
    let agent = state.agent.clone();
    let _one_at_a_time = agent.writes.lock().await;
    let who = who(&auth);
    let outcome = match (&agent.config.backend, &agent.pve) {
        (Backend::Api, Some(client)) => {
            agent
                .jobs_file
                .apply_via_api(client, &request, &who, unix_now())
                .await
        }
        _ => {
            let file = agent.jobs_file.clone();
            tokio::task::spawn_blocking(move || file.apply(&request, &who, unix_now()))
                .await
                .map_err(ApiError::internal)?
        }
    };
    match outcome {
        Ok(outcome) => {
            agent.metrics.apply(ApplyResult::ok);
            Ok(axum::Json(outcome))
        }
        Err(error) => {
            let (error, result) = change_error(error);
            agent.metrics.apply(result);
            Err(error)
        }
    }
}
