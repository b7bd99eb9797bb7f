//! `schedctl jobs-cfg`: read and edit /etc/pve/jobs.cfg losslessly.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::exit::CommandResult;
use crate::output::Format;

/// The `jobs-cfg` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCfgCommand {
    /// Show the jobs Proxmox sees in a jobs.cfg, its warnings and what a Proxmox write would make of it.
    Show(ShowArgs),
    /// Change one job's schedule, byte for byte nothing else.
    SetSchedule(SetScheduleArgs),
}

/// Arguments of `jobs-cfg show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The jobs.cfg to read (usually /etc/pve/jobs.cfg).
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Arguments of `jobs-cfg set-schedule`.
#[derive(Debug, Args)]
pub struct SetScheduleArgs {
    /// The jobs.cfg to edit.
    pub file: PathBuf,
    /// The job's id (the `vzdump: <id>` header).
    pub job_id: String,
    /// The new calendar event, e.g. `02:35 UTC`.
    pub event: String,
    /// Refuse unless the file's SHA-1 is this digest (the one your plan was made from).
    #[arg(long, value_name = "SHA1")]
    pub expect_digest: Option<String>,
    /// Replace FILE atomically instead of printing the edited file.
    #[arg(long)]
    pub in_place: bool,
}

/// Runs a `jobs-cfg` subcommand.
pub fn run(_command: &JobsCfgCommand) -> CommandResult {
    Err(crate::exit::bad_input(anyhow::anyhow!(
        "jobs-cfg: not built yet"
    )))
}
