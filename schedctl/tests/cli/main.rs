//! `schedctl` run as a user runs it: the built binary, its stdout, stderr and
//! exit code. One test binary with a module per subcommand (one link step).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod calendar;
mod fleet;
mod jobs_cfg;
mod plan;
mod serve;
mod simulate;
