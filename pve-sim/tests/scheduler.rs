//! The simulated pvescheduler over one night at 600×: task records that
//! pve-api's readers parse back, hooks with vzdump's phases and environment,
//! job states, and I/O pressure that rises while runs share a storage.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pve_api::tasks::{parse_index, parse_job_state, TaskRecord};
use pve_api::{JobPhase, TaskStatus};

/// 2024-11-03 01:30 NZDT.
const NIGHT_START: i64 = 1_730_550_600;
/// 2024-11-03 04:00 NZDT.
const NIGHT_END: i64 = 1_730_559_600;
/// 02:00, 02:20, 02:45 NZDT on 2024-11-03.
const AT_0200: i64 = 1_730_552_400;
const AT_0220: i64 = 1_730_553_600;
const AT_0245: i64 = 1_730_555_100;

/// A hook that logs `args<TAB>sorted env` per call, prints a line, and exits
/// 75 for `refuse` (a phase and VMID, e.g. "backup-start 301").
fn write_hook(dir: &Path, node: &str, refuse: &str) -> PathBuf {
    let log = dir.join(format!("hook-{node}.log"));
    let script = dir.join(format!("hook-{node}.sh"));
    let body = format!(
        "#!/bin/sh\n\
         {{ printf '%s\\t' \"$*\"; /usr/bin/env | /usr/bin/sort | /usr/bin/tr '\\n' ';'; printf '\\n'; }} >> {log}\n\
         echo \"stagger: hook $1\"\n\
         if [ \"$1 $3\" = \"{refuse}\" ]; then exit 75; fi\n\
         exit 0\n",
        log = log.display()
    );
    std::fs::write(&script, body).expect("hook written");
    let status = Command::new("/bin/chmod")
        .arg("755")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(status.success());
    script
}

fn hook_calls(dir: &Path, node: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(dir.join(format!("hook-{node}.log"))).expect("hook log");
    text.lines()
        .map(|line| {
            let (args, env) = line.split_once('\t').expect("args and env");
            let env = env
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| *k != "PWD") // set by /bin/sh itself
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (args.to_owned(), env)
        })
        .collect()
}

