//! API token check (pve-http-server `extract_auth_value`, pve-manager
//! `PVE/HTTPServer.pm auth_handler`).
//!
//! The header is `Authorization: PVEAPIToken=<user>@<realm>!<tokenid>=<secret>`;
//! a space may replace the first `=`, the value stops at `;` and is
//! URL-unescaped. A request without one gets 401 "No ticket", a wrong one 401
//! "authentication failure"; both are delayed (Proxmox: 3 s) and have an empty
//! body, the message being the HTTP reason phrase.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::backup::Caller;
use super::error::with_reason;
use super::Shared;

/// The token value of an `Authorization` header, as `extract_auth_value` finds it.
pub fn extract_token(header: &str) -> Option<String> {
    const KEY: &str = "PVEAPIToken";
    let mut search = 0;
    while let Some(found) = header[search..].find(KEY) {
        let at = search + found;
        let preceded_ok = at == 0 || header[..at].chars().last().is_some_and(char::is_whitespace);
        let after = &header[at + KEY.len()..];
        if preceded_ok && (after.starts_with('=') || after.starts_with(' ')) {
            let value = after[1..].split(';').next().unwrap_or("");
            return (!value.is_empty()).then(|| uri_unescape(value));
        }
        search = at + KEY.len();
    }
    None
}

/// `URI::Escape::uri_unescape`: `%XX` decoded, nothing else (no `+`).
fn uri_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller a request's token names (checked already by [`require_token`]).
pub fn caller(headers: &HeaderMap) -> Caller {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(extract_token)
        .and_then(|t| t.rsplit_once('=').map(|(id, _)| id.to_owned()))
        .unwrap_or_default();
    Caller::Token(token)
}

/// Middleware: lets a request with the configured token through, answers 401 otherwise.
pub async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let failure = match header.and_then(extract_token) {
        None => Some("No ticket"),
        Some(token) => match token.rsplit_once('=') {
            Some((id, secret))
                if id == state.config.token.id && secret == state.config.token.secret =>
            {
                None
            }
            _ => Some("authentication failure"),
        },
    };
    match failure {
        None => next.run(request).await,
        Some(reason) => {
            tokio::time::sleep(state.auth_delay).await;
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            with_reason(&mut response, reason);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_values_are_found_like_pve_http_server() {
        let id = "root@pam!stagger=0b5d-11";
        assert_eq!(
            extract_token("PVEAPIToken=root@pam!stagger=0b5d-11").as_deref(),
            Some(id)
        );
        assert_eq!(
            extract_token("PVEAPIToken root@pam!stagger=0b5d-11").as_deref(),
            Some(id)
        );
        assert_eq!(
            extract_token("PVEAPIToken=root@pam%21stagger=0b5d-11; x=y").as_deref(),
            Some(id)
        );
        assert_eq!(extract_token("XPVEAPIToken=root@pam!stagger=1"), None);
        assert_eq!(extract_token("Bearer abc"), None);
    }
}
