//! `deploy/grafana/stagger.json`: valid JSON with the four areas the issue
//! names, and every query (panels, template variables, annotations) works on
//! what the daemons really export: a real `sched-agent` and a real `schedctl
//! serve` are started with every series filled in (`harness::daemons`), each
//! metric name a query uses must be a sample of their expositions, and a real
//! Prometheus scraping both runs every query and finds series for it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::prometheus::Prometheus;
use crate::harness::{self, daemons, promql};

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
        .flat_map(|q| promql::stagger_names_in(q))
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
fn dashboard_queries_name_only_metrics_the_running_daemons_export() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = daemons::start_pair(dir.path());
    let exported = pair.sample_names();
    let used = used_names();
    assert!(used.len() > 20, "the dashboard uses {} metrics", used.len());
    let missing: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics neither daemon exports: {missing:?}\nexported: {exported:?}"
    );
}

/// A Grafana query as Prometheus gets it with "All" hosts chosen.
fn as_sent(query: &str) -> String {
    query.replace("$host", ".*")
}

/// Grafana's `label_values(<metric>, <label>)`, split.
fn label_values_call(query: &str) -> Option<(&str, &str)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (metric, label) = inner.rsplit_once(',')?;
    Some((metric.trim(), label.trim()))
}

#[test]
fn every_dashboard_query_finds_series_in_a_prometheus_scraping_the_daemons() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = daemons::start_pair(dir.path());
    let prometheus = Prometheus::start(dir.path(), &pair, &[]);
    let mut failed = Vec::new();
    let mut asked = BTreeSet::new();
    for query in all_queries() {
        if !asked.insert(query.clone()) {
            continue;
        }
        // The template variable: Grafana asks the label values API.
        if let Some((metric, label)) = label_values_call(&query) {
            match prometheus.label_values(label, metric) {
                Ok(values) if values.iter().any(|v| v == daemons::AGENT_NODE) => {}
                other => failed.push(format!("{query}: {other:?}")),
            }
            continue;
        }
        let sent = as_sent(&query);
        if let Err(error) = prometheus.query(&sent) {
            failed.push(format!("{sent}: Prometheus refused it: {error}"));
            continue;
        }
        // A panel or annotation that filters (`== 1`, `> 0`) may rightly be
        // empty now; what it filters must not be.
        let selection = promql::without_final_filter(&sent);
        match prometheus.query(selection) {
            Ok(result) if result.as_array().is_some_and(|r| !r.is_empty()) => {}
            other => failed.push(format!("{selection}: no series ({other:?})")),
        }
    }
    assert!(asked.len() > 40, "only {} queries found", asked.len());
    assert!(
        failed.is_empty(),
        "dashboard queries that find nothing in what the daemons export:\n{}",
        failed.join("\n")
    );
}