fn pressure_avg10(path: &Path) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("avg10=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_night_at_600x_leaves_records_hooks_and_pressure_like_proxmox() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let root = tree.root();
    let hooks = tree.dir.path();
    // Hikurangi's run takes 40 minutes, so it overlaps Ruapehu's on pbs-main.
    let config_path = root.join("pve-sim.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config"))
            .expect("json");
    config["runs"]["job-minutes"] = serde_json::json!({ "backup-hikurangi": 40 });
    std::fs::write(&config_path, config.to_string()).expect("config written");
    for (node, refuse) in [
        ("hikurangi", ""),
        ("ruapehu", ""),
        ("pihanga", "backup-start 301"),
    ] {
        let script = write_hook(hooks, node, refuse);
        let conf = format!("# test hook\nscript: {}\n", script.display());
        std::fs::write(root.join(format!("nodes/{node}/etc/vzdump.conf")), conf)
            .expect("vzdump.conf");
    }

    let index_of = |node: &str| {
        std::fs::read_to_string(root.join(format!("nodes/{node}/var/log/pve/tasks/index")))
            .unwrap_or_default()
    };
    // The fixture's own task history (pihanga) is not what this night ran.
    let history = parse_index(&index_of("pihanga")).expect("fixture index parses");

    let (start, end) = (NIGHT_START.to_string(), NIGHT_END.to_string());
    let root_str = tree.root_str();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pve-sim"))
        .args([
            "scheduler",
            "--root",
            &root_str,
            "--speed",
            "600",
            "--now",
            &start,
            "--until",
            &end,
        ])
        .spawn()
        .expect("scheduler starts");
    let pressure_file = root.join("nodes/hikurangi/proc/pressure/io");
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        peak = peak.max(pressure_avg10(&pressure_file));
        std::thread::sleep(std::time::Duration::from_millis(40));
    };
    assert!(status.success(), "scheduler failed");

    // Task records parse back with Stagger's reader, one new vzdump run per node.
    let runs = |node: &str| {
        parse_index(&index_of(node))
            .expect("index parses")
            .into_iter()
            .filter(|r| r.upid.task_type() == "vzdump" && !history.contains(r))
            .collect::<Vec<_>>()
    };
    let hikurangi = runs("hikurangi");
    let ruapehu = runs("ruapehu");
    let pihanga = runs("pihanga");
    assert_eq!(hikurangi.len(), 1, "{hikurangi:?}");
    assert_eq!(ruapehu.len(), 1, "{ruapehu:?}");
    assert_eq!(pihanga.len(), 1, "{pihanga:?}");
    assert_eq!(hikurangi[0].upid.starttime(), AT_0200);
    assert_eq!(ruapehu[0].upid.starttime(), AT_0220);
    assert_eq!(pihanga[0].upid.starttime(), AT_0245);
    assert_eq!(hikurangi[0].status, TaskStatus::Ok);
    assert_eq!(ruapehu[0].status, TaskStatus::Ok);
    assert_eq!(pihanga[0].status, TaskStatus::Error("job errors".into()));
    assert_eq!(hikurangi[0].upid.user(), "root@pam");
    assert_eq!(hikurangi[0].upid.id(), "", "several guests: empty task id");
    // Overlap on pbs-main slowed Hikurangi down beyond its 40 minutes alone.
    let hikurangi_end = hikurangi[0].end.expect("finished");
    assert!(
        hikurangi_end - AT_0200 > 40 * 60,
        "took {} s",
        hikurangi_end - AT_0200
    );
    assert!(peak >= 30.0, "pressure peaked at {peak}");
    assert!(
        pressure_avg10(&pressure_file) < 1.0,
        "pressure falls back once the runs end"
    );

    // Job states end stopped with the task's status.
    let state_path = root.join("nodes/pihanga/var/lib/pve-manager/jobs/vzdump-backup-pihanga.json");
    let state = parse_job_state(&std::fs::read_to_string(state_path).expect("state"))
        .expect("state parses");
    assert!(matches!(state.phase, JobPhase::Stopped { .. }), "{state:?}");
    let log_path = root
        .join("nodes/pihanga/var/log/pve/tasks")
        .join(pihanga[0].upid.log_path());
    let log = std::fs::read_to_string(log_path).expect("task log");
    let refused = format!(
        "ERROR: Backup of VM 301 failed - command '{} backup-start snapshot 301' failed: exit code 75",
        hooks.join("hook-pihanga.sh").display()
    );
    assert!(log.contains(&refused), "{log}");
    assert!(
        log.contains("INFO: stagger: hook job-start"),
        "hook output is logged"
    );
    assert!(log.ends_with("TASK ERROR: job errors\n"), "{log}");

    // Hooks: the real phases in order, with vzdump's environment only.
    let calls = hook_calls(hooks, "hikurangi");
    let phases: Vec<&str> = calls.iter().map(|(args, _)| args.as_str()).collect();
    let mut expected = vec!["job-init".to_owned(), "job-start".to_owned()];
    for vmid in [100, 101, 102] {
        for phase in [
            "backup-start",
            "pre-stop",
            "pre-restart",
            "post-restart",
            "backup-end",
            "log-end",
        ] {
            expected.push(format!("{phase} snapshot {vmid}"));
        }
    }
    expected.push("job-end".to_owned());
    assert_eq!(phases, expected);
    let job_env = &calls[0].1;
    assert_eq!(
        job_env.keys().map(String::as_str).collect::<Vec<_>>(),
        ["LC_ALL", "LVM_SUPPRESS_FD_WARNINGS", "STOREID"],
        "no PATH, nothing inherited"
    );
    assert_eq!(job_env["STOREID"], "pbs-main");
    assert_eq!(job_env["LC_ALL"], "C");
    let guest_env = &calls[2].1;
    assert_eq!(guest_env["VMTYPE"], "qemu");
    assert_eq!(guest_env["HOSTNAME"], "vm100");
    // The first guest begins when job-start's hook has returned: the shell
    // hook's few milliseconds are a few simulated seconds at 600×. TARGET and
    // the task log (in the node's zone) name the same second.
    let begun = target_time(&guest_env["TARGET"], "vm/100/");
    assert!(
        (AT_0200..AT_0200 + 120).contains(&begun),
        "first guest began {} s after the start",
        begun - AT_0200
    );
    let hikurangi_log = std::fs::read_to_string(
        root.join("nodes/hikurangi/var/log/pve/tasks")
            .join(hikurangi[0].upid.log_path()),
    )
    .expect("task log");
    let started_line = format!("INFO: Backup started at {}", nz_time(begun));
    assert!(hikurangi_log.contains(&started_line), "{hikurangi_log}");
    assert!(
        hikurangi_log.contains("INFO: Backup finished at 2024-11-03 02:"),
        "{hikurangi_log}"
    );
    assert!(!guest_env.contains_key("PATH"));
    let pihanga_calls = hook_calls(hooks, "pihanga");
    let pihanga_phases: Vec<&str> = pihanga_calls.iter().map(|(a, _)| a.as_str()).collect();
    let refused_at = pihanga_phases
        .iter()
        .position(|p| *p == "backup-start snapshot 301")
        .expect("301 tried");
    assert_eq!(pihanga_phases[refused_at + 1], "backup-abort snapshot 301");
    assert_eq!(pihanga_phases[refused_at + 2], "log-end snapshot 301");
    assert_eq!(pihanga_phases[refused_at + 3], "backup-start snapshot 302");
}

