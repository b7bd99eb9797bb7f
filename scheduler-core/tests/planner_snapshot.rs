//! Reading snapshots: the public instances load, keeping every job at its
//! current start scores like the reference, and bad snapshots list every
//! problem with its JSON path.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use scheduler_core::snapshot::{Model, Snapshot, SnapshotError};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/planner")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (instance, keep_cost, keep_overflow) from reference.tsv.
fn reference_keep() -> Vec<(String, f64, u64)> {
    let text = fixture("reference.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_cost, c_over) = (col("keep_cost"), col("keep_overflow"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (
                f[0].to_owned(),
                f[c_cost].parse().unwrap(),
                f[c_over].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn keeping_current_starts_scores_like_the_reference() {
    for (name, keep_cost, keep_overflow) in reference_keep() {
        let model = Model::from_json(&fixture(&format!("{name}.json"))).unwrap();
        let starts: Vec<usize> = model.jobs.iter().map(|j| j.current_start).collect();
        let score = model.score(&starts);
        assert_eq!(score.overflow, keep_overflow, "{name}: overflow");
        assert!(
            (score.cost - keep_cost).abs() <= 1e-4 * keep_cost.max(1.0),
            "{name}: cost {} != {keep_cost}",
            score.cost
        );
        assert_eq!(score.moved, 0);
    }
}

fn problems(text: &str) -> Vec<String> {
    match Model::from_json(text) {
        Ok(_) => panic!("accepted an invalid snapshot"),
        Err(e) => {
            let listed: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
            if listed.is_empty() {
                vec![e.to_string()]
            } else {
                listed
            }
        }
    }
}

const HOMELAB_HOSTS: &str = r#"[
    {"name": "hikurangi"}, {"name": "pihanga", "sensitivity": 3.0}, {"name": "ruapehu"}
]"#;

#[test]
fn every_problem_is_listed_with_its_path() {
    let text = format!(
        r#"{{"version": 1, "window": {{"start": "00:00", "end": "07:00"}},
            "resources": [{{"name": "pbs:main", "capacity": 1}}],
            "hosts": {HOMELAB_HOSTS},
            "jobs": [
              {{"id": "a", "host": "pihnga", "current_start": "02:00", "duration_minutes": 25}},
              {{"id": "b", "host": "ruapehu", "current_start": "02:03", "duration_minutes": 25}},
              {{"id": "c", "host": "ruapehu", "current_start": "02:00", "duration_minutes": 25,
                "window": {{"start": "01:00", "end": "24:00"}}, "resources": ["pbs:other"]}},
              {{"id": "a", "host": "hikurangi", "current_start": "02:00", "duration_minutes": 25, "colour": "red"}}
            ]}}"#
    );
    let found = problems(&text);
    assert!(
        found[0].starts_with("jobs[3].colour: unknown field, expected one of: id, host,"),
        "{found:#?}"
    );
    // The shape problem does not hide the others; without it, they remain.
    assert_eq!(found.len(), 6, "{found:#?}");
    let text = text.replace(r#", "colour": "red""#, "");
    let found = problems(&text);
    let expected = [
        "jobs[0].host: unknown host 'pihnga' (known: hikurangi, pihanga, ruapehu)",
        "jobs[1].current_start: 02:03 is not on the 5-minute slot grid",
        "jobs[2].resources[0]: unknown resource 'pbs:other' (known: pbs:main)",
        "jobs[2].window.end: 24:00 is not a time of day, use 00:00",
        "jobs[3].id: duplicate job id 'a'",
    ];
    assert_eq!(found, expected);
}

#[test]
fn load_of_the_wrong_length_names_both_lengths() {
    let load: Vec<String> = (0..287).map(|_| "0.1".to_owned()).collect();
    let text = format!(
        r#"{{"version": 1, "hosts": [{{"name": "a"}}, {{"name": "b", "load": [{}]}}], "jobs": []}}"#,
        load.join(",")
    );
    assert_eq!(
        problems(&text),
        ["hosts[1].load: 287 values, expected 288 (a daily profile) or 2016 (a weekly one)"]
    );
}

#[test]
fn a_pinned_job_outside_its_window_is_an_error() {
    let text = r#"{"version": 1, "window": {"start": "01:00", "end": "05:00"},
        "hosts": [{"name": "a"}],
        "jobs": [{"id": "x", "host": "a", "current_start": "04:30", "duration_minutes": 40, "pinned": true}]}"#;
    let found = problems(text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("jobs[0].current_start: the job is pinned at 04:30"),
        "{found:?}"
    );
}

#[test]
fn a_job_too_long_for_its_window_is_an_error() {
    let text = r#"{"version": 1, "window": {"start": "01:00", "end": "02:00"},
        "hosts": [{"name": "a"}],
        "jobs": [{"id": "x", "host": "a", "current_start": "01:00", "duration_minutes": 61}]}"#;
    let found = problems(text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("jobs[0]: the job occupies 13 slots"),
        "{found:?}"
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = Model::from_json("{\n  \"version\": 1,\n  \"hosts\": [,]\n}").unwrap_err();
    assert!(matches!(err, SnapshotError::Json { line: 3, .. }), "{err}");
}

#[test]
fn duration_and_guard_add_exactly_on_the_decimals() {
    let text = r#"{"version": 1, "guard_minutes": 9.9, "hosts": [{"name": "a"}],
        "jobs": [{"id": "x", "host": "a", "current_start": "01:00", "duration_minutes": 20.1}]}"#;
    let model = Model::from_json(text).unwrap();
    assert_eq!(model.jobs[0].length, 6);
}

#[test]
fn defaults_fill_what_is_absent() {
    let text = r#"{"version": 1, "hosts": [{"name": "a"}],
        "jobs": [{"id": "x", "host": "a", "current_start": "23:55", "duration_minutes": 10}]}"#;
    let model = Model::from_json(text).unwrap();
    assert_eq!(model.slots_per_day, 288);
    let job = &model.jobs[0];
    assert_eq!(job.days, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(job.impacts, [(0, 1.0)]);
    assert_eq!(job.allowed_starts.len(), 288);
    // Sunday's run wraps into Monday.
    let slots: Vec<usize> = model.run_slots(0, 287).collect();
    assert_eq!(&slots[12..], &[2015, 0]);
}

#[test]
fn a_snapshot_survives_a_round_trip_through_its_serde_types() {
    let text = fixture("seed-homelab.json");
    let snapshot = Snapshot::from_json(&text).unwrap();
    let again = Snapshot::from_json(&snapshot.to_json()).unwrap();
    assert_eq!(snapshot, again);
    let derived: Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(snapshot, derived);
}
