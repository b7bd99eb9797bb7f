//! The command line: clap types whose doc comments are the `--help` text.

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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a Proxmox calendar event and show when it fires next.
    Calendar(commands::calendar::CalendarArgs),
    /// Read and edit /etc/pve/jobs.cfg without losing a byte.
    #[command(name = "jobs-cfg", subcommand)]
    JobsCfg(commands::jobs_cfg::JobsCfgCommand),
    /// Plan backup start times for a fleet snapshot: least overlap, then least load and moves.
    Plan(commands::plan::PlanArgs),
    /// Replay noisy nights under the current starts or a plan: storm minutes per host, overlaps, the worst night.
    Simulate(commands::simulate::SimulateArgs),
}
