//! Proxmox's error answers: `{"data":null,"message":"...","errors":{...}}`
//! with the status code, and the message's first line as the HTTP reason
//! phrase (pve-http-server `Formatter/Standard.pm`, `AnyEvent.pm response`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer of the API (and of `pvesh`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// The message, with Proxmox's trailing newline where it has one.
    pub message: String,
    /// Per-parameter errors (HTTP 400 "Parameter verification failed.").
    pub errors: BTreeMap<String, String>,
}

impl ApiError {
    /// 400 "Parameter verification failed." with per-parameter messages.
    pub fn params(errors: BTreeMap<String, String>) -> ApiError {
        ApiError {
            status: 400,
            message: "Parameter verification failed.\n".to_owned(),
            errors,
        }
    }

    /// 400 for one parameter.
    pub fn param(key: &str, message: impl Into<String>) -> ApiError {
        ApiError::params(BTreeMap::from([(key.to_owned(), message.into())]))
    }

    /// A plain failure (`die "...\n"` in a handler): 500 unless told otherwise.
    pub fn fail(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors: BTreeMap::new(),
        }
    }

    /// An internal problem of the simulator (file I/O and the like).
    pub fn internal(error: &anyhow::Error) -> ApiError {
        ApiError::fail(500, format!("{error:#}\n"))
    }

    /// The JSON body Proxmox sends.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "data": null, "message": self.message });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::json!(self.errors);
        }
        body
    }

    /// What `pvesh` prints on stderr: `<status> <message>` then `key: msg` lines.
    pub fn pvesh_text(&self) -> String {
        let mut text = format!("{} {}", self.status, self.message.trim_end());
        text.push('\n');
        for (key, message) in &self.errors {
            text.push_str(&format!("{key}: {}\n", message.trim_end()));
        }
        text
    }

    /// The reason phrase: the message's first line.
    pub fn reason(&self) -> String {
        self.message.lines().next().unwrap_or("").to_owned()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.pvesh_text())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        with_reason(&mut response, &self.reason());
        response
    }
}

/// Sets the HTTP/1 reason phrase of `response` (ignored when not valid header text).
pub fn with_reason(response: &mut Response, reason: &str) {
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.as_bytes().to_vec()) {
        response.extensions_mut().insert(phrase);
    }
}
