//! The agent on a `pve-sim` node: the simulated pvescheduler runs a real
//! night of vzdump runs that call the installed hook (the real phases, an
//! emptied environment) and write task records and `proc/pressure/io`; the
//! agent follows them into its run history, its metrics and its load profile.
//! And the API backend against pve-sim's Proxmox API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{self, digest, Agent, Http};

/// 2024-11-05T13:40:00Z, a Tuesday: five minutes before backup-pihanga's
/// 02:45 in Pacific/Auckland (NZDT, UTC+13).
const NIGHT: i64 = 1_730_814_000;

struct Sim {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

impl Sim {
    /// A one-node cluster (pihanga) from the shared fixtures.
    fn pihanga() -> Sim {
        Sim::with_jobs(&support::fixtures().join("jobs-cluster-multi-node.cfg"))
    }

    /// A one-node cluster (pihanga) from the shared fixtures, with `jobs` as jobs.cfg.
    fn with_jobs(jobs: &Path) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("cluster");
        let init = Command::new(support::pve_sim_binary())
            .args(["init", "--root"])
            .arg(&root)
            .arg("--from")
            .arg(support::fixtures())
            .arg("--jobs")
            .arg(jobs)
            .args(["--node", "pihanga=Pacific/Auckland"])
            .output()
            .expect("pve-sim init");
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let state = dir.path().join("agent-state");
        Sim {
            _dir: dir,
            root,
            state,
        }
    }

    fn node(&self, rel: &str) -> PathBuf {
        self.root.join("nodes/pihanga").join(rel)
    }

    /// agent.toml for the pihanga node of the tree.
    fn config(&self, extra: &str) -> PathBuf {
        let token = self.root.join("agent.token");
        std::fs::write(&token, format!("{}\n", support::TOKEN)).expect("token");
        let text = format!(
            "node = \"pihanga\"\nlisten = \"127.0.0.1:0\"\ntoken-file = \"{}\"\nproc-root = \"{}\"\n\
             pve-root = \"{}\"\ntask-dir = \"{}\"\njob-state-dir = \"{}\"\nvzdump-conf = \"{}\"\n\
             state-dir = \"{}\"\nhook-script = \"{}\"\nsample-interval-secs = 1\n{extra}\n",
            token.display(),
            self.node("proc").display(),
            self.node("etc/pve").display(),
            self.node("var/log/pve/tasks").display(),
            self.node("var/lib/pve-manager/jobs").display(),
            self.node("etc/vzdump.conf").display(),
            self.state.display(),
            self.root.join("hook/vzdump-hook").display(),
        );
        let path = self.root.join("agent.toml");
        std::fs::write(&path, text).expect("config");
        path
    }
}

/// Installs the hook in the node's vzdump.conf (replacing the fixture's).
fn install_hook(config: &Path) {
    let install = Command::new(support::agent_binary())
        .arg("--config")
        .arg(config)
        .args(["hook", "install", "--force"])
        .output()
        .expect("hook install");
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
}

/// Runs the simulated pvescheduler for `secs` simulated seconds from `NIGHT` at 600×.
fn night(sim: &Sim, secs: i64) {
    let night = Command::new(support::pve_sim_binary())
        .args(["scheduler", "--root"])
        .arg(&sim.root)
        .args([
            "--speed",
            "600",
            "--now",
            &NIGHT.to_string(),
            "--until",
            &(NIGHT + secs).to_string(),
        ])
        .output()
        .expect("pve-sim scheduler");
    assert!(
        night.status.success(),
        "{}",
        String::from_utf8_lossy(&night.stderr)
    );
}

#[test]
fn a_simulated_night_lands_in_the_run_history_and_the_metrics() {
    let sim = Sim::pihanga();
    let config = sim.config("");
    // The fixture's vzdump.conf names another hook: replace it with ours.
    install_hook(&config);
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    // One simulated hour at 600×: six real seconds.
    night(&sim, 3600);

    let run = support::wait_for(20, "backup-pihanga's run to end in the report", || {
        let report = http.get("/v1/report").json();
        let job = report["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["id"] == "backup-pihanga")?
            .clone();
        job["runs"]
            .as_array()?
            .iter()
            .find(|r| r["start"].as_i64() > Some(NIGHT) && r["result"] != "running")
            .cloned()
    });
    assert_eq!(run["result"], "ok", "{run}");
    let (start, end) = (
        run["start"].as_i64().expect("start"),
        run["end"].as_i64().expect("end"),
    );
    assert!(start < NIGHT + 600, "started at 02:45 NZDT: {start}");
    assert!(
        (15 * 60..=40 * 60).contains(&(end - start)),
        "a 20-minute run: {}",
        end - start
    );
    let upid = run["upid"].as_str().expect("upid");
    // The task log says the hook ran in every job phase, without failing any.
    let bucket = upid
        .split(':')
        .nth(4)
        .and_then(|s| s.chars().last())
        .expect("bucket");
    let log = std::fs::read_to_string(sim.node(&format!("var/log/pve/tasks/{bucket}/{upid}")))
        .expect("task log");
    assert!(log.ends_with("TASK OK\n"), "{log}");
    assert!(
        log.contains("INFO: stagger: no [coordinator] in the config"),
        "{log}"
    );

    // The hook's events reached the history: the phases of this run, in order.
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sim.state.join("runs.json")).expect("runs.json"))
            .expect("JSON");
    assert_eq!(
        history["phases"][upid],
        json!(["job-init", "job-start", "job-end"])
    );
    let report = http.get("/v1/report").json();
    let pihanga = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == "backup-pihanga")
        .expect("job")
        .clone();
    assert_eq!(
        pihanga["stats"]["count"], 2,
        "the fixture's earlier run and tonight's: {pihanga}"
    );

    let text = http.metrics_text();
    let series = |result: &str| {
        format!(
            r#"stagger_backup_runs_total{{host="pihanga",job_id="backup-pihanga",result="{result}"}}"#
        )
    };
    assert_eq!(support::sample(&text, &series("ok")), Some(1.0), "{text}");
    assert_eq!(support::sample(&text, &series("warning")), Some(1.0));
    let last = support::sample(
        &text,
        r#"stagger_backup_last_duration_seconds{host="pihanga",job_id="backup-pihanga"}"#,
    );
    assert_eq!(last, Some((end - start) as f64));
    assert_eq!(
        support::sample(
            &text,
            r#"stagger_backup_running{host="pihanga",job_id="backup-pihanga"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        support::sample(&text, r#"stagger_hook_fail_open_total{reason="no_config"}"#),
        Some(1.0)
    );
    // pve-sim's pressure rose while the run went: the profile saw load.
    let values = report["load"]["values"].as_array().expect("values");
    assert!(
        values.iter().any(|v| v.as_f64() > Some(0.0)),
        "no load in the profile"
    );
}

