//! The HTTP client: one [`Client`] per Proxmox host, authenticated with an
//! API token, trusting the host by pinned fingerprint or CA.
//!
//! Each endpoint method builds a URL (path segments percent-encoded: job ids
//! and UPIDs contain `:`, `@` and `!`), sends the request, and hands the
//! status, reason phrase and body to [`answer_error`] or the envelope decoder.
//! Those two are pure functions, so Proxmox's error shapes are mapped in one
//! place that unit tests reach without a network.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tls::{self, CertObserver, Fingerprint, Trust};
use crate::types::{
    de, BackupJob, JobUpdate, NodeTime, ScheduleEvent, TaskList, TaskQuery, TaskState, TaskSummary,
    Version,
};
use crate::upid::Upid;

/// Characters left as they are in a path segment or query value: the
/// unreserved ones of RFC 3986 (what JavaScript's `encodeURIComponent`
/// keeps, minus its `!*'()`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How much of an undecodable body an error message shows.
const BODY_EXCERPT_CHARS: usize = 300;

/// A Proxmox VE API token, `USER@REALM!TOKENID=SECRET`.
///
/// `Debug` and `Display` show only the token id, never the secret.
///
/// ```
/// use pve_api::ApiToken;
/// let token: ApiToken = "stagger@pve!agent=0b4e9c1e-7d5f-4b8a-9a51-2f0e6c3d4b7a".parse().unwrap();
/// assert_eq!(token.id(), "stagger@pve!agent");
/// assert_eq!(token.to_string(), "stagger@pve!agent");
/// assert!(!format!("{token:?}").contains("0b4e"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    id: String,
    secret: String,
}

