//! `kill -9` of the agent at every point of a write leaves jobs.cfg either
//! the old file or the new one, whole; and the next agent works on.
//!
//! The agent stops at a named step when `STAGGER_AGENT_TEST_PAUSE_AT` names
//! it (and leaves `state-dir/paused-at-<step>`), where the test kills it.
//! A second test kills it at random moments of many writes.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::support::{self, digest, fixture, Agent, Host, Http};

const LOCK: &str = "etc/pve/priv/lock/file-jobs_cfg";
/// The steps of a write, in order (see `jobs_file::pause_point`).
const STEPS: [&str; 6] = [
    "locked",
    "kept",
    "temp-written",
    "temp-synced",
    "renamed",
    "released",
];

fn apply_body(text: &str, schedule: &str) -> serde_json::Value {
    json!({"digest": digest(text), "changes": [{"job": "backup-pihanga", "schedule": schedule}]})
}

/// A lock left by a killed holder, aged past 120 s, as pmxcfs would let the next taker break it.
fn age_stale_lock(host: &Host) {
    let lock = host.path(LOCK);
    if lock.exists() {
        let old = SystemTime::now() - Duration::from_secs(121);
        std::fs::File::open(&lock)
            .and_then(|d| d.set_modified(old))
            .expect("age the left-over lock");
    }
}

#[test]
fn a_kill_at_any_step_leaves_the_old_or_the_new_file() {
    for step in STEPS {
        let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
        let config = host.config("");
        let old = host.jobs_cfg();
        let new = old.replace("\tschedule 02:45\n", "\tschedule 03:33 UTC\n");
        let mut agent = Agent::start_with_env(&config, &[("STAGGER_AGENT_TEST_PAUSE_AT", step)]);
        let pin = support::fingerprint(&config);
        let url = agent.url();
        let body = apply_body(&old, "03:33 UTC");
        let request = std::thread::spawn(move || {
            // The answer never comes: the agent dies mid-request.
            let http = Http::with_trust(&url, pve_api::Trust::Fingerprint(pin));
            let _ = http.try_put("/v1/schedules", &body);
        });
        let marker = host.path(&format!("state/paused-at-{step}"));
        support::wait_for(10, &format!("the agent to reach {step}"), || {
            marker.exists().then_some(())
        });
        agent.kill9();
        let _ = request.join();
        let now = host.jobs_cfg();
        let expected = if ["renamed", "released"].contains(&step) {
            &new
        } else {
            &old
        };
        assert_eq!(&now, expected, "killed at {step}");

        // The next agent starts and writes, once the dead holder's lock is 120 s old.
        age_stale_lock(&host);
        let agent = Agent::start(&config);
        let http = Http::new(&agent, pin);
        let answer = http.put("/v1/schedules", &apply_body(&now, "04:44 UTC"));
        assert_eq!(
            answer.status, 200,
            "after a kill at {step}: {}",
            answer.body
        );
        let last = host.jobs_cfg();
        assert!(last.contains("\tschedule 04:44 UTC\n"), "{last}");
        assert_eq!(
            last.lines().count(),
            old.lines().count(),
            "whole file after {step}"
        );
    }
}

#[test]
fn kills_at_random_moments_never_leave_a_broken_file() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let config = host.config("");
    let pin = support::fingerprint(&config);
    let mut seed: u64 = 0x5eed_1234;
    for round in 0..15u32 {
        let old = host.jobs_cfg();
        let schedule = format!("05:{:02} UTC", round);
        let mut edited = scheduler_core::jobs_cfg::JobsCfg::parse(&old);
        edited
            .set_schedule("backup-pihanga", &schedule)
            .expect("a valid edit");
        let new = edited.render();
        age_stale_lock(&host);
        let mut agent = Agent::start(&config);
        let url = agent.url();
        let body = apply_body(&old, &schedule);
        let request = std::thread::spawn(move || {
            let http = Http::with_trust(&url, pve_api::Trust::Fingerprint(pin));
            let _ = http.try_put("/v1/schedules", &body);
        });
        // xorshift: a kill between 0 and 40 ms into the request.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 40_000));
        agent.kill9();
        let _ = request.join();
        let now = host.jobs_cfg();
        assert!(
            now == old || now == new,
            "round {round}: neither old nor new:\n{now}"
        );
    }
}
