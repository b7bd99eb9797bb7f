//! One module per subcommand; each turns its arguments into output.

pub mod calendar;
pub mod jobs_cfg;
pub mod plan;
pub mod simulate;

use crate::cli::Command;
use crate::exit::CommandResult;

/// Runs the chosen subcommand.
pub fn run(command: Command) -> CommandResult {
    match command {
        Command::Calendar(args) => calendar::run(&args),
        Command::JobsCfg(command) => jobs_cfg::run(&command),
        Command::Plan(args) => plan::run(&args),
        Command::Simulate(args) => simulate::run(&args),
    }
}