impl ApiToken {
    /// The token id, `user@realm!tokenid`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `Authorization` header value Proxmox expects.
    fn header_value(&self) -> Result<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("PVEAPIToken={}={}", self.id, self.secret))
            .map_err(|_| Error::InvalidToken {
                reason: "contains characters not allowed in an HTTP header".to_string(),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl FromStr for ApiToken {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidToken {
            reason: reason.to_string(),
        };
        let input = input.trim();
        let (id, secret) = input
            .split_once('=')
            .ok_or_else(|| invalid("no '=' between the token id and the secret"))?;
        let (user, token_name) = id
            .split_once('!')
            .ok_or_else(|| invalid("no '!' between the user and the token name"))?;
        let (user_name, realm) = user
            .split_once('@')
            .ok_or_else(|| invalid("the user has no '@realm'"))?;
        if user_name.is_empty() || realm.is_empty() {
            return Err(invalid("the user name or the realm is empty"));
        }
        let token_ok = token_name.starts_with(|c: char| c.is_ascii_alphabetic())
            && token_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !token_ok {
            return Err(invalid(
                "the token name must start with a letter and hold only letters, digits, '-', '_' and '.'",
            ));
        }
        let visible = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
        if !visible(user) {
            return Err(invalid("the user holds spaces or control characters"));
        }
        if secret.is_empty() || !visible(secret) || secret.contains(';') {
            return Err(invalid(
                "the secret is empty or holds spaces, ';' or control characters",
            ));
        }
        Ok(ApiToken {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// What a [`Client`] needs to reach one host.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://host:8006` or the full API root `https://host:8006/api2/json`.
    pub base_url: String,
    /// The API token.
    pub token: ApiToken,
    /// How to trust the host's certificate.
    pub trust: Trust,
    /// Limit for connecting and for each whole request.
    pub timeout: Duration,
}

/// A client for one Proxmox VE host.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    host: String,
    token_id: String,
    auth: HeaderValue,
    pin: Option<Fingerprint>,
    observer: CertObserver,
    timeout: Duration,
}

impl Client {
    /// Builds a client; checks the URL, the token and the trust settings, but
    /// does not connect.
    pub fn new(config: Config) -> Result<Self> {
        let base = api_root(&config.base_url)?;
        let host = host_label(&base);
        let tls = tls::client_config(&config.trust)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.config)
            // Proxmox never redirects an API call; following one could carry
            // the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Cluster nodes are reached directly, whatever proxy variables
            // the environment holds.
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| Error::ClientBuild {
                message: crate::error::chain(&e),
            })?;
        let pin = match config.trust {
            Trust::Fingerprint(fp) => Some(fp),
            Trust::CaPem(_) | Trust::System => None,
        };
        Ok(Client {
            http,
            base,
            host,
            token_id: config.token.id().to_string(),
            auth: config.token.header_value()?,
            pin,
            observer: tls.observer,
            timeout: config.timeout,
        })
    }

    /// The API root this client talks to (`…/api2/json`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Version> {
        self.get(&["version"], &[]).await
    }

    /// `GET /nodes/{node}/time`.
    pub async fn node_time(&self, node: &str) -> Result<NodeTime> {
        self.get(&["nodes", node, "time"], &[]).await
    }

    /// `GET /cluster/backup`: every backup job, in file order.
    pub async fn backup_jobs(&self) -> Result<Vec<BackupJob>> {
        self.get(&["cluster", "backup"], &[]).await
    }

    /// `GET /cluster/backup/{id}`; [`Error::NoSuchJob`] if there is none.
    pub async fn backup_job(&self, id: &str) -> Result<BackupJob> {
        self.get(&["cluster", "backup", id], &[]).await
    }

    /// `PUT /cluster/backup/{id}` with the update as form fields. Proxmox
    /// answers `{"data": null}` on success.
    pub async fn update_backup_job(&self, id: &str, update: &JobUpdate) -> Result<()> {
        let pairs = update.form_pairs();
        if pairs.is_empty() {
            return Err(Error::EmptyUpdate { id: id.to_string() });
        }
        let url = self.url(&["cluster", "backup", id], &[]);
        let _: Envelope<IgnoredAny> = self.send(Method::PUT, url, Some(&pairs)).await?;
        Ok(())
    }

    /// `GET /nodes/{node}/tasks` with the given filters.
    pub async fn node_tasks(&self, node: &str, query: &TaskQuery) -> Result<TaskList> {
        let url = self.url(&["nodes", node, "tasks"], &query.query_pairs());
        let envelope: Envelope<Vec<TaskSummary>> = self.send(Method::GET, url, None).await?;
        Ok(TaskList {
            tasks: envelope.data,
            total: envelope.total.and_then(|t| u64::try_from(t).ok()),
        })
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`.
    pub async fn task_status(&self, node: &str, upid: &Upid) -> Result<TaskState> {
        let upid = upid.to_string();
        self.get(&["nodes", node, "tasks", &upid, "status"], &[])
            .await
    }

    /// `GET /cluster/jobs/schedule-analyze`: the next `iterations` (Proxmox:
    /// 10, at most 100) events of `schedule` after `starttime` (Proxmox: now),
    /// computed by the answering node in its time zone.
    pub async fn schedule_analyze(
        &self,
        schedule: &str,
        starttime: Option<i64>,
        iterations: Option<u32>,
    ) -> Result<Vec<ScheduleEvent>> {
        let mut query = vec![("schedule", schedule.to_string())];
        if let Some(start) = starttime {
            query.push(("starttime", start.to_string()));
        }
        if let Some(n) = iterations {
            query.push(("iterations", n.to_string()));
        }
        self.get(&["cluster", "jobs", "schedule-analyze"], &query)
            .await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T> {
        let url = self.url(segments, query);
        let envelope: Envelope<T> = self.send(Method::GET, url, None).await?;
        Ok(envelope.data)
    }

    /// The API root plus percent-encoded path segments and query.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_string();
        for segment in segments {
            path.push('/');
            path.extend(utf8_percent_encode(segment, COMPONENT));
        }
        url.set_path(&path);
        if !query.is_empty() {
            url.set_query(Some(&encode_pairs(query)));
        }
        url
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Envelope<T>> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(pairs) = form {
            let pairs: Vec<(&str, String)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encode_pairs(&pairs));
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        let status = response.status();
        let reason = reason_phrase(&response);
        let body = response
            .text()
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        if status.is_success() {
            decode_envelope(url.as_str(), &body)
        } else {
            Err(answer_error(&Answer {
                method: method.as_str(),
                url: url.as_str(),
                token_id: &self.token_id,
                status,
                reason: reason.as_deref(),
                body: &body,
            }))
        }
    }

    /// Maps a failed request to the error a user can act on.
    fn transport_error(&self, url: &Url, error: &reqwest::Error) -> Error {
        if error.is_timeout() {
            return Error::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            };
        }
        if let Some(tls_error) = tls::find_rustls_error(error) {
            return self.tls_error(tls_error);
        }
        if error.is_connect() {
            return Error::Connect {
                url: url.to_string(),
                message: crate::error::chain(error),
            };
        }
        Error::Transport {
            url: url.to_string(),
            message: crate::error::chain(error),
        }
    }

    fn tls_error(&self, error: &rustls::Error) -> Error {
        let seen = self.observer.last_seen();
        let pin_refused = matches!(
            error,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure
            )
        );
        match (self.pin, seen) {
            (Some(expected), Some(seen)) if pin_refused && seen != expected => {
                Error::FingerprintMismatch {
                    host: self.host.clone(),
                    seen,
                    expected,
                }
            }
            _ => Error::Tls {
                host: self.host.clone(),
                message: error.to_string(),
                seen,
            },
        }
    }
}

/// `{"data": ..., "total": ...}`.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
    #[serde(default, deserialize_with = "de::opt_i64")]
    total: Option<i64>,
}

/// Proxmox's error body `{"data": null, "message": "...", "errors": {...}}`;
/// every part may be missing.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<BTreeMap<String, serde_json::Value>>,
}

/// A non-success answer, as received.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The request method.
    pub method: &'a str,
    /// The URL requested.
    pub url: &'a str,
    /// The token id used.
    pub token_id: &'a str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The reason phrase, when the server sent a non-standard one (Proxmox
    /// puts its message there too).
    pub reason: Option<&'a str>,
    /// The body.
    pub body: &'a str,
}

/// Maps a non-success answer to an [`Error`]: 401 → [`Error::Unauthorized`],
/// 403 → [`Error::Forbidden`] (naming the missing privilege), "No such
/// job" → [`Error::NoSuchJob`], anything else → [`Error::Http`] with
/// Proxmox's message and per-parameter errors, trailing newlines trimmed.
pub fn answer_error(answer: &Answer<'_>) -> Error {
    let parsed: ErrorBody = serde_json::from_str(answer.body).unwrap_or_default();
    let errors: BTreeMap<String, String> = parsed
        .errors
        .unwrap_or_default()
        .into_iter()
        .map(|(param, msg)| {
            let text = match msg {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (param, trim_message(&text).to_string())
        })
        .collect();
    let message = parsed
        .message
        .as_deref()
        .map(trim_message)
        .filter(|m| !m.is_empty())
        .or(answer.reason.map(trim_message))
        .or(answer.status.canonical_reason())
        .unwrap_or("no message")
        .to_string();
    let url = answer.url.to_string();
    let token_id = answer.token_id.to_string();
    match answer.status {
        StatusCode::UNAUTHORIZED => Error::Unauthorized {
            url,
            token_id,
            message,
        },
        StatusCode::FORBIDDEN => {
            let (path, privilege) = permission_check(&message).unzip();
            Error::Forbidden {
                url,
                token_id,
                path,
                privilege,
                message,
            }
        }
        _ => match no_such_job(&message, &errors) {
            Some((id, job_message)) => Error::NoSuchJob {
                id,
                message: job_message,
            },
            None => Error::Http {
                method: answer.method.to_string(),
                url,
                status: answer.status.as_u16(),
                message,
                errors,
            },
        },
    }
}

/// Decodes a success body `{"data": ...}`.
fn decode_envelope<T: DeserializeOwned>(url: &str, body: &str) -> Result<Envelope<T>> {
    serde_json::from_str(body).map_err(|e| Error::Decode {
        url: url.to_string(),
        reason: e.to_string(),
        body: excerpt(body),
    })
}

/// `Permission check failed (/nodes/pihanga, Sys.Audit)` → path and
/// privilege.
fn permission_check(message: &str) -> Option<(String, String)> {
    let start = message.find("Permission check failed (")? + "Permission check failed (".len();
    let inner = &message[start..];
    let inner = &inner[..inner.find(')')?];
    let (path, privilege) = inner.split_once(',')?;
    let (path, privilege) = (path.trim(), privilege.trim());
    if path.is_empty() || privilege.is_empty() {
        return None;
    }
    Some((path.to_string(), privilege.to_string()))
}

/// `No such job '<id>'`, in the message or a parameter error → the id and
/// the text.
fn no_such_job(message: &str, errors: &BTreeMap<String, String>) -> Option<(String, String)> {
    std::iter::once(message)
        .chain(errors.values().map(String::as_str))
        .find_map(|text| {
            let start = text.find("No such job '")? + "No such job '".len();
            let rest = &text[start..];
            let id = &rest[..rest.find('\'')?];
            Some((id.to_string(), text.to_string()))
        })
}

/// Proxmox's messages often end with newlines; keep the rest as sent.
fn trim_message(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let head: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else if head.is_empty() {
        "(empty)".to_string()
    } else {
        head
    }
}

/// `key=value&…` with everything but unreserved characters percent-encoded
/// (spaces as `%20`, which every decoder reads the same way).
fn encode_pairs(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, COMPONENT),
                utf8_percent_encode(v, COMPONENT)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses the base URL and settles the API root: a bare host URL gets
/// `/api2/json`.
fn api_root(base_url: &str) -> Result<Url> {
    let invalid = |reason: &str| Error::InvalidBaseUrl {
        url: base_url.to_string(),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(invalid("pveproxy speaks HTTPS only; use https://"));
    }
    if url.host_str().is_none() {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("remove the query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(if path.is_empty() { "/api2/json" } else { &path });
    Ok(url)
}

fn host_label(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The reason phrase hyper keeps when the server's differs from the standard
/// one.
fn reason_phrase(response: &reqwest::Response) -> Option<String> {
    response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn answer(status: u16, reason: Option<&'static str>, body: &'static str) -> Error {
        answer_error(&Answer {
            method: "PUT",
            url: "https://pve:8006/api2/json/cluster/backup/x",
            token_id: "stagger@pve!agent",
            status: StatusCode::from_u16(status).unwrap(),
            reason,
            body,
        })
    }

    #[test]
    fn token_parses_and_hides_its_secret() {
        let token: ApiToken = "root@pam!stagger=aaaa-bbbb".parse().unwrap();
        assert_eq!(token.id(), "root@pam!stagger");
        assert_eq!(
            token.header_value().unwrap().to_str().unwrap(),
            "PVEAPIToken=root@pam!stagger=aaaa-bbbb"
        );
        assert!(!format!("{token:?}{token}").contains("aaaa"));
        for bad in [
            "root@pam!stagger",
            "root@pam=secret",
            "root!stagger=secret",
            "@pam!stagger=secret",
            "root@pam!=secret",
            "root@pam!1st=secret",
            "root@pam!stagger=",
            "root@pam!stagger=se cret",
            "root@pam!stagger=a;b",
            "root@pam!sta:gger=secret",
        ] {
            let err = bad.parse::<ApiToken>().unwrap_err();
            assert!(matches!(err, Error::InvalidToken { .. }), "{bad}");
            let text = err.to_string();
            assert!(
                !text.contains("secret") || text.contains("the secret"),
                "{text}"
            );
            assert!(text.contains("USER@REALM!TOKENID=SECRET"));
        }
    }

    #[test]
    fn base_urls_settle_on_the_api_root() {
        assert_eq!(
            api_root("https://pve1:8006").unwrap().as_str(),
            "https://pve1:8006/api2/json"
        );
        assert_eq!(
            api_root("https://pve1:8006/api2/json/").unwrap().as_str(),
            "https://pve1:8006/api2/json"
        );
        for bad in ["http://pve1:8006", "pve1:8006", "https://pve1/?a=b", ""] {
            assert!(
                matches!(api_root(bad), Err(Error::InvalidBaseUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn parameter_errors_keep_their_text_without_trailing_newlines() {
        let err = answer(
            400,
            Some("Parameter verification failed."),
            r#"{"data":null,"errors":{"schedule":"invalid format\n"},"message":"Parameter verification failed.\n"}"#,
        );
        match &err {
            Error::Http {
                status,
                message,
                errors,
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(message, "Parameter verification failed.");
                assert_eq!(errors["schedule"], "invalid format");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err
            .to_string()
            .ends_with("Parameter verification failed.; schedule: invalid format"));
    }

    #[test]
    fn forbidden_names_the_missing_privilege() {
        let err = answer(
            403,
            Some("Permission check failed (/nodes/pihanga, Sys.Audit)"),
            r#"{"data":null}"#,
        );
        match &err {
            Error::Forbidden {
                path, privilege, ..
            } => {
                assert_eq!(path.as_deref(), Some("/nodes/pihanga"));
                assert_eq!(privilege.as_deref(), Some("Sys.Audit"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err
            .to_string()
            .contains("lacks privilege Sys.Audit on /nodes/pihanga"));
    }

    #[test]
    fn unauthorized_uses_the_reason_phrase_when_the_body_is_silent() {
        let err = answer(401, Some("authentication failure"), "");
        assert!(
            matches!(err, Error::Unauthorized { ref message, .. } if message == "authentication failure")
        );
        assert!(err.to_string().contains("stagger@pve!agent"));
    }

    #[test]
    fn other_shapes_still_give_a_message() {
        let err = answer(500, None, "<html>oops</html>");
        assert!(
            matches!(err, Error::Http { status: 500, ref message, .. } if message == "Internal Server Error")
        );
        let err = answer(
            500,
            Some("Job 'x' already exists"),
            r#"{"data":null,"message":"Job 'x' already exists\n"}"#,
        );
        assert!(err.to_string().contains("HTTP 500: Job 'x' already exists"));
        let err = answer(400, None, r#"{"data":null,"message":"No such job 'x'\n"}"#);
        assert!(matches!(err, Error::NoSuchJob { ref id, .. } if id == "x"));
    }

    #[test]
    fn undecodable_bodies_are_shortened() {
        let body = "x".repeat(1000);
        let err = decode_envelope::<u32>("https://h/api2/json/version", &body)
            .err()
            .unwrap();
        match err {
            Error::Decode { body, .. } => assert_eq!(body.chars().count(), BODY_EXCERPT_CHARS + 1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn query_and_form_values_are_fully_encoded() {
        assert_eq!(
            encode_pairs(&[
                ("schedule", "mon..fri 23:30 UTC".into()),
                ("a&b", "c=d+e".into())
            ]),
            "schedule=mon..fri%2023%3A30%20UTC&a%26b=c%3Dd%2Be"
        );
    }
}
