//! `schedctl serve`, the coordinator, on the origin fleet: its rounds collect
//! the real agents (or sshd + pve-sim), plan, apply with `approval = "auto"`,
//! fill the metrics, notice a jobs.cfg edited by hand, serve the status
//! page; killed mid-rollout, the next start reports the unfinished apply.

use std::process::Command;
use std::time::{Duration, Instant};

use pve_api::Trust;
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;

use super::fleet::{Fleet, Via};
use super::{both, text};
use crate::harness::binary;
use crate::harness::process::{free_port, Daemon};

const TOKEN: &str = "coordinator-token-e2e-5d1f";

/// A running `schedctl serve` on plain HTTP on loopback.
struct Serve {
    daemon: Daemon,
    url: String,
}

/// Adds `approval` and a `[serve]` table (1 s rounds) to the fleet's schedctl.toml.
fn configure(fleet: &Fleet, approval: &str) -> u16 {
    let token_file = fleet.dir.path().join("schedctl.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let text = std::fs::read_to_string(&fleet.config).unwrap();
    let text = text.replacen(
        "[policy]\n",
        &format!("[policy]\napproval = \"{approval}\"\n"),
        1,
    );
    let text = format!(
        "{text}\n[serve]\nlisten = \"127.0.0.1:{port}\"\nplain-http = true\ntoken-file = \"{}\"\n\
         state-dir = \"{}\"\ncollect-interval-secs = 1\n",
        token_file.display(),
        fleet.dir.path().join("coordinator-state").display()
    );
    std::fs::write(&fleet.config, text).unwrap();
    port
}

/// Starts `schedctl serve`.
fn start(fleet: &Fleet, port: u16, name: &str) -> Serve {
    let mut command = Command::new(binary("schedctl", "schedctl"));
    command
        .arg("--config")
        .arg(&fleet.config)
        .arg("serve")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET");
    let mut daemon = Daemon::start(name, &mut command, fleet.dir.path());
    let url = format!("http://127.0.0.1:{port}");
    daemon.wait_until(Duration::from_secs(30), || {
        get(&url, None, "/healthz").is_ok()
    });
    Serve { daemon, url }
}

fn client(url: &str, token: Option<&str>) -> Client {
    Client::new(Endpoint {
        url: url.to_owned(),
        token: token.map(|t| Secret::new(t).unwrap()),
        trust: Trust::System,
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(1),
    })
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get(url: &str, token: Option<&str>, path: &str) -> Result<String, stagger_service::Error> {
    runtime().block_on(client(url, token).get_text(path, "text/plain"))
}

impl Serve {
    fn metrics(&self) -> String {
        get(&self.url, Some(TOKEN), "/metrics")
            .unwrap_or_else(|e| panic!("scrape: {e}\n{}", self.daemon.log()))
    }

    /// Waits until the exposition holds `line`.
    fn wait_for(&self, line: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let text = self.metrics();
            if text.contains(line) {
                return text;
            }
            assert!(
                started.elapsed() < limit,
                "no `{line}` within {limit:?}:\n{text}\n--- log\n{}",
                self.daemon.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn history(fleet: &Fleet) -> serde_json::Value {
    let out = fleet.schedctl(&["history", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn origin(via: Via) -> Fleet {
    Fleet::start(&[
        ("hikurangi", "02:00", via),
        ("ruapehu", "02:20", via),
        ("pihanga", "02:45", via),
    ])
}

#[test]
fn with_auto_approval_serve_plans_applies_through_the_agents_and_fills_the_metrics() {
    let fleet = origin(Via::Agent);
    let before = fleet.all_jobs_cfg();
    let port = configure(&fleet, "auto");
    let serve = start(&fleet, port, "schedctl-serve");
    serve.wait_for(
        "stagger_applies_total{result=\"ok\"} 1",
        Duration::from_secs(90),
    );
    // Three 50-minute backups 20 minutes apart on one datastore: at least two moved.
    let after = fleet.all_jobs_cfg();
    let moved: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|((_, old), (_, new))| old != new)
        .map(|((host, _), (_, new))| {
            assert!(new.contains(" UTC\n"), "{host}: {new}");
            host.as_str()
        })
        .collect();
    assert!(moved.len() >= 2, "only {moved:?} moved: {after:?}");
    let history = history(&fleet);
    let plan = &history["plans"][0];
    assert_eq!(plan["created_by"], "schedctl-serve", "{history}");
    assert_eq!(plan["source"], "live", "{history}");
    assert_eq!(history["applies"][0]["status"], "ok", "{history}");
    assert_eq!(history["applies"][0]["started_by"], "schedctl-serve");

    // The next rounds see the new schedules: nothing pending, no drift, no new plan.
    let metrics = serve.wait_for("stagger_plan_pending 0", Duration::from_secs(20));
    for host in ["hikurangi", "ruapehu", "pihanga"] {
        for line in [
            format!("stagger_host_reachable{{host=\"{host}\"}} 1"),
            format!("stagger_jobs_cfg_drift{{host=\"{host}\"}} 0"),
            format!(
                "stagger_plan_reserved_seconds{{host=\"{host}\",job_id=\"backup-{host}\"}} 3000"
            ),
            format!("stagger_backup_window_active{{host=\"{host}\"}} "),
        ] {
            assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
        }
    }
    for line in [
        "stagger_fleet_hosts 3",
        "stagger_fleet_overlap_risk_ratio ",
        "stagger_resource_overlap_risk_ratio{resource=\"pbs-main\"} ",
        "stagger_plan_age_seconds ",
        "stagger_collection_duration_seconds_count ",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("stagger_collections_total{result=\"failed\"} 0"),
        "{metrics}"
    );
    let risk = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stagger_fleet_overlap_risk_ratio "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("a risk");
    assert!((0.0..=1.0).contains(&risk), "risk {risk}:\n{metrics}");
    assert_eq!(history_plans(&fleet), 1, "a second plan was made");

    // The status page, read-only, for a browser on the coordinator's machine.
    let page = get(&serve.url, None, "/").expect("the page without a token on loopback");
    for name in ["hikurangi", "ruapehu", "pihanga", "backup-pihanga"] {
        assert!(page.contains(name), "{name} missing from the page");
    }
}

fn history_plans(fleet: &Fleet) -> usize {
    history(fleet)["plans"].as_array().map_or(0, Vec::len)
}

#[test]
fn with_manual_approval_the_plan_waits_and_a_hand_edit_shows_as_drift() {
    let fleet = origin(Via::Agent);
    let before = fleet.all_jobs_cfg();
    let port = configure(&fleet, "manual");
    let serve = start(&fleet, port, "schedctl-serve");
    serve.wait_for("stagger_plan_pending 1", Duration::from_secs(90));
    assert_eq!(
        fleet.all_jobs_cfg(),
        before,
        "manual approval wrote something"
    );
    assert_eq!(history_plans(&fleet), 1);
    let page = get(&serve.url, Some(TOKEN), "/").expect("the page");
    assert!(page.contains("waiting for `schedctl apply`"), "{page}");

    // The lease service knows what the collection found: Pihanga's job writes
    // to the datastore and reserves 50 minutes, plus the 30 minute margin.
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lease: serde_json::Value = runtime()
        .block_on(client(&serve.url, Some(TOKEN)).post(
            "/v1/lease",
            &serde_json::json!({"host": "pihanga", "job": "backup-pihanga", "started": asked}),
        ))
        .expect("answered");
    assert_eq!(lease["granted"], true, "{lease}");
    assert_eq!(lease["reason"], "holds host:pihanga, pbs-main", "{lease}");
    let expires = lease["expires"].as_i64().expect("an expiry");
    assert!((expires - asked - 3000 - 1800).abs() <= 5, "{lease}");

    // Someone edits Pihanga's job in the Proxmox GUI.
    let pihanga = fleet.host("pihanga");
    let edited = pihanga
        .jobs_cfg()
        .replace("schedule 02:45", "schedule 04:00");
    std::fs::write(pihanga.jobs_cfg_path(), edited).unwrap();
    let metrics = serve.wait_for(
        "stagger_jobs_cfg_drift{host=\"pihanga\"} 1",
        Duration::from_secs(30),
    );
    assert!(
        metrics.contains("stagger_jobs_cfg_drift{host=\"ruapehu\"} 0"),
        "{metrics}"
    );
    // The hand edit is the admin's choice: the coordinator does not plan over it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(history_plans(&fleet), 1);
    // Once a plan is made from the new file, the drift clears.
    let plan = fleet.schedctl(&["plan", "--time-limit", "3"]);
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));
    serve.wait_for(
        "stagger_jobs_cfg_drift{host=\"pihanga\"} 0",
        Duration::from_secs(30),
    );
}

#[test]
fn serve_killed_mid_rollout_reports_the_unfinished_apply_when_it_starts_again() {
    let fleet = origin(Via::Ssh);
    let port = configure(&fleet, "auto");
    let serve = start(&fleet, port, "schedctl-serve");
    // Wait for the apply's rollout; freeze the host written second, so that
    // the rollout hangs there after the first host is written.
    let started = Instant::now();
    let second = loop {
        let json = history(&fleet);
        if let Some(hosts) = json["applies"][0]["hosts"].as_array() {
            let second = hosts
                .iter()
                .find(|h| h["position"] == 2)
                .map(|h| h["host"].as_str().unwrap().to_owned());
            if let Some(second) = second {
                break second;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no apply started:\n{}",
            serve.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    fleet.host(&second).freeze(true);
    let started = Instant::now();
    loop {
        let json = history(&fleet);
        let hosts = json["applies"][0]["hosts"].as_array().unwrap().clone();
        let first = hosts.iter().find(|h| h["position"] == 1).unwrap();
        let second_row = hosts.iter().find(|h| h["position"] == 2).unwrap();
        if first["status"] == "written" && second_row["status"] == "writing" {
            break;
        }
        assert!(
            second_row["status"] == "pending" || second_row["status"] == "writing",
            "the second host was not held: {json}"
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{json}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The coordinator dies with its apply (in its own process), as when
    // systemd kills the unit's cgroup.
    let pid = serve.daemon.pid();
    assert_eq!(children_of(pid), Vec::<u32>::new(), "serve runs a child");
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {pid}");
    fleet.host(&second).freeze(false);
    drop(serve);
    let again = start(&fleet, port, "schedctl-serve-again");
    let log = wait_for_log(&again, "did not finish", Duration::from_secs(20));
    assert!(log.contains(&format!("{second} writing")), "{log}");
    let page = get(&again.url, None, "/").expect("the page");
    assert!(page.contains("Unfinished apply:"), "{page}");
    assert!(page.contains("schedctl rollback"), "{page}");
    // While it is unresolved, the coordinator's own applies are refused, not stacked.
    let history = history(&fleet);
    assert_eq!(
        history["unfinished"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    let rollback = fleet.schedctl(&["rollback", "--yes"]);
    assert_eq!(
        rollback.status.code(),
        Some(0),
        "{}",
        text(&rollback.stdout)
    );
}

/// The processes whose parent is `pid` (from /proc/*/stat).
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            children.push(child);
        }
    }
    children
}

fn wait_for_log(serve: &Serve, what: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        let log = serve.daemon.log();
        if log.contains(what) {
            return log;
        }
        assert!(started.elapsed() < limit, "no `{what}` in:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