/// The Unix time of a PBS `TARGET` (`vm/100/2024-11-02T13:00:05Z`).
fn target_time(target: &str, prefix: &str) -> i64 {
    let stamp = target
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("TARGET {target:?} does not start with {prefix:?}"));
    chrono::DateTime::parse_from_rfc3339(stamp)
        .unwrap_or_else(|e| panic!("TARGET {target:?}: {e}"))
        .timestamp()
}

/// A task-log clock time in the tree's zone (`2024-11-03 02:00:05`).
fn nz_time(at: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Pacific::Auckland
        .timestamp_opt(at, 0)
        .single()
        .expect("an unambiguous time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The `Backup started at` times of a task log, in order.
fn guest_starts(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|l| l.strip_prefix("INFO: Backup started at "))
        .collect()
}

/// Runs the scheduler over `tree` at `speed`× from 01:58 until `until`, and
/// reads Hikurangi's 02:00 run back: its index record and its task log.
fn hikurangi_0200_run(tree: &SimTree, speed: &str, until: i64) -> (TaskRecord, String) {
    let root = tree.root();
    let (from, until) = ((AT_0200 - 120).to_string(), until.to_string());
    let out = pve_sim(&[
        "scheduler",
        "--root",
        &tree.root_str(),
        "--speed",
        speed,
        "--now",
        &from,
        "--until",
        &until,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(root.join("nodes/hikurangi/var/log/pve/tasks/index"))
        .expect("index");
    let run = parse_index(&index)
        .expect("index parses")
        .into_iter()
        .find(|r| r.upid.starttime() == AT_0200)
        .expect("the 02:00 run finished");
    let log = std::fs::read_to_string(
        root.join("nodes/hikurangi/var/log/pve/tasks")
            .join(run.upid.log_path()),
    )
    .expect("task log");
    (run, log)
}

#[test]
fn a_hook_that_waits_at_job_start_holds_its_run_back() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let root = tree.root();
    // Hikurangi's hook waits one second at job-start (a lease not yet free):
    // at 600× that is ten simulated minutes before the first guest.
    let script = tree.dir.path().join("waiting-hook.sh");
    std::fs::write(
        &script,
        "#!/bin/sh
if [ \"$1\" = job-start ]; then /bin/sleep 1; echo 'stagger: waited'; fi
exit 0\n",
    )
    .expect("hook written");
    let status = Command::new("/bin/chmod")
        .arg("755")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(status.success());
    std::fs::write(
        root.join("nodes/hikurangi/etc/vzdump.conf"),
        format!("script: {}\n", script.display()),
    )
    .expect("vzdump.conf");
    // Room for a slow machine: a wall second more is ten simulated minutes.
    let (run, log) = hikurangi_0200_run(&tree, "600", AT_0200 + 60 * 60);
    let starts = guest_starts(&log);
    assert_eq!(starts.len(), 3, "{log}");
    // The task began at 02:00; its guests only after the hook's ten minutes.
    assert!(starts[0] >= "2024-11-03 02:10:00", "{log}");
    assert!(starts[0] < "2024-11-03 02:30:00", "{log}");
    assert!(log.contains("INFO: stagger: waited"), "{log}");
    // The default 20 minutes of work come after the wait.
    let end = run.end.expect("an end time");
    assert!(
        end - AT_0200 >= 30 * 60,
        "ended {} s after its start",
        end - AT_0200
    );
    assert_eq!(run.status, TaskStatus::Ok, "{log}");
}

#[test]
fn a_run_without_a_hook_begins_its_guests_at_once_at_any_speed() {
    // At 100 000× the scheduler runs far behind its clock while it catches
    // up; only a hook's own time may hold a run back, not that lag.
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let root = tree.root();
    std::fs::write(root.join("nodes/hikurangi/etc/vzdump.conf"), "# no hook\n")
        .expect("vzdump.conf");
    let (run, log) = hikurangi_0200_run(&tree, "100000", AT_0200 + 3600);
    assert_eq!(
        guest_starts(&log).first(),
        Some(&"2024-11-03 02:00:00"),
        "{log}"
    );
    assert_eq!(run.end, Some(AT_0200 + 20 * 60), "{log}");
}

#[tokio::test]
async fn serve_with_the_scheduler_shows_a_run_through_the_api() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    // No hook on hikurangi: the fixture's hook path does not exist here.
    std::fs::write(tree.root().join("nodes/hikurangi/etc/vzdump.conf"), "").expect("vzdump.conf");
    // 90 simulated seconds before Hikurangi's 02:00 job (the first round, at 01:59,
    // discards missed runs as pvescheduler does after a start).
    let now = (AT_0200 - 90).to_string();
    let server = tree.serve(&["--scheduler", "--speed", "600", "--now", &now]);
    let api = server.api(&server.token);
    let query = pve_api::TaskQuery {
        source: Some(pve_api::TaskSource::Active),
        typefilter: Some("vzdump".into()),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let running = loop {
        let list = api
            .node_tasks("hikurangi", &query)
            .await
            .expect("task list");
        if let Some(task) = list.tasks.into_iter().next() {
            break task;
        }
        assert!(std::time::Instant::now() < deadline, "no run appeared");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(running.task.starttime, AT_0200);
    assert_eq!(running.status, Some(TaskStatus::Running));
    let finished = loop {
        let state = api
            .task_status("hikurangi", &running.task.upid)
            .await
            .expect("status");
        if state.status == pve_api::RunState::Stopped {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(finished.exitstatus, Some(TaskStatus::Ok));
}

/// Runs the scheduler on a fresh tree whose backup-ruapehu state (repeat-missed 1)
/// says it last ran two days ago with `schedule` in its config copy; returns
/// the new ruapehu tasks.
fn missed_run_after_restart(schedule: &str) -> Vec<pve_api::TaskRecord> {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let two_days_ago = AT_0220 - 2 * 86_400;
    let upid = pve_api::Upid::new(
        "ruapehu",
        0x1234,
        100,
        two_days_ago,
        "vzdump",
        "",
        "root@pam",
    )
    .expect("upid");
    let state = serde_json::json!({
        "state": "stopped", "msg": "OK", "upid": upid.to_string(),
        "config": { "enabled": 1, "schedule": schedule },
    });
    let path = tree
        .root()
        .join("nodes/ruapehu/var/lib/pve-manager/jobs/vzdump-backup-ruapehu.json");
    std::fs::write(path, state.to_string()).expect("state written");
    // 2024-11-03 00:00 NZDT for three minutes.
    let start = 1_730_545_200_i64;
    let (from, until) = (start.to_string(), (start + 180).to_string());
    let root = tree.root_str();
    let out = pve_sim(&[
        "scheduler",
        "--root",
        &root,
        "--speed",
        "6000",
        "--now",
        &from,
        "--until",
        &until,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(tree.root().join("nodes/ruapehu/var/log/pve/tasks/index"))
        .unwrap_or_default();
    parse_index(&index).expect("index parses")
}

#[test]
fn repeat_missed_catches_up_once_unless_the_schedule_changed() {
    let caught_up = missed_run_after_restart("02:20");
    assert_eq!(caught_up.len(), 1, "{caught_up:?}");
    assert_eq!(
        caught_up[0].upid.starttime(),
        1_730_545_260,
        "at the first round"
    );
    // The fixture's vzdump.conf names a hook that is not installed here: the
    // run fails at job-init, as every backup on such a node does.
    assert_eq!(
        caught_up[0].status,
        TaskStatus::Error(
            "Error: The hook script '/usr/local/lib/stagger/vzdump-hook' does not exist.".into()
        )
    );
    let changed = missed_run_after_restart("02:00");
    assert!(
        changed.is_empty(),
        "a changed schedule counts from the change: {changed:?}"
    );
}
