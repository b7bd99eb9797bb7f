//! The command line: clap types whose doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;

/// Stagger ends backup I/O storms on Proxmox VE fleets.
///
/// schedctl reads Proxmox calendar events and /etc/pve/jobs.cfg exactly as
/// Proxmox does, collects the fleet's jobs, runs and load, plans
/// non-overlapping backup windows, writes them host by host with rollback,
/// and shows what a schedule does to I/O storms.
///
/// Exit codes: 0 done, 1 failure, 2 bad input, 3 refused (stale or unsafe).
#[derive(Debug, Parser)]
#[command(name = "schedctl", version, propagate_version = true)]
pub struct Cli {
    /// The fleet configuration (hosts, transports, resources, policy); default /etc/stagger/schedctl.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every host: reachable?, its jobs and schedules, next and last runs, I/O pressure; the fleet's overlap risk.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(commands::status::StatusArgs),
    /// Plan backup start times for the live fleet (or a snapshot file) and store the plan.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(commands::plan::PlanArgs),
    /// Show the unified diff each host's jobs.cfg would get from a stored plan.
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(commands::diff::DiffArgs),
    /// Write a stored plan host by host, digest-checked, rolling back on any failure.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(commands::apply::ApplyArgs),
    /// Undo an apply: put every host it wrote back as it was.
    #[command(after_help = ROLLBACK_EXAMPLES)]
    Rollback(commands::rollback::RollbackArgs),
    /// Plans, applies and rollbacks: who, when, what.
    #[command(after_help = HISTORY_EXAMPLES)]
    History(commands::history::HistoryArgs),
    /// Replay noisy nights under the current starts or a plan: storm minutes per host, overlaps, the worst night.
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(commands::simulate::SimulateArgs),
    /// Parse a Proxmox calendar event and show when it fires next.
    #[command(after_help = CALENDAR_EXAMPLES)]
    Calendar(commands::calendar::CalendarArgs),
    /// Read and edit /etc/pve/jobs.cfg without losing a byte.
    #[command(name = "jobs-cfg", subcommand)]
    JobsCfg(commands::jobs_cfg::JobsCfgCommand),
    /// Replay the origin story end to end: simulated Proxmox hosts, real agents and a coordinator, the storm before, the plan, the apply, the storm after.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(commands::demo::DemoArgs),
    /// Run the coordinator: collect, plan on drift, the lease service for the vzdump hook, /metrics and the status page, until SIGTERM.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(commands::serve::ServeArgs),
}

const STATUS_EXAMPLES: &str = "\
Examples:
  schedctl status
  schedctl status --config ./schedctl.toml --format json | jq '.hosts[] | select(.reachable | not)'
  schedctl status --host pihanga --host ruapehu

Exit 1 when a host could not be reached (the table names it, what failed and
what to do); the other hosts are shown all the same.";

const CALENDAR_EXAMPLES: &str = "\
Examples:
  schedctl calendar 'mon..fri 02:00' --iterations 5 --tz Pacific/Auckland
  schedctl calendar '*/15' --after 2024-11-02T10:00:00Z --iterations 3
  schedctl calendar 'sat 03:30 UTC' --after @1730541600 --format json

Proxmox evaluates an event without the UTC suffix in the node's local zone;
'25:00' is minute 25 of every hour, not 01:00 (Proxmox's parser does the same).";

const PLAN_EXAMPLES: &str = "\
Examples:
  schedctl plan                                  # collect every host, plan, store the plan
  schedctl plan --save-snapshot fleet.json       # ... and keep the snapshot it was made from
  schedctl plan --skip-unreachable               # plan without the hosts that do not answer
  schedctl plan --snapshot fleet.json
  schedctl plan --snapshot fleet.json --format json > plan.json
  schedctl plan --snapshot fleet.json --time-limit 2 --seed 7

The snapshot format is PLANNING-MODEL.md. Exit 0 also when no plan avoids
overflow (\"feasible\": false, with the least overflow); exit 2 for a bad snapshot
or configuration; exit 1 when a host cannot be reached (unless --skip-unreachable).
A live plan is stored (schedctl history lists it); review it with
`schedctl diff`, write it with `schedctl apply`.";

const DIFF_EXAMPLES: &str = "\
Examples:
  schedctl diff              # the latest plan
  schedctl diff 12
  schedctl diff 12 --format json

Over SSH and the Proxmox API, Proxmox writes the file itself and renormalises
all of it (comments, unknown keys and hand formatting go): the diff shows that.";

const APPLY_EXAMPLES: &str = "\
Examples:
  schedctl apply --dry-run         # what would be written, in which order; writes nothing
  schedctl apply                   # the latest plan; asks before writing
  schedctl apply 12 --yes          # no question (scripts)

Before the first write every host is asked again: if jobs.cfg changed on any
host since the plan (its digest differs), nothing is written and the exit code
is 3. Hosts are written one at a time, in an order in which no intermediate
state of the fleet overlaps more than the one before; each write is checked
against the digest and read back. If a write fails, the hosts already written
are rolled back and every host's state is printed (exit 1).";

const ROLLBACK_EXAMPLES: &str = "\
Examples:
  schedctl rollback          # the latest apply that wrote something
  schedctl rollback 7 --yes

A host whose jobs.cfg changed after the apply is not touched (exit 3): its
current state is printed instead.";

const HISTORY_EXAMPLES: &str = "\
Examples:
  schedctl history
  schedctl history --limit 5 --format json";

const SIMULATE_EXAMPLES: &str = "\
Examples:
  schedctl simulate                            # the live fleet, current schedules
  schedctl simulate --plan-id 12               # a stored plan against its fleet's current starts
  schedctl simulate --snapshot fleet.json --nights 28
  schedctl simulate --snapshot fleet.json --plan plan.json --format json";

const SERVE_EXAMPLES: &str = "\
Examples:
  schedctl serve                                  # /etc/stagger/schedctl.toml, [serve] section
  schedctl serve --config ./schedctl.toml
  schedctl serve --fingerprint                    # the value the agents pin

Every collect-interval-secs it collects every host (like `schedctl status`),
fills the metrics, and plans again (`schedctl plan`) when there is no plan or
a job's reserved duration or a host's load drifted by more than
policy.replan-drift; with approval = \"auto\" it applies the plan
(`schedctl apply --yes`), else the plan waits for an admin. A jobs.cfg edited
by hand is not planned over: it shows as stagger_jobs_cfg_drift.

Routes: GET / (the status page; token, or a browser on this machine),
POST /v1/lease and /v1/lease/release (the vzdump hook), GET /metrics
(Prometheus), GET /healthz; all but /healthz need `Authorization: Bearer
<token>` with the token of [serve] token-file. A request waits at most
min(wait_secs, 60) s for its grant; asking again with the same host, job and
start keeps its place in the queue. Once bound it prints `listening: URL`.
Exit 2 for a bad configuration or token file, 1 when the port cannot be bound.";

const DEMO_EXAMPLES: &str = "\
Examples:
  schedctl demo                 # the README's first command (./scripts/demo builds and runs it)
  schedctl demo --nights 7

Everything runs on 127.0.0.1 in a temporary directory: three pve-sim hosts
(hikurangi, ruapehu, pihanga) with their backup history, a sched-agent on
each with the vzdump hook installed, and `schedctl serve`. pve-sim and
sched-agent must lie beside schedctl (cargo build --release -p pve-sim -p
sched-agent). Every process is stopped and the directory removed at the end,
also on Ctrl-C (exit 130). Needs no configuration and touches nothing else.";
