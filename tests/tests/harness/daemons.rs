//! A real `sched-agent` and a real `schedctl serve` on loopback, with
//! configurations, Proxmox files and tokens in a temporary directory, and
//! their `/metrics` scraped over plain HTTP (allowed on loopback only).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pve_api::Trust;
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;

use super::process::{free_port, Daemon};
use super::{binary, repo_file};

/// The Proxmox sample files the agent reads (FORMATS.md fixtures).
const FIXTURES: &str = "scheduler-core/tests/fixtures/proxmox/fixtures";

/// A daemon with the base URL and token of its API.
pub struct Running {
    /// The process, stopped when this is dropped.
    pub daemon: Daemon,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its bearer token.
    pub token: String,
}

impl Running {
    /// `GET /metrics` in the classic text format.
    pub fn scrape(&self) -> String {
        let client = client(&self.url, Some(&self.token));
        runtime()
            .block_on(client.get_text("/metrics", "text/plain"))
            .unwrap_or_else(|e| panic!("scrape {}/metrics: {e}\n{}", self.url, self.daemon.log()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn client(url: &str, token: Option<&str>) -> Client {
    Client::new(Endpoint {
        url: url.to_owned(),
        token: token.map(|t| Secret::new(t).expect("a valid token")),
        trust: Trust::System,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
    })
    .expect("a client for a loopback URL")
}

/// Whether `GET /healthz` answers.
fn healthy(url: &str) -> bool {
    runtime()
        .block_on(client(url, None).get_text("/healthz", "text/plain"))
        .is_ok()
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent dir");
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn copy_fixture(name: &str, to: &Path) {
    let text = std::fs::read_to_string(repo_file(&format!("{FIXTURES}/{name}"))).expect("fixture");
    write(to, &text);
}

/// `sched-agent run` as node `pihanga` on the fixture jobs.cfg, task records
/// and a small /proc, in `dir/agent/`.
pub fn start_agent(dir: &Path) -> Running {
    let root = dir.join("agent");
    write(
        &root.join("proc/pressure/io"),
        "some avg10=1.50 avg60=0.80 avg300=0.40 total=123456\nfull avg10=0.50 avg60=0.20 avg300=0.10 total=45678\n",
    );
    write(
        &root.join("proc/diskstats"),
        "   8       0 sda 1000 0 8000 500 2000 0 16000 900 0 1200 1400 0 0 0 0 0 0\n",
    );
    write(&root.join("proc/stat"), "cpu  100 0 50 1000 25 0 5 0 0 0\n");
    copy_fixture("jobs-homelab-single.cfg", &root.join("pve/jobs.cfg"));
    std::fs::create_dir_all(root.join("pve/priv/lock")).expect("lock dir");
    copy_fixture("tasks-index", &root.join("tasks/index"));
    copy_fixture("tasks-active", &root.join("tasks/active"));
    copy_fixture("vzdump.conf", &root.join("vzdump.conf"));
    std::fs::create_dir_all(root.join("jobs")).expect("job state dir");
    let token = "agent-token-for-the-dashboard-test";
    write(&root.join("agent.token"), &format!("{token}\n"));
    let port = free_port();
    let config = root.join("agent.toml");
    write(
        &config,
        &format!(
            "node = \"pihanga\"\nlisten = \"127.0.0.1:{port}\"\nplain-http = true\n\
             token-file = \"{r}/agent.token\"\nproc-root = \"{r}/proc\"\npve-root = \"{r}/pve\"\n\
             task-dir = \"{r}/tasks\"\njob-state-dir = \"{r}/jobs\"\nvzdump-conf = \"{r}/vzdump.conf\"\n\
             state-dir = \"{r}/state\"\nsample-interval-secs = 1\n",
            r = root.display()
        ),
    );
    let mut daemon = Daemon::start(
        "sched-agent",
        Command::new(binary("sched-agent", "sched-agent"))
            .arg("run")
            .arg("--config")
            .arg(&config),
        dir,
    );
    let url = format!("http://127.0.0.1:{port}");
    daemon.wait_until(Duration::from_secs(30), || healthy(&url));
    Running {
        daemon,
        url,
        token: token.to_owned(),
    }
}

/// `schedctl serve` with one host, `agent`, reached over its plain-HTTP API,
/// and one shared resource, in `dir/coordinator/`.
pub fn start_coordinator(dir: &Path, agent: &Running) -> Running {
    let root = dir.join("coordinator");
    let token = "coordinator-token-for-the-dashboard-test";
    write(&root.join("schedctl.token"), &format!("{token}\n"));
    write(&root.join("pihanga.token"), &format!("{}\n", agent.token));
    let port = free_port();
    let config = root.join("schedctl.toml");
    write(
        &config,
        &format!(
            "store = \"{r}/schedctl.db\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\nplain-http = true\n\
             token-file = \"{r}/schedctl.token\"\nstate-dir = \"{r}/state\"\ncollect-interval-secs = 1\n\n\
             [[resource]]\nname = \"pbs-main\"\ncapacity = 1\nstorages = [\"local\"]\n\n\
             [[host]]\nname = \"pihanga\"\n[host.agent]\nurl = \"{url}\"\ntoken-file = \"{r}/pihanga.token\"\n",
            r = root.display(),
            url = agent.url
        ),
    );
    let mut daemon = Daemon::start(
        "schedctl-serve",
        Command::new(binary("schedctl", "schedctl"))
            .arg("serve")
            .arg("--config")
            .arg(&config),
        dir,
    );
    let url = format!("http://127.0.0.1:{port}");
    daemon.wait_until(Duration::from_secs(30), || healthy(&url));
    Running {
        daemon,
        url,
        token: token.to_owned(),
    }
}

/// The sample names a query may use, from an exposition: every sample's
/// name, plus what each `# TYPE` line promises (a labelled family without
/// children yet shows only its TYPE line).
pub fn exposed_names(exposition: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            match kind {
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                "counter" if !name.ends_with("_total") => {
                    names.insert(format!("{name}_total"));
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

#[test]
fn exposition_names_cover_samples_and_declared_families() {
    let text = "# HELP stagger_backup_runs_total Runs.\n# TYPE stagger_backup_runs_total counter\n\
                # TYPE stagger_lease_wait_seconds histogram\nstagger_fleet_hosts 3\n\
                stagger_io_pressure_some_ratio{window=\"60s\"} 0.1\n";
    let names = exposed_names(text);
    for name in [
        "stagger_backup_runs_total",
        "stagger_lease_wait_seconds_bucket",
        "stagger_lease_wait_seconds_count",
        "stagger_fleet_hosts",
        "stagger_io_pressure_some_ratio",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
}
