//! Fuzzes reading a plan's JSON against the seed-homelab snapshot and, when
//! it is accepted, replaying it: no input may panic, an accepted plan is
//! replayed at exactly its starts, a refused one says why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scheduler_core::sim::{Fleet, Options, Schedule};

const SNAPSHOT: &str = include_str!("../../tests/fixtures/planner/seed-homelab.json");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fleet = Fleet::from_json(SNAPSHOT).expect("the seed-homelab fixture is valid");
    match Schedule::from_plan_json(fleet.model(), text) {
        Ok(schedule) => {
            let options = Options {
                nights: 2,
                ..Options::default()
            };
            let report = fleet
                .simulate(&schedule, &options)
                .expect("an accepted plan of this snapshot simulates");
            for (job, j) in report.jobs.iter().enumerate() {
                assert_eq!(j.start, schedule.format_start(job));
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
