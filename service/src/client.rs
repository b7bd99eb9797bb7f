//! A JSON client for Stagger's own services: the agent API for `schedctl`,
//! the lease service for the vzdump hook.
//!
//! Certificates are pinned by fingerprint like Proxmox's (a self-signed
//! service certificate has no CA to check), the bearer token goes in every
//! request, redirects and proxies are never followed (either could carry the
//! token elsewhere), and a failure comes back as the [`Error`] variant a caller
//! can act on: [`Error::Unreachable`], [`Error::Identity`], [`Error::Status`]
//! (with the service's [`ErrorBody`]) or [`Error::Decode`].

use std::time::Duration;

use pve_api::tls::{self, CertObserver};
use pve_api::{Fingerprint, Trust};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use scheduler_core::report::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::token::Secret;

/// Where a service is and how to trust it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://pihanga:8150` (or `http://127.0.0.1:…` for a loopback service).
    pub url: String,
    /// The bearer token, when the service asks for one.
    pub token: Option<Secret>,
    /// How to trust its certificate: usually [`Trust::Fingerprint`].
    pub trust: Trust,
    /// The limit for a whole request.
    pub timeout: Duration,
    /// The limit for connecting (short, so a host that is down is named quickly).
    pub connect_timeout: Duration,
}

/// A client for one service.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
    pin: Option<Fingerprint>,
    observer: CertObserver,
    timeout: Duration,
}

impl Client {
    /// Builds the client; checks the URL and the trust settings, does not connect.
    pub fn new(endpoint: Endpoint) -> Result<Client> {
        let build_error = |message: String| Error::ClientBuild {
            url: endpoint.url.clone(),
            message,
        };
        let base = Url::parse(&endpoint.url).map_err(|e| {
            build_error(format!("not a URL ({e}); write e.g. https://pihanga:8150"))
        })?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(build_error(
                "the URL must start with https:// or http://".into(),
            ));
        }
        let tls = tls::client_config(&endpoint.trust).map_err(|e| build_error(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.config)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(endpoint.timeout)
            .connect_timeout(endpoint.connect_timeout)
            .build()
            .map_err(|e| build_error(pve_api::error::chain(&e)))?;
        let auth = match &endpoint.token {
            Some(secret) => Some(
                HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
                    .map_err(|_| build_error("the token is not a valid header value".into()))?,
            ),
            None => None,
        };
        let pin = match endpoint.trust {
            Trust::Fingerprint(fingerprint) => Some(fingerprint),
            Trust::CaPem(_) | Trust::System => None,
        };
        Ok(Client {
            http,
            base,
            auth,
            pin,
            observer: tls.observer,
            timeout: endpoint.timeout,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET path`, the answer read as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (url, body) = self.send(Method::GET, path, None, None).await?;
        decode(&url, &body)
    }

    /// `PUT path` with a JSON body, the answer read as JSON.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send_json(Method::PUT, path, body).await
    }

    /// `POST path` with a JSON body, the answer read as JSON.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send_json(Method::POST, path, body).await
    }

    /// `GET path` as text, with an `Accept` header (for `/metrics`).
    pub async fn get_text(&self, path: &str, accept: &str) -> Result<String> {
        let (_, body) = self.send(Method::GET, path, None, Some(accept)).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let json = serde_json::to_vec(body).map_err(|e| Error::Decode {
            url: self.url(path).to_string(),
            detail: format!("cannot encode the request: {e}"),
        })?;
        let (url, answer) = self.send(method, path, Some(json), None).await?;
        decode(&url, &answer)
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
        accept: Option<&str>,
    ) -> Result<(Url, Vec<u8>)> {
        let url = self.url(path);
        let mut request = self.http.request(method, url.clone());
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        request = request.header(ACCEPT, accept.unwrap_or("application/json"));
        if let Some(json) = json {
            request = request.header(CONTENT_TYPE, "application/json").body(json);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&url, &e))?
            .to_vec();
        if status.is_success() {
            Ok((url, body))
        } else {
            Err(Error::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: error_body(status, &body),
            })
        }
    }

    /// Maps a failed request to what the caller can act on.
    fn transport_error(&self, url: &Url, error: &reqwest::Error) -> Error {
        let url = url.to_string();
        if error.is_timeout() {
            return Error::Unreachable {
                url,
                detail: format!("no answer within {} s", self.timeout.as_secs_f64()),
            };
        }
        if let Some(tls_error) = tls::find_rustls_error(error) {
            let pin_refused = matches!(
                tls_error,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure
                )
            );
            return match (self.pin, self.observer.last_seen()) {
                (Some(pinned), Some(seen)) if pin_refused && seen != pinned => {
                    Error::Identity { url, pinned, seen }
                }
                _ => Error::Tls {
                    url,
                    detail: tls_error.to_string(),
                },
            };
        }
        Error::Unreachable {
            url,
            detail: pve_api::error::chain(error),
        }
    }
}

fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        url: url.to_string(),
        detail: e.to_string(),
    })
}

/// The service's [`ErrorBody`], or one made of the status and whatever text came.
fn error_body(status: reqwest::StatusCode, body: &[u8]) -> ErrorBody {
    serde_json::from_slice(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        ErrorBody {
            error: if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_lowercase()
            } else {
                text
            },
            hint: None,
            current_digest: None,
        }
    })
}
