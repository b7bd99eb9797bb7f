//! A real `sched-agent` and a real `schedctl serve` on loopback, with
//! configurations, Proxmox files and tokens in a temporary directory, and
//! their `/metrics` scraped over plain HTTP (allowed on loopback only).
//!
//! Both are started in a state in which every series they export has a
//! sample: the agent finds a finished run of its job in Proxmox's task
//! records (the fixtures' `WARNINGS: 2` run of 2642 s) and has counted it;
//! the coordinator has finished a round over the agent, so reachability,
//! reserved durations, backup windows, drift and the plan are filled in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pve_api::Trust;
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;

use super::process::{free_port, Daemon};
use super::{binary, repo_file};

/// The Proxmox sample files the agent reads (FORMATS.md fixtures).
const FIXTURES: &str = "scheduler-core/tests/fixtures/proxmox/fixtures";

/// The node the agent runs as.
pub const AGENT_NODE: &str = "pihanga";

/// The only job of `jobs-homelab-single.cfg`, the agent's jobs.cfg.
pub const AGENT_JOB: &str = "backup-5f3a9c1e-2b7d";

/// A daemon with the base URL and token of its API.
pub struct Running {
    /// The process, stopped when this is dropped.
    pub daemon: Daemon,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its bearer token.
    pub token: String,
    /// The file holding the token (a Prometheus `credentials_file`).
    pub token_file: PathBuf,
}

impl Running {
    /// `GET /metrics` in the classic text format.
    pub fn scrape(&self) -> String {
        get_text(&self.url, Some(&self.token), "/metrics")
            .unwrap_or_else(|e| panic!("scrape {}/metrics: {e}\n{}", self.url, self.daemon.log()))
    }

    /// `127.0.0.1:<port>`, its Prometheus target.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Scrapes until the exposition holds every one of `lines` (at most
    /// `limit`, failing with the daemon's log).
    fn wait_for_lines(&mut self, lines: &[String], limit: Duration) {
        let (url, token) = (self.url.clone(), self.token.clone());
        let mut text = String::new();
        self.daemon.wait_until(limit, || {
            text = get_text(&url, Some(&token), "/metrics").unwrap_or_default();
            lines.iter().all(|line| text.contains(line.as_str()))
        });
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
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(1),
    })
    .expect("a client for a loopback URL")
}

/// `GET <url><path>` over plain HTTP on loopback (with `token` as bearer
/// token when given): the body as text.
pub fn get_text(url: &str, token: Option<&str>, path: &str) -> Result<String, String> {
    runtime()
        .block_on(client(url, token).get_text(path, "text/plain"))
        .map_err(|e| format!("GET {url}{path}: {e}"))
}

/// `GET <url><path>`, JSON.
pub fn get_json(url: &str, path: &str) -> Result<serde_json::Value, String> {
    runtime()
        .block_on(client(url, None).get::<serde_json::Value>(path))
        .map_err(|e| format!("GET {url}{path}: {e}"))
}

