//! Test harness: lay out a tree with the built `pve-sim`, start `pve-sim serve`
//! on a free loopback port, and talk to it over real HTTPS with the
//! certificate pinned (pve-api's TLS setup).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `2024-11-02T10:00:00Z`, the instant the API fixtures were taken at.
pub const FIXTURE_NOW: i64 = 1_730_541_600;
/// The token secret the test trees use.
pub const SECRET: &str = "5e0c0b1e-7d5f-4b8a-9a51-2f0e6c3d4b7a";

/// The shared Proxmox fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scheduler-core/tests/fixtures/proxmox/fixtures")
}

/// Reads a fixture file.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A JSON fixture.
pub fn json_fixture(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Runs the built binary with `args`.
pub fn pve_sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pve-sim"))
        .args(args)
        .output()
        .expect("pve-sim runs")
}

/// A laid-out tree in a temp dir.
pub struct SimTree {
    pub dir: tempfile::TempDir,
}

impl SimTree {
    /// `pve-sim init --from <fixtures> --jobs <jobs> --timezone Pacific/Auckland` plus `extra`.
    pub fn init(jobs: &str, extra: &[&str]) -> SimTree {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("cluster");
        let from = fixtures();
        let mut args = vec![
            "init",
            "--root",
            root.to_str().expect("utf-8 path"),
            "--from",
            from.to_str().expect("utf-8 path"),
            "--jobs",
            jobs,
            "--timezone",
            "Pacific/Auckland",
            "--token-secret",
            SECRET,
        ];
        args.extend_from_slice(extra);
        let out = pve_sim(&args);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SimTree { dir }
    }

    /// The cluster root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    /// The root as text.
    pub fn root_str(&self) -> String {
        self.root().to_string_lossy().into_owned()
    }

    /// The jobs.cfg text.
    pub fn jobs_cfg(&self) -> String {
        std::fs::read_to_string(self.root().join("etc/pve/jobs.cfg")).expect("jobs.cfg")
    }

    /// Replaces jobs.cfg.
    pub fn set_jobs_cfg(&self, text: &str) {
        std::fs::write(self.root().join("etc/pve/jobs.cfg"), text).expect("write jobs.cfg");
    }

    /// Starts `pve-sim serve` on a free port with `extra` arguments.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let root = self.root_str();
        let mut args = vec![
            "serve",
            "--root",
            &root,
            "--listen",
            "127.0.0.1:0",
            "--auth-delay-ms",
            "200",
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pve-sim"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut field = |name: &str| {
            let line = lines.next().expect("a start-up line").expect("readable");
            line.strip_prefix(&format!("{name}: "))
                .unwrap_or_else(|| panic!("expected '{name}: ...', got {line:?}"))
                .to_owned()
        };
        let url = field("listening");
        let fingerprint = field("fingerprint");
        let token = field("token");
        Server {
            child,
            url,
            fingerprint,
            token,
        }
    }
}

/// A running `pve-sim serve`; killed on drop.
pub struct Server {
    child: Child,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The certificate's fingerprint as printed.
    pub fingerprint: String,
    /// `user@realm!id=secret` as printed.
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A reqwest client pinned to `fingerprint` with pve-api's TLS setup.
    pub fn http(&self, fingerprint: &str) -> reqwest::Client {
        let trust = pve_api::Trust::Fingerprint(fingerprint.parse().expect("fingerprint"));
        let tls = pve_api::tls::client_config(&trust).expect("tls config");
        reqwest::Client::builder()
            .use_preconfigured_tls(tls.config)
            .build()
            .expect("client")
    }

    /// A pve-api client with `token`, pinned to this server's certificate.
    pub fn api(&self, token: &str) -> pve_api::Client {
        pve_api::Client::new(pve_api::Config {
            base_url: self.url.clone(),
            token: token.parse().expect("token"),
            trust: pve_api::Trust::Fingerprint(self.fingerprint.parse().expect("fingerprint")),
            timeout: std::time::Duration::from_secs(20),
        })
        .expect("client")
    }

    /// `<url>/api2/json<path>`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/api2/json{path}", self.url)
    }

    /// The Authorization header value.
    pub fn auth(&self) -> String {
        format!("PVEAPIToken={}", self.token)
    }

    /// A request with the token, answered as (status, JSON body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let client = self.http(&self.fingerprint);
        let mut request = client
            .request(method.clone(), self.endpoint(path))
            .header("Authorization", self.auth());
        if method == reqwest::Method::GET {
            request = request.query(form);
        } else {
            request = request.form(form);
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }
}
