//! The command line: help that teaches, errors that name the place, exit codes.

use std::process::Command;

use crate::support::{self, Host};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(support::agent_binary())
        .args(args)
        .output()
        .expect("sched-agent")
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "Examples:",
        "sched-agent run",
        "sched-agent fingerprint",
        "sched-agent hook install",
        "Exit codes:",
    ] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
    let hook = String::from_utf8_lossy(&run(&["hook", "--help"]).stdout).into_owned();
    assert!(
        hook.contains("sched-agent hook uninstall") && hook.contains("always exits 0"),
        "{hook}"
    );
}

#[test]
fn a_bad_config_is_exit_code_2_and_names_the_line() {
    let host = Host::new("");
    let config = host.config("sample-intervall-secs = 5");
    let output = run(&["--config", config.to_str().expect("utf-8"), "check-config"]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("sample-intervall-secs") && text.contains("line 12"),
        "{text}"
    );
    let run_it = run(&["--config", config.to_str().expect("utf-8"), "run"]);
    assert_eq!(
        run_it.status.code(),
        Some(2),
        "the daemon refuses to start on it too"
    );
}

#[test]
fn check_config_prints_every_default_as_json() {
    let host = Host::new("");
    let config = host.config("");
    let output = run(&[
        "--config",
        config.to_str().expect("utf-8"),
        "check-config",
        "--format",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["sample-interval-secs"], 10);
    assert_eq!(json["lock-timeout-secs"], 10);
    assert_eq!(json["backend"], "file");
    let fingerprint = run(&[
        "--config",
        config.to_str().expect("utf-8"),
        "fingerprint",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&fingerprint.stdout).expect("JSON");
    let text = json["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(text.len(), 32 * 3 - 1);
    assert_eq!(
        text.parse::<pve_api::Fingerprint>().expect("valid"),
        support::fingerprint(&config)
    );
}
