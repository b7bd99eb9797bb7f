//! The vzdump hook run as vzdump runs it: an empty environment, the real
//! binary through the installed wrapper; every failure lets the backup go
//! (exit 0) quickly and is counted by the daemon. And `hook install|uninstall`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{self, fixture, Agent, Host, Http};

const RUNNING: &str = "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:";

/// A host where backup-k8s-cp's run is going on (job state `started`, task in `active`).
fn host_with_a_running_backup() -> Host {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    host.write(
        "var/lib/pve-manager/jobs/vzdump-backup-k8s-cp.json",
        &fixture("state-vzdump-backup-k8s-cp-started.json"),
    );
    host.write("var/log/pve/tasks/active", &fixture("tasks-active"));
    host.write("var/log/pve/tasks/index", &fixture("tasks-index"));
    host
}

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn coordinator(host: &Host, url: &str, wait: u64) -> String {
    host.write("etc/stagger/coordinator.token", "coordinator-token\n");
    format!(
        "[coordinator]\nurl = \"{url}\"\ntoken-file = \"{}\"\nfingerprint = \"{}\"\nlease-wait-max-secs = {wait}\n",
        host.path("etc/stagger/coordinator.token").display(),
        ["AB"; 32].join(":")
    )
}

/// Runs `program args` with an empty environment, as vzdump runs its hook
/// (plus the variables vzdump sets at job-start for a PBS storage).
fn as_vzdump(program: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .env("STOREID", "pbs-main")
        .env("LC_ALL", "C")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .current_dir("/")
        .output()
        .expect("run the hook");
    (output, started.elapsed())
}

fn spooled(host: &Host) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(host.path("state/hook-spool")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("event")).expect("JSON"))
        .collect()
}

fn install(config: &Path, force: bool) -> Output {
    let mut command = Command::new(support::agent_binary());
    command
        .arg("--config")
        .arg(config)
        .args(["hook", "install"]);
    if force {
        command.arg("--force");
    }
    command.output().expect("hook install")
}

#[test]
fn an_unreachable_coordinator_lets_the_backup_go_within_2_s() {
    let host = host_with_a_running_backup();
    let url = format!("https://127.0.0.1:{}", closed_port());
    let config = host.config(&coordinator(&host, &url, 1800));
    let installed = install(&config, false);
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let wrapper = host.path("usr/local/lib/stagger/vzdump-hook");

    let (output, took) = as_vzdump(&wrapper, &["job-start"]);
    assert!(output.status.success(), "exit {:?}", output.status);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("stagger:") && said.contains("the backup goes ahead"),
        "{said}"
    );

    let events = spooled(&host);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["phase"], "job-start");
    assert_eq!(events[0]["job"], "backup-k8s-cp");
    assert_eq!(events[0]["upid"], RUNNING);
    assert_eq!(events[0]["fail_open"], "unreachable");
    assert_eq!(events[0]["storage"], "pbs-main");

    // The daemon counts the fail-open and takes the event out of the spool.
    let agent = Agent::start(&host.config(&format!(
        "sample-interval-secs = 1\n{}",
        coordinator(&host, &url, 1800)
    )));
    let http = Http::new(&agent, support::fingerprint(&config));
    let count = support::wait_for(10, "the fail-open count", || {
        let text = http.metrics_text();
        support::sample(
            &text,
            r#"stagger_hook_fail_open_total{reason="unreachable"}"#,
        )
        .filter(|n| *n > 0.0)
    });
    assert_eq!(count, 1.0);
    assert!(spooled(&host).is_empty());
    let report = http.get("/v1/report").json();
    let k8s = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == "backup-k8s-cp")
        .expect("backup-k8s-cp")
        .clone();
    assert_eq!(k8s["runs"][0]["upid"], RUNNING);
    assert_eq!(k8s["runs"][0]["result"], "running");
}

#[test]
fn a_coordinator_that_never_answers_is_waited_for_at_most_lease_wait_max_secs() {
    let host = host_with_a_running_backup();
    // A peer that takes the request and never answers: a coordinator that hangs.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", hung.local_addr().expect("addr"));
    let config = host.config(&coordinator(&host, &url, 2));
    let (output, took) = as_vzdump(
        &support::agent_binary(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "hook",
            "job-start",
        ],
    );
    assert!(output.status.success());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    let events = spooled(&host);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["fail_open"], "timeout", "{events:?}");
    assert!(
        events[0]["lease_wait_secs"].as_f64() >= Some(1.9),
        "{events:?}"
    );
    drop(hung);
}

