//! The simulated pvescheduler and vzdump (FORMATS.md (c) "When a job actually
//! starts", (d) hook phases, (e) task records).
//!
//! Every simulated minute, per node and per job sorted by id: skip jobs of
//! other nodes and disabled ones; a changed `schedule`/`enabled` sets the job
//! state's `updated`; `next = next_after(last run)` in the node's zone; a job
//! is started when `now ≥ next` and it is not already `started`. On the first
//! round, jobs without `repeat-missed` get `updated = now`.
//!
//! A started run is a vzdump task: UPID, `job-init` hook, then it waits for
//! the node lock (`/var/run/vzdump.lock`: one run per node; gives up after
//! `lockwait` minutes), runs `job-start`, backs up its guests one after the
//! other (per guest `backup-start`, `pre-stop`, `pre-restart`, `post-restart`,
//! `backup-end`, `log-end` in snapshot mode), `job-end`, and finishes: an
//! index line, the `active` file, the task log, the job state `stopped`.
//!
//! vzdump waits for its hook however long it runs, and `job-start` is where
//! a hook holds a run back by design (Stagger's lease). So the time the
//! `job-start` hook takes passes for the run: its guests begin at the
//! simulated clock's now when the hook returns (real time × speed; a hook
//! that waits 2 s for a lease at 600× holds the run 20 simulated minutes;
//! a run without a hook begins its guests at once).
//! That keeps hosts simulated by separate processes, and a coordinator that
//! lives in real time, in step. The scheduler loop is one thread: while a
//! hook waits, every node of the tree waits with it (give each host its own
//! tree and process when hooks wait on one another). The other phases count
//! as instant, so that a hook process's few milliseconds do not become
//! simulated minutes at a high speed-up.
//! A run alone on its storage takes its configured minutes; runs sharing a
//! storage slow each other down (1 + 0.5 per other run). Each node's
//! `proc/pressure/io` follows the runs sharing its storage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use chrono::TimeZone;
use scheduler_core::calendar::CalendarEvent;
use scheduler_core::jobs_cfg::{JobsCfg, Value, VzdumpJob};
use serde_json::json;

use crate::clock::Clock;
use pve_api::Upid;

use crate::tasks;
use crate::tree::{Guest, NodeConfig, NodeTree, SimConfig, Tree};

/// Default `lockwait`, minutes.
const DEFAULT_LOCKWAIT_MIN: i64 = 180;
/// Simulated seconds per scheduler round.
const ROUND: i64 = 60;

/// Runs the scheduler from the clock's now until `until` (forever when `None`).
pub fn run(tree: &Tree, config: &SimConfig, clock: &Clock, until: Option<i64>) -> Result<()> {
    let mut sim = Scheduler::new(tree, config, clock);
    let mut round_at = (clock.now() / ROUND + 1) * ROUND;
    sim.write_pressure(clock.now(), 0)?;
    loop {
        if until.is_some_and(|end| round_at > end) {
            return Ok(());
        }
        wait_until(clock, round_at as f64);
        sim.round(round_at)?;
        round_at += ROUND;
    }
}

/// Sleeps (in real time) until the simulated clock reaches `epoch`.
fn wait_until(clock: &Clock, epoch: f64) {
    loop {
        let secs = clock.real_secs_until(epoch);
        if secs <= 0.0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(1.0)));
    }
}

/// The scheduler's memory across rounds.
struct Scheduler<'a> {
    tree: &'a Tree,
    config: &'a SimConfig,
    clock: &'a Clock,
    nodes: Vec<NodeSim>,
    next_pid: u32,
    first_round: bool,
    last_round: Option<i64>,
}

/// One node: its queue of runs (the first one that holds the lock runs).
struct NodeSim {
    config: NodeConfig,
    files: NodeTree,
    runs: Vec<Run>,
    pressure: Pressure,
}

/// A vzdump task.
struct Run {
    job_id: String,
    upid: Upid,
    storage: String,
    mode: String,
    hook: Option<PathBuf>,
    guests: Vec<Guest>,
    lock_deadline: i64,
    has_lock: bool,
    /// After `job-start`: when its hook returned, the simulated time the
    /// first guest begins at (`None` once it has begun, and before).
    resume_at: Option<f64>,
    /// The node's time zone, for the task log's clock times.
    tz: chrono_tz::Tz,
    /// Simulated seconds of work per guest when alone on the storage.
    guest_work: f64,
    guest: usize,
    done_in_guest: f64,
    guest_started: i64,
    guest_failed: bool,
    failed_guests: usize,
    warnings: usize,
    log: Vec<String>,
}

