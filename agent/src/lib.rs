//! `sched-agent`: Stagger's per-host daemon, as a library so tests reach its parts.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`config`] | `/etc/stagger/agent.toml`: every path and setting, unknown keys refused |
#![warn(missing_docs)]

pub mod config;
