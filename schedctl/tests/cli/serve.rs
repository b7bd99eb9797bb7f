//! `schedctl serve` as systemd runs it: the real process on 127.0.0.1 with a
//! temporary configuration, asked over HTTPS with a pinned certificate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pve_api::{Fingerprint, Trust};
use scheduler_core::report::{LeaseRelease, LeaseRequest, LeaseResponse};
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;
use stagger_service::Error;

use crate::util::{schedctl, stderr, stdout};

const TOKEN: &str = "coordinator-test-token-42";

/// hikurangi, ruapehu and pihanga behind one PBS datastore (capacity 1).
fn write_config(dir: &Path, serve: &str) -> PathBuf {
    let token = dir.join("schedctl.token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token written");
    let mut text = format!(
        "store = \"{store}\"\n\n[serve]\ntoken-file = \"{token}\"\nstate-dir = \"{state}\"\n{serve}\n",
        store = dir.join("schedctl.db").display(),
        token = token.display(),
        state = dir.join("state").display(),
    );
    for host in ["hikurangi", "ruapehu", "pihanga"] {
        text.push_str(&format!(
            "\n[[host]]\nname = \"{host}\"\n[host.agent]\nurl = \"http://127.0.0.1:9\"\ntoken-file = \"{}\"\n",
            token.display()
        ));
    }
    text.push_str("\n[[resource]]\nname = \"pbs-main\"\ncapacity = 1\nstorages = [\"pbs\"]\n");
    let path = dir.join("schedctl.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

/// A running `schedctl serve`, killed when dropped.
struct Coordinator {
    child: Child,
    url: String,
}

impl Coordinator {
    fn start(config: &Path) -> Coordinator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_schedctl"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("schedctl serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the first line");
        let url = line
            .trim()
            .strip_prefix("listening: ")
            .unwrap_or_else(|| panic!("expected `listening: URL`, got {line:?}"))
            .to_owned();
        Coordinator { child, url }
    }

    fn client(&self, token: Option<&str>, fingerprint: &Fingerprint) -> Client {
        Client::new(Endpoint {
            url: self.url.clone(),
            token: token.map(|t| Secret::new(t).expect("valid token")),
            trust: Trust::Fingerprint(*fingerprint),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
        })
        .expect("client")
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fingerprint(config: &Path) -> Fingerprint {
    let output = schedctl(&[
        "serve",
        "--fingerprint",
        "--config",
        &config.to_string_lossy(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output).trim().parse().expect("a fingerprint")
}

fn ask(host: &str, job: &str, started: i64, wait_secs: u64) -> LeaseRequest {
    LeaseRequest {
        host: host.into(),
        job: job.into(),
        started,
        wait_secs,
        storage: Some("pbs".into()),
    }
}

async fn metrics_text(client: &Client) -> String {
    client
        .get_text("/metrics", "text/plain")
        .await
        .expect("metrics served")
}

#[tokio::test]
async fn a_queued_request_is_granted_as_soon_as_the_holder_releases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    let pin = fingerprint(&config);
    let coordinator = Coordinator::start(&config);
    let client = coordinator.client(Some(TOKEN), &pin);

    let first: LeaseResponse = client
        .post("/v1/lease", &ask("hikurangi", "backup-hikurangi", 1000, 0))
        .await
        .expect("answered");
    assert!(first.granted, "{first:?}");

    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            let asked = Instant::now();
            let answer: LeaseResponse = client
                .post("/v1/lease", &ask("ruapehu", "backup-ruapehu", 2000, 20))
                .await
                .expect("answered");
            (answer, asked.elapsed())
        })
    };
    // While it waits, asking without waiting shows who holds the datastore.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued: LeaseResponse = client
        .post("/v1/lease", &ask("ruapehu", "backup-ruapehu", 2000, 0))
        .await
        .expect("answered");
    assert!(!queued.granted);
    assert!(
        queued
            .reason
            .contains("pbs-main (held by backup-hikurangi on hikurangi"),
        "{}",
        queued.reason
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _: serde_json::Value = client
        .post(
            "/v1/lease/release",
            &LeaseRelease {
                lease_id: first.lease_id.clone(),
            },
        )
        .await
        .expect("released");
    let (answer, waited) = waiter.await.expect("no panic");
    assert!(answer.granted, "{answer:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "granted after {waited:?}"
    );

    let text = metrics_text(&client).await;
    for line in [
        "stagger_leases_granted_total 2",
        "stagger_leases_queued_total 1",
        "stagger_leases_released_total 1",
        "stagger_leases_active 1",
        "stagger_fleet_hosts 3",
        "stagger_resource_running_backups{resource=\"pbs-main\"} 1",
        "stagger_resource_running_backups{resource=\"host:hikurangi\"} 0",
        "stagger_resource_capacity{resource=\"pbs-main\"} 1",
        "stagger_lease_wait_seconds_count 2",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
    promtool_accepts(&text);
}

#[tokio::test]
async fn the_token_is_required_except_for_healthz() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    let pin = fingerprint(&config);
    let coordinator = Coordinator::start(&config);
    for token in [None, Some("not-the-token")] {
        let client = coordinator.client(token, &pin);
        let err = client
            .post::<_, LeaseResponse>("/v1/lease", &ask("pihanga", "backup-pihanga", 1, 0))
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::Status { status: 401, .. }), "{err}");
        let err = client
            .get_text("/metrics", "text/plain")
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::Status { status: 401, .. }), "{err}");
    }
    let health = coordinator
        .client(None, &pin)
        .get_text("/healthz", "text/plain")
        .await
        .expect("served");
    assert_eq!(health, "ok");
}

