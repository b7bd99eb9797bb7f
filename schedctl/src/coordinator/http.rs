//! The coordinator's HTTP edge: the lease service for the vzdump hook,
//! `/metrics` for Prometheus, `/healthz`.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | the status page: the week's backup timeline of the fleet, the plan waiting for approval (token, or a caller on loopback) |
//! | `GET /healthz` | `ok` (no token) |
//! | `POST /v1/lease` `LeaseRequest` | `LeaseResponse`, held open up to `min(wait_secs, 60)` s until granted; 400 for a malformed request |
//! | `POST /v1/lease/release` `LeaseRelease` | `{}`; 404 for a lease never known |
//! | `GET /metrics` | the exposition (OpenMetrics, or classic text for `Accept: text/plain`) |
//!
//! Every route but `/healthz` needs `Authorization: Bearer <token>`; the
//! read-only status page is also shown without it to a browser on the
//! coordinator's own machine (127.0.0.1, ::1).

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::header::ACCEPT;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use scheduler_core::report::{LeaseRelease, LeaseRequest, LeaseResponse};
use stagger_service::api::{self, ApiError, Json};
use stagger_service::auth::{Authorized, Unauthorized};
use stagger_service::token::Token;

use super::lease_service::LeaseService;
use super::metrics::Metrics;
use super::page;
use super::rounds::View;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The bearer token callers must present.
    pub token: Arc<Token>,
    /// The lease service.
    pub leases: Arc<LeaseService>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// What the latest round saw, for the status page.
    pub view: Arc<RwLock<View>>,
}

impl FromRef<AppState> for Arc<Token> {
    fn from_ref(state: &AppState) -> Arc<Token> {
        state.token.clone()
    }
}

/// The coordinator's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/lease", post(lease))
        .route("/v1/lease/release", post(release))
        .route("/metrics", get(metrics))
        .layer(api::body_limit())
        .with_state(state)
}

async fn lease(
    State(state): State<AppState>,
    _who: Authorized,
    Json(request): Json<LeaseRequest>,
) -> Result<axum::Json<LeaseResponse>, ApiError> {
    check_name("host", &request.host)?;
    check_name("job", &request.job)?;
    if let Some(storage) = &request.storage {
        check_name("storage", storage)?;
    }
    Ok(axum::Json(state.leases.request(&request).await))
}

async fn release(
    State(state): State<AppState>,
    _who: Authorized,
    Json(release): Json<LeaseRelease>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    state.leases.release(&release.lease_id).map_err(|unknown| {
        ApiError::not_found(unknown.to_string())
            .with_hint("nothing to release; the backup may go on")
    })?;
    Ok(axum::Json(serde_json::json!({})))
}

async fn metrics(State(state): State<AppState>, _who: Authorized, headers: HeaderMap) -> Response {
    stagger_service::metrics::respond(state.metrics.registry(), headers.get(ACCEPT))
}

/// A caller allowed to read the status page: a browser on the coordinator's
/// own machine (a loopback peer needs no token), or anyone with the token.
/// Only a caller from elsewhere goes through [`Authorized`], so a local page
/// view is not logged as a refused request.
struct PageReader;

impl FromRequestParts<AppState> for PageReader {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Unauthorized> {
        let on_loopback = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
        if on_loopback {
            return Ok(PageReader);
        }
        Authorized::from_request_parts(parts, state)
            .await
            .map(|_| PageReader)
    }
}

async fn status_page(State(state): State<AppState>, _reader: PageReader) -> Response {
    let view = state
        .view
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Html(page::render(&view, chrono::Utc::now())).into_response()
}

/// Host names, job ids and storage ids as Proxmox allows them: letters,
/// digits, `-`, `_`, `.`; at most 128 characters.
fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    let fits = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fits {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "`{field}` {value:?} is not a Proxmox name (letters, digits, '-', '_', '.'; 1 to 128 characters)"
        )))
    }
}
