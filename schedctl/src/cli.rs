//! The command line: clap types whose doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;

/// Stagger ends backup I/O storms on Proxmox VE fleets.
///
/// schedctl reads Proxmox calendar events and /etc/pve/jobs.cfg exactly as
/// Proxmox does, plans non-overlapping backup windows for a fleet and shows
/// what a schedule does to I/O storms.
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
    /// Parse a Proxmox calendar event and show when it fires next.
    #[command(after_help = CALENDAR_EXAMPLES)]
    Calendar(commands::calendar::CalendarArgs),
    /// Read and edit /etc/pve/jobs.cfg without losing a byte.
    #[command(name = "jobs-cfg", subcommand)]
    JobsCfg(commands::jobs_cfg::JobsCfgCommand),
    /// Plan backup start times for a fleet snapshot: least overlap, then least load and moves.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(commands::plan::PlanArgs),
    /// Replay noisy nights under the current starts or a plan: storm minutes per host, overlaps, the worst night.
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(commands::simulate::SimulateArgs),
    /// Run the coordinator: the lease service for the vzdump hook and /metrics, until SIGTERM.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(commands::serve::ServeArgs),
}

const CALENDAR_EXAMPLES: &str = "\
Examples:
  schedctl calendar 'mon..fri 02:00' --iterations 5 --tz Pacific/Auckland
  schedctl calendar '*/15' --after 2024-11-02T10:00:00Z --iterations 3
  schedctl calendar 'sat 03:30 UTC' --after @1730541600 --format json

Proxmox evaluates an event without the UTC suffix in the node's local zone;
'25:00' is minute 25 of every hour, not 01:00 (Proxmox's parser does the same).";

const PLAN_EXAMPLES: &str = "\
Examples:
  schedctl plan --snapshot fleet.json
  schedctl plan --snapshot fleet.json --format json > plan.json
  schedctl plan --snapshot fleet.json --time-limit 2 --seed 7

The snapshot format is PLANNING-MODEL.md. Exit 0 also when no plan avoids
overflow (\"feasible\": false, with the least overflow); exit 2 for a bad snapshot.";

const SIMULATE_EXAMPLES: &str = "\
Examples:
  schedctl simulate --snapshot fleet.json --nights 28
  schedctl simulate --snapshot fleet.json --plan plan.json --format json";

const SERVE_EXAMPLES: &str = "\
Examples:
  schedctl serve                                  # /etc/stagger/schedctl.toml, [serve] section
  schedctl serve --config ./schedctl.toml
  schedctl serve --fingerprint                    # the value agents pin in [coordinator] fingerprint

Routes: POST /v1/lease and /v1/lease/release (the vzdump hook), GET /metrics
(Prometheus), GET /healthz; all but /healthz need `Authorization: Bearer
<token>` with the token of [serve] token-file. A request waits at most
min(wait_secs, 60) s for its grant; asking again with the same host, job and
start keeps its place in the queue. Exit 2 for a bad configuration or token
file, 1 when the port cannot be bound.";
