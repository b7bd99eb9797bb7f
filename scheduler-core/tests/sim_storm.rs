//! The storm simulator through its public API: the origin's storm on Pihanga
//! and its absence under the optimal plan, determinism, exact durations
//! without spread, slow-down on shared resources, host lock queueing, and
//! plans that do not fit the snapshot.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use scheduler_core::planner::{self, NoDeadline};
use scheduler_core::sim::{Fleet, Options, Report, Schedule, SimError};

fn fixture(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn homelab() -> Fleet {
    Fleet::from_json(&fixture("planner/seed-homelab.json")).unwrap()
}

/// The optimal plan of seed-homelab (cost 54.78, checked with score.py and below).
fn homelab_optimal(fleet: &Fleet) -> Schedule {
    Schedule::from_plan_json(fleet.model(), &fixture("sim/seed-homelab-optimal.json")).unwrap()
}

const fn hhmm(h: u32, m: u32) -> u32 {
    h * 60 + m
}

fn exact(nights: u32) -> Options {
    Options {
        nights,
        spread: 0.0,
        ..Options::default()
    }
}

fn simulate(fleet: &Fleet, options: &Options) -> Report {
    fleet.simulate(&fleet.current_schedule(), options).unwrap()
}

/// A snapshot with daily 1440-minute slots; `load` is every host's constant load.
fn tiny(resources: &str, hosts: &str, jobs: &str) -> Fleet {
    let text = format!(
        r#"{{ "version": 1, "slot_minutes": 5, "resources": [{resources}], "hosts": [{hosts}], "jobs": [{jobs}] }}"#
    );
    Fleet::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn flat_host(name: &str, load: f64) -> String {
    let values = vec![load.to_string(); 288].join(",");
    format!(r#"{{ "name": "{name}", "load": [{values}] }}"#)
}

fn job(id: &str, host: &str, start: &str, minutes: f64, extra: &str) -> String {
    format!(
        r#"{{ "id": "{id}", "host": "{host}", "current_start": "{start}", "duration_minutes": {minutes}{extra} }}"#
    )
}

#[test]
fn the_optimal_plan_fixture_is_the_reference_optimum() {
    let fleet = homelab();
    let plan = homelab_optimal(&fleet);
    let slots: Vec<usize> = plan
        .starts()
        .iter()
        .map(|&m| (m / fleet.model().slot_minutes) as usize)
        .collect();
    let score = fleet.model().score(&slots);
    assert_eq!(score.overflow, 0);
    assert!((score.cost - 54.78).abs() < 1e-6, "cost {}", score.cost);
}

#[test]
fn origin_storm_hits_pihanga_between_0245_and_0330_under_the_hand_stagger() {
    let fleet = homelab();
    let report = simulate(&fleet, &Options::default());
    let pihanga = report.host("pihanga").unwrap();
    let in_window = pihanga.storm_minutes_between(hhmm(2, 45), hhmm(3, 30));
    // The backup starts at 02:45 and Pihanga is busy until 03:30: nearly the
    // whole 45 minutes storm, every night.
    assert!(
        in_window >= 40.0,
        "storm minutes in 02:45-03:30: {in_window}"
    );
    assert_eq!(pihanga.storm_probability, 1.0);
    assert!(
        (pihanga.storm_minutes_mean - in_window).abs() < 1e-9,
        "storm outside the window"
    );
    assert!(pihanga.storm_weighted_mean > 100.0);
    // The hand stagger overlaps on the datastore: the cascade lengthens runs.
    let pbs = report.resource("pbs:main").unwrap();
    assert!(pbs.overlap_probability > 0.9, "{pbs:?}");
    assert!(pbs.max_active >= 2);
}

#[test]
fn optimal_plan_ends_the_storm_on_pihanga() {
    let fleet = homelab();
    let options = Options::default();
    let current = simulate(&fleet, &options);
    let planned = fleet.simulate(&homelab_optimal(&fleet), &options).unwrap();
    let pihanga = planned.host("pihanga").unwrap();
    assert_eq!(pihanga.storm_minutes_between(hhmm(2, 45), hhmm(3, 30)), 0.0);
    assert!(planned.fleet.storm_minutes_mean < current.fleet.storm_minutes_mean);
    assert!(planned.fleet.storm_weighted_mean < current.fleet.storm_weighted_mean);
    assert!(planned.fleet.exposure_mean < current.fleet.exposure_mean);
    assert_eq!(
        planned.resource("pbs:main").unwrap().overlap_probability,
        0.0
    );
}

#[test]
fn overlap_cascade_lengthens_runs_of_the_hand_stagger() {
    let fleet = homelab();
    let options = Options::default();
    let current = simulate(&fleet, &options);
    let planned = fleet.simulate(&homelab_optimal(&fleet), &options).unwrap();
    // Same draws for both (paired): only the overlap differs.
    let ruapehu_now = current.job("backup-ruapehu").unwrap().real_minutes_mean;
    let ruapehu_plan = planned.job("backup-ruapehu").unwrap().real_minutes_mean;
    assert!(
        ruapehu_now > 1.3 * ruapehu_plan,
        "{ruapehu_now} vs {ruapehu_plan}"
    );
}

#[test]
fn the_planners_own_plan_ends_the_storm_too() {
    let fleet = homelab();
    let plan = planner::plan(fleet.model(), &planner::Options::default(), &NoDeadline);
    let schedule = Schedule::from_plan(fleet.model(), &plan).unwrap();
    let report = fleet.simulate(&schedule, &Options::default()).unwrap();
    let pihanga = report.host("pihanga").unwrap();
    assert_eq!(pihanga.storm_minutes_between(hhmm(2, 45), hhmm(3, 30)), 0.0);
}

#[test]
fn same_seed_same_report_other_seed_other_durations() {
    let fleet = homelab();
    let options = Options {
        nights: 14,
        seed: 42,
        ..Options::default()
    };
    let a = simulate(&fleet, &options);
    let b = simulate(&fleet, &options);
    assert_eq!(a, b);
    let c = simulate(
        &fleet,
        &Options {
            seed: 43,
            ..options
        },
    );
    assert_ne!(a.jobs, c.jobs);
}

#[test]
fn spread_zero_runs_last_exactly_their_duration() {
    let fleet = tiny(
        "",
        &[flat_host("a", 0.2), flat_host("b", 0.2)].join(","),
        &[
            job("j1", "a", "01:00", 25.3, ""),
            job("j2", "b", "01:00", 40.0, ""),
            job("j3", "a", "03:00", 7.0, r#", "days": [2]"#),
        ]
        .join(","),
    );
    let report = simulate(&fleet, &exact(14));
    for (id, minutes, runs) in [("j1", 25.3, 14), ("j2", 40.0, 14), ("j3", 7.0, 2)] {
        let j = report.job(id).unwrap();
        assert_eq!(j.runs, runs, "{id}");
        for real in [j.real_minutes_mean, j.real_minutes_p95, j.real_minutes_max] {
            assert!((real - minutes).abs() < 1e-9, "{id}: {real} != {minutes}");
        }
        assert_eq!(j.wait_minutes_mean, 0.0);
        assert_eq!(j.overrun_probability, 0.0);
    }
}

#[test]
fn storm_counts_backup_minutes_during_busy_load_weighted_by_sensitivity() {
    let busy = r#"{ "name": "busy", "sensitivity": 3.0, "load": [0.8] }"#;
    let calm = r#"{ "name": "calm", "load": [0.2] }"#;
    let text = format!(
        r#"{{ "version": 1, "slot_minutes": 1440, "hosts": [{busy}, {calm}], "jobs": [
            {{ "id": "j", "host": "calm", "current_start": "00:00", "duration_minutes": 30,
               "impacts": {{ "busy": 0.5, "calm": 1.0 }} }} ] }}"#
    );
    let fleet = Fleet::from_json(&text).unwrap();
    let report = simulate(&fleet, &exact(7));
    let busy = report.host("busy").unwrap();
    assert_eq!(busy.storm_minutes_mean, 30.0);
    assert!((busy.storm_weighted_mean - 30.0 * 0.5 * 3.0 * 0.8).abs() < 1e-9);
    assert!((busy.exposure_mean - busy.storm_weighted_mean).abs() < 1e-9);
    assert_eq!(busy.storm_minutes_between(0, 30), 30.0);
    assert_eq!(busy.storm_minutes_between(30, 1440), 0.0);
    // Below the busy threshold: exposure, no storm.
    let calm = report.host("calm").unwrap();
    assert_eq!(calm.storm_minutes_mean, 0.0);
    assert!((calm.exposure_mean - 30.0 * 0.2).abs() < 1e-9);
    assert_eq!(report.fleet.nights_with_storm, 7);
}

#[test]
fn overload_on_a_shared_resource_slows_both_runs() {
    let hosts = [flat_host("a", 0.1), flat_host("b", 0.1)].join(",");
    let uses = r#", "resources": ["pbs"]"#;
    let alone = tiny(
        r#"{ "name": "pbs", "capacity": 1 }"#,
        &hosts,
        &[
            job("j1", "a", "01:00", 20.0, uses),
            job("j2", "b", "03:00", 40.0, uses),
        ]
        .join(","),
    );
    let together = tiny(
        r#"{ "name": "pbs", "capacity": 1 }"#,
        &hosts,
        &[
            job("j1", "a", "01:00", 20.0, uses),
            job("j2", "b", "01:00", 40.0, uses),
        ]
        .join(","),
    );
    let alone = simulate(&alone, &exact(3));
    let together = simulate(&together, &exact(3));
    assert_eq!(alone.job("j1").unwrap().real_minutes_max, 20.0);
    assert_eq!(alone.job("j2").unwrap().real_minutes_max, 40.0);
    assert_eq!(alone.resource("pbs").unwrap().overlap_probability, 0.0);
    // Half speed each until j1's 20 work minutes are done at minute 40; then
    // j2 does its last 20 at full speed.
    assert_eq!(together.job("j1").unwrap().real_minutes_max, 40.0);
    assert_eq!(together.job("j2").unwrap().real_minutes_max, 60.0);
    let pbs = together.resource("pbs").unwrap();
    assert_eq!(pbs.overlap_probability, 1.0);
    assert_eq!(pbs.overlap_minutes_mean, 40.0);
    assert_eq!(pbs.max_active, 2);
    assert_eq!(together.fleet.nights_with_overlap, 3);
}

#[test]
fn a_resource_with_room_does_not_slow_runs() {
    let hosts = [flat_host("a", 0.1), flat_host("b", 0.1)].join(",");
    let uses = r#", "resources": ["pool"]"#;
    let fleet = tiny(
        r#"{ "name": "pool", "capacity": 2 }"#,
        &hosts,
        &[
            job("j1", "a", "01:00", 20.0, uses),
            job("j2", "b", "01:00", 40.0, uses),
        ]
        .join(","),
    );
    let report = simulate(&fleet, &exact(2));
    assert_eq!(report.job("j1").unwrap().real_minutes_max, 20.0);
    assert_eq!(report.job("j2").unwrap().real_minutes_max, 40.0);
    assert_eq!(report.resource("pool").unwrap().overlap_probability, 0.0);
}

#[test]
fn a_host_runs_its_own_jobs_one_at_a_time() {
    let fleet = tiny(
        "",
        &flat_host("a", 0.9),
        &[
            job("j1", "a", "01:00", 30.0, ""),
            job("j2", "a", "01:10", 30.0, ""),
        ]
        .join(","),
    );
    let report = simulate(&fleet, &exact(4));
    let j2 = report.job("j2").unwrap();
    assert_eq!(j2.wait_minutes_mean, 20.0);
    assert_eq!(j2.real_minutes_max, 30.0);
    // Reserved 30 minutes from 01:10, ended at 02:00.
    assert_eq!(j2.overrun_probability, 1.0);
    let a = report.host("a").unwrap();
    assert_eq!(a.wait_probability, 1.0);
    assert_eq!(a.storm_minutes_mean, 60.0);
    assert!(
        report.resources.is_empty(),
        "host locks are not listed as shared resources"
    );
}

#[test]
fn a_run_past_midnight_counts_for_the_night_it_started() {
    let fleet = tiny(
        "",
        &flat_host("a", 0.9),
        &job("j", "a", "23:50", 30.0, r#", "days": [0]"#),
    );
    let report = simulate(&fleet, &exact(7));
    let a = report.host("a").unwrap();
    assert_eq!(a.storm_minutes_by_night, vec![30, 0, 0, 0, 0, 0, 0]);
    assert!((a.storm_minutes_between(hhmm(23, 50), hhmm(0, 20)) - 30.0 / 7.0).abs() < 1e-9);
    assert_eq!(report.worst_night.night.night, 0);
}

#[test]
fn the_worst_night_has_the_most_storm_and_a_timeline() {
    let fleet = tiny(
        "",
        &[flat_host("a", 0.9), flat_host("b", 0.1)].join(","),
        &[
            job("daily", "b", "01:00", 30.0, ""),
            job("thursday", "a", "02:10", 20.0, r#", "days": [3]"#),
        ]
        .join(","),
    );
    let report = simulate(&fleet, &exact(7));
    // Nothing runs 02:30-01:00: nights start at 13:00, so Thursday 02:10
    // belongs to the night from Wednesday 13:00.
    assert_eq!(report.night_start, "13:00");
    let worst = &report.worst_night;
    assert_eq!(worst.night.night, 2);
    assert_eq!(worst.night.weekday, "Wednesday");
    assert_eq!(worst.night.storm_minutes, 20);
    let t = &worst.timeline;
    assert_eq!(t.from, "01:00");
    assert_eq!(t.cell_minutes, 5);
    let row = |host: &str| &t.rows.iter().find(|r| r.host == host).unwrap().cells;
    // 01:00-03:00 in 5-minute cells.
    assert_eq!(
        row("a"),
        &format!("{}{}{}", ".".repeat(14), "#".repeat(4), ".".repeat(6))
    );
    assert_eq!(row("b"), &format!("{}{}", "=".repeat(6), " ".repeat(18)));
}

#[test]
fn a_window_across_midnight_stays_in_one_night() {
    let uses = r#", "resources": ["pbs"]"#;
    let fleet = tiny(
        r#"{ "name": "pbs", "capacity": 1 }"#,
        &[flat_host("a", 0.9), flat_host("b", 0.1)].join(","),
        &[
            job("late", "b", "23:00", 100.0, uses),
            job("early", "a", "00:30", 30.0, uses),
        ]
        .join(","),
    );
    let report = simulate(&fleet, &exact(7));
    // Quiet 01:00-23:00: nights start at 12:00 and hold both runs.
    assert_eq!(report.night_start, "12:00");
    assert_eq!(report.job("late").unwrap().runs, 7);
    assert_eq!(report.job("early").unwrap().runs, 7);
    // "late" has 10 work minutes left at 00:30: both go at half speed until
    // 00:50, then "early" does its last 20 minutes alone, until 01:10.
    let pbs = report.resource("pbs").unwrap();
    assert_eq!(pbs.overlap_probability, 1.0);
    assert_eq!(pbs.overlap_minutes_mean, 20.0);
    assert_eq!(
        report.host("a").unwrap().storm_minutes_by_night,
        vec![40; 7]
    );
    assert_eq!(report.worst_night.timeline.from, "23:00");
    // Nights from 00:00 split them: the first night has no 23:00 run before it.
    let midnight = Options {
        night_start: Some(0),
        ..exact(7)
    };
    let report = simulate(&fleet, &midnight);
    assert_eq!(report.night_start, "00:00");
    assert_eq!(report.host("a").unwrap().storm_minutes_by_night[0], 30);
}

#[test]
fn plans_that_do_not_fit_the_snapshot_are_refused_with_paths() {
    let fleet = homelab();
    let model = fleet.model();
    let plan = r#"{ "objective": 1, "assignments": [
        { "id": "backup-hikurangi", "start": "00:00", "moved": true },
        { "id": "backup-nowhere", "start": "01:00" },
        { "id": "backup-hikurangi", "start": "01:00" },
        { "id": "backup-ruapehu", "start": "25:00" } ] }"#;
    let Err(SimError::Plan(problems)) = Schedule::from_plan_json(model, plan) else {
        panic!("accepted a plan that does not fit");
    };
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(listed.len(), 4, "{listed:#?}");
    assert!(listed[0].starts_with("assignments[1].id: 'backup-nowhere' is not a job"));
    assert!(listed[1].starts_with("assignments[2].id: job 'backup-hikurangi' has a second start"));
    assert!(listed[2].starts_with("assignments[3].start: '25:00' is not a time of day"));
    assert!(
        listed[3].contains("'backup-ruapehu', 'backup-pihanga'"),
        "{}",
        listed[3]
    );
    assert!(matches!(
        Schedule::from_plan_json(model, "{ \"assignments\": 3 }"),
        Err(SimError::PlanJson { line: 1, .. })
    ));
}

#[test]
fn off_grid_plan_starts_are_simulated_as_written() {
    let fleet = homelab();
    let plan = r#"{ "assignments": [
        { "id": "backup-hikurangi", "start": "00:03" },
        { "id": "backup-ruapehu", "start": "02:20" },
        { "id": "backup-pihanga", "start": "03:31" } ] }"#;
    let schedule = Schedule::from_plan_json(fleet.model(), plan).unwrap();
    assert_eq!(schedule.starts(), &[3, 140, 211]);
    let report = fleet.simulate(&schedule, &exact(1)).unwrap();
    assert_eq!(report.job("backup-pihanga").unwrap().start, "03:31");
}

