//! The harness: a host's files in a temp dir, the agent binary started on
//! 127.0.0.1 (port 0, learned from its log), HTTPS requests to it, pve-sim.

#![allow(dead_code)] // not every test binary module uses every helper

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pve_api::{Fingerprint, Trust};

/// The bearer token every test agent accepts.
pub const TOKEN: &str = "test-token-3f9a1c";

/// The shared Proxmox fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scheduler-core/tests/fixtures/proxmox/fixtures")
}

/// A fixture's text.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).expect("fixture")
}

/// The agent binary.
pub fn agent_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sched-agent"))
}

/// pve-sim, built next to the agent (`cargo build -p pve-sim`).
pub fn pve_sim_binary() -> PathBuf {
    let path = agent_binary().with_file_name("pve-sim");
    assert!(
        path.exists(),
        "{} is missing: these tests run the simulated Proxmox; build it first with `cargo build -p pve-sim`",
        path.display()
    );
    path
}

/// A Proxmox host's files in a temp dir, laid out as the agent's config names them.
pub struct Host {
    pub dir: tempfile::TempDir,
}

impl Host {
    /// A host with `jobs.cfg`, an idle `/proc/pressure/io` and empty task records.
    pub fn new(jobs_cfg: &str) -> Host {
        let host = Host {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        host.write("etc/pve/jobs.cfg", jobs_cfg);
        host.write(
            "proc/pressure/io",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        );
        for dir in ["var/log/pve/tasks", "var/lib/pve-manager/jobs", "state"] {
            std::fs::create_dir_all(host.path(dir)).expect("dir");
        }
        host.write("etc/vzdump.conf", "# vzdump defaults\nlockwait: 60\n");
        host.write("etc/stagger/agent.token", &format!("{TOKEN}\n"));
        host
    }

    /// A path in the tree.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file of the tree.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, text).expect("write");
    }

    /// Replaces a file of the tree atomically (as the kernel's procfs files
    /// are never seen half-written).
    pub fn write_atomic(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        let temp = path.with_extension("tmp-write");
        std::fs::write(&temp, text).expect("write");
        std::fs::rename(&temp, &path).expect("rename");
    }

    /// Reads a file of the tree.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).expect("read")
    }

    /// jobs.cfg's text.
    pub fn jobs_cfg(&self) -> String {
        self.read("etc/pve/jobs.cfg")
    }

    /// Writes `agent.toml` pointing into the tree, plus `extra` lines; returns its path.
    pub fn config(&self, extra: &str) -> PathBuf {
        let p = |rel: &str| self.path(rel).display().to_string();
        let text = format!(
            "node = \"pihanga\"\ntimezone = \"Pacific/Auckland\"\nlisten = \"127.0.0.1:0\"\n\
             token-file = \"{}\"\nproc-root = \"{}\"\npve-root = \"{}\"\ntask-dir = \"{}\"\n\
             job-state-dir = \"{}\"\nvzdump-conf = \"{}\"\nstate-dir = \"{}\"\nhook-script = \"{}\"\n{extra}\n",
            p("etc/stagger/agent.token"),
            p("proc"),
            p("etc/pve"),
            p("var/log/pve/tasks"),
            p("var/lib/pve-manager/jobs"),
            p("etc/vzdump.conf"),
            p("state"),
            p("usr/local/lib/stagger/vzdump-hook"),
        );
        let path = self.path("etc/stagger/agent.toml");
        std::fs::write(&path, text).expect("config");
        path
    }
}

/// A running `sched-agent run`.
pub struct Agent {
    child: Child,
    pub addr: SocketAddr,
    pub https: bool,
    log: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts the agent and waits until it serves.
    pub fn start(config: &Path) -> Agent {
        Agent::start_with_env(config, &[])
    }

