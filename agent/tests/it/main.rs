//! sched-agent's integration tests: the built binary, started by each test on
//! 127.0.0.1 against real files in a temp dir (or a `pve-sim` tree), real
//! Prometheus and promtool. One test binary with modules keeps builds fast.
//!
//! The `sim` tests run `pve-sim`, which must be built first:
//! `cargo build -p pve-sim` (scripts/test does).

mod api;
mod cli;
mod config_example;
mod crash;
mod hook;
mod jobs_file;
mod prometheus;
mod sampler;
mod sim;
mod support;
