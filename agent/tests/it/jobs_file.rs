//! Concurrent writers of jobs.cfg: a Proxmox writer holding the cluster lock
//! (by hand, and `pve-sim pvesh set`, which takes the lock as Proxmox's API
//! does) against the agent, and the agent against itself. No edit is lost.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{self, digest, fixture, Agent, Host, Http};

const LOCK: &str = "etc/pve/priv/lock/file-jobs_cfg";

fn start(host: &Host, extra: &str) -> (Agent, Http) {
    let config = host.config(extra);
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    (agent, http)
}

/// What a Proxmox write does (FORMATS.md (b)): mkdir the lock, read, hold it
/// for `hold`, write `jobs.cfg.tmp.<pid>` and rename it, rmdir.
fn proxmox_write(host: &Host, hold: Duration, edit: impl FnOnce(String) -> String) {
    let lock = host.path(LOCK);
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("lock dir");
    let taken = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        assert!(
            taken.elapsed() < Duration::from_secs(10),
            "the lock stayed held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = host.jobs_cfg();
    std::thread::sleep(hold);
    let temp = host.path(&format!("etc/pve/jobs.cfg.tmp.{}", std::process::id()));
    std::fs::write(&temp, edit(text)).expect("temp");
    std::fs::rename(&temp, host.path("etc/pve/jobs.cfg")).expect("rename");
    std::fs::remove_dir(&lock).expect("unlock");
}

#[test]
fn an_apply_waits_for_proxmoxs_lock_and_then_refuses_the_stale_digest() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let (_agent, http) = start(&host, "");
    let original = host.jobs_cfg();
    let proxmox_edit = |text: String| text.replace("\tschedule 02:20\n", "\tschedule 02:25\n");
    std::thread::scope(|scope| {
        let writer =
            scope.spawn(|| proxmox_write(&host, Duration::from_millis(1500), proxmox_edit));
        // The agent's request arrives while Proxmox holds the lock.
        support::wait_for(5, "Proxmox's lock", || {
            host.path(LOCK).exists().then_some(())
        });
        let asked = Instant::now();
        let answer = http.put(
            "/v1/schedules",
            &json!({"digest": digest(&original), "changes": [{"job": "backup-pihanga", "schedule": "03:05 UTC"}]}),
        );
        writer.join().expect("writer");
        assert!(
            asked.elapsed() >= Duration::from_millis(900),
            "the agent waited for the lock"
        );
        assert_eq!(answer.status, 409, "{}", answer.body);
        assert_eq!(answer.json()["current_digest"], digest(&host.jobs_cfg()));
    });
    let proxmox = host.jobs_cfg();
    assert_eq!(
        proxmox,
        proxmox_edit(original.clone()),
        "Proxmox's edit is there, the agent's is not"
    );
    let again = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&proxmox), "changes": [{"job": "backup-pihanga", "schedule": "03:05 UTC"}]}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let both = host.jobs_cfg();
    assert!(
        both.contains("\tschedule 02:25\n") && both.contains("\tschedule 03:05 UTC\n"),
        "{both}"
    );
    let metrics = http.metrics_text();
    let waits =
        support::sample(&metrics, "stagger_jobs_cfg_lock_wait_seconds_count").expect("lock waits");
    assert!(waits >= 2.0, "{metrics}");
    let sum = support::sample(&metrics, "stagger_jobs_cfg_lock_wait_seconds_sum").expect("sum");
    assert!(sum >= 0.9, "the wait for Proxmox's lock is measured: {sum}");
}

#[test]
fn a_lock_held_past_the_timeout_gives_503_and_changes_nothing() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let (_agent, http) = start(&host, "lock-timeout-secs = 1");
    std::fs::create_dir_all(host.path(LOCK)).expect("a held lock");
    let before = host.jobs_cfg();
    let asked = Instant::now();
    let answer = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&before), "changes": [{"job": "backup-pihanga", "schedule": "03:05"}]}),
    );
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body.contains("got lock request timeout"),
        "{}",
        answer.body
    );
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert_eq!(host.jobs_cfg(), before);
    assert!(
        host.path(LOCK).exists(),
        "another holder's young lock is left alone"
    );
}

