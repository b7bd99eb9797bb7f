//! The demo's fleet: the origin story's three Proxmox hosts as `pve-sim`
//! trees, with two weeks of backup history made by the simulated
//! pvescheduler itself.
//!
//! The numbers are those of the planner's seed instance
//! (`scheduler-core/tests/fixtures/planner/seed-homelab.json`): Hikurangi
//! backs up at 02:00 (25 min), Ruapehu at 02:20 (30 min), Pihanga at 02:45
//! (40 min), all to one PBS datastore; Pihanga, where the monit cluster's
//! VMs live (sensitivity 3), is busy 02:30–03:30. Each tree is one node in
//! UTC with one vzdump job.
//!
//! History: for each past night, the run lengths of that night are written
//! into the tree's `pve-sim.json` (the origin's lengths, drifting from night
//! to night as real backups do) and `pve-sim scheduler` runs the night's
//! backup window (00:00–05:30 UTC) at 100 000 times real time: the task records, job
//! states and pressure files are the simulator's own, as the agent will
//! read them. The hours outside the window hold no backup and are skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use scheduler_core::load::{WeeklyLoad, SLOT_SECS};
use scheduler_core::snapshot::Snapshot;

/// The planner's seed instance: the origin story in numbers.
const SEED: &str =
    include_str!("../../../../scheduler-core/tests/fixtures/planner/seed-homelab.json");

/// The PBS storage every job writes to (as the Proxmox fixtures name it).
pub const STORAGE: &str = "pbs-main";

/// Minutes after midnight UTC at which a night's simulated window starts and ends.
const WINDOW: (i64, i64) = (0, 330);

/// Simulated seconds per real second: a night's window in about 0.2 s. The
/// simulated clock starts when `pve-sim` starts, so the two hours between
/// the window's start and the first backup absorb 70 ms of start-up delay;
/// a faster clock could run past a backup's start before the first round.
const SPEED: &str = "100000";

/// How each night's runs differ from the seed's lengths, in minutes: real
/// runs vary, and Pihanga's grows (the drift that defeated the hand stagger).
const NIGHT_OFFSETS: [[i32; 3]; 14] = [
    [0, -2, -3],
    [1, 0, -2],
    [-1, 2, -1],
    [2, 1, 0],
    [0, -1, 1],
    [1, 3, 0],
    [-2, 0, 2],
    [0, 1, 1],
    [3, -1, 3],
    [1, 2, 2],
    [-1, 0, 4],
    [2, 1, 3],
    [0, 3, 5],
    [1, 2, 6],
];

/// One host of the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoHost {
    /// The Proxmox node name.
    pub name: String,
    /// Its one backup job.
    pub job: String,
    /// The job's start, `HH:MM` UTC.
    pub start: String,
    /// The job's length alone on the datastore, minutes.
    pub minutes: f64,
    /// How much its workloads suffer from I/O (Pihanga: 3).
    pub sensitivity: f64,
    /// Its I/O load per 5-minute slot of the day (288 values).
    pub load: Vec<f64>,
    /// The guests the job backs up.
    pub vmids: Vec<u32>,
}

/// The three hosts of the origin story, from the seed instance.
pub fn origin() -> Result<Vec<DemoHost>> {
    let seed = Snapshot::from_json(SEED).context("the embedded seed instance does not read")?;
    let mut hosts = Vec::new();
    for (index, host) in seed.hosts.iter().enumerate() {
        let job = seed
            .jobs
            .iter()
            .find(|j| j.host == host.name)
            .with_context(|| format!("the seed instance has no job on {}", host.name))?;
        let base = 100 * (u32::try_from(index).unwrap_or(0) + 1);
        hosts.push(DemoHost {
            name: host.name.clone(),
            job: job.id.clone(),
            start: job.current_start.clone(),
            minutes: job.duration_minutes,
            sensitivity: host.sensitivity,
            load: host.load.clone().unwrap_or_default(),
            vmids: (base..base + 3).collect(),
        });
    }
    Ok(hosts)
}

/// The agent's weekly load profile (`load-profile.json` in its state
/// directory) as two weeks of five-minute samples of the host's daily load
/// up to `now` would leave it: what the agent would have measured.
pub fn load_profile_json(host: &DemoHost, now: i64) -> Result<String> {
    let mut profile = WeeklyLoad::new(4.0).context("a half-life of 4 weeks is valid")?;
    let end = now - now.rem_euclid(SLOT_SECS);
    let mut at = end - 14 * 86_400;
    while at < end {
        let slot = usize::try_from(at.rem_euclid(86_400) / SLOT_SECS).unwrap_or(0);
        let value = host.load.get(slot).copied().unwrap_or(0.0);
        profile.add_sample(at, at + SLOT_SECS, value);
        at += SLOT_SECS;
    }
    serde_json::to_string(&profile).context("cannot encode the load profile")
}

