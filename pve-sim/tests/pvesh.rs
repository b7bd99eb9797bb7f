//! `pve-sim pvesh` answers like the real pvesh, on the same tree and handlers as the API.

mod common;

use common::*;

#[test]
fn get_cluster_backup_prints_the_api_data_as_json() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let root = tree.root_str();
    let now = FIXTURE_NOW.to_string();
    let out = pve_sim(&[
        "pvesh",
        "--root",
        &root,
        "--now",
        &now,
        "get",
        "/cluster/backup",
        "--output-format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "json output is one line");
    let data: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(data, json_fixture("api-cluster-backup.json")["data"]);

    let out = pve_sim(&[
        "pvesh",
        "--root",
        &root,
        "get",
        "/cluster/backup/backup-pihanga",
        "--output-format",
        "json",
    ]);
    let data: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        data,
        json_fixture("api-cluster-backup-backup-pihanga.json")["data"]
    );
}

#[test]
fn set_renormalises_and_errors_go_to_stderr_with_exit_255() {
    let tree = SimTree::init("jobs-tolerated-quirks.cfg", &[]);
    let root = tree.root_str();
    let expected: serde_json::Value =
        serde_json::from_str(&fixture("expected/jobs-tolerated-quirks.expected.json"))
            .expect("json");
    let job = scheduler_core::jobs_cfg::JobsCfg::parse(&tree.jobs_cfg()).vzdump_jobs()[0].clone();
    let before = tree.jobs_cfg();

    let out = pve_sim(&[
        "pvesh",
        "--root",
        &root,
        "set",
        &format!("/cluster/backup/{}", job.id),
        "--schedule",
        "*/00",
    ]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "400 Parameter verification failed.\nschedule: invalid format - invalid calendar event '*/00' - unable to parse calendar event at '/00' - Nom(Eof)\n"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(tree.jobs_cfg(), before, "a refused set changes nothing");

    let out = pve_sim(&[
        "pvesh",
        "--root",
        &root,
        "set",
        &format!("/cluster/backup/{}", job.id),
        "--schedule",
        &job.schedule,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "a null result prints nothing");
    assert_eq!(
        tree.jobs_cfg(),
        expected["rewrite"].as_str().expect("rewrite")
    );

    let out = pve_sim(&[
        "pvesh",
        "--root",
        &root,
        "get",
        "/cluster/backup/backup-nope",
    ]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "400 Parameter verification failed.\nid: No such job 'backup-nope'\n"
    );
}

#[test]
fn root_may_set_the_hook_script_through_pvesh() {
    let tree = SimTree::init("jobs-homelab-single.cfg", &[]);
    let root = tree.root_str();
    let job = scheduler_core::jobs_cfg::JobsCfg::parse(&tree.jobs_cfg()).vzdump_jobs()[0].clone();
    let path = format!("/cluster/backup/{}", job.id);
    let out = pve_sim(&[
        "pvesh",
        "--root",
        &root,
        "set",
        &path,
        "--script",
        "/usr/local/lib/stagger/vzdump-hook",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree
        .jobs_cfg()
        .contains("\tscript /usr/local/lib/stagger/vzdump-hook\n"));
}
