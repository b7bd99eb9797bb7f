//! `deploy/grafana/stagger.json`: valid JSON with the four areas the issue
//! names, and every query (panels, template variables, annotations) names
//! only metrics that exist: those of the contract, checked here at once, and
//! those a real `sched-agent` and a real `schedctl serve` expose, checked by
//! scraping both.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::{self, contract, daemons};

fn dashboard() -> Value {
    let path = harness::repo_file("deploy/grafana/stagger.json");
    let text = std::fs::read_to_string(&path).expect("dashboard");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Every PromQL text of the dashboard: targets' `expr`, variables' `query`
/// and `definition`, annotations' `expr`.
fn queries(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("expr" | "definition", Value::String(q)) => found.push(q.clone()),
                    ("query", Value::String(q)) if q.contains('(') || q.contains('_') => {
                        found.push(q.clone());
                    }
                    _ => queries(item, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| queries(item, found)),
        _ => {}
    }
}

fn all_queries() -> Vec<String> {
    let mut found = Vec::new();
    queries(&dashboard(), &mut found);
    found
}

/// The metric names the dashboard's queries use.
fn used_names() -> BTreeSet<String> {
    all_queries()
        .iter()
        .flat_map(|q| contract::stagger_names_in(q))
        .collect()
}

#[test]
fn dashboard_has_the_four_areas_and_every_panel_queries_something() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for area in [
        "Fleet overview",
        "Per-host pressure",
        "durations vs. reserved",
        "Leases",
    ] {
        assert!(
            rows.iter().any(|r| r.contains(area)),
            "no row {area:?} in {rows:?}"
        );
    }
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64()),
            "duplicate panel id {}",
            panel["id"]
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "panel {} has no query", panel["title"]);
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    assert!(
        titles
            .iter()
            .any(|t| t.contains("pressure") && t.contains("backups")),
        "per-host pressure with backup runs overlaid: {titles:?}"
    );
}

#[test]
fn dashboard_queries_name_only_metrics_of_the_contract() {
    let known = contract::all_sample_names();
    let used = used_names();
    assert!(used.len() > 20, "the dashboard uses {} metrics", used.len());
    let unknown: Vec<&String> = used.iter().filter(|n| !known.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "not in the metric contract: {unknown:?}"
    );
}

#[test]
#[ignore = "needs `sched-agent run` (issue 6) and `schedctl serve` (issue 7): enable once both are on main"]
fn dashboard_queries_name_only_metrics_the_running_daemons_export() {
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = daemons::start_agent(dir.path());
    let coordinator = daemons::start_coordinator(dir.path(), &agent);
    let mut exported = daemons::exposed_names(&agent.scrape());
    exported.extend(daemons::exposed_names(&coordinator.scrape()));
    let missing: Vec<String> = used_names()
        .into_iter()
        .filter(|name| !exported.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics neither daemon exports: {missing:?}\nexported: {exported:?}"
    );
}
