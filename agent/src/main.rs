//! `sched-agent`: parse the command line, run the subcommand, exit.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Stagger's per-host daemon for Proxmox VE.
#[derive(Debug, Parser)]
#[command(name = "sched-agent", version, propagate_version = true)]
struct Cli {
    /// The agent's configuration file.
    #[arg(long, global = true, default_value = sched_agent::config::DEFAULT_PATH)]
    config: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration file and print it with every default filled in.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig => match sched_agent::config::Config::load(&cli.config) {
            Ok(config) => {
                println!("{config:#?}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
        },
    }
}
