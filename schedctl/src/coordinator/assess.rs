//! What the coordinator concludes from a fresh snapshot: whether to plan
//! again, which hosts' jobs.cfg drifted, which hosts are inside a planned
//! backup window, what each job reserves. Pure: values in, values out.
//!
//! # When to plan again
//!
//! Against the *basis* (the snapshot of the latest stored plan):
//! * no plan has been made yet;
//! * a job's reserved duration moved by more than `policy.replan-drift`
//!   (a ratio: 0.2 means 20 %) from what the plan reserved;
//! * a host's load profile moved by more than `replan-drift`, measured as
//!   `Σ |now − then| / Σ then` over its slots.
//!
//! A jobs.cfg changed by hand is *not* a reason: the admin chose that
//! schedule, and a plan made on top of it would undo the choice without a
//! word. It shows as drift instead (`stagger_jobs_cfg_drift`), until Stagger
//! has seen the new file: a plan made from it, or a write of its own.

use std::collections::{BTreeMap, BTreeSet};

use scheduler_core::fleet::FleetSnapshot;
use scheduler_core::snapshot::{Model, Snapshot};

/// Minutes in a week.
const WEEK_MINUTES: i64 = 7 * 1440;

/// Why the coordinator plans again, in words for the log and the store.
pub fn replan_reason(
    basis: Option<&Snapshot>,
    current: &Snapshot,
    replan_drift: f64,
) -> Option<String> {
    let Some(basis) = basis else {
        return Some("no plan had been made yet".to_owned());
    };
    let then = durations(basis);
    for (id, now) in durations(current) {
        let Some(&before) = then.get(&id) else {
            continue;
        };
        if before > 0.0 && ((now - before) / before).abs() > replan_drift {
            return Some(format!(
                "job {id} now reserves {now:.0} min, the plan reserved {before:.0} min \
                 (more than {:.0} % apart, policy.replan-drift)",
                replan_drift * 100.0
            ));
        }
    }
    let loads: BTreeMap<&str, &Vec<f64>> = basis
        .hosts
        .iter()
        .filter_map(|h| h.load.as_ref().map(|l| (h.name.as_str(), l)))
        .collect();
    for host in &current.hosts {
        let (Some(now), Some(before)) = (host.load.as_ref(), loads.get(host.name.as_str())) else {
            continue;
        };
        if let Some(change) = load_change(before, now) {
            if change > replan_drift {
                return Some(format!(
                    "the load profile of {} changed by {:.0} % since the plan (policy.replan-drift {:.0} %)",
                    host.name,
                    change * 100.0,
                    replan_drift * 100.0
                ));
            }
        }
    }
    None
}

/// Reserved minutes of each job (`host/job`), the longest of its runs.
fn durations(snapshot: &Snapshot) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for job in &snapshot.jobs {
        let id = job.id.split('@').next().unwrap_or(&job.id).to_owned();
        let entry = out.entry(id).or_insert(0.0);
        *entry = entry.max(job.duration_minutes);
    }
    out
}

/// `Σ |now − then| / Σ then`, when both profiles have the same length and `then` is not all zero.
fn load_change(then: &[f64], now: &[f64]) -> Option<f64> {
    if then.len() != now.len() {
        return None;
    }
    let total: f64 = then.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let moved: f64 = then.iter().zip(now).map(|(a, b)| (a - b).abs()).sum();
    Some(moved / total)
}

/// What each job of the fleet reserves: `(host, job id, seconds)`, the
/// longest of a job's runs when it has several.
pub fn reserved(fleet: &FleetSnapshot) -> Vec<(String, String, f64)> {
    let mut out: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (planned, job) in fleet.jobs.iter().zip(&fleet.snapshot.jobs) {
        let entry = out
            .entry((planned.host.clone(), planned.job.clone()))
            .or_insert(0.0);
        *entry = entry.max(job.duration_minutes * 60.0);
    }
    out.into_iter().map(|((h, j), s)| (h, j, s)).collect()
}

