//! `schedctl jobs-cfg` run as a user runs it: `show` against Proxmox's own
//! reading of every fixture, `set-schedule` on stdout and in place, and each
//! refusal (exit 2, a message that says what to do, the file untouched).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::util::{fixture, schedctl, stderr, stdout};

fn fixtures() -> PathBuf {
    fixture("proxmox/fixtures")
}

/// A copy of a fixture in a fresh temporary directory.
fn temp_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.cfg");
    std::fs::copy(fixtures().join(name), &path).expect("copy fixture");
    (dir, path)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

#[test]
fn show_json_reports_what_proxmox_reads_for_every_fixture() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with("jobs-") && f.ends_with(".cfg"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 15);
    for name in names {
        let path = fixtures().join(&name);
        let output = schedctl(&["jobs-cfg", "show", "--format", "json", path_str(&path)]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let shown: Json = serde_json::from_str(&stdout(&output)).expect("JSON output");
        let expected_file = fixtures().join(format!(
            "expected/{}",
            name.replace(".cfg", ".expected.json")
        ));
        let expected: Json =
            serde_json::from_str(&std::fs::read_to_string(expected_file).expect("expected"))
                .expect("JSON");

        assert_eq!(shown["digest"], expected["parsed"]["digest"], "{name}");
        let warnings: Vec<Json> = shown["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .map(|w| {
                Json::String(
                    w["message"]
                        .as_str()
                        .expect("message")
                        .replace(path_str(&path), "FILE"),
                )
            })
            .collect();
        assert_eq!(Json::Array(warnings), expected["parse_warnings"], "{name}");
        assert_eq!(shown["proxmox_rewrite"], expected["rewrite"], "{name}");
        assert_eq!(
            shown["proxmox_rewrite_error"], expected["rewrite_error"],
            "{name}"
        );

        let ids = expected["parsed"]["ids"].as_object().expect("ids");
        let order = expected["parsed"]["order"].as_object().expect("order");
        let mut visible: Vec<(u64, &str)> = ids
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(id, _)| (order[id].as_u64().expect("order"), id.as_str()))
            .collect();
        visible.sort();
        let jobs: Vec<&str> = shown["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            jobs,
            visible.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn show_json_has_the_documented_job_fields() {
    let path = fixtures().join("jobs-cluster-multi-node.cfg");
    let output = schedctl(&["jobs-cfg", "show", "--format", "json", path_str(&path)]);
    let shown: Json = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(
        shown["jobs"][4],
        serde_json::json!({"id": "backup-weekly-offsite", "type": "vzdump", "schedule": "sun 04:00",
                           "node": null, "enabled": false, "line": 52})
    );
    assert_eq!(shown["jobs"][0]["node"], "hikurangi");
}

#[test]
fn show_text_lists_jobs_warnings_and_the_write_verdict() {
    let path = fixtures().join("jobs-invalid-missing-schedule.cfg");
    let output = schedctl(&["jobs-cfg", "show", path_str(&path)]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(
        text.contains("ID         TYPE    SCHEDULE  NODE         ENABLED  LINE"),
        "{text}"
    );
    assert!(
        text.contains("backup-ok  vzdump  21:00     (all nodes)  yes      11"),
        "{text}"
    );
    assert!(
        text.contains("line 9: (skip section 'backup-noschedule'): missing value"),
        "{text}"
    );
    assert!(text.contains("A Proxmox write would FAIL"), "{text}");
    assert!(
        text.contains("add a valid 'schedule' line to section 'backup-noschedule' (lines 6-9)"),
        "{text}"
    );
}

#[test]
fn set_schedule_prints_the_file_with_one_value_changed() {
    let path = fixtures().join("jobs-tolerated-quirks.cfg");
    let output = schedctl(&[
        "jobs-cfg",
        "set-schedule",
        path_str(&path),
        "backup-handmade-1",
        "02:35 UTC",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let original = std::fs::read_to_string(&path).expect("fixture");
    assert_eq!(
        stdout(&output),
        original.replace("mon..fri 21:30", "02:35 UTC")
    );
}

#[test]
fn set_schedule_in_place_replaces_the_file_atomically_and_keeps_its_mode() {
    let (dir, path) = temp_copy("jobs-cluster-multi-node.cfg");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let original = std::fs::read_to_string(&path).expect("copy");
    let digest = "708572a7f24ae45f7743a3a7c5289f8b5f67b0a4";
    let output = schedctl(&[
        "jobs-cfg",
        "set-schedule",
        path_str(&path),
        "backup-pihanga",
        "03:10 UTC",
        "--expect-digest",
        digest,
        "--in-place",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&format!("digest {digest} -> ")));
    let edited = std::fs::read_to_string(&path).expect("edited");
    assert_eq!(
        edited,
        original.replace("\tschedule 02:45\n", "\tschedule 03:10 UTC\n")
    );
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert_eq!(leftovers.len(), 1, "no temp file is left behind");
}

/// Runs a refused `set-schedule --in-place` and checks exit 2, the message and the untouched file.
fn assert_refused(fixture: &str, args: &[&str], message: &str) {
    let (dir, path) = temp_copy(fixture);
    let before = std::fs::read(&path).expect("copy");
    let mut all = vec!["jobs-cfg", "set-schedule", path_str(&path)];
    all.extend_from_slice(args);
    all.push("--in-place");
    let output = schedctl(&all);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stderr(&output)
    );
    let error = stderr(&output);
    assert!(error.contains(message), "{args:?}: {error}");
    assert!(
        error.contains(path_str(&path)) || error.contains("--expect-digest"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).expect("file"),
        before,
        "{args:?}: file untouched"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    assert!(stdout(&output).is_empty());
}

#[test]
fn set_schedule_refuses_an_unknown_job_and_lists_the_known_ones() {
    assert_refused(
        "jobs-mixed-realm-sync.cfg",
        &["backup-nope", "02:00"],
        "no job 'backup-nope' in the file; the jobs Proxmox sees are: backup-0c1d2e3f-4a5b, realmsync-8e7d6c5b-4a39, backup-7a6b5c4d-3e2f",
    );
}

#[test]
fn set_schedule_refuses_an_invalid_event_with_the_calendar_error() {
    assert_refused(
        "jobs-homelab-single.cfg",
        &["backup-5f3a9c1e-2b7d", "*/00"],
        "invalid calendar event '*/00' - unable to parse calendar event at '/00' - Nom(Eof)",
    );
}

#[test]
fn set_schedule_refuses_control_characters() {
    assert_refused(
        "jobs-homelab-single.cfg",
        &[
            "backup-5f3a9c1e-2b7d",
            "02:00\n\nvzdump: injected\n\tschedule 03:00",
        ],
        "contains the control character '\\n'",
    );
    assert_refused(
        "jobs-homelab-single.cfg",
        &["backup-5f3a9c1e-2b7d", "02:00\r"],
        "control character '\\r'",
    );
}

#[test]
fn set_schedule_refuses_a_stale_or_malformed_digest() {
    assert_refused(
        "jobs-homelab-single.cfg",
        &[
            "backup-5f3a9c1e-2b7d",
            "02:00",
            "--expect-digest",
            &"0".repeat(40),
        ],
        "it changed since your plan was made",
    );
    assert_refused(
        "jobs-homelab-single.cfg",
        &["backup-5f3a9c1e-2b7d", "02:00", "--expect-digest", "abc"],
        "expected 40 hexadecimal digits",
    );
}

#[test]
fn set_schedule_refuses_a_file_proxmox_cannot_write_back_and_says_how_to_repair_it() {
    assert_refused(
        "jobs-invalid-bad-schedule.cfg",
        &["backup-tz", "02:00 UTC"],
        "add a valid 'schedule' line to section 'backup-hourly' (lines 8-12) or remove the section",
    );
}

#[test]
fn a_missing_file_is_bad_input() {
    let output = schedctl(&["jobs-cfg", "show", "/nonexistent/jobs.cfg"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read /nonexistent/jobs.cfg"));
}