#[tokio::test]
async fn bad_requests_and_unknown_leases_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    let pin = fingerprint(&config);
    let coordinator = Coordinator::start(&config);
    let client = coordinator.client(Some(TOKEN), &pin);
    let err = client
        .post::<_, LeaseResponse>("/v1/lease", &ask("pihanga\nevil", "backup", 1, 0))
        .await
        .expect_err("refused");
    match err {
        Error::Status { status, body, .. } => {
            assert_eq!(status, 400);
            assert!(body.error.contains("`host`"), "{body:?}");
        }
        other => panic!("expected 400, got {other}"),
    }
    let err = client
        .post::<_, serde_json::Value>(
            "/v1/lease/release",
            &LeaseRelease {
                lease_id: "pihanga/backup-nope/1".into(),
            },
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    // A host the coordinator does not know goes at once, and is told why.
    let stranger: LeaseResponse = client
        .post("/v1/lease", &ask("tongariro", "backup-t", 1, 0))
        .await
        .expect("answered");
    assert!(stranger.granted);
    assert!(
        stranger
            .reason
            .contains("not in the coordinator's configuration"),
        "{}",
        stranger.reason
    );
}

#[tokio::test]
async fn sigterm_answers_waiting_requests_at_once_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    let pin = fingerprint(&config);
    let mut coordinator = Coordinator::start(&config);
    let client = coordinator.client(Some(TOKEN), &pin);
    let _: LeaseResponse = client
        .post("/v1/lease", &ask("hikurangi", "backup-hikurangi", 1000, 0))
        .await
        .expect("answered");
    let waiter = tokio::spawn(async move {
        let asked = Instant::now();
        let answer: Result<LeaseResponse, _> = client
            .post("/v1/lease", &ask("pihanga", "backup-pihanga", 2000, 60))
            .await;
        (answer, asked.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::spawn_blocking(move || coordinator.terminate())
        .await
        .expect("no panic");
    assert!(status.success(), "{status}");
    let (answer, waited) = waiter.await.expect("no panic");
    let answer = answer.expect("answered before the exit");
    assert!(!answer.granted);
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
}

#[tokio::test]
async fn plain_http_serves_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"\nplain-http = true");
    let coordinator = Coordinator::start(&config);
    assert!(
        coordinator.url.starts_with("http://127.0.0.1:"),
        "{}",
        coordinator.url
    );
    let client = Client::new(Endpoint {
        url: coordinator.url.clone(),
        token: Some(Secret::new(TOKEN).expect("valid")),
        trust: Trust::System,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
    })
    .expect("client");
    let answer: LeaseResponse = client
        .post("/v1/lease", &ask("pihanga", "backup-pihanga", 1, 0))
        .await
        .expect("answered");
    assert!(answer.granted);
}

#[test]
fn systemd_hears_ready_once_the_port_is_bound_and_stopping_on_sigterm() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedctl"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("schedctl serve starts");
    let mut buffer = [0u8; 256];
    let n = socket.recv(&mut buffer).expect("a notification");
    assert_eq!(String::from_utf8_lossy(&buffer[..n]).trim(), "READY=1");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("reads");
    let url = line
        .trim()
        .strip_prefix("listening: ")
        .expect("listening: URL");
    // Ready means served: the port answers now.
    let address = url.trim_start_matches("https://");
    std::net::TcpStream::connect(address).expect("the port is bound");
    let mut coordinator = Coordinator {
        child,
        url: url.to_owned(),
    };
    assert!(coordinator.terminate().success());
    let n = socket.recv(&mut buffer).expect("a notification");
    assert_eq!(String::from_utf8_lossy(&buffer[..n]).trim(), "STOPPING=1");
}

#[test]
fn the_fingerprint_is_made_once_and_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    let first = fingerprint(&config);
    assert_eq!(fingerprint(&config), first);
    assert!(dir.path().join("state/coordinator-tls/cert.pem").exists());
}

#[test]
fn the_certificate_is_made_beside_other_files_in_the_state_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    std::fs::write(dir.path().join("state/schedctl.db"), "").expect("another file");
    let first = fingerprint(&config);
    assert_eq!(fingerprint(&config), first);
}

#[test]
fn a_bad_configuration_is_refused_with_exit_2_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (serve, expected) in [
        ("listen = \"0.0.0.0:8151\"\nplain-http = true", "plain-http"),
        ("listen = \"localhost\"", "serve.listen"),
        ("lease-margin = 5", "lease-margin"),
    ] {
        let config = write_config(dir.path(), serve);
        let output = schedctl(&["serve", "--config", &config.to_string_lossy()]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{serve}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{serve}: {}",
            stderr(&output)
        );
    }
    let config = write_config(dir.path(), "listen = \"127.0.0.1:0\"");
    std::fs::remove_file(dir.path().join("schedctl.token")).expect("removed");
    let output = schedctl(&["serve", "--config", &config.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("schedctl.token"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_busy_port_is_a_failure_that_names_the_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("address");
    let config = write_config(dir.path(), &format!("listen = \"{address}\""));
    let output = schedctl(&["serve", "--config", &config.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&address.to_string()),
        "{}",
        stderr(&output)
    );
}

fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
