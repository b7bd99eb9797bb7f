//! `schedctl`: Stagger's admin CLI.
//!
//! parse → run → exit code. `--config` names the fleet configuration. Every command returns a [`CommandError`] that
//! carries its exit code, so `main` only prints and exits.

mod cli;
mod commands;
mod config;
mod exit;
mod fleet;
mod output;
mod store;
mod timeline;
mod transport;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}