/// Per host: whether `now` (Unix seconds) lies inside one of its planned runs,
/// from a start to start + reserved duration + guard, on the job's days.
pub fn window_active(model: &Model, now: i64) -> Vec<(String, bool)> {
    // Minutes since Monday 00:00 UTC (1970-01-05 was a Monday).
    let week_minute = (now - 4 * 86_400).div_euclid(60).rem_euclid(WEEK_MINUTES);
    let slot = i64::from(model.slot_minutes);
    let mut active = vec![false; model.hosts.len()];
    for job in &model.jobs {
        let start = i64::try_from(job.current_start).unwrap_or(0) * slot;
        let length = i64::try_from(job.length).unwrap_or(0) * slot;
        let running = job.days.iter().any(|&day| {
            let begins = i64::from(day) * 1440 + start;
            (week_minute - begins).rem_euclid(WEEK_MINUTES) < length
        });
        if let (true, Some(host)) = (running, active.get_mut(job.host)) {
            *host = true;
        }
    }
    model
        .hosts
        .iter()
        .zip(active)
        .map(|(host, active)| (host.name.clone(), active))
        .collect()
}

/// Whether a host's jobs.cfg drifted: its digest now is none Stagger saw
/// (planned from) or wrote.
pub fn drifted(digest_now: &str, known: &BTreeSet<String>) -> bool {
    !known.contains(digest_now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str =
        include_str!("../../../scheduler-core/tests/fixtures/planner/seed-homelab.json");

    fn seed() -> Snapshot {
        Snapshot::from_json(SEED).expect("seed reads")
    }

    #[test]
    fn without_a_plan_the_coordinator_plans() {
        let reason = replan_reason(None, &seed(), 0.2).expect("plans");
        assert!(reason.contains("no plan had been made"), "{reason}");
    }

    #[test]
    fn a_duration_drifting_past_the_ratio_asks_for_a_new_plan_and_a_small_one_does_not() {
        let basis = seed();
        let mut current = seed();
        // backup-pihanga: 40 min planned; 46 is 15 % more, 50 is 25 % more.
        current.jobs[2].duration_minutes = 46.0;
        assert_eq!(replan_reason(Some(&basis), &current, 0.2), None);
        current.jobs[2].duration_minutes = 50.0;
        let reason = replan_reason(Some(&basis), &current, 0.2).expect("plans again");
        assert!(
            reason.contains("backup-pihanga now reserves 50 min"),
            "{reason}"
        );
        assert!(reason.contains("reserved 40 min"), "{reason}");
    }

    #[test]
    fn a_changed_load_profile_asks_for_a_new_plan() {
        let basis = seed();
        let mut current = seed();
        let load = current.hosts[2].load.as_mut().expect("pihanga has a load");
        // Pihanga's busy hour moves two hours later.
        load.rotate_right(24);
        let reason = replan_reason(Some(&basis), &current, 0.2).expect("plans again");
        assert!(reason.contains("load profile of pihanga"), "{reason}");
        assert_eq!(replan_reason(Some(&basis), &seed(), 0.2), None);
    }

    #[test]
    fn a_host_is_in_its_window_from_the_start_to_start_plus_reserved_plus_guard() {
        let model = seed().validate().expect("valid");
        // 2026-01-05 is a Monday; pihanga starts 02:45 for 40 + 10 min (slots of 5).
        let monday = 1_767_571_200;
        let at = |h: i64, m: i64| {
            window_active(&model, monday + h * 3600 + m * 60)
                .into_iter()
                .find(|(host, _)| host == "pihanga")
                .map(|(_, active)| active)
                .expect("pihanga")
        };
        assert!(!at(2, 44));
        assert!(at(2, 45));
        assert!(at(3, 34));
        assert!(!at(3, 35));
        // The days wrap: Sunday's run is found from Monday's minute 0 as well.
        assert!(!at(0, 0));
    }

    #[test]
    fn a_digest_stagger_never_saw_or_wrote_is_drift() {
        let known: BTreeSet<String> = ["aa".to_owned(), "bb".to_owned()].into();
        assert!(!drifted("bb", &known));
        assert!(drifted("cc", &known));
    }
}
