//! `pve-sim`: a simulated Proxmox VE cluster on a real directory tree.
//!
//! `pve-sim init` lays out a host from a fixture directory, `pve-sim serve`
//! answers the PVE HTTPS API (and can run the simulated pvescheduler),
//! `pve-sim scheduler` runs only the scheduler for a stretch of simulated
//! time, and `pve-sim pvesh` answers `pvesh get|set /cluster/backup...`.
//!
//! The directory layout (`tree.rs`):
//!
//! ```text
//! <root>/pve-sim.json                         nodes + zones + guests, token, version, boot time, run lengths
//! <root>/etc/pve/jobs.cfg                     cluster-wide jobs file (what pmxcfs holds)
//! <root>/etc/pve/priv/lock/                   cluster locks (mkdir/rmdir directories)
//! <root>/etc/pve/local/pve-ssl.{pem,key}      the API certificate and key
//! <root>/nodes/<node>/etc/pve                 -> ../../../etc/pve
//! <root>/nodes/<node>/etc/vzdump.conf         node-local vzdump defaults (`script:` hook, `lockwait:`)
//! <root>/nodes/<node>/var/log/pve/tasks/      index, index.1, active, <X>/<UPID> task logs
//! <root>/nodes/<node>/var/lib/pve-manager/jobs/vzdump-<id>.json   job states
//! <root>/nodes/<node>/proc/pressure/io        simulated I/O pressure
//! ```
//!
//! | file | role |
//! | --- | --- |
//! | `cli.rs` | the subcommands |
//! | `tree.rs` | paths and `pve-sim.json` |
//! | `init.rs` | laying out a tree from fixtures |
//! | `cluster_lock.rs` | pmxcfs lock directories and atomic replace |
//! | `api/` | the HTTPS API: router, token check, one file per endpoint group |
//! | `server.rs`, `tls.rs` | TLS listener, certificate and fingerprint |
//! | `pvesh.rs` | `pvesh get|set` on the same handlers |
//! | `scheduler.rs` | the simulated pvescheduler and vzdump runs |
//! | `tasks.rs` | task record files |
//! | `clock.rs` | simulated time with a speed-up |

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
