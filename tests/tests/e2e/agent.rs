//! The agent transport against real `sched-agent` processes: the agent
//! writes jobs.cfg byte for byte (a comment and hand formatting survive the
//! apply), and a rollback restores its kept copy exactly.

use super::fleet::{Fleet, Via};
use super::{both, text, Answered, AskingApply};

#[test]
fn through_the_agent_an_apply_changes_only_the_schedule_bytes() {
    let fleet = Fleet::start(&[
        ("hikurangi", "02:00", Via::Agent),
        ("ruapehu", "02:20", Via::Agent),
        ("pihanga", "02:45", Via::Ssh),
    ]);
    // A hand-written comment and an unknown key: Proxmox would drop both on its next write.
    for name in ["hikurangi", "ruapehu"] {
        let host = fleet.host(name);
        let edited = format!("# {name}: kept by hand\n{}", host.jobs_cfg())
            .replace("\tmode snapshot\n", "\tmode  snapshot\n");
        std::fs::write(host.jobs_cfg_path(), edited).unwrap();
    }
    let before = fleet.all_jobs_cfg();
    let status = fleet.schedctl(&["status", "--format", "json", "--risk-nights", "0"]);
    assert_eq!(status.status.code(), Some(0), "{}", both(&status));
    let plan = fleet.schedctl(&["plan", "--format", "json", "--time-limit", "3"]);
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));
    let apply = fleet.schedctl(&["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", both(&apply));
    let mut agent_writes = 0;
    for (name, old) in &before {
        let now = fleet.host(name).jobs_cfg();
        if name == "pihanga" || now == *old {
            continue;
        }
        agent_writes += 1;
        // Only the schedule line differs.
        let changed: Vec<(&str, &str)> = old
            .lines()
            .zip(now.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{name}: {changed:?}");
        assert!(
            changed[0].0.starts_with("\tschedule ") && changed[0].1.ends_with(" UTC"),
            "{changed:?}"
        );
        assert!(
            now.contains("kept by hand") && now.contains("\tmode  snapshot"),
            "{now}"
        );
    }
    assert!(
        agent_writes >= 1,
        "the plan moves a job of an agent host: {}",
        text(&apply.stdout)
    );

    let rollback = fleet.schedctl(&["rollback", "--yes"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", both(&rollback));
    assert_eq!(fleet.all_jobs_cfg(), before, "{}", text(&rollback.stdout));
}

/// An agent killed after the confirmation: the host written before it is rolled back.
#[test]
fn an_agent_killed_mid_rollout_rolls_back_the_host_already_written() {
    // Both jobs start outside the 00:00-07:00 window: both must move.
    let mut fleet = Fleet::start(&[
        ("hikurangi", "08:00", Via::Agent),
        ("ruapehu", "09:00", Via::Agent),
    ]);
    let before = fleet.all_jobs_cfg();
    let plan = fleet.schedctl(&["plan", "--time-limit", "3"]);
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));

    let mut apply = AskingApply::start(&fleet, &[]);
    let order = apply.order(2);
    apply.wait_for_prompt();
    fleet.host_mut(&order[1]).kill();
    let Answered {
        code, rest, all, ..
    } = apply.answer_yes();
    assert_eq!(code, Some(1), "{all}");
    assert!(
        rest.contains(&format!("{}: rolled back", order[0])),
        "{all}"
    );
    assert!(
        rest.contains(&format!(
            "2. {} (agent): not written, its write failed",
            order[1]
        )),
        "{all}"
    );
    assert_eq!(
        fleet.host(&order[0]).jobs_cfg(),
        before.iter().find(|(h, _)| *h == order[0]).unwrap().1,
        "{all}"
    );
}