impl<'a> Scheduler<'a> {
    fn new(tree: &'a Tree, config: &'a SimConfig, clock: &'a Clock) -> Scheduler<'a> {
        let nodes = config
            .nodes
            .iter()
            .map(|node| NodeSim {
                config: node.clone(),
                files: tree.node(&node.name),
                runs: Vec::new(),
                pressure: Pressure::default(),
            })
            .collect();
        Scheduler {
            tree,
            config,
            clock,
            nodes,
            next_pid: 0x0010_0000,
            first_round: true,
            last_round: None,
        }
    }

    /// One round at simulated time `now`: progress the runs of the last minute, then start due jobs.
    fn round(&mut self, now: i64) -> Result<()> {
        let since = self.last_round.unwrap_or(now);
        self.progress(since, now)?;
        let Some(text) = self.read_jobs_locked() else {
            // Lock contention: pvescheduler's round fails and the next one retries.
            self.write_pressure(now, now - since)?;
            self.last_round = Some(now);
            return Ok(());
        };
        let mut jobs = JobsCfg::parse(&text).vzdump_jobs();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        for index in 0..self.nodes.len() {
            for job in &jobs {
                self.consider(index, job, now)?;
            }
        }
        // Runs that just started may take a free lock at once.
        self.progress(now, now)?;
        self.write_pressure(now, now - since)?;
        self.first_round = false;
        self.last_round = Some(now);
        Ok(())
    }

    /// jobs.cfg read under its cluster lock, as pvescheduler's
    /// `synchronize_job_states_with_config` does every minute; `None` when
    /// the lock cannot be had (a missing file reads as empty).
    fn read_jobs_locked(&self) -> Option<String> {
        let _lock = crate::cluster_lock::acquire(&self.tree.lock_dir(), "jobs.cfg").ok()?;
        Some(std::fs::read_to_string(self.tree.jobs_cfg()).unwrap_or_default())
    }

    /// pvescheduler's rules for one job on one node.
    fn consider(&mut self, index: usize, job: &VzdumpJob, now: i64) -> Result<()> {
        let node = &self.nodes[index];
        if job.node.as_ref().is_some_and(|n| *n != node.config.name) {
            return Ok(());
        }
        let state_path = node.files.job_state(&job.id);
        let job_config = json!({ "enabled": u8::from(job.enabled), "schedule": job.schedule });
        let mut state = read_state(&state_path)
            .unwrap_or_else(|| json!({ "state": "created", "time": now, "config": job_config }));
        let repeat_missed = matches!(job.options.get("repeat-missed"), Some(Value::Bool(true)));
        if state["config"] != job_config || (self.first_round && !repeat_missed) {
            state["updated"] = json!(now);
            state["config"] = job_config;
        }
        if state["state"] == "started" && !self.is_running(index, &state) {
            state = ended_elsewhere(&node.files, state)?;
        }
        write_state(&state_path, &state)?;
        if !job.enabled || state["state"] == "started" || state["state"] == "starting" {
            return Ok(());
        }
        let Ok(event) = CalendarEvent::parse(job.schedule.trim()) else {
            return Ok(());
        };
        let last = last_run(&state);
        match event.next_after(last, node.config.tz()) {
            Some(next) if next <= now => self.start(index, job, now),
            _ => Ok(()),
        }
    }

    /// Whether the task a `started` state names is one of node `index`'s runs.
    fn is_running(&self, index: usize, state: &serde_json::Value) -> bool {
        let upid = state["upid"].as_str().unwrap_or("");
        self.nodes[index]
            .runs
            .iter()
            .any(|r| r.upid.to_string() == upid)
    }

    /// Starts vzdump for `job` on node `index` (or records that it had nothing to do).
    fn start(&mut self, index: usize, job: &VzdumpJob, now: i64) -> Result<()> {
        let guests = self.local_guests(index, job);
        let all = matches!(job.options.get("all"), Some(Value::Bool(true)));
        self.next_pid += 0x1F3;
        let node = &self.nodes[index];
        let state_path = node.files.job_state(&job.id);
        let job_config = json!({ "enabled": u8::from(job.enabled), "schedule": job.schedule });
        if guests.is_empty() && !all {
            let state =
                json!({ "state": "stopped", "msg": "OK", "time": now, "config": job_config });
            return write_state(&state_path, &state);
        }
        let defaults = read_vzdump_conf(&node.files.vzdump_conf());
        let option = |key: &str| {
            job.options
                .get(key)
                .and_then(Value::as_text)
                .map(str::to_owned)
                .or_else(|| defaults.get(key).cloned())
        };
        let storage = job
            .storage
            .clone()
            .or_else(|| defaults.get("storage").cloned());
        let storage = storage.unwrap_or_else(|| "local".to_owned());
        let lockwait: i64 = option("lockwait")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_LOCKWAIT_MIN);
        let minutes = self
            .config
            .runs
            .job_minutes
            .get(&job.id)
            .copied()
            .unwrap_or(self.config.runs.default_minutes);
        let task_id = match guests.as_slice() {
            [only] => only.vmid.to_string(),
            _ => String::new(),
        };
        let pstart = u64::try_from((now - self.config.boot_time).max(0) * 100).unwrap_or(0) + 37;
        let upid = Upid::new(
            &node.config.name,
            self.next_pid,
            pstart,
            now,
            "vzdump",
            &task_id,
            "root@pam",
        )
        .context("cannot form the task's UPID")?;
        let guest_work = f64::from(minutes) * 60.0 / guests.len().max(1) as f64;
        let mut run = Run {
            job_id: job.id.clone(),
            upid,
            storage,
            mode: option("mode").unwrap_or_else(|| "snapshot".to_owned()),
            hook: option("script").map(PathBuf::from),
            guests,
            lock_deadline: now + lockwait * 60,
            has_lock: false,
            resume_at: None,
            tz: node.config.tz(),
            guest_work,
            guest: 0,
            done_in_guest: 0.0,
            guest_started: now,
            guest_failed: false,
            failed_guests: 0,
            warnings: 0,
            log: Vec::new(),
        };
        let first_line = format!(
            "INFO: starting new backup job: vzdump{} --mode {} --node {} --storage {}",
            if all {
                " --all 1".to_owned()
            } else {
                format!(" {}", vmid_list(&run.guests))
            },
            run.mode,
            node.config.name,
            run.storage
        );
        run.log.push(first_line);
        let started =
            json!({ "state": "started", "upid": run.upid.to_string(), "config": job_config });
        write_state(&state_path, &started)?;
        let init = run.hook_phase(&["job-init"], None, now);
        let files = node.files.clone();
        let index_of_run = self.nodes[index].runs.len();
        if index_of_run > 0 {
            run.log
                .push("INFO: trying to get global lock - waiting...".to_owned());
        }
        self.nodes[index].runs.push(run);
        match init {
            Ok(()) => write_task(
                &files,
                &self.nodes[index].runs[index_of_run],
                &self.running_upids(index),
            ),
            Err(error) => self.finish(index, index_of_run, now, Some(error)),
        }
    }

