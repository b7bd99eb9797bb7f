//! The simulated PVE HTTP API under `/api2/json` (FORMATS.md (f)).
//!
//! | file | endpoints |
//! | --- | --- |
//! | `auth.rs` | the `PVEAPIToken=` check every request passes first |
//! | `version.rs` | `GET /version`, `GET /nodes/{node}/time` |
//! | `backup.rs` | `GET`/`POST /cluster/backup`, `GET`/`PUT`/`DELETE /cluster/backup/{id}` |
//! | `schedule.rs` | `GET /cluster/jobs/schedule-analyze` |
//! | `tasks.rs` | `GET /nodes/{node}/tasks`, `.../{upid}/status`, `.../{upid}/log` |
//! | `params.rs`, `error.rs` | request parameters; Proxmox's error bodies |

pub mod auth;
pub mod backup;
pub mod error;
pub mod params;
pub mod schedule;
pub mod tasks;
pub mod version;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::clock::Clock;
use crate::tree::{NodeConfig, SimConfig, Tree};
use error::ApiError;
use params::Params;

/// Everything a handler needs.
#[derive(Debug)]
pub struct AppState {
    /// The cluster's files.
    pub tree: Tree,
    /// The sim config.
    pub config: SimConfig,
    /// The simulated clock.
    pub clock: Clock,
    /// Delay of a 401 answer (Proxmox: 3 s).
    pub auth_delay: Duration,
}

impl AppState {
    /// The node `name`, or the error Proxmox gives for a host it cannot resolve.
    pub fn node(&self, name: &str) -> Result<&NodeConfig, ApiError> {
        self.config.node(name).ok_or_else(|| {
            ApiError::fail(
                500,
                format!(
                    "hostname lookup '{name}' failed - failed to get address info for: {name}: Name or service not known\n"
                ),
            )
        })
    }
}

/// Shared state of the router.
pub type Shared = Arc<AppState>;

/// The whole API.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/version", get(version::version))
        .route("/nodes/{node}/time", get(version::time))
        .route("/cluster/backup", get(list_jobs).post(post_job))
        .route(
            "/cluster/backup/{id}",
            get(get_job).put(put_job).delete(delete_job),
        )
        .route("/cluster/jobs/schedule-analyze", get(schedule::analyze))
        .route("/nodes/{node}/tasks", get(tasks::list))
        .route("/nodes/{node}/tasks/{upid}/status", get(tasks::status))
        .route("/nodes/{node}/tasks/{upid}/log", get(tasks::log))
        .fallback(no_such_path)
        .method_not_allowed_fallback(no_such_path)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state);
    Router::new().nest("/api2/json", api)
}

/// `{"data": ...}`.
pub fn data(value: serde_json::Value) -> Response {
    Json(serde_json::json!({ "data": value })).into_response()
}

/// Runs blocking file work (locks sleep) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::fail(500, format!("handler failed: {e}\n")))?
}

/// pve-http-server's answer for a path or method the API does not have.
async fn no_such_path(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    let path = uri.path().strip_prefix("/api2/json").unwrap_or(uri.path());
    ApiError::fail(501, format!("Method '{method} {path}' not implemented\n"))
}

async fn list_jobs(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::from_form(query.unwrap_or_default().as_bytes()).only(&[])?;
    let now = state.clock.now();
    let tz = state.config.local_node().tz();
    let st = state.clone();
    let jobs = blocking(move || backup::list(&st.tree, now, tz)).await?;
    Ok(data(jobs))
}

async fn get_job(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    Params::from_form(query.unwrap_or_default().as_bytes()).only(&[])?;
    let job = blocking(move || backup::get(&state.tree, &id)).await?;
    Ok(data(job))
}

/// The parameters of a PUT/POST: query string plus body.
fn write_params(
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut params = Params::from_form(query.unwrap_or_default().as_bytes());
    params.extend(Params::from_body(content_type, body).map_err(|e| ApiError::fail(400, e))?);
    Ok(params)
}

async fn put_job(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = write_params(query, &headers, &body)?;
    let caller = auth::caller(&headers);
    blocking(move || backup::update(&state.tree, &id, &params, &caller)).await?;
    Ok(data(serde_json::Value::Null))
}

async fn post_job(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = write_params(query, &headers, &body)?;
    let caller = auth::caller(&headers);
    blocking(move || backup::create(&state.tree, &params, &caller)).await?;
    Ok(data(serde_json::Value::Null))
}

async fn delete_job(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || backup::delete(&state.tree, &state.config, &id)).await?;
    Ok(data(serde_json::Value::Null))
}
