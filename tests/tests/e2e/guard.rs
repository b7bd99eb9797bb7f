//! The guard end to end: vzdump hooks on simulated hosts take leases from
//! the real coordinator, and a backup that shares the datastore with a
//! running one waits at `job-start` until that one has ended.
//!
//! Every host is its own `pve-sim` tree (one UTC node, a job with one guest
//! writing to the storage `pbs`, on Pihanga a second one started in the same
//! minute) with a real `sched-agent` whose vzdump hook
//! `sched-agent hook install` put into the tree's vzdump.conf, its
//! `[coordinator]` pointing at the real `schedctl serve` (HTTPS, certificate
//! pinned, token). The coordinator collects the agents and knows one
//! `[[resource]]`, `pbs-main`, of capacity 1 for the storage `pbs`. The
//! nights are run by `pve-sim scheduler`, one process per host (a hook that
//! waits holds its scheduler loop, as it holds the real vzdump), at
//! [`SPEED`]× real time: the hook waits in real time and its run goes on at
//! the simulated clock's time when it returns, so the task records show
//! what the wait did.
//!
//! | test | shows |
//! | --- | --- |
//! | `a_backup_sharing_the_datastore_waits_at_job_start_until_the_running_one_ends` | runs of three hosts on one datastore go one after the other, in start order, each hook telling its own run from another of its node (task logs, run history, lease events, metrics); the next night, with the coordinator stopped, the same runs overlap |
//! | `a_lease_never_released_expires_and_a_hook_that_gave_up_withdraws_its_request` | a host dies holding its lease: the lease expires after the reserved duration + margin and the waiting backup goes; a hook whose `lease-wait-max-secs` ran out withdraws its request instead of being granted a lease nobody releases |
//! | `a_job_that_vzdump_aborts_releases_its_lease_at_job_abort` | a job ends in `job-abort` (here a hook chained before ours fails at `job-end`): the hook gives the lease back there, and the backup waiting for the datastore goes at once, not at the lease's expiry |

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pve_api::tasks::parse_index;
use pve_api::{TaskStatus, Trust, Upid};
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;

use super::fleet::{init_tree, jobs_cfg_text, NodeAgent};
use super::text;
use crate::harness::process::{free_port, Daemon};
use crate::harness::{binary, run_ok};

/// Simulated seconds per real second: a simulated minute in a quarter second.
const SPEED: i64 = 240;
/// How far apart the simulated clocks of two pve-sim processes may be: they
/// start a few milliseconds apart, which are seconds at [`SPEED`].
const SKEW_SECS: i64 = 30;
/// The nights' backups start at 02:00 UTC; each night is simulated from
/// 01:58 to 02:45.
const NIGHT: (i64, i64) = (2 * 3600 - 120, 2 * 3600 + 45 * 60);
const COORDINATOR_TOKEN: &str = "coordinator-token-guard-e2e-31c9";

/// One host: its job's start (HH:MM UTC), run length alone on the datastore
/// (simulated minutes), and its hook's `lease-wait-max-secs`; optionally a
/// second job `backup-<name>-b` with the same start and storage and this
/// run length (two runs for the hook to tell apart; the node lock runs them
/// one after the other).
struct Spec {
    name: &'static str,
    start: &'static str,
    minutes: u32,
    wait_max_secs: u64,
    second_job_minutes: Option<u32>,
}

const fn spec(name: &'static str, start: &'static str, minutes: u32) -> Spec {
    Spec {
        name,
        start,
        minutes,
        wait_max_secs: 30,
        second_job_minutes: None,
    }
}

/// The coordinator's lease settings.
struct LeaseSettings {
    unknown_duration_minutes: f64,
    lease_margin_minutes: u64,
}

/// A simulated host with its agent.
struct Host {
    name: String,
    /// Its job ids, the main one first.
    jobs: Vec<String>,
    tree: PathBuf,
    agent: Daemon,
    url: String,
    token: String,
    fingerprint: String,
}

impl Host {
    fn node_file(&self, relative: &str) -> PathBuf {
        self.tree.join("nodes").join(&self.name).join(relative)
    }

    fn agent_client(&self) -> Client {
        client(&self.url, &self.token, &self.fingerprint)
    }

