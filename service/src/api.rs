//! The JSON edge of a service: [`ApiError`] and the [`Json`] extractor.
//!
//! Every refusal and failure is answered with [`ErrorBody`]: client errors
//! explain themselves (what was wrong and, where there is one, what to do);
//! an internal error is logged in full and answered with a sentence that
//! points to the log, so no path or detail of the host leaks to the caller.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scheduler_core::report::ErrorBody;
use serde::de::DeserializeOwned;

/// The largest request body a service reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The layer that holds request bodies to [`MAX_BODY_BYTES`]; every router adds it.
pub fn body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// A refusal or failure, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with `status` and the sentence `error`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                hint: None,
                current_digest: None,
            },
        }
    }

    /// Adds what the caller can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.body.hint = Some(hint.into());
        self
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }

    /// 401: no token, or not the right one.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").with_hint(
            "send `Authorization: Bearer <token>` with the token from the service's token file",
        )
    }

    /// 404: the thing asked for does not exist.
    pub fn not_found(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error)
    }

    /// 409: the state changed since the caller looked; `current_digest` is the state now.
    pub fn conflict(error: impl Into<String>, current_digest: impl Into<String>) -> ApiError {
        let mut err = ApiError::new(StatusCode::CONFLICT, error);
        err.body.current_digest = Some(current_digest.into());
        err
    }

    /// 422: well-formed, but the request cannot be carried out as asked.
    pub fn unprocessable(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error)
    }

    /// 503: not now (a lock is held elsewhere); the same request may work later.
    pub fn unavailable(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error)
    }

    /// 500: our failure. `detail` goes to the log, not to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(detail = %detail, "A request failed inside the service.");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the service failed to carry out the request",
        )
        .with_hint("the service's log (journalctl) has the details")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// `axum::Json`, but a body that is not the expected JSON is answered with
/// 400 and the parser's reason (413 when it is too large, 415 without
/// `Content-Type: application/json`) as an [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(rejection_error(&rejection)),
        }
    }
}

fn rejection_error(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON",
        )
        .with_hint("send `Content-Type: application/json`"),
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        // axum answers JSON of the wrong shape with 422; for the caller it is
        // as malformed as broken syntax, and 422 is kept for requests that
        // are well-formed but cannot be carried out.
        _ => ApiError::bad_request(format!(
            "the request body is not valid: {}",
            rejection.body_text()
        )),
    }
}
