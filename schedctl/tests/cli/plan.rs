//! `schedctl plan` as a user runs it: the built binary on snapshot files.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::util::{fixture, schedctl};

fn instance(name: &str) -> PathBuf {
    fixture("planner").join(name)
}

fn plan_json(name: &str) -> (serde_json::Value, String) {
    let path = instance(&format!("{name}.json"));
    let out = schedctl(&[
        "plan",
        "--snapshot",
        path.to_str().unwrap(),
        "--format",
        "json",
        "--time-limit",
        "5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn score(name: &str, plan_text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, plan_text).unwrap();
    Command::new("python3")
        .arg(instance("score.py"))
        .arg(instance(&format!("{name}.json")))
        .arg(&plan)
        .output()
        .expect("python3 runs score.py")
}

#[test]
fn json_plan_of_the_homelab_passes_the_scorer() {
    let (plan, text) = plan_json("seed-homelab");
    assert_eq!(plan["feasible"], true);
    assert_eq!(plan["overflow"], 0);
    let ids: Vec<&str> = plan["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["backup-hikurangi", "backup-ruapehu", "backup-pihanga"]
    );
    assert!((plan["objective"].as_f64().unwrap() - 54.78).abs() < 1e-6);
    assert!(plan["bound"].as_f64().is_some());
    let scored = score("seed-homelab", &text);
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stdout)
    );
}

#[test]
fn an_infeasible_fleet_gets_the_least_overflow_and_exit_0() {
    let (plan, text) = plan_json("infeasible-1");
    assert_eq!(plan["feasible"], false);
    assert_eq!(plan["overflow"], 13);
    assert!(score("infeasible-1", &text).status.success());
}

#[test]
fn text_plan_is_a_table_with_totals() {
    let path = instance("seed-homelab.json");
    let out = schedctl(&["plan", "--snapshot", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().next().unwrap();
    for column in ["JOB", "HOST", "START", "WHY"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(text.contains("backup-pihanga    pihanga"), "{text}");
    assert!(text.contains(" → "), "moved jobs show from → to: {text}");
    assert!(text.contains("overlapped backup-"), "{text}");
    let totals = text.lines().last().unwrap();
    assert!(totals.starts_with("objective 54.7800"), "{totals}");
    assert!(totals.contains("moved 2 of 3"), "{totals}");
    assert!(totals.contains("no overflow"), "{totals}");
}

#[test]
fn an_invalid_snapshot_is_exit_2_with_every_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"{"version": 1, "hosts": [{"name": "pihanga"}],
            "jobs": [{"id": "a", "host": "pihnga", "current_start": "02:00", "duration_minutes": 30,
                      "window": {"start": "01:00", "end": "24:00"}}]}"#,
    )
    .unwrap();
    let out = schedctl(&["plan", "--snapshot", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("jobs[0].host: unknown host 'pihnga' (known: pihanga)"),
        "{err}"
    );
    assert!(
        err.contains("jobs[0].window.end: 24:00 is not a time of day, use 00:00"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"{"version": 1, "hosts": [{"name": "a", "cpu": 4}], "jobs": []}"#,
    )
    .unwrap();
    let out = schedctl(&["plan", "--snapshot", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("hosts[0].cpu: unknown field"), "{err}");
}

#[test]
fn a_missing_file_or_a_bad_time_limit_is_exit_2() {
    let out = schedctl(&["plan", "--snapshot", "/nonexistent/snapshot.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the snapshot"));
    let path = instance("seed-homelab.json");
    let out = schedctl(&[
        "plan",
        "--snapshot",
        path.to_str().unwrap(),
        "--time-limit",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_same_seed_gives_the_same_plan() {
    let path = instance("wrap-1.json");
    let run = || {
        let out = schedctl(&[
            "plan",
            "--snapshot",
            path.to_str().unwrap(),
            "--format",
            "json",
            "--seed",
            "3",
        ]);
        let mut plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        plan["solve_ms"] = 0.into();
        plan
    };
    assert_eq!(run(), run());
}
