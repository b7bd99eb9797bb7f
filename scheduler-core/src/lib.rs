//! The pure core of Stagger.
//!
//! Everything here works on values handed in by the caller: text, numbers and
//! "now". Nothing in this crate reads a clock, opens a socket or writes a file;
//! the `sched-agent` and `schedctl` binaries do that at the edges.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`calendar`] | Proxmox calendar events (`mon..fri 02:00`, `*/15`, `daily`): parse, print, next runs in a time zone |
//! | [`jobs_cfg`] | a lossless codec for `/etc/pve/jobs.cfg`, Proxmox's own reading of it, edits and the text a Proxmox write produces |
//! | [`snapshot`] | the fleet snapshot: serde types, `validate()` listing every bad field path, the index-based model |
//! | [`plan`] | the plan: start times per job with overflow, cost and moves |
//! | [`planner`] | the planner: minimal overflow first, then minimal cost |
//! | [`history`] | duration statistics of past backup runs: p50, p95, max, trend |
//! | [`load`] | the weekly I/O load profile: 2016 five-minute UTC slots, weighted over weeks |
//! | [`report`] | the wire contract of the agent API and the lease service: reports, applies, rollbacks, leases |
//! | [`sim`] | the storm simulator: replays noisy nights under a schedule, reports storm minutes and overlaps |
//! | [`fleet`] | from live host reports to a snapshot (calendar events to UTC days and starts, durations, resources) and from a plan back to calendar events; the rollout order of an apply |
//! | [`error`] | the crate's error type, wrapping each module's own |
#![warn(missing_docs)]

pub mod calendar;
pub mod error;
pub mod fleet;
pub mod history;
pub mod jobs_cfg;
pub mod load;
pub mod plan;
pub mod planner;
pub mod report;
pub mod sim;
pub mod snapshot;

pub use error::Error;
