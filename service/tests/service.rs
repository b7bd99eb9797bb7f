//! A service built from these parts, served for real on 127.0.0.1, and the
//! client talking to it: pinning, tokens, JSON errors, limits, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::{get, put};
use axum::Router;
use pve_api::Trust;
use serde::{Deserialize, Serialize};
use stagger_service::api::{self, ApiError, Json};
use stagger_service::auth::Authorized;
use stagger_service::client::{Client, Endpoint};
use stagger_service::tls::Identity;
use stagger_service::token::{Secret, Token};
use stagger_service::Error;

const TOKEN: &str = "test-token-0123456789";

#[derive(Clone)]
struct State {
    token: Arc<Token>,
}

impl FromRef<State> for Arc<Token> {
    fn from_ref(state: &State) -> Arc<Token> {
        state.token.clone()
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Change {
    job: String,
    schedule: String,
}

async fn change(
    _who: Authorized,
    Json(change): Json<Change>,
) -> Result<axum::Json<Change>, ApiError> {
    if change.schedule.contains('\n') {
        return Err(ApiError::unprocessable("the schedule holds a newline"));
    }
    Ok(axum::Json(change))
}

fn router() -> Router {
    let state = State {
        token: Arc::new(Token::new(&Secret::new(TOKEN).expect("valid token"))),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/change", put(change))
        .layer(api::body_limit())
        .with_state(state)
}

struct Running {
    addr: SocketAddr,
    identity: Identity,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let identity =
        Identity::load_or_create(&dir.path().join("tls"), &["127.0.0.1".into()]).expect("identity");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tls = identity.server_config().expect("server config");
    let server = tokio::spawn(stagger_service::serve::serve(
        listener,
        router(),
        Some(tls),
        async {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        identity,
        stop: Some(stop),
        server,
        _dir: dir,
    }
}

fn client(running: &Running, token: Option<&str>, trust: Trust) -> Client {
    Client::new(Endpoint {
        url: format!("https://{}", running.addr),
        token: token.map(|t| Secret::new(t).expect("valid token")),
        trust,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
    })
    .expect("client")
}

fn pinned(running: &Running) -> Trust {
    Trust::Fingerprint(running.identity.fingerprint())
}

fn change_body() -> Change {
    Change {
        job: "backup-pihanga".into(),
        schedule: "2:35 UTC".into(),
    }
}

#[tokio::test]
async fn a_pinned_client_with_the_token_is_served() {
    let running = start().await;
    let client = client(&running, Some(TOKEN), pinned(&running));
    let answer: Change = client
        .put("/v1/change", &change_body())
        .await
        .expect("served");
    assert_eq!(answer, change_body());
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_refused_with_401_and_a_reason() {
    let running = start().await;
    for token in [None, Some("test-token-0123456788")] {
        let err = client(&running, token, pinned(&running))
            .put::<_, Change>("/v1/change", &change_body())
            .await
            .expect_err("refused");
        match err {
            Error::Status { status, body, .. } => {
                assert_eq!(status, 401);
                assert!(body.error.contains("bearer token"), "{body:?}");
            }
            other => panic!("expected 401, got {other}"),
        }
    }
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let running = start().await;
    let text = client(&running, None, pinned(&running))
        .get_text("/healthz", "text/plain")
        .await
        .expect("served");
    assert_eq!(text, "ok");
}

#[tokio::test]
async fn another_certificate_than_the_pinned_one_is_refused_naming_both() {
    let running = start().await;
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = Identity::load_or_create(other_dir.path(), &["127.0.0.1".into()]).expect("other");
    let err = client(
        &running,
        Some(TOKEN),
        Trust::Fingerprint(other.fingerprint()),
    )
    .get_text("/healthz", "text/plain")
    .await
    .expect_err("refused");
    match &err {
        Error::Identity { pinned, seen, .. } => {
            assert_eq!(*pinned, other.fingerprint());
            assert_eq!(*seen, running.identity.fingerprint());
        }
        other => panic!("expected an identity error, got {other}"),
    }
    assert!(err
        .to_string()
        .contains(&running.identity.fingerprint().to_string()));
}

#[tokio::test]
async fn json_of_the_wrong_shape_gets_400_with_the_parsers_reason() {
    let running = start().await;
    let err = client(&running, Some(TOKEN), pinned(&running))
        .put::<_, Change>("/v1/change", &serde_json::json!({"job": "x"}))
        .await
        .expect_err("refused");
    match err {
        Error::Status { status, body, .. } => {
            assert_eq!(status, 400);
            assert!(body.error.contains("schedule"), "{body:?}");
        }
        other => panic!("expected 400, got {other}"),
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let running = start().await;
    let huge = Change {
        job: "x".repeat(api::MAX_BODY_BYTES + 1),
        schedule: "2:35 UTC".into(),
    };
    let err = client(&running, Some(TOKEN), pinned(&running))
        .put::<_, Change>("/v1/change", &huge)
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Status { status: 413, .. }), "{err}");
}

#[tokio::test]
async fn a_handlers_refusal_reaches_the_client_as_its_error_body() {
    let running = start().await;
    let bad = Change {
        job: "backup-pihanga".into(),
        schedule: "2:35 UTC\n\nvzdump: evil".into(),
    };
    let err = client(&running, Some(TOKEN), pinned(&running))
        .put::<_, Change>("/v1/change", &bad)
        .await
        .expect_err("refused");
    match err {
        Error::Status { status, body, .. } => {
            assert_eq!(status, 422);
            assert_eq!(body.error, "the schedule holds a newline");
        }
        other => panic!("expected 422, got {other}"),
    }
}

#[tokio::test]
async fn a_service_that_is_down_is_unreachable_quickly() {
    let running = start().await;
    let addr = running.addr;
    drop(running);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let free = listener.local_addr().expect("address");
    drop(listener);
    let client = Client::new(Endpoint {
        url: format!("https://{free}"),
        token: None,
        trust: Trust::System,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
    })
    .expect("client");
    let started = std::time::Instant::now();
    let err = client
        .get_text("/healthz", "text/plain")
        .await
        .expect_err("down");
    assert!(matches!(err, Error::Unreachable { .. }), "{err} ({addr})");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let mut running = start().await;
    if let Some(stop) = running.stop.take() {
        let _ = stop.send(());
    }
    let result = tokio::time::timeout(Duration::from_secs(5), &mut running.server)
        .await
        .expect("stopped in time")
        .expect("no panic");
    result.expect("clean stop");
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let err = stagger_service::serve::serve(listener, router(), None, async {})
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[test]
fn the_certificate_and_its_fingerprint_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names = ["127.0.0.1".to_string()];
    let first = Identity::load_or_create(dir.path(), &names).expect("made");
    let second = Identity::load_or_create(dir.path(), &names).expect("loaded");
    assert_eq!(first.fingerprint(), second.fingerprint());
    assert_eq!(first.cert_pem(), second.cert_pem());
}

#[test]
fn a_half_identity_is_refused_not_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names = ["127.0.0.1".to_string()];
    Identity::load_or_create(dir.path(), &names).expect("made");
    std::fs::remove_file(stagger_service::tls::key_path(dir.path())).expect("key removed");
    let err = Identity::load_or_create(dir.path(), &names).expect_err("refused");
    assert!(err.to_string().contains("key.pem"), "{err}");
    assert!(stagger_service::tls::cert_path(dir.path()).exists());
}

#[test]
fn the_classic_exposition_passes_promtool() {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::{Registry, Unit};
    use std::io::Write;

    let mut registry = Registry::with_prefix("stagger");
    let runs = Family::<Vec<(String, String)>, Counter>::default();
    runs.get_or_create(&vec![("result".into(), "ok".into())])
        .inc();
    registry.register("backup_runs", "Backup runs by how they ended", runs);
    let running = Family::<Vec<(String, String)>, Gauge>::default();
    running
        .get_or_create(&vec![("job_id".into(), "backup-pihanga".into())])
        .set(1);
    registry.register("backup_running", "Whether a backup job runs now", running);
    let durations = Histogram::new([60.0, 600.0, 3600.0]);
    durations.observe(1500.0);
    registry.register_with_unit(
        "backup_duration",
        "Backup run durations",
        Unit::Seconds,
        durations,
    );
    let text =
        stagger_service::metrics::encode(&registry, stagger_service::metrics::Format::ClassicText)
            .expect("encodes");

    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus; ./scripts/test installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("written");
    let output = promtool.wait_with_output().expect("finished");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

#[test]
fn processes_starting_at_once_all_get_the_same_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("state").join("tls");
    let prints: Vec<_> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let tls = tls.clone();
                scope.spawn(move || {
                    Identity::load_or_create(&tls, &["127.0.0.1".to_string()])
                        .expect("identity")
                        .fingerprint()
                })
            })
            .collect();
        starts
            .into_iter()
            .map(|s| s.join().expect("no panic"))
            .collect()
    });
    let kept = Identity::load(&tls).expect("kept").fingerprint();
    assert!(prints.iter().all(|p| *p == kept), "{prints:?} vs {kept}");
}