#[test]
fn out_of_range_options_are_refused() {
    let fleet = homelab();
    let current = fleet.current_schedule();
    for (options, name) in [
        (
            Options {
                nights: 0,
                ..Options::default()
            },
            "nights",
        ),
        (
            Options {
                nights: 367,
                ..Options::default()
            },
            "nights",
        ),
        (
            Options {
                spread: -0.1,
                ..Options::default()
            },
            "spread",
        ),
        (
            Options {
                spread: f64::NAN,
                ..Options::default()
            },
            "spread",
        ),
        (
            Options {
                busy_threshold: 1.5,
                ..Options::default()
            },
            "busy threshold",
        ),
        (
            Options {
                night_start: Some(1440),
                ..Options::default()
            },
            "night start",
        ),
    ] {
        match fleet.simulate(&current, &options) {
            Err(SimError::Option { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{options:?} gave {other:?}"),
        }
    }
}

#[test]
fn every_public_instance_simulates() {
    for name in ["small-1", "medium-2", "wrap-1", "infeasible-1"] {
        let fleet = Fleet::from_json(&fixture(&format!("planner/{name}.json"))).unwrap();
        let report = simulate(
            &fleet,
            &Options {
                nights: 7,
                ..Options::default()
            },
        );
        assert_eq!(report.hosts.len(), fleet.model().hosts.len(), "{name}");
        let runs: u32 = report.jobs.iter().map(|j| j.runs).sum();
        let expected: usize = fleet.model().jobs.iter().map(|j| j.days.len()).sum();
        assert_eq!(
            runs as usize, expected,
            "{name}: every run of the week replayed"
        );
        assert!(
            report.jobs.iter().all(|j| j.real_minutes_mean > 0.0),
            "{name}"
        );
    }
}

mod properties {
    //! Invariants of any replay of small random fleets.
    use super::*;
    use proptest::prelude::*;

    /// A random fleet: 3 hosts with random daily loads, 2 resources, and
    /// `jobs` (host, start in 5-minute slots, minutes, resource mask, days mask).
    fn fleet_of(loads: &[Vec<f64>], caps: (u32, u32), jobs: &[(usize, u32, u32, u8, u8)]) -> Fleet {
        let hosts: Vec<String> = loads
            .iter()
            .enumerate()
            .map(|(h, load)| {
                let cells: Vec<String> = (0..288).map(|t| load[t / 12].to_string()).collect();
                format!(r#"{{ "name": "h{h}", "load": [{}] }}"#, cells.join(","))
            })
            .collect();
        let jobs: Vec<String> = jobs
            .iter()
            .enumerate()
            .map(|(i, &(host, slot, minutes, mask, days))| {
                let resources: Vec<&str> = [(1, "\"r0\""), (2, "\"r1\"")]
                    .iter()
                    .filter(|(bit, _)| mask & bit != 0)
                    .map(|(_, name)| *name)
                    .collect();
                let days: Vec<String> = (0..7).filter(|d| days & (1 << d) != 0).map(|d: u8| d.to_string()).collect();
                let start = format!("{:02}:{:02}", slot * 5 / 60, slot * 5 % 60);
                format!(
                    r#"{{ "id": "j{i}", "host": "h{host}", "current_start": "{start}", "duration_minutes": {minutes}, "resources": [{}], "days": [{}] }}"#,
                    resources.join(","),
                    days.join(",")
                )
            })
            .collect();
        tiny(
            &format!(
                r#"{{ "name": "r0", "capacity": {} }}, {{ "name": "r1", "capacity": {} }}"#,
                caps.0, caps.1
            ),
            &hosts.join(","),
            &jobs.join(","),
        )
    }

    fn arb_job() -> impl Strategy<Value = (usize, u32, u32, u8, u8)> {
        (0..3usize, 0..288u32, 1..180u32, 0..4u8, 1..128u8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn replays_keep_their_invariants(
            loads in prop::collection::vec(prop::collection::vec(0.0..=1.0f64, 24), 3),
            caps in (0..3u32, 1..3u32),
            jobs in prop::collection::vec(arb_job(), 1..7),
            nights in 1..10u32,
            seed in any::<u64>(),
        ) {
            let fleet = fleet_of(&loads, caps, &jobs);
            let options = Options { nights, seed, spread: 0.0, ..Options::default() };
            let report = simulate(&fleet, &options);
            prop_assert_eq!(&report, &simulate(&fleet, &options));
            let overlapped = report.resources.iter().any(|r| r.max_active > r.capacity);
            for r in &report.resources {
                prop_assert!((0.0..=1.0).contains(&r.overlap_probability));
                prop_assert_eq!(r.overlap_probability > 0.0, r.max_active > r.capacity);
            }
            for j in &report.jobs {
                if j.runs == 0 {
                    continue;
                }
                // Sharing only ever slows a run down; without overflow it is exact.
                prop_assert!(j.real_minutes_mean >= j.duration_minutes - 1e-9);
                if !overlapped {
                    prop_assert!((j.real_minutes_max - j.duration_minutes).abs() < 1e-9);
                }
            }
            for h in &report.hosts {
                let by_night: u32 = h.storm_minutes_by_night.iter().sum();
                let by_time: f64 = h.storm_times.iter().map(|c| c.storm_minutes_mean).sum();
                prop_assert!((by_time * f64::from(nights) - f64::from(by_night)).abs() < 1e-6);
                prop_assert!(h.exposure_mean + 1e-9 >= h.storm_weighted_mean);
                prop_assert!(h.storm_weighted_by_night.iter().all(|&w| w >= 0.0));
            }
            let most = report.by_night.iter().map(|n| n.storm_weighted).fold(0.0, f64::max);
            prop_assert_eq!(report.worst_night.night.storm_weighted, most);
        }
    }
}