    /// The guests of `job` on node `index` (see the crate doc for the defaults).
    fn local_guests(&self, index: usize, job: &VzdumpJob) -> Vec<Guest> {
        let node = &self.nodes[index].config;
        let text = |key: &str| job.options.get(key).and_then(Value::as_text).unwrap_or("");
        let listed: Vec<u32> = split_vmids(text("vmid"));
        let excluded: Vec<u32> = split_vmids(text("exclude"));
        let declared = if node.guests.is_empty() {
            default_guests(index, &listed, job.node.is_some() || index == 0)
        } else {
            node.guests.clone()
        };
        declared
            .into_iter()
            .filter(|g| listed.is_empty() || listed.contains(&g.vmid))
            .filter(|g| !excluded.contains(&g.vmid))
            .collect()
    }

    fn running_upids(&self, index: usize) -> Vec<Upid> {
        self.nodes[index]
            .runs
            .iter()
            .map(|r| r.upid.clone())
            .collect()
    }

    /// Advances every node's runs from `from` to `to` (simulated seconds).
    fn progress(&mut self, from: i64, to: i64) -> Result<()> {
        let sharing = self.storage_load();
        for index in 0..self.nodes.len() {
            let mut cursor = from as f64;
            while let Some(first) = self.nodes[index].runs.first() {
                let storage_runs = sharing.get(&first.storage).copied().unwrap_or(1).max(1);
                let slowdown = 1.0 + 0.5 * (storage_runs as f64 - 1.0);
                match self.step(index, cursor, to, slowdown)? {
                    Some(at) => cursor = at,
                    None => break,
                }
            }
            self.expire_waiting(index, to)?;
        }
        Ok(())
    }

