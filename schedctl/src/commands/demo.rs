//! `schedctl demo`: the origin story end to end, on 127.0.0.1.
//!
//! Three simulated Proxmox hosts (`pve-sim`) with two weeks of backups made
//! by their own simulated pvescheduler, their agents (`sched-agent`, the
//! vzdump hook installed) and the coordinator (`schedctl serve`), all real
//! processes in a temporary directory. Then, with the admin's own commands:
//! the storm before (`schedctl simulate`), the coordinator's plan and why,
//! the jobs.cfg diffs (`schedctl diff`), the apply through the agents
//! (`schedctl apply`), the storm after, and one night run live by the
//! simulated pvescheduler, each backup's hook asking the coordinator for its
//! lease. Everything is stopped and removed at the end, on Ctrl-C too.
//!
//! | file | what |
//! | --- | --- |
//! | `fleet.rs` | the three hosts as pve-sim trees, their history and load |
//! | `daemons.rs` | the daemons: Proxmox API, agents, coordinator |
//! | `procs.rs` | the processes and the directory, cleaned up on exit and on signals |
//! | `show.rs` | timelines and words from the commands' answers |

mod daemons;
pub mod fleet;
mod procs;
mod show;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde_json::Value;

use crate::exit::{bad_input, CommandResult};
use crate::output;
use crate::store::Store;
use daemons::{stdout_of, Binaries};
use fleet::{DemoHost, HostTree};
use procs::Demo;

/// Replay the origin story end to end on simulated Proxmox hosts.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Nights of backup history the simulated hosts make before the demo starts (1 to 28).
    #[arg(long, value_name = "N", default_value_t = 14)]
    pub nights: usize,
}

/// Runs `schedctl demo`.
pub fn run(args: &DemoArgs) -> CommandResult {
    if !(1..=28).contains(&args.nights) {
        return Err(bad_input(anyhow::anyhow!(
            "--nights {}: give 1 to 28 nights of history",
            args.nights
        )));
    }
    let binaries = Binaries::beside_this().map_err(bad_input)?;
    let demo = Demo::new()?;
    procs::clean_up_on_signal(&demo)?;
    let started = Instant::now();
    let result = story(&demo, &binaries, args.nights);
    let dir = demo.dir().display().to_string();
    demo.clean_up();
    if procs::INTERRUPTED.load(Ordering::SeqCst) {
        std::process::exit(130);
    }
    result?;
    say(&format!(
        "\nDone in {:.0} s. Every process the demo started is stopped and {dir} is removed.\n",
        started.elapsed().as_secs_f64()
    ))?;
    Ok(())
}

/// Prints `text`, unless a signal stopped the demo (what follows it would be the signal's doing).
fn say(text: &str) -> Result<()> {
    procs::interrupted()?;
    Ok(output::print_text(text)?)
}

fn heading(number: u32, title: &str, command: &str) -> Result<()> {
    procs::interrupted()?;
    let mut text = format!("\n{number}. {title}\n");
    if !command.is_empty() {
        let _ = writeln!(text, "   $ {command}");
    }
    say(&text)
}

