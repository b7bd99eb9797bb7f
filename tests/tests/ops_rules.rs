//! `deploy/prometheus/` and `deploy/alertmanager/`: the alert rules pass
//! `promtool check rules` and their unit tests, name only metrics a real
//! `sched-agent` and `schedctl serve` export, and evaluate without an error
//! in a real Prometheus scraping both; the Alertmanager inhibition mutes a
//! workload alert of a host during its backup window in a real Alertmanager,
//! and only there.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::harness::process::{free_port, Daemon};
use crate::harness::prometheus::Prometheus;
use crate::harness::{self, daemons, promql, run_ok};

const RULE_FILES: [&str; 2] = ["stagger-rules.yml", "backup-window-inhibit.yml"];
const TEST_FILES: [&str; 2] = ["stagger-rules.test.yml", "backup-window-inhibit.test.yml"];

fn promtool() -> PathBuf {
    harness::tool("/usr/bin/promtool", "prometheus")
}

fn amtool() -> PathBuf {
    harness::tool("/usr/bin/amtool", "prometheus-alertmanager")
}

fn prometheus_dir() -> PathBuf {
    harness::repo_file("deploy/prometheus")
}

#[test]
fn rule_files_pass_promtool_check() {
    for file in RULE_FILES {
        run_ok(
            Command::new(promtool())
                .args(["check", "rules"])
                .arg(prometheus_dir().join(file)),
        );
    }
}

#[test]
fn stagger_rules_pass_their_unit_tests() {
    run_ok(
        Command::new(promtool())
            .args(["test", "rules", TEST_FILES[0]])
            .current_dir(prometheus_dir()),
    );
}

#[test]
fn backup_window_pattern_passes_the_origin_crash_window_tests() {
    run_ok(
        Command::new(promtool())
            .args(["test", "rules", TEST_FILES[1]])
            .current_dir(prometheus_dir()),
    );
}

/// Each alert the issue asks for exists and has a summary and a description.
#[test]
fn every_alert_of_the_issue_is_there_and_explains_itself() {
    let text = std::fs::read_to_string(prometheus_dir().join(RULE_FILES[0])).expect("rules");
    for alert in [
        "StaggerBackupOverran",
        "StaggerSharedResourceOverlap",
        "StaggerHookFailedOpen",
        "StaggerAgentDown",
        "StaggerJobsCfgDrift",
        "StaggerPlanStale",
    ] {
        let at = text
            .find(&format!("- alert: {alert}\n"))
            .unwrap_or_else(|| panic!("stagger-rules.yml has no alert {alert}"));
        let rule = &text[at..];
        let end = rule[2..].find("- alert: ").map_or(rule.len(), |e| e + 2);
        let rule = &rule[..end];
        for key in ["summary:", "description:", "severity:"] {
            assert!(rule.contains(key), "{alert} has no {key}\n{rule}");
        }
    }
}

/// A rule naming a metric nobody exports would never fire.
#[test]
fn rules_name_only_metrics_the_running_daemons_export() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exported = daemons::start_pair(dir.path()).sample_names();
    for file in RULE_FILES {
        let text = std::fs::read_to_string(prometheus_dir().join(file)).expect("rules");
        let names = promql::stagger_names_in(&text);
        assert!(!names.is_empty(), "{file} names no Stagger metric");
        let missing: Vec<&String> = names.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics neither daemon exports: {missing:?}\nexported: {exported:?}"
        );
    }
}

