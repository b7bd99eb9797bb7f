//! What the tests read out of PromQL text: the Stagger metric names an
//! expression uses (checked against the samples of running daemons), and the
//! selection an alert-style expression filters.

use std::collections::BTreeSet;

/// The `stagger_…` metric names a PromQL expression uses. Every Stagger
/// metric has the prefix and no function, keyword or label of ours does, so
/// the names are the maximal `stagger_[a-z0-9_]*` words.
pub fn stagger_names_in(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut names = BTreeSet::new();
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

/// The expression without a final comparison with a number (`… == 1`,
/// `… > 0`): what it selects before it keeps the samples that hold. An
/// expression without one is returned as it is.
pub fn without_final_filter(expr: &str) -> &str {
    let expr = expr.trim();
    let Some((rest, number)) = expr.rsplit_once(char::is_whitespace) else {
        return expr;
    };
    if number.parse::<f64>().is_err() {
        return expr;
    }
    let rest = rest.trim_end();
    for op in ["==", "!=", ">=", "<=", ">", "<"] {
        if let Some(selection) = rest.strip_suffix(op) {
            return selection.trim_end();
        }
    }
    expr
}

#[test]
fn a_final_comparison_is_taken_off_and_arithmetic_kept() {
    assert_eq!(
        without_final_filter("max by (host) (stagger_backup_running) == 1"),
        "max by (host) (stagger_backup_running)"
    );
    assert_eq!(
        without_final_filter("stagger_backup_running_seconds{host=~\".*\"} > 0"),
        "stagger_backup_running_seconds{host=~\".*\"}"
    );
    assert_eq!(
        without_final_filter("rate(stagger_leases_granted_total[5m]) * 60"),
        "rate(stagger_leases_granted_total[5m]) * 60"
    );
    assert_eq!(
        without_final_filter("stagger_fleet_hosts"),
        "stagger_fleet_hosts"
    );
}

#[test]
fn names_are_found_in_promql_with_labels_functions_and_ranges() {
    let names = stagger_names_in(
        "sum by (host) (rate(stagger_backup_runs_total{result!=\"ok\"}[1h])) \
         / on(host) stagger_fleet_hosts and not_stagger_x",
    );
    let expected: BTreeSet<String> = ["stagger_backup_runs_total", "stagger_fleet_hosts"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(names, expected);
}