    /// One step of node `index`'s lock holder; `Some(time)` when something
    /// finished at `time` and the node should continue, `None` when idle till `to`.
    fn step(&mut self, index: usize, cursor: f64, to: i64, slowdown: f64) -> Result<Option<f64>> {
        let now = cursor.floor() as i64;
        let node = &mut self.nodes[index];
        let run = &mut node.runs[0];
        if !run.has_lock {
            run.has_lock = true;
            run.log.push("INFO: got global lock".to_owned());
            if let Err(error) = run.hook_phase(&["job-start"], None, now) {
                let abort = run.hook_phase(&["job-abort"], None, now);
                let error = append_abort(error, abort);
                self.finish(index, 0, now, Some(error))?;
                return Ok(Some(cursor));
            }
            // The hook's time passed for the run (see the module doc); without
            // a hook nothing waited, whatever the scheduler's lag behind its clock.
            run.resume_at = Some(if run.hook.is_some() {
                self.clock.now_f64().max(cursor)
            } else {
                cursor
            });
        }
        if let Some(resume_at) = run.resume_at {
            if resume_at > cursor {
                return Ok((resume_at < to as f64).then_some(resume_at));
            }
            run.resume_at = None;
            if !run.guests.is_empty() {
                run.start_guest(now);
            }
        }
        let run = &mut self.nodes[index].runs[0];
        if run.guest >= run.guests.len() {
            let end = run.hook_phase(&["job-end"], None, now);
            let end = end.map_err(|error| {
                append_abort(error.clone(), run.hook_phase(&["job-abort"], None, now))
            });
            self.finish(index, 0, now, end.err())?;
            return Ok(Some(cursor));
        }
        let needed = (run.guest_work - run.done_in_guest) * slowdown;
        let available = to as f64 - cursor;
        if needed > available {
            run.done_in_guest += available / slowdown;
            return Ok(None);
        }
        let at = cursor + needed;
        run.end_guest(at.floor() as i64);
        run.guest += 1;
        if run.guest < run.guests.len() {
            run.start_guest(at.floor() as i64);
        }
        let files = self.nodes[index].files.clone();
        write_task(
            &files,
            &self.nodes[index].runs[0],
            &self.running_upids(index),
        )?;
        Ok(Some(at))
    }

    /// Runs waiting for the node lock past their `lockwait` fail.
    fn expire_waiting(&mut self, index: usize, now: i64) -> Result<()> {
        while let Some(position) = self.nodes[index]
            .runs
            .iter()
            .position(|r| !r.has_lock && r.lock_deadline <= now)
        {
            let error = "can't acquire lock '/var/run/vzdump.lock' - got timeout".to_owned();
            self.finish(index, position, now, Some(error))?;
        }
        Ok(())
    }

    /// Ends run `position` of node `index`: status, index line, active file, log, job state.
    fn finish(
        &mut self,
        index: usize,
        position: usize,
        now: i64,
        error: Option<String>,
    ) -> Result<()> {
        let mut run = self.nodes[index].runs.remove(position);
        let status = match (&error, run.failed_guests, run.warnings) {
            (Some(error), _, _) => error.clone(),
            (None, 0, 0) => "OK".to_owned(),
            (None, 0, n) => format!("WARNINGS: {n}"),
            (None, _, _) => "job errors".to_owned(),
        };
        match (&error, run.failed_guests) {
            (Some(error), _) => run.log.push(format!("ERROR: Backup job failed - {error}")),
            (None, 0) => run
                .log
                .push("INFO: Backup job finished successfully".to_owned()),
            (None, _) => run
                .log
                .push("INFO: Backup job finished with errors".to_owned()),
        }
        run.log.push(match status.as_str() {
            "OK" => "TASK OK".to_owned(),
            s if s.starts_with("WARNINGS: ") => format!("TASK {s}"),
            s => format!("TASK ERROR: {s}"),
        });
        let files = self.nodes[index].files.clone();
        tasks::append_index(&files, &[tasks::finished(&run.upid, now, &status)])?;
        write_task(&files, &run, &self.running_upids(index))?;
        let state_path = files.job_state(&run.job_id);
        let mut state = read_state(&state_path).unwrap_or_else(|| json!({}));
        state["state"] = json!("stopped");
        state["msg"] = json!(status);
        state["upid"] = json!(run.upid.to_string());
        if let Some(map) = state.as_object_mut() {
            map.remove("time");
        }
        write_state(&state_path, &state)
    }