#[test]
fn concurrent_applies_with_one_digest_let_exactly_one_through() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let (agent, _http) = start(&host, "");
    let original = host.jobs_cfg();
    let pin = support::fingerprint(&host.path("etc/stagger/agent.toml"));
    let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (agent, original) = (&agent, &original);
                scope.spawn(move || {
                    let http = Http::new(agent, pin);
                    let schedule = format!("03:{:02} UTC", 10 + i);
                    let answer = http.put(
                        "/v1/schedules",
                        &json!({"digest": digest(original), "changes": [{"job": "backup-pihanga", "schedule": schedule}]}),
                    );
                    (answer.status, schedule)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let winners: Vec<&(u16, String)> = statuses.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|(s, _)| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let winner = &winners[0].1;
    assert_eq!(
        host.jobs_cfg(),
        original.replace("\tschedule 02:45\n", &format!("\tschedule {winner}\n"))
    );
}

/// `pve-sim pvesh set` as the other writer: Proxmox's own write path (lock,
/// read, renormalise, replace), racing the agent. Whichever order the lock
/// gives them, Proxmox's edit survives, and so does the agent's when it was
/// accepted.
#[test]
fn proxmox_api_writes_racing_the_agent_never_lose_an_edit() {
    let sim = support::pve_sim_binary();
    let root = tempfile::tempdir().expect("temp dir");
    let tree = root.path().join("pve");
    let init = Command::new(&sim)
        .args(["init", "--root"])
        .arg(&tree)
        .arg("--from")
        .arg(support::fixtures())
        .args([
            "--jobs",
            "jobs-cluster-multi-node.cfg",
            "--timezone",
            "Pacific/Auckland",
        ])
        .output()
        .expect("pve-sim init");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let host = Host::new("");
    let pve = tree.join("etc/pve");
    let extra = format!("pve-root = \"{}\"", pve.display());
    let config = host.config("");
    // Point the agent's pve-root at the simulated cluster's /etc/pve.
    let text = std::fs::read_to_string(&config).expect("config");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("pve-root"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &extra
        + "\n";
    std::fs::write(&config, text).expect("config");
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    let jobs_cfg = pve.join("jobs.cfg");
    let read = |p: &Path| std::fs::read_to_string(p).expect("jobs.cfg");
    for round in 0..6u32 {
        let before = read(&jobs_cfg);
        let proxmox_schedule = format!("02:{:02}", 30 + round);
        let agent_schedule = format!("04:{:02} UTC", 10 + round);
        let (pvesh, answer) = std::thread::scope(|scope| {
            let pvesh = scope.spawn(|| {
                Command::new(&sim)
                    .args(["pvesh", "--root"])
                    .arg(&tree)
                    .args([
                        "set",
                        "/cluster/backup/backup-ruapehu",
                        "--schedule",
                        &proxmox_schedule,
                    ])
                    .output()
                    .expect("pvesh")
            });
            let answer = http.put(
                "/v1/schedules",
                &json!({"digest": digest(&before), "changes": [{"job": "backup-pihanga", "schedule": agent_schedule}]}),
            );
            (pvesh.join().expect("pvesh thread"), answer)
        });
        assert!(
            pvesh.status.success(),
            "{}",
            String::from_utf8_lossy(&pvesh.stderr)
        );
        let after = read(&jobs_cfg);
        assert!(
            after.contains(&format!("\tschedule {proxmox_schedule}\n")),
            "round {round}: Proxmox's edit lost:\n{after}"
        );
        match answer.status {
            200 => assert!(
                after.contains(&format!("\tschedule {agent_schedule}\n")),
                "round {round}: the agent's accepted edit lost:\n{after}"
            ),
            409 => assert_eq!(answer.json()["current_digest"], digest(&after)),
            other => panic!("round {round}: {other} {}", answer.body),
        }
    }
}