    /// The agent's exposition.
    fn metrics(&self) -> String {
        block_on(self.agent_client().get_text("/metrics", "text/plain"))
            .unwrap_or_else(|e| panic!("scrape {}: {e}\n{}", self.name, self.agent.log()))
    }

    /// The agent's report.
    fn report(&self) -> serde_json::Value {
        block_on(self.agent_client().get::<serde_json::Value>("/v1/report"))
            .unwrap_or_else(|e| panic!("report of {}: {e}\n{}", self.name, self.agent.log()))
    }

    /// The finished run of this host's main job in the night of `midnight`.
    fn run_in(&self, midnight: i64) -> Option<Run> {
        self.run_of(&self.jobs[0], midnight)
    }

    /// The finished run of `job` in the night of `midnight`: the job state
    /// names the job's latest task, the index tells how it ended.
    fn run_of(&self, job: &str, midnight: i64) -> Option<Run> {
        let state = std::fs::read_to_string(
            self.node_file(&format!("var/lib/pve-manager/jobs/vzdump-{job}.json")),
        )
        .ok()?;
        let state: serde_json::Value = serde_json::from_str(&state).expect("a job state");
        let upid: Upid = state["upid"].as_str()?.parse().expect("a UPID");
        if !(midnight..midnight + 86_400).contains(&upid.starttime()) {
            return None;
        }
        let index =
            std::fs::read_to_string(self.node_file("var/log/pve/tasks/index")).unwrap_or_default();
        let record = parse_index(&index)
            .expect("the task index parses")
            .into_iter()
            .find(|r| r.upid == upid)?;
        let log = self.task_log(&record.upid);
        Some(Run {
            host: self.name.clone(),
            job: job.to_owned(),
            start: record.upid.starttime(),
            begun: first_guest_start(&log),
            end: record.end.expect("a finished task has an end"),
            status: record.status,
            upid: record.upid.to_string(),
            log,
        })
    }

