//! Fuzz target: reading a snapshot never panics, and what it accepts is a
//! consistent model (every allowed start fits the window, a pinned job keeps
//! its start, the scorer and the greedy plan run on it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scheduler_core::planner::{component, search};
use scheduler_core::snapshot::Model;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = Model::from_json(text) else {
        return;
    };
    let spd = model.slots_per_day;
    for job in &model.jobs {
        assert!(!job.allowed_starts.is_empty());
        for &s in &job.allowed_starts {
            assert!(s < spd);
            assert!((0..job.length).all(|k| job.window[(s + k) % spd]));
        }
        if job.pinned {
            assert_eq!(job.allowed_starts, [job.current_start]);
        }
    }
    // Keep the work per input small: plan only small models.
    if model.jobs.len() <= 16 {
        let starts: Vec<usize> = model.jobs.iter().map(|j| j.allowed_starts[0]).collect();
        let score = model.score(&starts);
        assert!(score.cost.is_finite() && score.cost >= 0.0);
        for c in component::components(&model) {
            let state = search::greedy(&c);
            assert_eq!(state.choice.len(), c.jobs.len());
        }
    }
});
