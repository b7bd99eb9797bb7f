//! From live host reports to a fleet snapshot, and from a plan back to hosts
//! (PLANNING-MODEL.md, "From a plan to hosts").
//!
//! | file | step |
//! | --- | --- |
//! | `event.rs` | a calendar event, in the host's zone or UTC, as UTC weekdays and one UTC start |
//! | `build.rs` | reports + fleet settings → [`Snapshot`](crate::snapshot::Snapshot), with a note for every job left out, pinned or split |
//! | `write.rs` | a planned start back to a calendar event (`2:35 UTC`, or the host's local time) |
//! | `rollout.rs` | the order in which hosts are written so that no intermediate fleet state overlaps more than the one before |
//!
//! Everything here is pure: the caller hands in the reports, the settings
//! and "now".

mod build;
pub mod event;
pub mod rollout;
mod write;

pub use build::{
    build, FleetSettings, FleetSnapshot, HostSettings, Note, Percentile, PlannedJob,
    ResourceSettings, RunKind,
};
pub use write::{event_for, ScheduleZone, WrittenEvent};
