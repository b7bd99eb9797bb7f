//! A host lost mid-rollout (its sshd or Proxmox API killed after the
//! confirmation): the hosts already written are rolled back, and the output
//! says what state every host is in.

use super::rollout::{origin_fleet, plan};
use super::{text, Answered, AskingApply};

#[test]
fn a_host_killed_mid_rollout_rolls_back_the_hosts_already_written() {
    let mut fleet = origin_fleet();
    let before = fleet.all_jobs_cfg();
    let (plan_id, changes) = plan(&fleet);
    assert!(changes.len() >= 2, "{changes:?}");

    let mut apply = AskingApply::start(&fleet, &[&plan_id.to_string()]);
    let order = apply.order(changes.len());
    apply.wait_for_prompt();
    // The second host dies; the admin says yes.
    let victim = order[1].clone();
    fleet.host_mut(&victim).kill();
    let Answered {
        code,
        rest,
        errors,
        all,
    } = apply.answer_yes();
    assert_eq!(code, Some(1), "{all}");

    let first = &order[0];
    assert!(rest.contains(&format!("{first}: rolled back")), "{all}");
    assert!(
        rest.contains(&format!("2. {victim}")) && rest.contains("not written, its write failed"),
        "{all}"
    );
    assert!(errors.contains("unreachable"), "{all}");
    for (host, bytes) in &before {
        if host != &victim {
            assert_eq!(
                &fleet.host(host).jobs_cfg(),
                bytes,
                "{host} is back as it was:\n{all}"
            );
        }
    }
    assert_eq!(
        &fleet.host(&victim).jobs_cfg(),
        &before.iter().find(|(h, _)| h == &victim).unwrap().1
    );

    let history = fleet.schedctl(&["history"]);
    let history = text(&history.stdout);
    assert!(history.contains("rolled_back"), "{history}");
}
