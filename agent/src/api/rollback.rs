//! `POST /v1/rollback`: puts back a kept copy of jobs.cfg, with the same
//! lock and checks as an apply.

use axum::extract::State;
use scheduler_core::report::{ApplyResponse, RollbackRequest};
use stagger_service::api::{ApiError, Json};
use stagger_service::auth::Authorized;

use super::{change, ApiState, Change};

/// Rolls back; the answer names the digest jobs.cfg has now.
pub async fn post(
    State(state): State<ApiState>,
    auth: Authorized,
    Json(request): Json<RollbackRequest>,
) -> Result<axum::Json<ApplyResponse>, ApiError> {
    change(state, auth, Change::Rollback(request)).await
}
