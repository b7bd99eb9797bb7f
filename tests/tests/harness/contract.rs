//! The metric names of CONTRACTS.md ("Metric names"), by the daemon that
//! exports them, as the sample names a query uses (`_total` for counters,
//! `_bucket`/`_sum`/`_count` for histograms).
//!
//! The shipped rules and dashboard are checked against this list at once, and
//! against the expositions of running daemons where those can be started.

/// Who exports a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// `sched-agent` (`agent/src/metrics.rs`).
    Agent,
    /// `schedctl serve` (`schedctl/src/coordinator/metrics.rs`).
    Coordinator,
}

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gauge: the sample name is the family name.
    Gauge,
    /// A counter: the family name ends in `_total` here.
    Counter,
    /// A histogram: `_bucket`, `_sum` and `_count` samples.
    Histogram,
}

/// Every family of the contract.
pub const FAMILIES: &[(&str, Kind, Exporter)] = &[
    ("stagger_build_info", Kind::Gauge, Exporter::Agent),
    (
        "stagger_io_pressure_some_ratio",
        Kind::Gauge,
        Exporter::Agent,
    ),
    (
        "stagger_io_pressure_full_ratio",
        Kind::Gauge,
        Exporter::Agent,
    ),
    (
        "stagger_io_pressure_some_seconds_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    (
        "stagger_io_pressure_full_seconds_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    (
        "stagger_disk_io_time_seconds_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    (
        "stagger_cpu_iowait_seconds_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    ("stagger_io_load_ratio", Kind::Gauge, Exporter::Agent),
    (
        "stagger_load_profile_span_seconds",
        Kind::Gauge,
        Exporter::Agent,
    ),
    ("stagger_backup_running", Kind::Gauge, Exporter::Agent),
    (
        "stagger_backup_running_seconds",
        Kind::Gauge,
        Exporter::Agent,
    ),
    (
        "stagger_backup_duration_seconds",
        Kind::Histogram,
        Exporter::Agent,
    ),
    (
        "stagger_backup_last_duration_seconds",
        Kind::Gauge,
        Exporter::Agent,
    ),
    ("stagger_backup_runs_total", Kind::Counter, Exporter::Agent),
    (
        "stagger_schedule_applies_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    ("stagger_rollbacks_total", Kind::Counter, Exporter::Agent),
    (
        "stagger_jobs_cfg_lock_wait_seconds",
        Kind::Histogram,
        Exporter::Agent,
    ),
    (
        "stagger_hook_lease_wait_seconds",
        Kind::Histogram,
        Exporter::Agent,
    ),
    (
        "stagger_hook_fail_open_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    (
        "stagger_http_requests_total",
        Kind::Counter,
        Exporter::Agent,
    ),
    ("stagger_build_info", Kind::Gauge, Exporter::Coordinator),
    ("stagger_host_reachable", Kind::Gauge, Exporter::Coordinator),
    ("stagger_fleet_hosts", Kind::Gauge, Exporter::Coordinator),
    (
        "stagger_fleet_overlap_risk_ratio",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    (
        "stagger_resource_overlap_risk_ratio",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    (
        "stagger_plan_age_seconds",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    ("stagger_plan_pending", Kind::Gauge, Exporter::Coordinator),
    (
        "stagger_plan_reserved_seconds",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    (
        "stagger_backup_window_active",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    ("stagger_jobs_cfg_drift", Kind::Gauge, Exporter::Coordinator),
    (
        "stagger_leases_granted_total",
        Kind::Counter,
        Exporter::Coordinator,
    ),
    (
        "stagger_leases_queued_total",
        Kind::Counter,
        Exporter::Coordinator,
    ),
    (
        "stagger_leases_expired_total",
        Kind::Counter,
        Exporter::Coordinator,
    ),
    (
        "stagger_leases_released_total",
        Kind::Counter,
        Exporter::Coordinator,
    ),
    ("stagger_leases_active", Kind::Gauge, Exporter::Coordinator),
    (
        "stagger_lease_wait_seconds",
        Kind::Histogram,
        Exporter::Coordinator,
    ),
    (
        "stagger_resource_running_backups",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    (
        "stagger_resource_capacity",
        Kind::Gauge,
        Exporter::Coordinator,
    ),
    (
        "stagger_applies_total",
        Kind::Counter,
        Exporter::Coordinator,
    ),
    (
        "stagger_collections_total",
        Kind::Counter,
        Exporter::Coordinator,
    ),
    (
        "stagger_collection_duration_seconds",
        Kind::Histogram,
        Exporter::Coordinator,
    ),
];

/// The sample names a query may use for one family.
pub fn sample_names(family: &str, kind: Kind) -> Vec<String> {
    match kind {
        Kind::Gauge | Kind::Counter => vec![family.to_owned()],
        Kind::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|suffix| format!("{family}{suffix}"))
            .collect(),
    }
}

/// Every sample name of the contract.
pub fn all_sample_names() -> std::collections::BTreeSet<String> {
    FAMILIES
        .iter()
        .flat_map(|(family, kind, _)| sample_names(family, *kind))
        .collect()
}

/// The `stagger_…` metric names a PromQL expression uses. Every Stagger
/// metric has the prefix and no function, keyword or label of ours does, so
/// the names are the maximal `stagger_[a-z0-9_]*` words.
pub fn stagger_names_in(expr: &str) -> std::collections::BTreeSet<String> {
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut names = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if word(bytes[i]) && (i == 0 || !word(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            let name = &expr[start..i];
            if name.starts_with("stagger_") {
                names.insert(name.to_owned());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn names_are_found_in_promql_with_labels_functions_and_ranges() {
    let names = stagger_names_in(
        "sum by (host) (rate(stagger_backup_runs_total{result!=\"ok\"}[1h])) \
         / on(host) stagger_fleet_hosts and not_stagger_x",
    );
    let expected: std::collections::BTreeSet<String> =
        ["stagger_backup_runs_total", "stagger_fleet_hosts"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    assert_eq!(names, expected);
}