    /// Runs backing up (holding the lock, past `job-start`) per storage, cluster-wide.
    fn storage_load(&self) -> BTreeMap<String, usize> {
        let mut load = BTreeMap::new();
        for node in &self.nodes {
            if let Some(run) = node.runs.first().filter(|r| r.is_writing()) {
                *load.entry(run.storage.clone()).or_insert(0) += 1;
            }
        }
        load
    }

    /// Rewrites every node's `proc/pressure/io` after `dt` simulated seconds.
    fn write_pressure(&mut self, _now: i64, dt: i64) -> Result<()> {
        let load = self.storage_load();
        for node in &mut self.nodes {
            let sharing = node
                .runs
                .first()
                .filter(|r| r.is_writing())
                .and_then(|r| load.get(&r.storage).copied())
                .unwrap_or(0);
            node.pressure.advance(sharing, dt as f64);
            let path = node.files.pressure_io();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::cluster_lock::replace_file(&path, &node.pressure.render())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

impl Run {
    /// Whether the run is backing up now: it holds the node lock and its
    /// `job-start` hook let it go.
    fn is_writing(&self) -> bool {
        self.has_lock && self.resume_at.is_none()
    }

    /// A task-log clock time in the node's zone, as vzdump prints it (`%F %T`).
    fn local_time(&self, at: i64) -> String {
        self.tz
            .timestamp_opt(at, 0)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    }

    /// Runs the hook script for `args` (phase first) with vzdump's environment;
    /// the error text vzdump reports when it fails.
    fn hook_phase(&mut self, args: &[&str], guest: Option<&Guest>, now: i64) -> Result<(), String> {
        let Some(script) = self.hook.clone() else {
            return Ok(());
        };
        check_script(&script)?;
        let output = hook_command(&script, args, &self.environment(args[0], guest, now))
            .output()
            .map_err(|e| {
                format!(
                    "command '{} {}' failed: {e}",
                    script.display(),
                    args.join(" ")
                )
            })?;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            self.log.push(format!("INFO: {line}"));
        }
        if output.status.success() {
            return Ok(());
        }
        let code = output.status.code().unwrap_or(-1);
        Err(format!(
            "command '{} {}' failed: exit code {code}",
            script.display(),
            args.join(" ")
        ))
    }

    /// The hook's environment: STOREID, DUMPDIR (file storages, not in
    /// job-init), VMTYPE, HOSTNAME, TARGET, LOGFILE for guest phases, LC_ALL,
    /// LVM_SUPPRESS_FD_WARNINGS.
    fn environment(&self, phase: &str, guest: Option<&Guest>, now: i64) -> Vec<(String, String)> {
        let mut env = vec![
            ("STOREID".to_owned(), self.storage.clone()),
            ("LC_ALL".to_owned(), "C".to_owned()),
            ("LVM_SUPPRESS_FD_WARNINGS".to_owned(), "1".to_owned()),
        ];
        let pbs = self.storage.starts_with("pbs");
        let dumpdir = if self.storage == "local" {
            "/var/lib/vz/dump".to_owned()
        } else {
            format!("/mnt/pve/{}/dump", self.storage)
        };
        if !pbs && phase != "job-init" {
            env.push(("DUMPDIR".to_owned(), dumpdir.clone()));
        }
        if let Some(guest) = guest {
            let short = if guest.guest_type == "lxc" {
                "ct"
            } else {
                "vm"
            };
            let started = chrono::Utc
                .timestamp_opt(self.guest_started.min(now), 0)
                .single();
            let iso = started
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            let stamp = started
                .map(|t| t.format("%Y_%m_%d-%H_%M_%S").to_string())
                .unwrap_or_default();
            env.push(("VMTYPE".to_owned(), guest.guest_type.clone()));
            env.push(("HOSTNAME".to_owned(), format!("{short}{}", guest.vmid)));
            if pbs {
                env.push(("TARGET".to_owned(), format!("{short}/{}/{iso}", guest.vmid)));
            } else {
                let base = format!(
                    "{dumpdir}/vzdump-{}-{}-{stamp}",
                    guest.guest_type, guest.vmid
                );
                env.push(("TARGET".to_owned(), format!("{base}.vma.zst")));
                env.push(("LOGFILE".to_owned(), format!("{base}.log")));
            }
        }
        env
    }

    /// Begins guest `self.guest`: its first phases.
    fn start_guest(&mut self, now: i64) {
        let guest = self.guests[self.guest].clone();
        self.guest_started = now;
        self.done_in_guest = 0.0;
        self.guest_failed = false;
        self.log.push(format!(
            "INFO: Starting Backup of VM {} ({})",
            guest.vmid, guest.guest_type
        ));
        let started = self.local_time(now);
        self.log.push(format!("INFO: Backup started at {started}"));
        let phases: &[&str] = if self.mode == "snapshot" {
            &["backup-start", "pre-stop", "pre-restart", "post-restart"]
        } else {
            &["backup-start", "pre-stop"]
        };
        self.guest_phases(phases, &guest, now);
    }

    /// Ends guest `self.guest` at `now`: its last phases and its log lines.
    fn end_guest(&mut self, now: i64) {
        let guest = self.guests[self.guest].clone();
        let phases: &[&str] = if self.mode == "snapshot" {
            &["backup-end"]
        } else {
            &["backup-end", "pre-restart", "post-restart"]
        };
        self.guest_phases(phases, &guest, now);
        if !self.guest_failed {
            let secs = (now - self.guest_started).max(0);
            self.log.push(format!(
                "INFO: Finished Backup of VM {} ({:02}:{:02}:{:02})",
                guest.vmid,
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ));
            let finished = self.local_time(now);
            self.log
                .push(format!("INFO: Backup finished at {finished}"));
        }
        let mode = self.mode.clone();
        let vmid = guest.vmid.to_string();
        if let Err(error) = self.hook_phase(&["log-end", &mode, &vmid], Some(&guest), now) {
            self.warnings += 1;
            self.log.push(format!("WARN: {error}"));
        }
    }

    /// Runs guest phases until one fails; a failure fails the guest (backup-abort runs).
    fn guest_phases(&mut self, phases: &[&str], guest: &Guest, now: i64) {
        if self.guest_failed {
            return;
        }
        let mode = self.mode.clone();
        let vmid = guest.vmid.to_string();
        for phase in phases {
            if let Err(error) = self.hook_phase(&[phase, &mode, &vmid], Some(guest), now) {
                self.guest_failed = true;
                self.failed_guests += 1;
                self.log
                    .push(format!("ERROR: Backup of VM {vmid} failed - {error}"));
                let failed = self.local_time(now);
                self.log.push(format!("INFO: Failed at {failed}"));
                if let Err(abort) =
                    self.hook_phase(&["backup-abort", &mode, &vmid], Some(guest), now)
                {
                    self.warnings += 1;
                    self.log.push(format!("WARN: {abort}"));
                }
                return;
            }
        }
    }
}

/// The hook process: empty environment plus `env`, no PATH.
fn hook_command(script: &Path, args: &[&str], env: &[(String, String)]) -> Command {
    let mut command = Command::new(script);
    command
        .args(args)
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// vzdump's checks before running a hook.
fn check_script(script: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(script)
        .ok()
        .filter(|m| m.is_file())
        .ok_or_else(|| {
            format!(
                "Error: The hook script '{}' does not exist.",
                script.display()
            )
        })?;
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "Error: The hook script '{}' is not executable.",
            script.display()
        ));
    }
    Ok(())
}

