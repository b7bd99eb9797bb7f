//! One module per subcommand; each turns its arguments into output.

pub mod calendar;
pub mod demo;
pub mod jobs_cfg;
pub mod plan;
pub mod serve;
pub mod simulate;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::config;
use crate::exit::CommandResult;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> CommandResult {
    let config_path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    match cli.command {
        Command::Serve(args) => serve::run(&config_path, &args),
        Command::Calendar(args) => calendar::run(&args),
        Command::JobsCfg(command) => jobs_cfg::run(&command),
        Command::Plan(args) => plan::run(&args),
        Command::Simulate(args) => simulate::run(&args),
    }
}