#[test]
fn every_other_failure_exits_0_at_once() {
    let host = host_with_a_running_backup();
    let binary = support::agent_binary();
    // No config at all.
    let (output, took) = as_vzdump(
        &binary,
        &["--config", "/nonexistent/agent.toml", "hook", "job-start"],
    );
    assert!(output.status.success() && took < Duration::from_secs(2));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no usable config"));
    // Arguments vzdump would never pass.
    for args in [
        &["hook"][..],
        &["hook", "--bogus"],
        &["--nope", "hook", "job-start"],
    ] {
        let (output, _) = as_vzdump(&binary, args);
        assert!(output.status.success(), "{args:?}: {:?}", output.status);
    }
    // A config without [coordinator]: the phase is recorded, no lease.
    let config = host.config("");
    let config_arg = config.to_str().expect("utf-8");
    let (output, took) = as_vzdump(&binary, &["--config", config_arg, "hook", "job-start"]);
    assert!(output.status.success() && took < Duration::from_secs(2));
    // Guest phases return at once and record nothing.
    for args in [
        ["backup-start", "snapshot", "310"],
        ["log-end", "snapshot", "311"],
    ] {
        let mut all = vec!["--config", config_arg, "hook"];
        all.extend(args);
        let (output, _) = as_vzdump(&binary, &all);
        assert!(output.status.success());
    }
    let (output, _) = as_vzdump(&binary, &["--config", config_arg, "hook", "job-end"]);
    assert!(output.status.success());
    let events = spooled(&host);
    let phases: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e["phase"].as_str().unwrap_or(""), e["fail_open"].as_str()))
        .collect();
    assert_eq!(
        phases,
        [("job-start", Some("no_config")), ("job-end", None)]
    );
    assert_eq!(
        events[1]["upid"], RUNNING,
        "job-end finds the run that had job-start"
    );

    // A run the hook cannot identify (no job state names it).
    let lonely = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let url = format!("https://127.0.0.1:{}", closed_port());
    let config = lonely.config(&coordinator(&lonely, &url, 1800));
    let (output, _) = as_vzdump(
        &binary,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "hook",
            "job-start",
        ],
    );
    assert!(output.status.success());
    let events = spooled(&lonely);
    assert_eq!(events[0]["fail_open"], "other");
    assert!(events[0]["job"].is_null());
}

#[test]
fn install_and_uninstall_keep_vzdump_conf_byte_for_byte() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    // The fixture's vzdump.conf already names a hook at another path.
    let original = fixture("vzdump.conf");
    host.write("etc/vzdump.conf", &original);
    let config = host.config("");
    let wrapper = host.path("usr/local/lib/stagger/vzdump-hook");

    let refused = install(&config, false);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another hook script"));
    assert_eq!(host.read("etc/vzdump.conf"), original);
    assert!(!wrapper.exists(), "a refusal writes nothing");

    let forced = install(&config, true);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let expected = original.replace(
        "script: /usr/local/lib/stagger/vzdump-hook\n",
        &format!("script: {}\n", wrapper.display()),
    );
    assert_eq!(host.read("etc/vzdump.conf"), expected);
    let mode = std::fs::metadata(&wrapper)
        .expect("wrapper")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let script = std::fs::read_to_string(&wrapper).expect("wrapper");
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(script.contains(
        &support::agent_binary()
            .canonicalize()
            .expect("binary")
            .display()
            .to_string()
    ));
    // vzdump can run it with no PATH: it exits 0 for every phase.
    for args in [
        &["job-init"][..],
        &["backup-start", "snapshot", "100"],
        &["job-end"],
    ] {
        let (output, _) = as_vzdump(&wrapper, args);
        assert!(output.status.success(), "{args:?}");
    }
    let again = install(&config, false);
    assert!(again.status.success(), "installing twice is fine");
    assert_eq!(host.read("etc/vzdump.conf"), expected);

    // A job that names the wrapper itself keeps it from being removed.
    let jobs = host.jobs_cfg();
    host.write(
        "etc/pve/jobs.cfg",
        &jobs.replace(
            "\tvmid 310,311\n",
            &format!("\tvmid 310,311\n\tscript {}\n", wrapper.display()),
        ),
    );
    let uninstall = |force: bool| {
        let mut command = Command::new(support::agent_binary());
        command
            .arg("--config")
            .arg(&config)
            .args(["hook", "uninstall"]);
        if force {
            command.arg("--force");
        }
        command.output().expect("uninstall")
    };
    let blocked = uninstall(false);
    assert_eq!(
        blocked.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    assert!(String::from_utf8_lossy(&blocked.stderr).contains("backup-k8s-cp"));
    assert!(wrapper.exists());
    host.write("etc/pve/jobs.cfg", &jobs);

    let removed = uninstall(false);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let without: String = original
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("script:"))
        .collect();
    assert_eq!(host.read("etc/vzdump.conf"), without);
    assert!(!wrapper.exists());
}

#[test]
fn install_writes_nothing_when_the_wrapper_cannot_be_written() {
    let host = Host::new("");
    // The wrapper's directory is a file: the wrapper cannot be created.
    host.write("usr/local/lib/stagger", "not a directory");
    let before = host.read("etc/vzdump.conf");
    let output = install(&host.config(""), false);
    assert!(!output.status.success());
    assert_eq!(
        host.read("etc/vzdump.conf"),
        before,
        "no `script:` without the executable"
    );
}