fn append_abort(error: String, abort: Result<(), String>) -> String {
    match abort {
        Ok(()) => error,
        Err(more) => format!("{error}\n{more}"),
    }
}

/// Writes the task log and the node's `active` file.
fn write_task(files: &NodeTree, run: &Run, running: &[Upid]) -> Result<()> {
    let path = files.task_log(&run.upid.to_string());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, run.log.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    tasks::write_active(files, running)
}

/// A `started` state whose task is not running here (its worker is gone, e.g.
/// the state came from another pvescheduler): `stopped` with the status the
/// index has for it, else `unexpected status`, as pvescheduler records it.
fn ended_elsewhere(files: &NodeTree, mut state: serde_json::Value) -> Result<serde_json::Value> {
    let upid = state["upid"].as_str().unwrap_or("").to_owned();
    let archived = tasks::read_archive(files)?
        .into_iter()
        .find(|r| r.upid.to_string() == upid)
        .map(|r| r.status.to_string());
    state["state"] = json!("stopped");
    state["msg"] = json!(archived.unwrap_or_else(|| "unexpected status".to_owned()));
    Ok(state)
}

/// "Last run" of a job state: `updated`, else the UPID's start, else `time`.
fn last_run(state: &serde_json::Value) -> i64 {
    if let Some(updated) = state["updated"].as_i64() {
        return updated;
    }
    if let Some(upid) = state["upid"].as_str().and_then(|u| u.parse::<Upid>().ok()) {
        return upid.starttime();
    }
    state["time"].as_i64().unwrap_or(0)
}

