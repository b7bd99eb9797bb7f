//! The fleet as schedctl sees it: settings from schedctl.toml, reports
//! collected with bounded concurrency, the stored form of a plan (the
//! snapshot it came from, each host's state and the schedules to write), and
//! making and writing plans, for the commands and the coordinator alike.
//!
//! | file | what |
//! | --- | --- |
//! | `collect.rs` | reports from every host at once (at most `concurrency`, each within `timeout-secs`) |
//! | `planned.rs` | [`planned::PlanBody`]: what `plan` stores and `diff`, `apply` and `simulate` read; changes per host; diffs |
//! | `planning.rs` | a plan of the collected fleet within a time limit, stored |
//! | `rollout.rs` | a stored plan written host by host in the safe order, recorded, rolled back on failure |
//! | `writes.rs` | one host's checked write (digest, read back) and its undo |

pub mod collect;
pub mod planned;
pub mod planning;
pub mod rollout;
pub mod writes;

use scheduler_core::fleet::{
    FleetSettings, HostSettings, Percentile, ResourceSettings, ScheduleZone,
};
use scheduler_core::snapshot::Window;

use crate::config::{self, Config};

/// The snapshot builder's settings from the configuration.
pub fn settings(config: &Config) -> FleetSettings {
    let policy = &config.policy;
    FleetSettings {
        slot_minutes: policy.slot_minutes,
        guard_minutes: policy.guard_minutes,
        stability_weight: policy.stability_weight,
        window: match (&policy.window_start, &policy.window_end) {
            (Some(start), Some(end)) => Some(Window {
                start: start.clone(),
                end: end.clone(),
            }),
            _ => None,
        },
        percentile: match policy.duration_percentile {
            config::DurationPercentile::P50 => Percentile::P50,
            config::DurationPercentile::P95 => Percentile::P95,
            config::DurationPercentile::Max => Percentile::Max,
        },
        unknown_duration_minutes: policy.unknown_duration_minutes,
        hosts: config
            .hosts
            .iter()
            .map(|h| HostSettings {
                name: h.name.clone(),
                sensitivity: h.sensitivity,
                capacity: h.capacity,
            })
            .collect(),
        resources: config
            .resources
            .iter()
            .map(|r| ResourceSettings {
                name: r.name.clone(),
                capacity: r.capacity,
                storages: r.storages.clone(),
                impacts: r.impacts.clone(),
            })
            .collect(),
    }
}

/// The zone planned schedules are written in.
pub fn schedule_zone(config: &Config) -> ScheduleZone {
    match config.policy.schedule_zone {
        config::ScheduleZone::Utc => ScheduleZone::Utc,
        config::ScheduleZone::Local => ScheduleZone::Local,
    }
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