fn story(demo: &Demo, bin: &Binaries, nights: usize) -> Result<()> {
    let hosts = fleet::origin()?;
    say(&format!(
        "Stagger demo: the origin story, end to end, on 127.0.0.1 (in {}).\n\n\
         Three Proxmox VE hosts back up to one Proxmox Backup Server datastore ({}): hikurangi at\n\
         02:00, ruapehu at 02:20 and pihanga at 02:45 UTC. Pihanga runs the VMs of the monit\n\
         Kubernetes cluster: it is busy 02:30-03:30 and suffers most from backup I/O (sensitivity\n\
         3); its kube-state-metrics crash-looped every night, even after the hand-made stagger.\n",
        demo.dir().display(),
        fleet::STORAGE
    ))?;

    heading(
        1,
        "The fleet: simulated hosts with real agents and a coordinator",
        "",
    )?;
    let today = crate::fleet::now().div_euclid(86_400) * 86_400;
    let trees = fleet::lay_out(&demo.dir().join("hosts"), &bin.pve_sim, &hosts)?;
    fleet::run_history(&trees, &bin.pve_sim, nights, today)?;
    let running = daemons::start(demo, bin, &trees)?;
    let status = wait_for_history(&running.config, &trees)?;
    say(&fleet_lines(&hosts, &running, &status, nights))?;

    let plan_id = wait_for_the_coordinators_plan(&running.config)?;

    heading(
        2,
        &format!("The storm before: {nights} noisy nights under today's schedule"),
        &format!("schedctl simulate --nights {nights}"),
    )?;
    let before = simulate(&running.config, nights)?;
    let loads: Vec<(String, Vec<f64>)> = hosts
        .iter()
        .map(|h| (h.name.clone(), h.load.clone()))
        .collect();
    let before_rows = show::rows(&before, &loads);
    let refs: Vec<&show::Row> = before_rows.iter().collect();
    let labelled: Vec<(&str, &show::Row)> =
        before_rows.iter().map(|r| (r.host.as_str(), r)).collect();
    say(&show::timeline(&labelled, show::span(&refs)))?;
    say(&format!("{}\n", show::LEGEND))?;
    say(&words(&show::storm_words(&before)))?;

    heading(
        3,
        &format!("The plan, and why (plan {plan_id}, made by the coordinator at its first round)"),
        "schedctl diff --format json",
    )?;
    let diff: Value =
        serde_json::from_str(&schedctl(&running.config, &["diff", "--format", "json"])?)
            .context("schedctl diff answered no JSON")?;
    say(&plan_lines(&hosts, &diff))?;

    heading(4, "What changes in each jobs.cfg", "schedctl diff")?;
    say(&indent(&schedctl(&running.config, &["diff"])?))?;

    heading(
        5,
        "The apply, host by host through the agents",
        "schedctl apply --yes",
    )?;
    say(&indent(&schedctl(&running.config, &["apply", "--yes"])?))?;

    heading(
        6,
        &format!("The storm after: the same {nights} nights under the new schedule"),
        &format!("schedctl simulate --nights {nights}"),
    )?;
    let after = simulate(&running.config, nights)?;
    let after_rows = show::rows(&after, &loads);
    let all: Vec<&show::Row> = before_rows.iter().chain(&after_rows).collect();
    let span = show::span(&all);
    let mut pairs: Vec<(String, &show::Row)> = Vec::new();
    for (old, new) in before_rows.iter().zip(&after_rows) {
        pairs.push((format!("{} before", old.host), old));
        pairs.push((format!("{} after", new.host), new));
    }
    let labelled: Vec<(&str, &show::Row)> = pairs.iter().map(|(l, r)| (l.as_str(), *r)).collect();
    say(&show::timeline(&labelled, span))?;
    say(&format!("{}\n", show::LEGEND))?;
    say(&words(&show::storm_words(&after)))?;
    say(&comparison(&before, &after, &hosts))?;

    heading(
        7,
        "One night live: the simulated pvescheduler runs the new schedule",
        "pve-sim scheduler (each backup's vzdump hook asks the coordinator for its lease)",
    )?;
    say(&live_night(bin, &trees, &running.store, today, span)?)?;
    Ok(())
}

