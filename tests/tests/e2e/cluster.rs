//! Two nodes of one Proxmox cluster share jobs.cfg: a job without `node`
//! fires on both and is planned as one pinned job per node (with a note);
//! the second node's write expects the digest the first one's left, and the
//! rollback undoes them newest first back to the exact previous bytes.

use super::fleet::Fleet;
use super::{both, text};

/// Proxmox's own form of the cluster's jobs.cfg: one job per node outside the
/// window (08:00, 09:00 UTC), and one without `node` at 03:00.
const JOBS_CFG: &str = "vzdump: backup-all\n\tschedule 03:00\n\tenabled 1\n\tmode snapshot\n\tstorage pbs\n\tvmid 100\n\n\
vzdump: backup-tama\n\tschedule 08:00\n\tenabled 1\n\tmode snapshot\n\tnode tama\n\tstorage pbs\n\tvmid 101\n\n\
vzdump: backup-kaka\n\tschedule 09:00\n\tenabled 1\n\tmode snapshot\n\tnode kaka\n\tstorage pbs\n\tvmid 102\n\n";

#[test]
fn a_cluster_shares_jobs_cfg_and_its_nodes_are_written_in_a_chain() {
    let fleet = Fleet::start_cluster(&["tama", "kaka"], JOBS_CFG);
    let before = fleet.host("tama").jobs_cfg();
    assert_eq!(before, JOBS_CFG);

    let plan = fleet.schedctl(&["plan", "--format", "json", "--time-limit", "3"]);
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let notes = plan["notes"].to_string();
    assert!(
        notes.contains("backup-all") && notes.contains("every node of the cluster"),
        "{notes}"
    );
    let pinned: Vec<&serde_json::Value> = plan["plan"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"].as_str().unwrap().ends_with("/backup-all"))
        .collect();
    assert_eq!(pinned.len(), 2, "one pinned run per node: {plan}");
    assert!(pinned.iter().all(|a| a["moved"] == false));
    let moved: Vec<&str> = plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !h["changes"].as_array().unwrap().is_empty())
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        moved.len(),
        2,
        "both nodes' own jobs are outside the window: {plan}"
    );

    let apply = fleet.schedctl(&["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", both(&apply));
    let after = fleet.host("kaka").jobs_cfg();
    assert!(
        !after.contains("\tschedule 08:00\n") && !after.contains("\tschedule 09:00\n"),
        "{after}"
    );
    assert!(
        after.contains("\tschedule 03:00\n"),
        "the shared job keeps its start: {after}"
    );

    let rollback = fleet.schedctl(&["rollback", "--yes"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", both(&rollback));
    assert_eq!(
        fleet.host("tama").jobs_cfg(),
        before,
        "{}",
        text(&rollback.stdout)
    );
}