/// Two jobs fire in the same minute; the second waits for the node's vzdump
/// lock. The hook cannot learn the job from vzdump, yet each phase lands on
/// the right run: start order decides at job-init and job-start, and job-end
/// belongs to the run that had job-start.
#[test]
fn two_runs_queued_on_the_node_lock_are_told_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs = dir.path().join("jobs.cfg");
    let job = |id: &str, vmid: u32| {
        format!(
            "vzdump: {id}\n\tschedule 02:45\n\tnode pihanga\n\tstorage pbs-main\n\tvmid {vmid}\n\n"
        )
    };
    std::fs::write(&jobs, job("backup-a", 100) + &job("backup-b", 101)).expect("jobs.cfg");
    let sim = Sim::with_jobs(&jobs);
    let config = sim.config("");
    install_hook(&config);
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    night(&sim, 2 * 3600);

    let runs = |id: &str| {
        let report = http.get("/v1/report").json();
        let job = report["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["id"] == id)?
            .clone();
        let run = job["runs"].as_array()?.first()?.clone();
        (run["result"] == "ok").then_some(run)
    };
    let a = support::wait_for(20, "backup-a's run", || runs("backup-a"));
    let b = support::wait_for(20, "backup-b's run", || runs("backup-b"));
    assert_ne!(a["upid"], b["upid"]);
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sim.state.join("runs.json")).expect("runs.json"))
            .expect("JSON");
    for run in [&a, &b] {
        let upid = run["upid"].as_str().expect("upid");
        assert_eq!(
            history["phases"][upid],
            json!(["job-init", "job-start", "job-end"]),
            "{upid}"
        );
    }
    // backup-b waited for backup-a's lock: it ended about a run's length later.
    let end = |run: &serde_json::Value| run["end"].as_i64().expect("end");
    assert!(end(&b) - end(&a) >= 15 * 60, "a: {a}, b: {b}");
}

#[test]
fn the_api_backend_writes_through_proxmoxs_api_after_checking_the_digest() {
    let sim = Sim::pihanga();
    let mut serve = Command::new(support::pve_sim_binary())
        .args(["serve", "--root"])
        .arg(&sim.root)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "0",
            "--auth-delay-ms",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pve-sim serve");
    let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines();
    let mut said = std::collections::BTreeMap::new();
    for line in lines.by_ref().take(3) {
        let line = line.expect("line");
        if let Some((key, value)) = line.split_once(": ") {
            said.insert(key.to_owned(), value.to_owned());
        }
    }
    let token = sim.root.join("pve-api.token");
    std::fs::write(&token, format!("{}\n", said["token"])).expect("token file");
    let config = sim.config(&format!(
        "backend = \"api\"\n[api]\nurl = \"{}\"\ntoken-file = \"{}\"\nfingerprint = \"{}\"\n",
        said["listening"],
        token.display(),
        said["fingerprint"]
    ));
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    let jobs_cfg = sim.root.join("etc/pve/jobs.cfg");
    let read = |p: &Path| std::fs::read_to_string(p).expect("jobs.cfg");
    let before = read(&jobs_cfg);

    let stale = http.put(
        "/v1/schedules",
        &json!({"digest": "c".repeat(40), "changes": [{"job": "backup-pihanga", "schedule": "03:15 UTC"}]}),
    );
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(read(&jobs_cfg), before);
    let other_node = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&before), "changes": [{"job": "backup-hikurangi", "schedule": "03:15 UTC"}]}),
    );
    assert_eq!(other_node.status, 422, "{}", other_node.body);

    let applied = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&before), "changes": [{"job": "backup-pihanga", "schedule": "03:15 UTC"}]}),
    );
    assert_eq!(applied.status, 200, "{}", applied.body);
    let after = read(&jobs_cfg);
    assert!(after.contains("\tschedule 03:15 UTC\n"), "{after}");
    assert_eq!(applied.json()["digest"], digest(&after));
    let audit = std::fs::read_to_string(sim.state.join("audit.log")).expect("audit");
    assert!(audit.contains(r#""backend":"api""#), "{audit}");
    let _ = serve.kill();
    let _ = serve.wait();
}