    /// Starts the agent with extra environment variables.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Agent {
        let mut command = Command::new(agent_binary());
        command
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start sched-agent");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("The agent serves.") {
                    let _ = tx.send(line.clone());
                }
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the agent did not start serving; its log:\n{}",
                    log.lock().expect("log")
                );
            }
        };
        let addr = field(&line, "address")
            .parse()
            .expect("address in the log line");
        let https = field(&line, "https") == "true";
        Agent {
            child,
            addr,
            https,
            log,
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (systemd's stop), and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("/bin/kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not stop on SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=value` from a log line.
fn field(line: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    let line = strip_ansi(line);
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(&prefix))
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

/// `line` without ANSI colour sequences.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `sched-agent fingerprint` for `config`.
pub fn fingerprint(config: &Path) -> Fingerprint {
    let output = Command::new(agent_binary())
        .arg("--config")
        .arg(config)
        .arg("fingerprint")
        .output()
        .expect("run fingerprint");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a fingerprint")
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub seen: Option<Fingerprint>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A blocking HTTPS client that trusts one fingerprint (or plain HTTP).
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    observer: pve_api::tls::CertObserver,
    base: String,
}

impl Http {
    /// A client for `agent`, pinning `pin`.
    pub fn new(agent: &Agent, pin: Fingerprint) -> Http {
        Http::with_trust(&agent.url(), Trust::Fingerprint(pin))
    }

    /// A client for `base` with `trust`.
    pub fn with_trust(base: &str, trust: Trust) -> Http {
        let setup = pve_api::tls::client_config(&trust).expect("tls");
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(setup.config)
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client,
            observer: setup.observer,
            base: base.to_owned(),
        }
    }

    /// A request: `token` as bearer (None: no header), `body` sent as JSON text.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        self.send_with(method, path, token, body, &[])
    }

    /// A request with extra headers.
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_send(method, path, token, body, headers)
            .expect("request")
    }

    /// A request where a refused or broken connection is an `Err`.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let method: reqwest::Method = method.parse().expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_owned());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.try_request(request)
    }

    /// `PUT path` with the token, where a broken connection is an answer too
    /// (the agent may be killed mid-request).
    pub fn try_put(&self, path: &str, body: &serde_json::Value) -> Result<Answer, String> {
        let request = self
            .client
            .put(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        self.try_request(request)
    }

    fn try_request(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = response.text().await.map_err(|e| e.to_string())?;
            Ok(Answer {
                status,
                content_type,
                body,
                seen: self.observer.last_seen(),
            })
        })
    }

    /// `GET path` with the token.
    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, Some(TOKEN), None)
    }

    /// `GET /metrics` with the token, in the classic text format (what
    /// promtool reads).
    pub fn metrics_text(&self) -> String {
        self.send_with(
            "GET",
            "/metrics",
            Some(TOKEN),
            None,
            &[("Accept", "text/plain")],
        )
        .body
    }

    /// `PUT path` with the token and a JSON body.
    pub fn put(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.send("PUT", path, Some(TOKEN), Some(&body.to_string()))
    }

    /// `POST path` with the token and a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.send("POST", path, Some(TOKEN), Some(&body.to_string()))
    }
}

/// SHA-1 hex of `text`, as Proxmox digests jobs.cfg.
pub fn digest(text: &str) -> String {
    scheduler_core::jobs_cfg::Digest::of(text.as_bytes()).to_string()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of the first sample that `selector` (`name` or `name{a="x",b="y"}`)
/// selects in a classic-text exposition: its name is `name` and its labels
/// include the selector's, as a PromQL selector reads.
pub fn sample(exposition: &str, selector: &str) -> Option<f64> {
    let (name, wanted) = split_series(selector);
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (sample_name, labels) = split_series(series);
            let selected = sample_name == name && wanted.iter().all(|w| labels.contains(w));
            if selected {
                value.parse().ok()
            } else {
                None
            }
        })
}

/// `name{a="x",b="y"}` → (`name`, [`a="x"`, `b="y"`]).
fn split_series(series: &str) -> (&str, Vec<&str>) {
    match series.split_once('{') {
        Some((name, labels)) => (
            name,
            labels
                .trim_end_matches('}')
                .split(',')
                .filter(|label| !label.is_empty())
                .collect(),
        ),
        None => (series, Vec::new()),
    }
}
