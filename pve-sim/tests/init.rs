//! `pve-sim init` lays out a host from a fixture directory.

mod common;

use common::*;

#[test]
fn init_lays_out_nodes_records_states_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("c");
    let root_str = root.to_string_lossy().into_owned();
    let from = fixtures().to_string_lossy().into_owned();
    let args = [
        "init",
        "--root",
        &root_str,
        "--from",
        &from,
        "--jobs",
        "jobs-homelab-single.cfg",
        "--node",
        "pihanga=Pacific/Auckland",
        "--node",
        "pve2",
    ];
    let out = pve_sim(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("nodes: pihanga (Pacific/Auckland), pve2 (UTC)"),
        "{stdout}"
    );
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: root@pam!stagger="))
        .expect("token line");
    assert_eq!(token.len(), 36, "a UUID secret");

    assert_eq!(
        std::fs::read_to_string(root.join("etc/pve/jobs.cfg")).expect("jobs.cfg"),
        fixture("jobs-homelab-single.cfg")
    );
    // The task records go to the node their UPIDs name; vzdump.conf to every node.
    assert_eq!(
        std::fs::read_to_string(root.join("nodes/pihanga/var/log/pve/tasks/index")).expect("index"),
        fixture("tasks-index")
    );
    assert!(!root.join("nodes/pve2/var/log/pve/tasks/index").exists());
    assert!(root.join("nodes/pve2/etc/vzdump.conf").exists());
    // State files: by the node of their UPID, else on every node.
    assert!(root
        .join("nodes/pihanga/var/lib/pve-manager/jobs/vzdump-backup-pihanga.json")
        .exists());
    assert!(!root
        .join("nodes/pve2/var/lib/pve-manager/jobs/vzdump-backup-pihanga.json")
        .exists());
    assert!(root
        .join("nodes/pve2/var/lib/pve-manager/jobs/vzdump-backup-new.json")
        .exists());
    // Each node sees the cluster files through etc/pve.
    assert!(root.join("nodes/pve2/etc/pve/jobs.cfg").exists());
    assert!(root.join("etc/pve/local/pve-ssl.pem").exists());

    let again = pve_sim(&args);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a simulated cluster"));
}

#[test]
fn init_refuses_an_unknown_time_zone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("c").to_string_lossy().into_owned();
    let from = fixtures().to_string_lossy().into_owned();
    let out = pve_sim(&[
        "init",
        "--root",
        &root,
        "--from",
        &from,
        "--node",
        "a=Mars/Olympus",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown time zone 'Mars/Olympus'"),
        "{stderr}"
    );
}
