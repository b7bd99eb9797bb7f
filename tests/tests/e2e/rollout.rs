//! plan → diff → apply → status shows the new schedules → rollback restores
//! the previous bytes, on a fleet reached over SSH, the Proxmox API and the agent.

use super::fleet::{Fleet, Via};
use super::{both, text};

/// The origin story's fleet: three backups to one datastore, 50 minutes each
/// (no run yet: policy.unknown-duration-minutes), 20 and 25 minutes apart;
/// one host per transport.
pub fn origin_fleet() -> Fleet {
    Fleet::start(&[
        ("hikurangi", "02:00", Via::Ssh),
        ("ruapehu", "02:20", Via::PveApi),
        ("pihanga", "02:45", Via::Agent),
    ])
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(0), "{}", both(output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", both(output)))
}

/// `schedctl status --format json`: every job's schedule, by host.
pub fn schedules(fleet: &Fleet) -> Vec<(String, String)> {
    let status = json(&fleet.schedctl(&["status", "--format", "json", "--risk-nights", "0"]));
    status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["reachable"], true, "{h}");
            (
                h["host"].as_str().unwrap().to_owned(),
                h["jobs"][0]["schedule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `schedctl plan --format json`: the plan id and `(host, job, to)` of every change.
pub fn plan(fleet: &Fleet) -> (i64, Vec<(String, String, String)>) {
    let plan = json(&fleet.schedctl(&["plan", "--format", "json", "--time-limit", "3"]));
    let changes = plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            let host = h["host"].as_str().unwrap().to_owned();
            h["changes"].as_array().unwrap().iter().map(move |c| {
                (
                    host.clone(),
                    c["job"].as_str().unwrap().to_owned(),
                    c["to"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    (plan["plan_id"].as_i64().unwrap(), changes)
}

#[test]
fn plan_diff_apply_status_rollback_restores_the_previous_bytes() {
    let fleet = origin_fleet();
    let before = fleet.all_jobs_cfg();
    assert_eq!(
        schedules(&fleet),
        [
            ("hikurangi", "02:00"),
            ("ruapehu", "02:20"),
            ("pihanga", "02:45")
        ]
        .map(|(h, s)| (h.to_owned(), s.to_owned()))
    );

    // Three 40-minute runs 20 and 25 minutes apart on one datastore: at least two must move.
    let (plan_id, changes) = plan(&fleet);
    assert!(changes.len() >= 2, "{changes:?}");
    for (_, _, to) in &changes {
        assert!(
            to.ends_with(" UTC"),
            "planned schedules are written in UTC: {to}"
        );
    }

    let diff = fleet.schedctl(&["diff", &plan_id.to_string()]);
    assert_eq!(diff.status.code(), Some(0), "{}", both(&diff));
    let diff_text = text(&diff.stdout);
    for (host, _, to) in &changes {
        assert!(
            diff_text.contains(&format!("+\tschedule {to}")),
            "{host}: {diff_text}"
        );
        assert!(
            diff_text.contains(&format!("{host}:/etc/pve/jobs.cfg"))
                || diff_text.contains(&format!("{host} /cluster/backup")),
            "{diff_text}"
        );
    }
    assert!(diff_text.contains("renormalises"), "{diff_text}");

    let dry = fleet.schedctl(&["apply", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", both(&dry));
    assert_eq!(fleet.all_jobs_cfg(), before, "a dry run writes nothing");

    let apply = fleet.schedctl(&["apply", &plan_id.to_string(), "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", both(&apply));
    let apply_text = text(&apply.stdout);
    assert!(apply_text.contains("written and read back"), "{apply_text}");

    // status shows the new schedules, and the files hold them.
    let now = schedules(&fleet);
    for (host, _, to) in &changes {
        assert!(
            now.contains(&(host.clone(), to.clone())),
            "{host} {to}: {now:?}"
        );
        assert!(fleet
            .host(host)
            .jobs_cfg()
            .contains(&format!("\tschedule {to}\n")));
    }
    let unchanged: Vec<&(String, String)> = before
        .iter()
        .filter(|(h, _)| !changes.iter().any(|(c, _, _)| c == h))
        .collect();
    for (host, bytes) in unchanged {
        assert_eq!(
            &fleet.host(host).jobs_cfg(),
            bytes,
            "{host} was not in the plan"
        );
    }

    let rollback = fleet.schedctl(&["rollback", "--yes"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", both(&rollback));
    assert_eq!(
        fleet.all_jobs_cfg(),
        before,
        "rollback restores the exact previous bytes"
    );

    let history = json(&fleet.schedctl(&["history", "--format", "json"]));
    assert_eq!(history["plans"][0]["id"].as_i64(), Some(plan_id));
    assert_eq!(history["applies"][0]["status"], "rolled_back", "{history}");
    assert_eq!(history["rollbacks"][0]["status"], "ok", "{history}");
    assert_eq!(history["unfinished"].as_array().map(Vec::len), Some(0));
}

#[test]
fn the_snapshot_a_live_plan_was_made_from_is_saved_and_replays() {
    let fleet = origin_fleet();
    let saved = fleet.dir.path().join("fleet.json");
    let plan = fleet.schedctl(&[
        "plan",
        "--time-limit",
        "2",
        "--save-snapshot",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let ids: Vec<&str> = snapshot["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "hikurangi/backup-hikurangi",
            "ruapehu/backup-ruapehu",
            "pihanga/backup-pihanga"
        ]
    );
    assert_eq!(snapshot["jobs"][0]["resources"][0], "pbs-main");
    assert_eq!(snapshot["jobs"][1]["current_start"], "02:20");

    let replan = fleet.schedctl(&[
        "plan",
        "--snapshot",
        saved.to_str().unwrap(),
        "--format",
        "json",
        "--time-limit",
        "2",
    ]);
    let replanned: serde_json::Value = serde_json::from_slice(&replan.stdout).unwrap();
    assert_eq!(replanned["feasible"], true, "{}", both(&replan));
    let simulate = fleet.schedctl(&[
        "simulate",
        "--snapshot",
        saved.to_str().unwrap(),
        "--nights",
        "3",
    ]);
    assert_eq!(simulate.status.code(), Some(0), "{}", both(&simulate));
    let live = fleet.schedctl(&["simulate", "--nights", "3", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    assert_eq!(
        report["fleet"]["nights_with_overlap"],
        3,
        "the current schedules overlap every night: {}",
        both(&live)
    );
}
