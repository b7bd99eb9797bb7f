//! Properties on generated snapshots: reading never panics, and every plan
//! of a valid snapshot keeps windows and pins, and reports its own numbers.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use scheduler_core::planner::{self, NoDeadline, Options};
use scheduler_core::snapshot::Model;
use serde_json::{json, Value};

/// A time of day, mostly on a 5-minute grid, sometimes off it or out of range.
fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        60 => (0u32..24, 0u32..12).prop_map(|(h, m)| format!("{h:02}:{:02}", m * 5)),
        1 => (0u32..26, 0u32..61).prop_map(|(h, m)| format!("{h:02}:{m:02}")),
        1 => "[0-9:]{0,6}",
    ]
}

fn window() -> impl Strategy<Value = Value> {
    (time(), time()).prop_map(|(start, end)| json!({"start": start, "end": end}))
}

fn job(hosts: usize) -> impl Strategy<Value = Value> {
    (
        prop_oneof![30 => 0..hosts, 1 => Just(hosts)],
        prop_oneof![30 => prop::sample::subsequence((0u8..7).collect::<Vec<_>>(), 0..7), 1 => prop::collection::vec(0u8..8, 0..8)],
        time(),
        prop_oneof![30 => 1.0f64..120.0, 1 => -5.0f64..1.0],
        prop::collection::vec(prop_oneof![30 => 0usize..3, 1 => Just(3usize)], 0..3),
        prop::option::of(window()),
        prop::bool::weighted(0.1),
        prop::option::of(prop::collection::vec((prop_oneof![30 => 0..hosts, 1 => Just(hosts)], 0.0f64..2.0), 0..3)),
    )
        .prop_map(move |(host, days, start, duration, resources, window, pinned, impacts)| {
            let mut job = json!({
                "id": format!("job-{host}-{start}-{duration}"),
                "host": format!("h{host}"),
                "current_start": start,
                "duration_minutes": duration,
                "resources": resources.iter().map(|r| format!("r{r}")).collect::<Vec<_>>(),
                "pinned": pinned,
            });
            if !days.is_empty() {
                job["days"] = json!(days);
            }
            if let Some(w) = window {
                job["window"] = w;
            }
            if let Some(impacts) = impacts {
                let map: serde_json::Map<String, Value> = impacts
                    .into_iter()
                    .map(|(h, w)| (format!("h{h}"), json!(w)))
                    .collect();
                job["impacts"] = Value::Object(map);
            }
            job
        })
}

fn snapshot() -> impl Strategy<Value = Value> {
    (1usize..4).prop_flat_map(|hosts| {
        (
            prop::option::of(window()),
            prop_oneof![10 => Just(5u32), 4 => Just(10), 4 => Just(15), 1 => Just(7)],
            0.0f64..20.0,
            prop::collection::vec((0u32..3, prop::bool::ANY, 0.0f64..1.0), hosts),
            prop::collection::vec(0u32..3, 3..4),
            prop::collection::vec(job(hosts), 0..8),
        )
            .prop_map(move |(window, slot, guard, host_specs, caps, jobs)| {
                let spd = 1440 / slot as usize;
                let hosts: Vec<Value> = host_specs
                    .iter()
                    .enumerate()
                    .map(|(i, &(cap, load, level))| {
                        let mut h =
                            json!({"name": format!("h{i}"), "capacity": cap, "sensitivity": 1.5});
                        if load {
                            h["load"] = json!((0..spd)
                                .map(|t| if t % 7 == 0 { level } else { level / 2.0 })
                                .collect::<Vec<_>>());
                        }
                        h
                    })
                    .collect();
                let resources: Vec<Value> = caps
                    .iter()
                    .enumerate()
                    .map(|(i, c)| json!({"name": format!("r{i}"), "capacity": c}))
                    .collect();
                let mut s = json!({
                    "version": 1, "slot_minutes": slot, "guard_minutes": guard,
                    "resources": resources, "hosts": hosts, "jobs": jobs,
                });
                if let Some(w) = window {
                    s["window"] = w;
                }
                s
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn reading_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = Model::from_json(&text);
    }

    #[test]
    fn plans_of_valid_snapshots_keep_windows_pins_and_their_numbers(snapshot in snapshot()) {
        let text = snapshot.to_string();
        let Ok(model) = Model::from_json(&text) else {
            // Invalid snapshots are reported, never planned; that they do not
            // panic is the point here.
            return Ok(());
        };
        let options = Options { seed: 1, time_limit_secs: 0.05, threads: 2 };
        let plan = planner::plan(&model, &options, &NoDeadline);
        prop_assert_eq!(plan.assignments.len(), model.jobs.len());
        let mut starts = Vec::new();
        for (a, job) in plan.assignments.iter().zip(&model.jobs) {
            prop_assert_eq!(&a.id, &job.id);
            let minutes: usize = a.start[..2].parse::<usize>().unwrap() * 60 + a.start[3..].parse::<usize>().unwrap();
            let s = minutes / model.slot_minutes as usize;
            prop_assert!(job.allowed_starts.contains(&s), "{} at {} leaves its window", job.id, a.start);
            if job.pinned {
                prop_assert_eq!(s, job.current_start);
            }
            prop_assert_eq!(a.moved, s != job.current_start);
            starts.push(s);
        }
        let score = model.score(&starts);
        prop_assert_eq!(plan.overflow, score.overflow);
        prop_assert_eq!(plan.feasible, score.overflow == 0);
        prop_assert!((plan.objective - score.cost).abs() <= 1e-9 * score.cost.abs().max(1.0));
        if let Some(bound) = plan.bound {
            prop_assert!(bound <= plan.objective + 1e-6 * plan.objective.abs().max(1.0));
        }
        // Keeping every job where it is cannot beat the plan.
        let keep: Vec<usize> = model.jobs.iter().map(|j| j.current_start).collect();
        if keep.iter().zip(&model.jobs).all(|(s, j)| j.allowed_starts.contains(s)) {
            let kept = model.score(&keep);
            prop_assert!(
                plan.overflow < kept.overflow
                    || (plan.overflow == kept.overflow && plan.objective <= kept.cost + 1e-6 * kept.cost.max(1.0)),
                "plan ({}, {}) worse than keeping ({}, {})", plan.overflow, plan.objective, kept.overflow, kept.cost
            );
        }
    }
}

#[test]
fn the_generator_makes_valid_snapshots_too() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut valid = 0;
    for _ in 0..200 {
        let value = snapshot().new_tree(&mut runner).unwrap().current();
        valid += usize::from(Model::from_json(&value.to_string()).is_ok());
    }
    assert!(
        valid >= 40,
        "only {valid} of 200 generated snapshots are valid"
    );
}