/// Whether `GET /healthz` answers.
fn healthy(url: &str) -> bool {
    get_text(url, None, "/healthz").is_ok()
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
/// and a small /proc, in `dir/agent/`; returns once the agent has counted
/// the finished run its job's state names.
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
    // The job's last run as pvescheduler leaves its state: stopped, warnings.
    copy_fixture(
        "state-vzdump-backup-pihanga-stopped.json",
        &root.join(format!("jobs/vzdump-{AGENT_JOB}.json")),
    );
    let token = "agent-token-for-the-dashboard-test";
    let token_file = root.join("agent.token");
    write(&token_file, &format!("{token}\n"));
    let port = free_port();
    let config = root.join("agent.toml");
    write(
        &config,
        &format!(
            "node = \"{AGENT_NODE}\"\nlisten = \"127.0.0.1:{port}\"\nplain-http = true\n\
             token-file = \"{r}/agent.token\"\nproc-root = \"{r}/proc\"\npve-root = \"{r}/pve\"\n\
             task-dir = \"{r}/tasks\"\njob-state-dir = \"{r}/jobs\"\nvzdump-conf = \"{r}/vzdump.conf\"\n\
             state-dir = \"{r}/state\"\nsample-interval-secs = 1\n",
            r = root.display()
        ),
    );
    let mut daemon = Daemon::start(
        "sched-agent",
        Command::new(binary("sched-agent", "sched-agent"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET"),
        dir,
    );
    let url = format!("http://127.0.0.1:{port}");
    daemon.wait_until(Duration::from_secs(30), || healthy(&url));
    let mut agent = Running {
        daemon,
        url,
        token: token.to_owned(),
        token_file,
    };
    let job = format!("host=\"{AGENT_NODE}\",job_id=\"{AGENT_JOB}\"");
    agent.wait_for_lines(
        &[
            format!("stagger_backup_runs_total{{{job},result=\"warning\"}} 1"),
            format!("stagger_backup_last_duration_seconds{{{job}}} 2642"),
            "stagger_io_pressure_some_ratio{".to_owned(),
        ],
        Duration::from_secs(30),
    );
    agent
}

/// `schedctl serve` with one host, `agent`, reached over its plain-HTTP API,
/// one shared resource and manual approval, in `dir/coordinator/`; returns
/// once a round has collected the agent and made a plan.
pub fn start_coordinator(dir: &Path, agent: &Running) -> Running {
    let root = dir.join("coordinator");
    let token = "coordinator-token-for-the-dashboard-test";
    let token_file = root.join("schedctl.token");
    write(&token_file, &format!("{token}\n"));
    write(&root.join("pihanga.token"), &format!("{}\n", agent.token));
    let port = free_port();
    let config = root.join("schedctl.toml");
    write(
        &config,
        &format!(
            "store = \"{r}/schedctl.db\"\n\n[policy]\napproval = \"manual\"\n\n\
             [serve]\nlisten = \"127.0.0.1:{port}\"\nplain-http = true\n\
             token-file = \"{r}/schedctl.token\"\nstate-dir = \"{r}/state\"\ncollect-interval-secs = 1\n\n\
             [[resource]]\nname = \"pbs-main\"\ncapacity = 1\nstorages = [\"local\"]\n\n\
             [[host]]\nname = \"{AGENT_NODE}\"\n[host.agent]\nurl = \"{url}\"\ntoken-file = \"{r}/pihanga.token\"\n",
            r = root.display(),
            url = agent.url
        ),
    );
    let mut daemon = Daemon::start(
        "schedctl-serve",
        Command::new(binary("schedctl", "schedctl"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET"),
        dir,
    );
    let url = format!("http://127.0.0.1:{port}");
    daemon.wait_until(Duration::from_secs(30), || healthy(&url));
    let mut coordinator = Running {
        daemon,
        url,
        token: token.to_owned(),
        token_file,
    };
    coordinator.wait_for_lines(
        &[
            format!("stagger_host_reachable{{host=\"{AGENT_NODE}\"}} 1"),
            format!(
                "stagger_plan_reserved_seconds{{host=\"{AGENT_NODE}\",job_id=\"{AGENT_JOB}\"}} "
            ),
            format!("stagger_backup_window_active{{host=\"{AGENT_NODE}\"}} "),
            "stagger_plan_age_seconds ".to_owned(),
        ],
        Duration::from_secs(60),
    );
    coordinator
}

/// Both daemons, the coordinator collecting the agent.
pub struct Pair {
    /// `sched-agent run`.
    pub agent: Running,
    /// `schedctl serve`.
    pub coordinator: Running,
}

/// Starts the agent, then the coordinator on it, in `dir`.
pub fn start_pair(dir: &Path) -> Pair {
    let agent = start_agent(dir);
    let coordinator = start_coordinator(dir, &agent);
    Pair { agent, coordinator }
}

impl Pair {
    /// The sample names of both expositions now.
    pub fn sample_names(&self) -> BTreeSet<String> {
        let mut names = sample_names(&self.agent.scrape());
        names.extend(sample_names(&self.coordinator.scrape()));
        names
    }
}

/// The names of an exposition's samples (classic text format): what a query
/// can select. A family declared by `# TYPE` without a sample yet does not
/// count: a query on it would find nothing.
pub fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line[..line.find(['{', ' ']).unwrap_or(line.len())].to_owned())
        .collect()
}

#[test]
fn sample_names_are_those_with_samples_not_bare_declarations() {
    let text = "# HELP stagger_backup_runs_total Runs.\n# TYPE stagger_backup_runs_total counter\n\
                # TYPE stagger_lease_wait_seconds histogram\nstagger_lease_wait_seconds_count 0\n\
                stagger_fleet_hosts 3\nstagger_io_pressure_some_ratio{window=\"60s\"} 0.1\n";
    let names: Vec<String> = sample_names(text).into_iter().collect();
    assert_eq!(
        names,
        [
            "stagger_fleet_hosts",
            "stagger_io_pressure_some_ratio",
            "stagger_lease_wait_seconds_count"
        ]
    );
}
