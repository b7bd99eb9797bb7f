//! `PUT /v1/schedules`: new schedules for jobs of this node, written
//! through the configured backend (see `jobs_file`).

use axum::extract::State;
use scheduler_core::report::{ApplyRequest, ApplyResponse};
use stagger_service::api::{ApiError, Json};
use stagger_service::auth::Authorized;

use super::{change, ApiState, Change};

/// Applies the request; the answer names the new digest.
pub async fn put(
    State(state): State<ApiState>,
    auth: Authorized,
    Json(request): Json<ApplyRequest>,
) -> Result<axum::Json<ApplyResponse>, ApiError> {
    change(state, auth, Change::Apply(request)).await
}