/// Waits until every agent reports its job's history (the agents read the
/// task records when they start); returns `schedctl status --format json`.
fn wait_for_history(config: &Path, trees: &[HostTree]) -> Result<Value> {
    let started = Instant::now();
    loop {
        let output = Command::new(std::env::current_exe()?)
            .arg("--config")
            .arg(config)
            .args(["status", "--format", "json", "--risk-nights", "0"])
            .output()?;
        if let Ok(status) = serde_json::from_slice::<Value>(&output.stdout) {
            let complete = trees.iter().all(|tree| {
                status["hosts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|h| h["host"] == tree.host.name.as_str())
                    .and_then(|h| h["jobs"].as_array())
                    .is_some_and(|jobs| {
                        jobs.iter()
                            .all(|j| j["reserved_minutes"].is_number() && j["last_run"].is_object())
                    })
            });
            if complete {
                return Ok(status);
            }
        }
        procs::interrupted()?;
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "the agents did not report their backup history within 30 s: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the plan the coordinator makes at its first round (there is none yet).
fn wait_for_the_coordinators_plan(config: &Path) -> Result<i64> {
    let started = Instant::now();
    loop {
        let history: Value =
            serde_json::from_str(&schedctl(config, &["history", "--format", "json"])?)
                .context("schedctl history answered no JSON")?;
        let plan = history["plans"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["created_by"] == crate::coordinator::rounds::SERVE_USER);
        if let Some(id) = plan.and_then(|p| p["id"].as_i64()) {
            return Ok(id);
        }
        procs::interrupted()?;
        if started.elapsed() > Duration::from_secs(45) {
            bail!("the coordinator made no plan within 45 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `schedctl --config CONFIG args...`, which must succeed; its stdout.
fn schedctl(config: &Path, args: &[&str]) -> Result<String> {
    procs::interrupted()?;
    stdout_of(
        Command::new(std::env::current_exe()?)
            .arg("--config")
            .arg(config)
            .args(args),
    )
}

fn simulate(config: &Path, nights: usize) -> Result<Value> {
    let nights = nights.to_string();
    let text = schedctl(
        config,
        &["simulate", "--nights", &nights, "--format", "json"],
    )?;
    serde_json::from_str(&text).context("schedctl simulate answered no JSON")
}

fn fleet_lines(
    hosts: &[DemoHost],
    running: &daemons::Fleet,
    status: &Value,
    nights: usize,
) -> String {
    let mut out = format!(
        "   {nights} nights of backups, run by each host's simulated pvescheduler; the runs drift\n   from night to night, Pihanga's grows. The agents read them from the task records.\n\n"
    );
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    for (host, daemons) in hosts.iter().zip(&running.hosts) {
        let job = status["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["host"] == host.name.as_str())
            .and_then(|h| h["jobs"].get(0));
        let last = job
            .and_then(|j| j["last_run"]["duration_secs"].as_f64())
            .map_or_else(|| "?".to_owned(), |s| format!("{:.0}", s / 60.0));
        let reserved = job
            .and_then(|j| j["reserved_minutes"].as_f64())
            .map_or_else(|| "?".to_owned(), |m| format!("{m:.0}"));
        let _ = writeln!(
            out,
            "   {:width$}  {} at {}: last run {last} min, a plan reserves {reserved} min (p95)\n   {:width$}  Proxmox API {}   agent {}",
            host.name, host.job, host.start, "", daemons.api_url, daemons.agent_url
        );
    }
    let _ = writeln!(
        out,
        "\n   coordinator (schedctl serve) {}: collects the agents every 2 s, plans,\n   and serves the lease service the agents' vzdump hooks ask before a backup starts.",
        running.coordinator_url
    );
    out
}

fn plan_lines(hosts: &[DemoHost], diff: &Value) -> String {
    let mut out = String::new();
    let changed: Vec<&Value> = diff["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|h| h["changes"].as_array().into_iter().flatten())
        .collect();
    for host in hosts {
        match changed.iter().find(|c| c["job"] == host.job.as_str()) {
            Some(change) => {
                let _ = writeln!(
                    out,
                    "   {:<17} {} -> {:<9}  {}",
                    host.job,
                    change["from"].as_str().unwrap_or("?"),
                    change["to"].as_str().unwrap_or("?"),
                    change["why"].as_str().unwrap_or("")
                );
            }
            None => {
                let _ = writeln!(out, "   {:<17} keeps {}", host.job, host.start);
            }
        }
    }
    out.push_str(
        "   Each job gets the p95 of its runs plus a 5 minute guard on the datastore, which takes\n   one backup at a time, in the hours when its own host and the hosts it disturbs are quietest.\n",
    );
    out
}

fn comparison(before: &Value, after: &Value, hosts: &[DemoHost]) -> String {
    let mut out = String::new();
    for host in hosts {
        let (was, now) = (
            show::storm_minutes(before, &host.name),
            show::storm_minutes(after, &host.name),
        );
        if was > 0.0 || now > 0.0 {
            let _ = writeln!(
                out,
                "   {}: {now:.0} storm minutes a night, was {was:.0}.",
                host.name
            );
        }
    }
    let (now, was) = (
        show::nights_with_overlap(after),
        show::nights_with_overlap(before),
    );
    let _ = writeln!(
        out,
        "   Nights with backups overlapping on the datastore: {now}, was {was}."
    );
    if now > 0 {
        out.push_str(
            "   On those nights a run outlasts its reservation; then the next backup's vzdump hook\n   waits for its lease until the datastore is free, instead of piling on.\n",
        );
    }
    out
}

/// Real seconds the live night takes.
const LIVE_NIGHT_SECS: i64 = 5;

/// One more night on every host, run by `pve-sim scheduler` with the hooks
/// installed, over the minutes `(from, to)` of the day; what ran when, and
/// what the coordinator's lease service did.
///
/// The three hosts are three processes with three simulated clocks, and
/// the leases live in real time: the night runs slowly enough (in about
/// five seconds) that the hosts' clocks and the hooks' calls stay far
/// closer together than the plan's runs are apart.
fn live_night(
    bin: &Binaries,
    trees: &[HostTree],
    store: &Path,
    today: i64,
    (from, to): (u32, u32),
) -> Result<String> {
    let (start, end) = (today + i64::from(from) * 60, today + i64::from(to) * 60);
    let speed = ((end - start) / LIVE_NIGHT_SECS).max(1).to_string();
    let mut running = Vec::new();
    for tree in trees {
        let child = Command::new(&bin.pve_sim)
            .arg("scheduler")
            .arg("--root")
            .arg(&tree.root)
            .args(["--speed", &speed])
            .arg("--now")
            .arg(start.to_string())
            .arg("--until")
            .arg(end.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", bin.pve_sim.display()))?;
        running.push((tree, child));
    }
    for (tree, child) in running {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "pve-sim scheduler for {} failed: {}",
                tree.host.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    let events = lease_events(store)?;
    let mut out = String::new();
    for tree in trees {
        let index = std::fs::read_to_string(fleet::task_index(tree)).unwrap_or_default();
        let last = index
            .lines()
            .filter_map(|l| pve_api::tasks::parse_index_line(l).ok())
            .max_by_key(|r| r.upid.starttime());
        let ran = last.map_or_else(
            || "no run".to_owned(),
            |r| {
                let start = r.upid.starttime();
                let end = r.end.unwrap_or(start);
                format!(
                    "{} {}-{} ({})",
                    tree.host.job,
                    clock(start),
                    clock(end),
                    r.status
                )
            },
        );
        let happened = |event: &str| {
            events
                .iter()
                .any(|e| e.host == tree.host.name && e.event == event)
        };
        let lease = match (happened("granted"), happened("queued")) {
            (true, false) => "its lease was granted at once",
            (true, true) => "its lease was granted after a wait",
            (false, _) => "no lease asked (the hook let the backup go)",
        };
        let released = happened("released");
        let _ = writeln!(
            out,
            "   {:<10} {ran}; {lease}{}",
            tree.host.name,
            if released {
                ", released at job-end"
            } else {
                ""
            }
        );
    }
    let waited = events.iter().filter(|e| e.event == "queued").count();
    let _ = writeln!(
        out,
        "   The coordinator granted {} lease(s); {waited} backup(s) had to wait for a shared resource.",
        events.iter().filter(|e| e.event == "granted").count()
    );
    Ok(out)
}

/// The lease events in the coordinator's store, oldest first (the hooks' last
/// calls may still be on their way: wait a little for each host's release).
fn lease_events(store: &Path) -> Result<Vec<crate::store::LeaseEvent>> {
    let store = Store::open(store)?;
    let started = Instant::now();
    loop {
        let mut events = store.lease_events(100)?;
        events.reverse();
        let granted = events.iter().filter(|e| e.event == "granted").count();
        let released = events.iter().filter(|e| e.event == "released").count();
        if (granted > 0 && released >= granted) || started.elapsed() > Duration::from_secs(5) {
            return Ok(events);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `HH:MM` UTC of a Unix time.
fn clock(secs: i64) -> String {
    let minute = secs.rem_euclid(86_400) / 60;
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn words(lines: &[String]) -> String {
    lines.iter().map(|l| format!("   {l}\n")).collect()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("   {l}\n")
            }
        })
        .collect()
}
