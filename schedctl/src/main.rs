//! `schedctl`: Stagger's admin CLI.
//!
//! parse → run → exit code. `--config` names the fleet configuration. Every
//! command returns a [`exit::CommandError`] that carries its exit code, so
//! `main` only prints and exits.
//!
//! | module | what it holds |
//! | --- | --- |
//! | `cli` | the clap types; their doc comments are the `--help` text |
//! | `commands` | one file per subcommand |
//! | `config` | schedctl.toml: hosts and their transports, resources, policy |
//! | `fleet` | collection with bounded concurrency, the stored plan, checked writes and undos |
//! | `store` | SQLite: plans, applies per host, rollbacks, lease events |
//! | `transport` | the agent API, SSH + pvesh, the Proxmox API |
//! | `timeline` | the week's backup timeline (SVG, status page) |
//! | `output`, `exit` | what is printed, and the exit codes |

mod cli;
mod commands;
mod config;
mod coordinator;
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
