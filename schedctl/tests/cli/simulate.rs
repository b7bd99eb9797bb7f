//! `schedctl simulate` as a user runs it: the origin's storm on Pihanga under
//! the hand stagger and its absence under the optimal plan, in text and
//! JSON; plans and options that do not fit are bad input (exit 2).

use std::process::Output;

use serde_json::Value;

use super::util::{fixture, schedctl};

fn homelab() -> String {
    fixture("planner/seed-homelab.json").display().to_string()
}

fn optimal_plan() -> String {
    fixture("sim/seed-homelab-optimal.json")
        .display()
        .to_string()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&stdout(&schedctl(&all))).unwrap()
}

/// Storm minutes per night of `host` in cells starting in `[from, to)` (HH:MM, no wrap).
fn storm_between(report: &Value, host: &str, from: &str, to: &str) -> f64 {
    let host = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == host)
        .unwrap();
    host["storm_times"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let t = c["time"].as_str().unwrap();
            t >= from && t < to
        })
        .map(|c| c["storm_minutes_mean"].as_f64().unwrap())
        .sum()
}

#[test]
fn json_shows_the_origin_storm_and_the_plan_ending_it() {
    let snapshot = homelab();
    let plan = optimal_plan();
    let current = json(&["simulate", "--snapshot", &snapshot]);
    let planned = json(&["simulate", "--snapshot", &snapshot, "--plan", &plan]);
    assert!(storm_between(&current, "pihanga", "02:45", "03:30") >= 40.0);
    assert_eq!(storm_between(&planned, "pihanga", "02:45", "03:30"), 0.0);
    let fleet = |r: &Value, k: &str| r["fleet"][k].as_f64().unwrap();
    assert!(fleet(&planned, "storm_weighted_mean") < fleet(&current, "storm_weighted_mean"));
    assert!(fleet(&planned, "storm_minutes_mean") < fleet(&current, "storm_minutes_mean"));
    assert_eq!(current["nights"], 28);
    assert_eq!(planned["jobs"][2]["start"], "03:30");
}

#[test]
fn text_shows_storm_times_per_host_and_the_worst_night() {
    let snapshot = homelab();
    let text = stdout(&schedctl(&[
        "simulate",
        "--snapshot",
        &snapshot,
        "--nights",
        "7",
        "--seed",
        "3",
    ]));
    let pihanga = text.lines().find(|l| l.starts_with("pihanga ")).unwrap();
    assert!(pihanga.ends_with("02:45–03:30"), "{pihanga}");
    assert!(text.contains("Worst night: night "), "{text}");
    let timeline = text
        .lines()
        .find(|l| l.trim_start().starts_with("pihanga") && l.contains('|'))
        .unwrap();
    assert!(timeline.contains("...###"), "{timeline}");
    assert!(text.contains("Fleet: "), "{text}");
    let plan = optimal_plan();
    let text = stdout(&schedctl(&[
        "simulate",
        "--snapshot",
        &snapshot,
        "--plan",
        &plan,
        "--nights",
        "7",
    ]));
    let pihanga = text.lines().find(|l| l.starts_with("pihanga ")).unwrap();
    assert!(pihanga.ends_with(" -"), "{pihanga}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains('|')).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows.iter().all(|r| !r.contains('#')), "{text}");
    // A plan is compared with the current starts on the same nights.
    let fleet = text.lines().find(|l| l.starts_with("Fleet: ")).unwrap();
    assert!(
        fleet.starts_with("Fleet: 0.0 storm minutes per night"),
        "{fleet}"
    );
    let current = text
        .lines()
        .find(|l| l.starts_with("Current starts"))
        .unwrap();
    assert!(!current.contains(": 0.0 storm minutes"), "{current}");
}

#[test]
fn same_seed_prints_the_same_report() {
    let snapshot = homelab();
    let args = [
        "simulate",
        "--snapshot",
        &snapshot,
        "--seed",
        "9",
        "--nights",
        "10",
        "--format",
        "json",
    ];
    assert_eq!(stdout(&schedctl(&args)), stdout(&schedctl(&args)));
}

#[test]
fn a_plan_for_another_snapshot_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{ "assignments": [
            { "id": "backup-hikurangi", "start": "00:00" },
            { "id": "backup-ruapehu", "start": "02:20" },
            { "id": "backup-tongariro", "start": "03:30" } ] }"#,
    )
    .unwrap();
    let out = schedctl(&[
        "simulate",
        "--snapshot",
        &homelab(),
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: the plan "), "{stderr}");
    assert!(
        stderr.contains("assignments[2].id: 'backup-tongariro' is not a job"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no start for 1 job(s) of the snapshot: 'backup-pihanga'"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_files_and_options_are_bad_input() {
    let snapshot = homelab();
    let cases: [&[&str]; 4] = [
        &["simulate", "--snapshot", "/nonexistent/snapshot.json"],
        &["simulate", "--snapshot", &snapshot, "--nights", "0"],
        &["simulate", "--snapshot", &snapshot, "--spread", "-1"],
        &[
            "simulate",
            "--snapshot",
            &snapshot,
            "--night-start",
            "24:00",
        ],
    ];
    for args in cases {
        let out = schedctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, "{ \"assignments\": [ }").unwrap();
    let out = schedctl(&[
        "simulate",
        "--snapshot",
        &snapshot,
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("at line 1, column 20"), "{stderr}");
}