    fn task_log(&self, upid: &Upid) -> String {
        let path = self.node_file("var/log/pve/tasks").join(upid.log_path());
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// A finished run, from the host's task records.
#[derive(Debug)]
struct Run {
    host: String,
    job: String,
    /// The task's start (its UPID), Unix seconds (simulated).
    start: i64,
    /// When its first guest's backup began (`Backup started at` in the task log).
    begun: i64,
    /// The task's end (its index line).
    end: i64,
    status: TaskStatus,
    upid: String,
    log: String,
}

/// The fleet, the coordinator and where everything lives.
struct Guarded {
    dir: tempfile::TempDir,
    hosts: Vec<Host>,
    serve: Option<Daemon>,
    url: String,
    fingerprint: String,
    store: PathBuf,
}

impl Guarded {
    fn start(specs: &[Spec], settings: &LeaseSettings) -> Guarded {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let token_file = root.join("schedctl.token");
        write_secret(&token_file, COORDINATOR_TOKEN);
        let port = free_port();
        let store = root.join("schedctl.db");
        let config = root.join("schedctl.toml");
        let coordinator_toml = |hosts: &[String]| {
            let mut text = format!(
                "store = \"{store}\"\nconcurrency = 4\ntimeout-secs = 10\n\n\
                 [serve]\nlisten = \"127.0.0.1:{port}\"\ntoken-file = \"{token}\"\n\
                 state-dir = \"{state}\"\ncollect-interval-secs = 1\nlease-margin-minutes = {margin}\n\n\
                 [policy]\nwindow-start = \"00:00\"\nwindow-end = \"07:00\"\napproval = \"manual\"\n\
                 unknown-duration-minutes = {unknown}\nreplan-drift = 1000.0\n\n\
                 [[resource]]\nname = \"pbs-main\"\ncapacity = 1\nstorages = [\"pbs\"]\n",
                store = store.display(),
                token = token_file.display(),
                state = root.join("coordinator").display(),
                margin = settings.lease_margin_minutes,
                unknown = settings.unknown_duration_minutes,
            );
            for host in hosts {
                text.push('\n');
                text.push_str(host);
            }
            text
        };
        // The coordinator's certificate first: the hooks pin it.
        std::fs::write(&config, coordinator_toml(&[])).unwrap();
        let fingerprint = run_ok(
            Command::new(binary("schedctl", "schedctl"))
                .arg("--config")
                .arg(&config)
                .args(["serve", "--fingerprint"]),
        )
        .trim()
        .to_owned();
        let url = format!("https://127.0.0.1:{port}");
        let mut hosts = Vec::new();
        let mut tables = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let (host, table) = start_host(
                root,
                spec,
                100 + u32::try_from(i).unwrap(),
                &url,
                &fingerprint,
            );
            hosts.push(host);
            tables.push(table);
        }
        std::fs::write(&config, coordinator_toml(&tables)).unwrap();
        let mut serve = Daemon::start(
            "schedctl-serve",
            Command::new(binary("schedctl", "schedctl"))
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .env("NO_COLOR", "1")
                .env("RUST_LOG", "info")
                .env_remove("JOURNAL_STREAM")
                .env_remove("NOTIFY_SOCKET"),
            root,
        );
        let health = client(&url, COORDINATOR_TOKEN, &fingerprint);
        serve.wait_until(Duration::from_secs(30), || {
            block_on(health.get_text("/healthz", "text/plain")).is_ok()
        });
        let fleet = Guarded {
            dir,
            hosts,
            serve: Some(serve),
            url,
            fingerprint,
            store,
        };
        // A round collected every agent: the lease service knows each job's
        // storage and reserved duration. And the first plan is made (stored
        // for an admin), so no planner competes with the nights for the CPU.
        for host in &fleet.hosts {
            for job in &host.jobs {
                fleet.wait_for_metric(
                    "stagger_plan_reserved_seconds",
                    &[("host", &host.name), ("job_id", job)],
                    |_| true,
                );
            }
        }
        fleet.wait_for_metric("stagger_plan_age_seconds", &[], |_| true);
        fleet
    }

    fn coordinator(&self) -> Client {
        client(&self.url, COORDINATOR_TOKEN, &self.fingerprint)
    }

    fn serve_log(&self) -> String {
        self.serve.as_ref().map(Daemon::log).unwrap_or_default()
    }

    /// The coordinator's exposition.
    fn metrics(&self) -> String {
        block_on(self.coordinator().get_text("/metrics", "text/plain"))
            .unwrap_or_else(|e| panic!("scrape the coordinator: {e}\n{}", self.serve_log()))
    }

    /// Waits until the coordinator's sample `name{labels}` passes `check`; its value.
    fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        check: impl Fn(f64) -> bool,
    ) -> f64 {
        let started = Instant::now();
        loop {
            let text = self.metrics();
            if let Some(value) = sample(&text, name, labels).filter(|v| check(*v)) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name}{labels:?} not as expected within 60 s:\n{text}\n--- log\n{}",
                self.serve_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts one `pve-sim scheduler` per host for the night of `midnight`.
    fn start_night(&self, midnight: i64) -> Vec<Child> {
        self.hosts
            .iter()
            .map(|host| {
                Command::new(binary("pve-sim", "pve-sim"))
                    .arg("scheduler")
                    .arg("--root")
                    .arg(&host.tree)
                    .args(["--speed", &SPEED.to_string()])
                    .args(["--now", &(midnight + NIGHT.0).to_string()])
                    .args(["--until", &(midnight + NIGHT.1).to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("pve-sim scheduler starts")
            })
            .collect()
    }

    /// Waits for the night's schedulers (those not killed) to finish.
    fn finish_night(&self, children: Vec<Child>) {
        for (host, child) in self.hosts.iter().zip(children) {
            let output = child.wait_with_output().expect("pve-sim scheduler ends");
            assert!(
                output.status.success() || output.status.code().is_none(),
                "pve-sim scheduler of {} failed: {}",
                host.name,
                text(&output.stderr)
            );
        }
    }

    /// Runs the night of `midnight` on every host; each host's run.
    fn night(&self, midnight: i64) -> Vec<Run> {
        let children = self.start_night(midnight);
        self.finish_night(children);
        self.hosts
            .iter()
            .map(|host| {
                host.run_in(midnight)
                    .unwrap_or_else(|| panic!("{} ran no backup that night", host.name))
            })
            .collect()
    }

    /// The coordinator's lease events (from its store), oldest first, once
    /// there are at least `count` (the store is written off the request path).
    fn lease_events(&self, count: usize) -> Vec<LeaseEvent> {
        let started = Instant::now();
        loop {
            let events = read_lease_events(&self.store);
            if events.len() >= count || started.elapsed() > Duration::from_secs(10) {
                return events;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until agent `host` took its hook's events in (the spool is empty).
    fn wait_for_agent(&self, host: &Host) {
        let spool = self
            .dir
            .path()
            .join(format!("agent-state-{}", host.name))
            .join("hook-spool");
        let started = Instant::now();
        loop {
            let left = std::fs::read_dir(&spool).map_or(0, |d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            });
            if left == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "agent {} left {left} hook events in its spool:\n{}",
                host.name,
                host.agent.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One host: its tree, its agent (hook installed, `[coordinator]` set);
/// returns it with its `[[host]]` table for schedctl.toml.
fn start_host(
    dir: &Path,
    spec: &Spec,
    vmid: u32,
    coordinator_url: &str,
    coordinator_fp: &str,
) -> (Host, String) {
    let name = spec.name;
    let schedule = format!("{} UTC", spec.start);
    let mut jobs = vec![(format!("backup-{name}"), spec.minutes)];
    let mut jobs_cfg = jobs_cfg_text(name, &schedule, vmid);
    if let Some(minutes) = spec.second_job_minutes {
        jobs.push((format!("backup-{name}-b"), minutes));
        jobs_cfg.push_str(
            &jobs_cfg_text(name, &schedule, vmid + 10)
                .replace(&format!("backup-{name}\n"), &format!("backup-{name}-b\n")),
        );
    }
    let tree = init_tree(dir, name, &[&format!("{name}=UTC")], &jobs_cfg);
    let sim_config = tree.join("pve-sim.json");
    let mut sim: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sim_config).unwrap()).unwrap();
    for (job, minutes) in &jobs {
        sim["runs"]["job-minutes"][job] = serde_json::json!(minutes);
    }
    std::fs::write(&sim_config, sim.to_string()).unwrap();

    let node = tree.join("nodes").join(name);
    std::fs::write(
        node.join("proc/diskstats"),
        "   8       0 sda 1000 0 8000 500 2000 0 16000 900 0 1200 1400 0 0 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(node.join("proc/stat"), "cpu  100 0 50 1000 25 0 5 0 0 0\n").unwrap();
    let token = format!("agent-token-{name}-guard");
    let agent = NodeAgent::configure(
        dir,
        name,
        &tree,
        &token,
        &format!(
            "sample-interval-secs = 1\n\n\
             [coordinator]\nurl = \"{coordinator_url}\"\ntoken-file = \"{}\"\nfingerprint = \"{coordinator_fp}\"\n\
             lease-wait-max-secs = {}\n",
            dir.join("schedctl.token").display(),
            spec.wait_max_secs,
        ),
    );
    let fingerprint = agent.fingerprint();
    run_ok(&mut agent.command(&["hook", "install"]));
    let conf = std::fs::read_to_string(node.join("etc/vzdump.conf")).unwrap();
    assert!(
        conf.contains(&format!(
            "script: {}",
            dir.join(format!("agent-hook-{name}")).display()
        )),
        "the hook is not in vzdump.conf:\n{conf}"
    );
    let (daemon, port, token_file) = (agent.start(), agent.port, agent.token_file);
    let url = format!("https://127.0.0.1:{port}");
    let table = format!(
        "[[host]]\nname = \"{name}\"\n[host.agent]\nurl = \"{url}\"\ntoken-file = \"{}\"\nfingerprint = \"{fingerprint}\"\n",
        token_file.display()
    );
    let host = Host {
        name: name.to_owned(),
        jobs: jobs.into_iter().map(|(job, _)| job).collect(),
        tree,
        agent: daemon,
        url,
        token,
        fingerprint,
    };
    (host, table)
}

fn write_secret(path: &Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn client(url: &str, token: &str, fingerprint: &str) -> Client {
    Client::new(Endpoint {
        url: url.to_owned(),
        token: Some(Secret::new(token).unwrap()),
        trust: Trust::Fingerprint(fingerprint.parse().expect("a fingerprint")),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(1),
    })
    .unwrap()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A UTC midnight three days back: the nights' runs are recent history.
fn recent_midnight() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (i64::try_from(now).unwrap() / 86_400 - 3) * 86_400
}

/// When the first guest's backup began: vzdump's `Backup started at` line
/// (the node's zone, UTC here).
fn first_guest_start(log: &str) -> i64 {
    let stamp = log
        .lines()
        .find_map(|l| l.strip_prefix("INFO: Backup started at "))
        .unwrap_or_else(|| panic!("no guest was backed up:\n{log}"));
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{stamp:?}: {e}"))
        .and_utc()
        .timestamp()
}

/// The value of sample `name` with (at least) `labels`, as PromQL selects it.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let matches = metric == name
            && labels.iter().all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            });
        matches.then(|| value.parse().ok()).flatten()
    })
}

/// One row of the coordinator's `lease_events` table.
#[derive(Debug, Clone)]
struct LeaseEvent {
    at: i64,
    host: String,
    job: String,
    started: i64,
    event: String,
    detail: String,
}

fn read_lease_events(store: &Path) -> Vec<LeaseEvent> {
    let db =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the coordinator's store");
    let mut query = db
        .prepare("SELECT at, host, job, started, event, detail FROM lease_events ORDER BY id")
        .expect("the lease_events table");
    query
        .query_map([], |row| {
            Ok(LeaseEvent {
                at: row.get(0)?,
                host: row.get(1)?,
                job: row.get(2)?,
                started: row.get(3)?,
                event: row.get(4)?,
                detail: row.get(5)?,
            })
        })
        .expect("query")
        .map(|row| row.expect("a row"))
        .collect()
}

/// `job event` per event of the runs in `runs`, in order.
fn story(events: &[LeaseEvent], runs: &[&Run]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            runs.iter()
                .any(|r| r.host == e.host && r.job == e.job && r.start == e.started)
        })
        .map(|e| format!("{} {}", e.job, e.event))
        .collect()
}

fn hhmm(at: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        at.rem_euclid(86_400) / 3600,
        at.rem_euclid(3600) / 60,
        at.rem_euclid(60)
    )
}

