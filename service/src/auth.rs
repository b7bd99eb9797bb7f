//! Bearer-token authentication as an extractor: a handler that takes
//! [`Authorized`] runs only for a caller that presented the service's token.
//!
//! A refusal answers 401 with an [`ErrorBody`](scheduler_core::report::ErrorBody)
//! and is logged with the peer's address and the path — never with what the
//! caller sent, which may be a mistyped real token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::token::Token;

/// Proof that the request carried the token; `peer` is who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorized {
    /// The caller's address (absent when the router is called without a socket, as in tests).
    pub peer: Option<SocketAddr>,
}

/// The refusal of a request without the token.
#[derive(Debug)]
pub struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = ApiError::unauthorized().into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl<S> FromRequestParts<S> for Authorized
where
    Arc<Token>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = Arc::<Token>::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match presented {
            Some(candidate) if token.matches(candidate.trim()) => Ok(Authorized { peer }),
            presented => {
                let reason = if presented.is_some() { "a wrong" } else { "no" };
                tracing::warn!(
                    peer = peer.map(|p| p.to_string()).unwrap_or_default(),
                    path = parts.uri.path(),
                    "Refused a request with {reason} bearer token."
                );
                Err(Unauthorized)
            }
        }
    }
}
