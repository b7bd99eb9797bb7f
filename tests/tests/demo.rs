//! `schedctl demo`, the README's first command, run as a user runs it: it
//! shows the storm before and none after on every host of the origin story,
//! and leaves no process and no file behind, also when stopped with Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{binary, run};

/// The demo's directory, from its first line (`... on 127.0.0.1 (in DIR).`).
fn demo_dir(output: &str) -> PathBuf {
    let line = output.lines().next().expect("a first line");
    let dir = line
        .split("(in ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(")."))
        .unwrap_or_else(|| panic!("no directory in {line:?}"));
    PathBuf::from(dir)
}

/// Processes whose command line names `dir`.
fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn the_demo_shows_the_storm_before_none_after_and_cleans_up() {
    let output = run(Command::new(binary("schedctl", "schedctl")).arg("demo"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let errors = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}\n--- stderr\n{errors}"
    );
    for host in ["hikurangi", "ruapehu", "pihanga"] {
        assert!(
            text.matches(host).count() >= 4,
            "{host} is hardly named:\n{text}"
        );
        for when in ["before", "after"] {
            let label = format!("{host} {when} ");
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&label) && l.ends_with('|')),
                "{host}: no timeline {when}\n{text}"
            );
        }
    }
    // The storm before: Pihanga's backup runs in its busy hour every night.
    let before = text
        .split("2. The storm before")
        .nth(1)
        .and_then(|rest| rest.split("3. The plan").next())
        .expect("the storm before");
    assert!(before.contains('#'), "no storm in the timeline:\n{before}");
    assert!(before.contains("pihanga: "), "{before}");
    assert!(before.contains("storm minutes a night"), "{before}");
    // None after.
    let after = text
        .split("6. The storm after")
        .nth(1)
        .and_then(|rest| rest.split("7. One night live").next())
        .expect("the storm after");
    assert!(
        after.contains("No host has a backup in its busy hours"),
        "{after}"
    );
    assert!(
        after.contains("pihanga: 0 storm minutes a night, was "),
        "{after}"
    );
    for line in after
        .lines()
        .filter(|l| l.contains(" after ") && l.ends_with('|'))
    {
        assert!(!line.contains('#'), "a storm after the plan: {line}");
    }
    // The plan moved Pihanga's backup and the apply went through the agents.
    assert!(text.contains("backup-pihanga    02:45 -> "), "{text}");
    assert!(text.contains("Apply 1: ok"), "{text}");
    assert!(
        text.contains("pihanga (agent): new schedules in place"),
        "{text}"
    );
    // The live night's hooks asked the coordinator for their leases.
    assert!(
        text.contains("The coordinator granted 3 lease(s)"),
        "{text}"
    );
    // Nothing left behind.
    let dir = demo_dir(&text);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(processes_in(&dir), Vec::<String>::new());
}

#[test]
fn ctrl_c_stops_the_demo_and_removes_everything() {
    let mut child = Command::new(binary("schedctl", "schedctl"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schedctl demo starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let started = Instant::now();
    // Wait until the daemons run: the fleet is shown once the agents reported.
    while !seen.contains("coordinator (schedctl serve)") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the demo ended early:\n{seen}"
        );
        seen.push_str(&line);
        assert!(started.elapsed() < Duration::from_secs(60), "{seen}");
    }
    let dir = demo_dir(&seen);
    assert!(
        !processes_in(&dir).is_empty(),
        "no daemon runs in {}",
        dir.display()
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(processes_in(&dir), Vec::<String>::new());
}
