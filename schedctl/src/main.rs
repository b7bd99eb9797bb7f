//! `schedctl`: Stagger's admin CLI.
//!
//! parse → run → exit code. Every command returns a [`CommandError`] that
//! carries its exit code, so `main` only prints and exits.

mod cli;
mod commands;
mod config;
mod exit;
mod output;
mod timeline;
mod transport;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}