/// A run's timeline, for failure messages.
fn timeline(runs: &[&Run]) -> String {
    runs.iter()
        .map(|r| {
            format!(
                "{}: task {} .. {}, guests from {} ({:?})\n{}\n",
                r.host,
                hhmm(r.start),
                hhmm(r.end),
                hhmm(r.begun),
                r.status,
                r.log
            )
        })
        .collect()
}

#[test]
fn a_backup_sharing_the_datastore_waits_at_job_start_until_the_running_one_ends() {
    let mut fleet = Guarded::start(
        &[
            spec("hikurangi", "02:00", 20),
            spec("ruapehu", "02:05", 5),
            Spec {
                second_job_minutes: Some(3),
                ..spec("pihanga", "02:10", 5)
            },
        ],
        &LeaseSettings {
            unknown_duration_minutes: 60.0,
            lease_margin_minutes: 30,
        },
    );
    let midnight = recent_midnight();
    let runs = fleet.night(midnight);
    let (a, b, c) = (&runs[0], &runs[1], &runs[2]);
    // Pihanga's second job started with its first and waited for the node
    // lock, then took its lease at once: the datastore was free by then.
    let d = &fleet.hosts[2]
        .run_of("backup-pihanga-b", midnight)
        .expect("pihanga's second run");
    let all = timeline(&[a, b, c, d]);

    // Each task started on schedule; Hikurangi's guest began at once.
    assert_eq!(a.start, midnight + 2 * 3600, "{all}");
    assert_eq!(b.start, midnight + 2 * 3600 + 5 * 60, "{all}");
    assert_eq!(c.start, midnight + 2 * 3600 + 10 * 60, "{all}");
    assert!(a.begun - a.start < 120, "{all}");
    // Ruapehu's guest only once Hikurangi's run had ended, Pihanga's once
    // Ruapehu's had: the datastore never had two backups at once.
    assert!(b.begun >= a.end - SKEW_SECS, "ruapehu did not wait:\n{all}");
    assert!(c.begun >= b.end - SKEW_SECS, "pihanga did not wait:\n{all}");
    assert!(d.start == c.start && d.begun >= c.end - SKEW_SECS, "{all}");
    assert!(b.begun - b.start >= 10 * 60, "{all}");
    for run in [a, b, c, d] {
        assert_eq!(run.status, TaskStatus::Ok, "{all}");
    }
    // The task logs say so, in the hooks' words: each hook told its own run
    // (two runs of one node started in the same minute) by its lease id.
    let waited = |run: &Run| -> u64 {
        let lease = format!(
            "INFO: stagger: lease {}/{}/{} for {} granted after ",
            run.host, run.job, run.start, run.job
        );
        run.log
            .lines()
            .find_map(|l| l.strip_prefix(lease.as_str()))
            .and_then(|rest| rest.strip_suffix(" s"))
            .and_then(|secs| secs.parse().ok())
            .unwrap_or_else(|| panic!("no `{lease}` line:\n{all}"))
    };
    assert_eq!(waited(a), 0, "{all}");
    assert!(waited(b) >= 2, "{all}");
    assert!(waited(c) >= 2, "{all}");
    assert!(waited(d) <= 1, "{all}");

    // The coordinator's record: who waited for whom, and in which order.
    let events = fleet.lease_events(10);
    assert_eq!(
        story(&events, &[a, b, c, d]),
        [
            "backup-hikurangi granted",
            "backup-ruapehu queued",
            "backup-pihanga queued",
            "backup-hikurangi released",
            "backup-ruapehu granted",
            "backup-ruapehu released",
            "backup-pihanga granted",
            "backup-pihanga released",
            "backup-pihanga-b granted",
            "backup-pihanga-b released",
        ],
        "{events:#?}"
    );
    let at = |job: &str, event: &str| {
        events
            .iter()
            .find(|e| e.job == job && e.event == event)
            .map(|e| e.at)
            .unwrap()
    };
    assert!(at("backup-ruapehu", "granted") >= at("backup-hikurangi", "released"));
    assert!(at("backup-pihanga", "granted") >= at("backup-ruapehu", "released"));
    assert!(
        at("backup-ruapehu", "granted") - at("backup-ruapehu", "queued") >= 2,
        "{events:#?}"
    );
    let metrics = fleet.metrics();
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&metrics, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}:\n{metrics}"))
    };
    assert_eq!(value("stagger_leases_granted_total", &[]), 4.0);
    assert_eq!(value("stagger_leases_queued_total", &[]), 2.0);
    assert_eq!(value("stagger_leases_released_total", &[]), 4.0);
    assert_eq!(value("stagger_leases_expired_total", &[]), 0.0);
    assert_eq!(value("stagger_leases_active", &[]), 0.0);
    assert_eq!(
        value(
            "stagger_resource_running_backups",
            &[("resource", "pbs-main")]
        ),
        0.0
    );
    assert_eq!(value("stagger_lease_wait_seconds_count", &[]), 4.0);
    assert!(
        value("stagger_lease_wait_seconds_sum", &[]) >= 4.0,
        "{metrics}"
    );

    // Each agent recorded its runs (the task's start to its end, the wait
    // included) and its hook's waits.
    for run in [a, b, c, d] {
        let host = fleet.hosts.iter().find(|h| h.name == run.host).unwrap();
        fleet.wait_for_agent(host);
        let report = host.report();
        let recorded = report["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == run.job.as_str()))
            .and_then(|job| job["runs"].as_array())
            .and_then(|runs| runs.iter().find(|r| r["upid"] == run.upid.as_str()))
            .unwrap_or_else(|| panic!("{} has no run {}: {report}", run.job, run.upid))
            .clone();
        assert_eq!(recorded["start"], run.start, "{recorded}");
        assert_eq!(recorded["end"], run.end, "{recorded}");
        assert_eq!(recorded["result"], "ok", "{recorded}");
    }
    for (host, runs) in fleet.hosts.iter().zip([1.0, 1.0, 2.0]) {
        let agent = host.metrics();
        let labels = [("host", host.name.as_str())];
        assert_eq!(
            sample(&agent, "stagger_hook_lease_wait_seconds_count", &labels),
            Some(runs),
            "{agent}"
        );
        let waited = sample(&agent, "stagger_hook_lease_wait_seconds_sum", &labels).unwrap();
        if host.name == "hikurangi" {
            assert!(waited < 1.0, "hikurangi waited {waited} s");
        } else {
            assert!(waited >= 2.0, "{} waited {waited} s", host.name);
        }
    }

    // The next night without the guard (the coordinator is down, the hooks
    // let their backups go): the same runs pile onto the datastore.
    fleet.serve = None;
    let runs = fleet.night(midnight + 86_400);
    let (a, b, c) = (&runs[0], &runs[1], &runs[2]);
    let all = timeline(&[a, b, c]);
    assert!(
        b.begun < a.end - 10 * 60,
        "no overlap without the guard:\n{all}"
    );
    assert!(
        c.begun < a.end - 5 * 60,
        "no overlap without the guard:\n{all}"
    );
    assert!(b.log.contains("the backup goes ahead"), "{all}");
    let ruapehu = &fleet.hosts[1];
    fleet.wait_for_agent(ruapehu);
    let agent = ruapehu.metrics();
    assert_eq!(
        sample(
            &agent,
            "stagger_hook_fail_open_total",
            &[("reason", "unreachable")]
        ),
        Some(1.0),
        "{agent}"
    );
}

