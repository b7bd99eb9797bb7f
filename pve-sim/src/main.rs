//! `pve-sim`: a simulated Proxmox VE cluster on a real directory tree.
//!
//! `pve-sim init` lays out a host from a fixture directory, `pve-sim serve`
//! answers the PVE HTTPS API (and can run the simulated pvescheduler),
//! `pve-sim scheduler` runs only the scheduler for a stretch of simulated
//! time, and `pve-sim pvesh` answers `pvesh get|set /cluster/backup...`.
//! The directory layout is in `tree.rs`.

mod api;
mod cli;
mod clock;
mod cluster_lock;
mod init;
mod pvesh;
mod scheduler;
mod server;
mod tasks;
mod tls;
mod tree;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::run(cli::Cli::parse())
}