/// Label matching (`on (host, job_id) group_left`, `and on (host)`) can only
/// fail on real series: every rule is evaluated by a real Prometheus on the
/// daemons' series, twice, without an error.
#[test]
fn rules_evaluate_without_errors_in_a_prometheus_scraping_the_daemons() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = daemons::start_pair(dir.path());
    let files: Vec<PathBuf> = RULE_FILES
        .iter()
        .map(|file| prometheus_dir().join(file))
        .collect();
    let mut prometheus = Prometheus::start(dir.path(), &pair, &files);
    let rules = prometheus.wait_for_evaluations(2);
    let alerts: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
    for alert in [
        "StaggerBackupOverran",
        "StaggerAgentDown",
        "StaggerBackupWindow",
    ] {
        assert!(alerts.contains(&alert), "{alert} not loaded: {alerts:?}");
    }
    let broken: Vec<String> = rules
        .iter()
        .filter(|rule| rule["health"] != "ok")
        .map(|rule| format!("{}: {} {}", rule["name"], rule["health"], rule["lastError"]))
        .collect();
    assert!(
        broken.is_empty(),
        "rules failing on live series: {broken:?}"
    );
    // The daemons are up and the fixture fleet is fine: no alert of ours is
    // pending or firing but the window alert (a planned run may be on now).
    let firing: Vec<&str> = rules
        .iter()
        .filter(|rule| rule["state"].as_str().is_some_and(|s| s != "inactive"))
        .filter_map(|rule| rule["name"].as_str())
        .filter(|name| *name != "StaggerBackupWindow")
        .collect();
    assert!(
        firing.is_empty(),
        "alerts firing on a healthy fleet: {firing:?}"
    );
}

#[test]
fn alertmanager_inhibition_passes_amtool_check_config() {
    run_ok(
        Command::new(amtool())
            .arg("check-config")
            .arg(harness::repo_file(
                "deploy/alertmanager/backup-window-inhibit.yml",
            )),
    );
}

/// A real Alertmanager with the shipped config: Pihanga's crash-loop alert is
/// inhibited while Pihanga's backup window alert fires, Ruapehu's is not.
#[test]
fn alertmanager_mutes_a_sensitive_alert_only_on_the_host_whose_window_is_open() {
    let binary = harness::tool(
        "/usr/bin/prometheus-alertmanager",
        "prometheus-alertmanager",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut alertmanager = Daemon::start(
        "alertmanager",
        Command::new(binary)
            .arg(format!(
                "--config.file={}",
                harness::repo_file("deploy/alertmanager/backup-window-inhibit.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
        dir.path(),
    );
    alertmanager.wait_until(Duration::from_secs(30), || {
        amtool_at(&url)
            .args(["config", "show"])
            .output()
            .is_ok_and(|o| o.status.success())
    });

    add_alert(
        &url,
        &[
            "alertname=StaggerBackupWindow",
            "host=pihanga",
            "severity=none",
        ],
    );
    for host in ["pihanga", "ruapehu"] {
        add_alert(
            &url,
            &[
                "alertname=HomelabPodCrashLooping",
                &format!("host={host}"),
                "backup_window_sensitive=true",
                "severity=warning",
            ],
        );
    }

    let mut states = Vec::new();
    alertmanager.wait_until(Duration::from_secs(30), || {
        states = crash_loop_states(&url);
        states
            == [
                ("pihanga".to_owned(), "suppressed".to_owned()),
                ("ruapehu".to_owned(), "active".to_owned()),
            ]
    });
    drop(alertmanager);
    assert_eq!(states.len(), 2);
}

fn amtool_at(url: &str) -> Command {
    let mut command = Command::new(amtool());
    command.arg(format!("--alertmanager.url={url}"));
    command
}

fn add_alert(url: &str, labels: &[&str]) {
    run_ok(amtool_at(url).args(["alert", "add"]).args(labels));
}

/// (host, state) of every HomelabPodCrashLooping alert, inhibited ones included.
fn crash_loop_states(url: &str) -> Vec<(String, String)> {
    let text = run_ok(amtool_at(url).args([
        "alert",
        "query",
        "--active",
        "--inhibited",
        "--output=json",
        "alertname=HomelabPodCrashLooping",
    ]));
    let alerts: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("amtool printed no JSON ({e}):\n{text}"));
    let mut states: Vec<(String, String)> = alerts
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|alert| {
            let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (
                field(&alert["labels"]["host"]),
                field(&alert["status"]["state"]),
            )
        })
        .collect();
    states.sort();
    states
}