#[test]
fn a_lease_never_released_expires_and_a_hook_that_gave_up_withdraws_its_request() {
    // Leases of jobs without a run history reserve 6 s (real time), no margin.
    let fleet = Guarded::start(
        &[
            spec("hikurangi", "02:00", 20),
            spec("ruapehu", "02:02", 5),
            Spec {
                wait_max_secs: 2,
                ..spec("pihanga", "02:03", 5)
            },
        ],
        &LeaseSettings {
            unknown_duration_minutes: 0.1,
            lease_margin_minutes: 0,
        },
    );
    let reserved = fleet.wait_for_metric(
        "stagger_plan_reserved_seconds",
        &[("host", "hikurangi"), ("job_id", "backup-hikurangi")],
        |_| true,
    );
    assert_eq!(reserved, 6.0);
    let midnight = recent_midnight();
    let mut children = fleet.start_night(midnight);
    // Hikurangi takes its lease; then the host dies with its vzdump and hook
    // (no job-end, no job-abort): nothing will release the lease.
    fleet.wait_for_metric("stagger_leases_granted_total", &[], |n| n >= 1.0);
    children[0].kill().expect("kill hikurangi's pve-sim");
    fleet.finish_night(children);

    assert!(
        fleet.hosts[0].run_in(midnight).is_none(),
        "hikurangi's run finished"
    );
    let b = fleet.hosts[1].run_in(midnight).expect("ruapehu's run");
    let c = fleet.hosts[2].run_in(midnight).expect("pihanga's run");
    let all = timeline(&[&b, &c]);
    assert_eq!(b.status, TaskStatus::Ok, "{all}");
    assert_eq!(c.status, TaskStatus::Ok, "{all}");

    let events = fleet.lease_events(7);
    let hikurangi_started = midnight + 2 * 3600;
    let of = |host: &str, started: i64| -> Vec<&LeaseEvent> {
        events
            .iter()
            .filter(|e| e.host == host && e.started == started)
            .collect()
    };
    let kinds = |list: &[&LeaseEvent]| list.iter().map(|e| e.event.clone()).collect::<Vec<_>>();
    // Hikurangi's lease ended on its own, its reserved 6 s after the grant.
    let held = of("hikurangi", hikurangi_started);
    assert_eq!(kinds(&held), ["granted", "expired"], "{events:#?}");
    let lasted = held[1].at - held[0].at;
    assert!(
        (6..=8).contains(&lasted),
        "expired after {lasted} s: {events:#?}"
    );
    assert!(
        held[1]
            .detail
            .contains("expired after its reserved duration"),
        "{events:#?}"
    );
    // Ruapehu waited for it and went once it expired.
    let ruapehu = of("ruapehu", b.start);
    assert_eq!(
        kinds(&ruapehu),
        ["queued", "granted", "released"],
        "{events:#?}"
    );
    assert!(ruapehu[1].at >= held[1].at, "{events:#?}");
    assert!(b.begun - b.start >= 15 * 60, "{all}");
    assert!(b.log.contains("granted after "), "{all}");
    // Pihanga's hook gave up after its 2 s and let the backup go; it
    // withdrew its request, so the coordinator never granted a lease that
    // no job-end would release (which would have held the datastore).
    assert!(c.begun - c.start < 15 * 60, "{all}");
    assert!(c.log.contains("the backup goes ahead"), "{all}");
    let pihanga = of("pihanga", c.start);
    assert_eq!(kinds(&pihanga), ["queued", "released"], "{events:#?}");
    assert!(pihanga[1].detail.contains("withdrawn"), "{events:#?}");

    let metrics = fleet.metrics();
    let value =
        |name: &str| sample(&metrics, name, &[]).unwrap_or_else(|| panic!("no {name}:\n{metrics}"));
    assert_eq!(value("stagger_leases_expired_total"), 1.0, "{metrics}");
    assert_eq!(value("stagger_leases_active"), 0.0, "{metrics}");
    let pihanga_agent = &fleet.hosts[2];
    fleet.wait_for_agent(pihanga_agent);
    let agent = pihanga_agent.metrics();
    assert_eq!(
        sample(
            &agent,
            "stagger_hook_fail_open_total",
            &[("reason", "timeout")]
        ),
        Some(1.0),
        "{agent}"
    );
}