fn read_state(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(path: &Path, state: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::cluster_lock::replace_file(path, &state.to_string())
        .with_context(|| format!("cannot write job state {}", path.display()))
}

/// `/etc/vzdump.conf`: `key: value` lines, `#` comments.
fn read_vzdump_conf(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn split_vmids(text: &str) -> Vec<u32> {
    text.split([',', ';', ' ', '\t'])
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn vmid_list(guests: &[Guest]) -> String {
    guests
        .iter()
        .map(|g| g.vmid.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Guests of a node that declares none: the job's own VMIDs when the job is
/// bound to it (or it is the first node), else `<n>00..<n>02` (n = node index + 1).
fn default_guests(index: usize, listed: &[u32], owns_listed: bool) -> Vec<Guest> {
    let qemu = |vmid| Guest {
        vmid,
        guest_type: "qemu".to_owned(),
    };
    if !listed.is_empty() {
        return if owns_listed {
            listed.iter().copied().map(qemu).collect()
        } else {
            Vec::new()
        };
    }
    let base = 100 * (u32::try_from(index).unwrap_or(0) + 1);
    (base..base + 3).map(qemu).collect()
}

/// `/proc/pressure/io` of a node: exponential averages over 10, 60, 300 s
/// of an instantaneous stall share that rises with the runs sharing a storage.
#[derive(Default)]
struct Pressure {
    some: [f64; 3],
    full: [f64; 3],
    some_total_us: f64,
    full_total_us: f64,
}

impl Pressure {
    fn advance(&mut self, sharing: usize, dt: f64) {
        let some = match sharing {
            0 => 0.0,
            n => (10.0 + 25.0 * (n as f64 - 1.0)).min(95.0),
        };
        let full = some * 0.6;
        for (i, window) in [10.0, 60.0, 300.0].into_iter().enumerate() {
            let keep = (-dt / window).exp();
            self.some[i] = self.some[i] * keep + some * (1.0 - keep);
            self.full[i] = self.full[i] * keep + full * (1.0 - keep);
        }
        self.some_total_us += some / 100.0 * dt * 1e6;
        self.full_total_us += full / 100.0 * dt * 1e6;
    }

    fn render(&self) -> String {
        format!(
            "some avg10={:.2} avg60={:.2} avg300={:.2} total={}\nfull avg10={:.2} avg60={:.2} avg300={:.2} total={}\n",
            self.some[0],
            self.some[1],
            self.some[2],
            self.some_total_us.round() as u64,
            self.full[0],
            self.full[1],
            self.full[2],
            self.full_total_us.round() as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_rises_with_sharing_and_decays() {
        let mut pressure = Pressure::default();
        pressure.advance(1, 60.0);
        let alone = pressure.some[1];
        pressure.advance(3, 60.0);
        assert!(pressure.some[1] > alone);
        for _ in 0..30 {
            pressure.advance(0, 60.0);
        }
        assert!(pressure.some[0] < 0.01);
        let text = pressure.render();
        assert!(text.starts_with("some avg10=0.00 avg60="), "{text}");
        assert!(text.contains("\nfull avg10="));
    }

    #[test]
    fn last_run_prefers_updated_then_upid_then_time() {
        let upid = "UPID:pihanga:001402BC:06FD6679:67262CDD:vzdump::root@pam:";
        assert_eq!(last_run(&json!({ "updated": 5, "upid": upid })), 5);
        assert_eq!(last_run(&json!({ "upid": upid, "time": 1 })), 0x67262CDD);
        assert_eq!(last_run(&json!({ "time": 7 })), 7);
    }
}
