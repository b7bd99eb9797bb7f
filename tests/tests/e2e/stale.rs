//! jobs.cfg changed on a host between plan and apply: the apply is refused
//! (exit 3) and nothing is written anywhere.

use super::rollout::{origin_fleet, plan};
use super::{both, text};

#[test]
fn a_stale_digest_is_refused_and_nothing_is_half_applied() {
    let fleet = origin_fleet();
    let (plan_id, changes) = plan(&fleet);
    // Someone edits the last changed host's jobs.cfg by hand after the plan.
    let (edited, _, _) = changes.last().unwrap().clone();
    let path = fleet.host(&edited).jobs_cfg_path();
    let edited_text = fleet
        .host(&edited)
        .jobs_cfg()
        .replace("\tmode snapshot\n", "\tmode stop\n");
    std::fs::write(&path, &edited_text).unwrap();
    let before = fleet.all_jobs_cfg();

    let apply = fleet.schedctl(&["apply", &plan_id.to_string(), "--yes"]);
    assert_eq!(apply.status.code(), Some(3), "{}", both(&apply));
    let stderr = text(&apply.stderr);
    assert!(
        stderr.contains(&format!("{edited}: jobs.cfg digest is")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(
        stderr.contains("schedctl plan"),
        "says what to do: {stderr}"
    );
    assert_eq!(fleet.all_jobs_cfg(), before, "no host was written");

    // A new plan from the edited fleet applies.
    let (new_plan, _) = plan(&fleet);
    let apply = fleet.schedctl(&["apply", &new_plan.to_string(), "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", both(&apply));
}