#[test]
fn a_job_that_vzdump_aborts_releases_its_lease_at_job_abort() {
    // Leases reserve an hour of real time: only a release lets Ruapehu go
    // within its hook's 30 s.
    let fleet = Guarded::start(
        &[spec("hikurangi", "02:00", 10), spec("ruapehu", "02:02", 5)],
        &LeaseSettings {
            unknown_duration_minutes: 60.0,
            lease_margin_minutes: 30,
        },
    );
    // On Hikurangi another hook runs before ours and fails at job-end, so
    // vzdump aborts the job and calls the hooks with job-abort.
    let hikurangi = &fleet.hosts[0];
    let ours = fleet.dir.path().join("agent-hook-hikurangi");
    let chained = fleet.dir.path().join("chained-hook-hikurangi");
    std::fs::write(
        &chained,
        format!(
            "#!/bin/sh\nif [ \"$1\" = job-end ]; then echo 'the other hook failed'; exit 1; fi\nexec '{}' \"$@\"\n",
            ours.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&chained, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf_path = hikurangi.node_file("etc/vzdump.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    let script = format!("script: {}", ours.display());
    assert!(conf.contains(&script), "{conf}");
    std::fs::write(
        &conf_path,
        conf.replace(&script, &format!("script: {}", chained.display())),
    )
    .unwrap();

    let midnight = recent_midnight();
    let runs = fleet.night(midnight);
    let (a, b) = (&runs[0], &runs[1]);
    let all = timeline(&[a, b]);
    assert_ne!(
        a.status,
        TaskStatus::Ok,
        "hikurangi's job was not aborted:\n{all}"
    );
    assert!(a.log.contains("the other hook failed"), "{all}");
    let lease = format!(
        "stagger: lease hikurangi/backup-hikurangi/{} released",
        a.start
    );
    assert!(a.log.contains(&lease), "no `{lease}` line:\n{all}");
    // Ruapehu waited for Hikurangi's run and went when it was aborted.
    assert_eq!(b.status, TaskStatus::Ok, "{all}");
    assert!(b.log.contains("granted after "), "{all}");
    assert!(b.begun >= a.end - SKEW_SECS, "ruapehu did not wait:\n{all}");

    let events = fleet.lease_events(5);
    assert_eq!(
        story(&events, &[a, b]),
        [
            "backup-hikurangi granted",
            "backup-ruapehu queued",
            "backup-hikurangi released",
            "backup-ruapehu granted",
            "backup-ruapehu released",
        ],
        "{events:#?}"
    );
    let metrics = fleet.metrics();
    assert_eq!(
        sample(&metrics, "stagger_leases_expired_total", &[]),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "stagger_leases_active", &[]),
        Some(0.0),
        "{metrics}"
    );
}
