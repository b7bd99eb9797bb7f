//! The fleet commands' input checks: configuration errors, plans that cannot
//! be applied, `--help` with examples. (The commands against real hosts are
//! the end-to-end tests in `tests/`.)

use super::util::{fixture, schedctl, stderr, stdout};

fn config_file(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("schedctl.toml");
    let store = dir.join("schedctl.db");
    std::fs::write(&path, format!("store = \"{}\"\n{body}", store.display())).unwrap();
    path
}

#[test]
fn every_fleet_command_teaches_with_examples() {
    for command in [
        "status", "plan", "diff", "apply", "rollback", "history", "simulate",
    ] {
        let out = schedctl(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("Examples:"),
            "{command} --help has examples:\n{text}"
        );
        assert!(
            text.contains(&format!("schedctl {command}")),
            "{command}:\n{text}"
        );
    }
}

#[test]
fn an_unknown_config_key_is_bad_input_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "[policy]\nwindow-begin = \"01:00\"\n");
    let out = schedctl(&["--config", config.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("window-begin") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_bad_input_with_a_hint() {
    let out = schedctl(&["--config", "/nonexistent/schedctl.toml", "plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/schedctl.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_host_whose_key_file_is_missing_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[[host]]\nname = \"pihanga\"\n[host.ssh]\naddress = \"127.0.0.1:1\"\nkey-file = \"/nonexistent/key\"\nhost-key = \"SHA256:abc\"\n",
    );
    let out = schedctl(&["--config", config.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("host \"pihanga\"") && err.contains("/nonexistent/key"),
        "{err}"
    );
}

#[test]
fn a_plan_of_a_snapshot_file_is_stored_but_cannot_be_applied() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "");
    let config = config.to_str().unwrap();
    let snapshot = fixture("planner/seed-homelab.json");
    let plan = schedctl(&[
        "--config",
        config,
        "plan",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--time-limit",
        "2",
    ]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(
        stderr(&plan).contains("stored as plan 1"),
        "{}",
        stderr(&plan)
    );
    let apply = schedctl(&["--config", config, "apply", "1", "--yes"]);
    assert_eq!(apply.status.code(), Some(2), "{}", stderr(&apply));
    assert!(
        stderr(&apply).contains("made from a snapshot file"),
        "{}",
        stderr(&apply)
    );
    let diff = schedctl(&["--config", config, "diff"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stderr(&diff));
    assert!(
        stdout(&diff).contains("no hosts' jobs.cfg to diff"),
        "{}",
        stdout(&diff)
    );
    let history = schedctl(&["--config", config, "history", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        json["plans"][0]["source"]
            .as_str()
            .map(|s| s.starts_with("snapshot ")),
        Some(true)
    );
    assert_eq!(json["schema_version"], 1);
    // The stored plan replays on its snapshot.
    let simulate = schedctl(&[
        "--config",
        config,
        "simulate",
        "--plan-id",
        "1",
        "--nights",
        "2",
    ]);
    assert_eq!(simulate.status.code(), Some(0), "{}", stderr(&simulate));
    assert!(
        stdout(&simulate).contains("under plan 1"),
        "{}",
        stdout(&simulate)
    );
}

#[test]
fn nothing_to_roll_back_or_diff_is_bad_input_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "");
    let config = config.to_str().unwrap();
    let out = schedctl(&["--config", config, "rollback", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no apply has left anything to roll back"),
        "{}",
        stderr(&out)
    );
    let out = schedctl(&["--config", config, "diff"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("make one with `schedctl plan`"),
        "{}",
        stderr(&out)
    );
}