/// jobs.cfg of one host: its job, as the Proxmox GUI writes one.
pub fn jobs_cfg(host: &DemoHost) -> String {
    let vmids: Vec<String> = host.vmids.iter().map(u32::to_string).collect();
    format!(
        "vzdump: {job}\n\tschedule {start}\n\tcompress zstd\n\tenabled 1\n\tmode snapshot\n\tnode {node}\n\
         \tnotes-template {{{{guestname}}}}\n\tprune-backups keep-daily=7,keep-weekly=4\n\
         \tstorage {STORAGE}\n\tvmid {vmids}\n\n",
        job = host.job,
        start = host.start,
        node = host.name,
        vmids = vmids.join(","),
    )
}

/// A laid-out host: its tree.
#[derive(Debug, Clone)]
pub struct HostTree {
    /// The host.
    pub host: DemoHost,
    /// The tree's root.
    pub root: PathBuf,
}

/// Lays out one `pve-sim` tree per host under `dir`.
pub fn lay_out(dir: &Path, pve_sim: &Path, hosts: &[DemoHost]) -> Result<Vec<HostTree>> {
    let mut trees = Vec::new();
    for host in hosts {
        let fixture = dir.join("fixtures").join(&host.name);
        std::fs::create_dir_all(&fixture)
            .with_context(|| format!("cannot create {}", fixture.display()))?;
        std::fs::write(fixture.join("jobs.cfg"), jobs_cfg(host))
            .with_context(|| format!("cannot write {}", fixture.display()))?;
        let root = dir.join(&host.name);
        let output = Command::new(pve_sim)
            .arg("init")
            .arg("--root")
            .arg(&root)
            .arg("--from")
            .arg(&fixture)
            .arg("--node")
            .arg(format!("{}=UTC", host.name))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", pve_sim.display()))?;
        if !output.status.success() {
            bail!(
                "pve-sim init for {} failed: {}",
                host.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        trees.push(HostTree {
            host: host.clone(),
            root,
        });
    }
    Ok(trees)
}

/// Each host's run length on night `night` (0 = the oldest), minutes.
pub fn night_minutes(host_index: usize, host: &DemoHost, night: usize) -> u32 {
    let offset = NIGHT_OFFSETS[night % NIGHT_OFFSETS.len()][host_index % 3];
    (host.minutes.round() as i32 + offset).max(1).unsigned_abs()
}

/// Runs the simulated pvescheduler over the backup windows of `nights`
/// nights ending the night before `today` (Unix seconds of a UTC midnight),
/// all hosts at once, night by night.
pub fn run_history(trees: &[HostTree], pve_sim: &Path, nights: usize, today: i64) -> Result<()> {
    for night in 0..nights {
        super::procs::interrupted()?;
        let midnight = today - 86_400 * i64::try_from(nights - night).unwrap_or(0);
        let mut running = Vec::new();
        for (index, tree) in trees.iter().enumerate() {
            set_run_minutes(
                &tree.root,
                &tree.host.job,
                night_minutes(index, &tree.host, night),
            )?;
            let child = Command::new(pve_sim)
                .arg("scheduler")
                .arg("--root")
                .arg(&tree.root)
                .args(["--speed", SPEED])
                .arg("--now")
                .arg((midnight + 60 * WINDOW.0).to_string())
                .arg("--until")
                .arg((midnight + 60 * WINDOW.1).to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", pve_sim.display()))?;
            running.push((tree, child));
        }
        for (tree, child) in running {
            let output = child.wait_with_output().with_context(|| {
                format!("pve-sim scheduler for {} did not finish", tree.host.name)
            })?;
            if !output.status.success() {
                bail!(
                    "pve-sim scheduler for {} failed: {}",
                    tree.host.name,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let runs = finished_runs(tree)?;
            if runs != night + 1 {
                bail!(
                    "pve-sim scheduler for {} recorded {runs} runs after {} nights; the machine \
                     may be too busy for the simulated clock (run the demo again)",
                    tree.host.name,
                    night + 1
                );
            }
        }
    }
    Ok(())
}

/// How many finished tasks the host's task index holds.
fn finished_runs(tree: &HostTree) -> Result<usize> {
    let path = task_index(tree);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter(|l| !l.trim().is_empty()).count()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The host's task index (finished tasks).
pub fn task_index(tree: &HostTree) -> PathBuf {
    tree.root
        .join("nodes")
        .join(&tree.host.name)
        .join("var/log/pve/tasks/index")
}

/// Sets the run length of `job` in the tree's `pve-sim.json` (`runs.job-minutes`).
fn set_run_minutes(root: &Path, job: &str, minutes: u32) -> Result<()> {
    let path = root.join("pve-sim.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    config["runs"]["job-minutes"][job] = serde_json::json!(minutes);
    let text = serde_json::to_string_pretty(&config)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_has_the_storys_hosts_starts_and_busy_hour() {
        let hosts = origin().expect("reads");
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["hikurangi", "ruapehu", "pihanga"]);
        let starts: Vec<&str> = hosts.iter().map(|h| h.start.as_str()).collect();
        assert_eq!(starts, ["02:00", "02:20", "02:45"]);
        let pihanga = &hosts[2];
        assert_eq!(pihanga.sensitivity, 3.0);
        // Busy 02:30–03:30: slots 30..42 of the day.
        assert!(
            pihanga.load[30..42].iter().all(|&l| l >= 0.8),
            "{:?}",
            &pihanga.load[28..44]
        );
        assert!(pihanga.load[29] < 0.5 && pihanga.load[42] < 0.5);
    }

    #[test]
    fn a_hosts_jobs_cfg_is_what_proxmox_reads_without_a_warning() {
        let hosts = origin().expect("reads");
        let text = jobs_cfg(&hosts[2]);
        let cfg = scheduler_core::jobs_cfg::JobsCfg::parse(&text);
        let reading = cfg.proxmox_reading("jobs.cfg");
        assert!(
            reading.warnings.is_empty() && reading.errors.is_empty(),
            "{reading:?}"
        );
        let jobs = cfg.vzdump_jobs();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].id, "backup-pihanga");
        assert_eq!(jobs[0].schedule, "02:45");
        assert_eq!(jobs[0].node.as_deref(), Some("pihanga"));
        assert_eq!(jobs[0].storage.as_deref(), Some(STORAGE));
    }

    #[test]
    fn the_seeded_load_profile_shows_pihangas_busy_hour_every_day_of_the_week() {
        let hosts = origin().expect("reads");
        let now = 1_767_571_200 + 12 * 3600; // a Monday noon
        let json = load_profile_json(&hosts[2], now).expect("made");
        let profile: WeeklyLoad = serde_json::from_str(&json).expect("reads back");
        profile.check().expect("valid");
        let values = profile.profile(now).values;
        for day in 0..7 {
            let at = |minutes: usize| values[day * 288 + minutes / 5];
            assert!((at(2 * 60 + 45) - 0.85).abs() < 1e-9, "day {day}");
            assert!(at(4 * 60) < 0.5, "day {day}");
        }
    }

    #[test]
    fn pihangas_runs_grow_over_the_two_weeks() {
        let hosts = origin().expect("reads");
        let first = night_minutes(2, &hosts[2], 0);
        let last = night_minutes(2, &hosts[2], 13);
        assert!(last > first + 5, "{first} → {last}");
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    /// The workspace's pve-sim, built beside this test executable
    /// (`target/<profile>/deps/`): scripts/test builds every binary first.
    fn pve_sim() -> PathBuf {
        let exe = std::env::current_exe().expect("the test executable has a path");
        let path = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lies in target/<profile>/deps/")
            .join("pve-sim");
        assert!(
            path.is_file(),
            "{} is not built: run `cargo build -p pve-sim` first",
            path.display()
        );
        path
    }

    #[test]
    fn each_night_of_history_is_one_run_per_host_at_its_start_and_length() {
        let pve_sim = pve_sim();
        let dir = tempfile::tempdir().expect("temp dir");
        let hosts = origin().expect("reads");
        let trees = lay_out(dir.path(), &pve_sim, &hosts).expect("laid out");
        let today = 1_767_225_600 + 86_400 * 10; // 2026-01-11 00:00 UTC
        run_history(&trees, &pve_sim, 3, today).expect("history made");
        for (index, tree) in trees.iter().enumerate() {
            let index_file = task_index(tree);
            let text = std::fs::read_to_string(&index_file).expect("task index");
            let runs: Vec<(i64, i64, String)> = text
                .lines()
                .map(|line| {
                    let record = pve_api::tasks::parse_index_line(line).expect("a task line");
                    (
                        record.upid.starttime(),
                        record.end.expect("finished"),
                        record.status.to_string(),
                    )
                })
                .collect();
            assert_eq!(runs.len(), 3, "{}: {text}", tree.host.name);
            let (hours, minutes) = tree.host.start.split_once(':').expect("HH:MM");
            let start_of_day: i64 = hours.parse::<i64>().expect("hours") * 3600
                + minutes.parse::<i64>().expect("minutes") * 60;
            for (night, (start, end, status)) in runs.iter().enumerate() {
                let midnight = today - 86_400 * (3 - night as i64);
                assert_eq!(status, "OK");
                assert!(
                    (start - midnight - start_of_day).abs() <= 60,
                    "{}: night {night} started at {start}",
                    tree.host.name
                );
                let expected = i64::from(night_minutes(index, &tree.host, night)) * 60;
                assert!(
                    (end - start - expected).abs() <= 120,
                    "{}: night {night} took {}",
                    tree.host.name,
                    end - start
                );
            }
        }
    }
}
