//! The stored form of a plan and what is derived from it: the schedules each
//! host gets, and the jobs.cfg diff each host would see.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use scheduler_core::fleet::{self, FleetSnapshot, RunKind, ScheduleZone};
use scheduler_core::jobs_cfg::JobsCfg;
use scheduler_core::plan::Plan;
use scheduler_core::report::{HostReport, ScheduleChange};
use serde::{Deserialize, Serialize};

use crate::config::TransportKind;

/// Everything a stored plan holds (the `body` of a `plans` row).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanBody {
    /// When the reports were collected, Unix seconds.
    pub made_at: i64,
    /// `utc` or `local`.
    pub schedule_zone: String,
    /// The snapshot, what each of its jobs stands for, and the builder's notes.
    pub fleet: FleetSnapshot,
    /// The planner's answer.
    pub plan: Plan,
    /// Each host that reported, in configuration order (empty for a plan of a snapshot file).
    pub hosts: Vec<HostState>,
    /// Hosts left out because they could not be asked.
    pub unreachable: Vec<Unreachable>,
}

/// A host as it was when the plan was made, and what the plan writes there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostState {
    /// The host.
    pub host: String,
    /// `agent`, `ssh` or `pve-api`.
    pub transport: String,
    /// The digest an apply must find (jobs.cfg's SHA-1, or the job-list digest over the API).
    pub digest: String,
    /// jobs.cfg's text, when the transport can read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The host's zone.
    pub timezone: String,
    /// Every job's schedule then.
    pub schedules: Vec<ScheduleChange>,
    /// What the plan changes.
    pub changes: Vec<Change>,
}

/// One schedule a plan changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The job.
    pub job: String,
    /// The schedule now.
    pub from: String,
    /// The schedule planned.
    pub to: String,
    /// The planned start, `HH:MM` UTC.
    pub start: String,
    /// Why it moves.
    pub why: String,
    /// DST gaps, folds and offset changes of a local schedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A host that could not be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unreachable {
    /// The host.
    pub host: String,
    /// What failed.
    pub error: String,
    /// What to do.
    pub hint: String,
}

impl PlanBody {
    /// How many schedules the plan changes, on all hosts.
    pub fn changes(&self) -> usize {
        self.hosts.iter().map(|h| h.changes.len()).sum()
    }

    /// The hosts the plan changes something on, in configuration order.
    pub fn changed_hosts(&self) -> Vec<&HostState> {
        self.hosts
            .iter()
            .filter(|h| !h.changes.is_empty())
            .collect()
    }
}

impl HostState {
    /// The transport kind, from its stored name.
    pub fn kind(&self) -> TransportKind {
        match self.transport.as_str() {
            "agent" => TransportKind::Agent,
            "ssh" => TransportKind::Ssh,
            _ => TransportKind::PveApi,
        }
    }

    /// The changes as the agent API's request items.
    pub fn schedule_changes(&self) -> Vec<ScheduleChange> {
        self.changes
            .iter()
            .map(|c| ScheduleChange {
                job: c.job.clone(),
                schedule: c.to.clone(),
            })
            .collect()
    }

    /// The schedules before, of the jobs the plan changes.
    pub fn previous_schedules(&self) -> Vec<ScheduleChange> {
        self.changes
            .iter()
            .map(|c| ScheduleChange {
                job: c.job.clone(),
                schedule: c.from.clone(),
            })
            .collect()
    }
}

/// Each reporting host's state and the changes `plan` makes there.
///
/// A moved job's new event is written from its UTC days and planned start
/// ([`fleet::event_for`]); a planned start equal to the current one (after
/// the grid floor) is no change. An event that cannot be written (a local
/// zone that changes offset this week) is an error for that job.
pub fn host_states(
    reports: &[(TransportKind, HostReport)],
    fleet: &FleetSnapshot,
    plan: &Plan,
    zone: ScheduleZone,
    now: i64,
) -> Result<Vec<HostState>, String> {
    let mut changes: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
    for ((assignment, planned), job) in plan
        .assignments
        .iter()
        .zip(&fleet.jobs)
        .zip(&fleet.snapshot.jobs)
    {
        if !assignment.moved || planned.kind != RunKind::Movable {
            continue;
        }
        let report = reports
            .iter()
            .map(|(_, r)| r)
            .find(|r| r.host == planned.host);
        let tz: Tz = report
            .and_then(|r| r.timezone.parse().ok())
            .unwrap_or(Tz::UTC);
        let days = job.days.clone().unwrap_or_else(|| (0..7).collect());
        let minute = minutes(&assignment.start)
            .ok_or_else(|| format!("plan start '{}' is not HH:MM", assignment.start))?;
        let written = fleet::event_for(&days, minute, zone, tz, now)
            .map_err(|e| format!("{}: job {}: {e}", planned.host, planned.job))?;
        changes
            .entry(planned.host.as_str())
            .or_default()
            .push(Change {
                job: planned.job.clone(),
                from: planned.schedule.clone(),
                to: written.event,
                start: assignment.start.clone(),
                why: assignment.why.clone(),
                warnings: written.warnings,
            });
    }
    Ok(reports
        .iter()
        .map(|(kind, report)| HostState {
            host: report.host.clone(),
            transport: kind.as_str().to_owned(),
            digest: report.jobs_cfg.digest.clone(),
            text: report.jobs_cfg.text.clone(),
            timezone: report.timezone.clone(),
            schedules: report
                .jobs
                .iter()
                .map(|j| ScheduleChange {
                    job: j.id.clone(),
                    schedule: j.schedule.clone(),
                })
                .collect(),
            changes: changes.remove(report.host.as_str()).unwrap_or_default(),
        })
        .collect())
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

/// The unified diff of one host's jobs.cfg under the plan.
///
/// With the file's text: the codec's byte-preserving edit, and for
/// transports where Proxmox writes, the text Proxmox's writer then produces
/// (the whole file renormalised). Without it (Proxmox API): the schedule
/// lines of the changed jobs.
pub fn diff(state: &HostState) -> Result<String, String> {
    if state.changes.is_empty() {
        return Ok(String::new());
    }
    let Some(text) = &state.text else {
        let mut out = format!(
            "--- {host} /cluster/backup (Proxmox API: no file text; Proxmox rewrites jobs.cfg whole)\n+++ {host} /cluster/backup (planned)\n",
            host = state.host
        );
        for change in &state.changes {
            out.push_str(&format!(
                "@@ job {} @@\n vzdump: {}\n-\tschedule {}\n+\tschedule {}\n",
                change.job, change.job, change.from, change.to
            ));
        }
        return Ok(out);
    };
    let mut cfg = JobsCfg::parse(text);
    for change in &state.changes {
        cfg.set_schedule(&change.job, &change.to)
            .map_err(|e| format!("{}: job {}: {e}", state.host, change.job))?;
    }
    let new_text = if state.kind().rewrites_whole_file() {
        cfg.proxmox_rewrite().map_err(|e| {
            format!(
                "{}: Proxmox could not write this jobs.cfg back: {e}",
                state.host
            )
        })?
    } else {
        cfg.render()
    };
    let diff = similar::TextDiff::from_lines(text.as_str(), new_text.as_str());
    Ok(diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!(
                "{}:/etc/pve/jobs.cfg (digest {})",
                state.host,
                short(&state.digest)
            ),
            &format!("{}:/etc/pve/jobs.cfg (planned)", state.host),
        )
        .to_string())
}

/// Whether `report` shows this host's write as landed, for a write whose
/// answer was never seen (schedctl died during it).
///
/// With the file's text: its digest is one the write could have left — the
/// agent's byte-preserving edit of every change, or, where Proxmox writes,
/// Proxmox's rewrite after the first k changes (one `set` at a time).
/// Without it (Proxmox API): every changed job has its old or its new
/// schedule, and at least one the new.
pub fn write_landed(state: &HostState, report: &HostReport) -> bool {
    let current = &report.jobs_cfg.digest;
    if let Some(text) = &state.text {
        let mut cfg = JobsCfg::parse(text);
        let mut possible = Vec::new();
        for change in &state.changes {
            if cfg.set_schedule(&change.job, &change.to).is_err() {
                return false;
            }
            if state.kind().rewrites_whole_file() {
                if let Ok(rewritten) = cfg.proxmox_rewrite() {
                    possible.push(JobsCfg::parse(&rewritten).digest().to_string());
                }
            }
        }
        if !state.kind().rewrites_whole_file() {
            possible.push(cfg.digest().to_string());
        }
        return possible.contains(current);
    }
    let schedule = |job: &str| {
        report
            .jobs
            .iter()
            .find(|j| j.id == job)
            .map(|j| j.schedule.as_str())
    };
    let all_known = state
        .changes
        .iter()
        .all(|c| matches!(schedule(&c.job), Some(s) if s == c.to || s == c.from));
    all_known
        && state
            .changes
            .iter()
            .any(|c| schedule(&c.job) == Some(c.to.as_str()))
}

/// The first 12 hex digits of a digest, for people.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheduler_core::fleet::{build, FleetSettings, Percentile};
    use scheduler_core::plan::Assignment;
    use scheduler_core::report::{JobReport, JobsCfgState, REPORT_VERSION};

    /// 2024-11-04 00:00 UTC, a Monday.
    const MONDAY: i64 = 1_730_678_400;

    const TEXT: &str = "# hand-written note\nvzdump: backup-pihanga\n\tschedule mon..fri 02:45\n\tstorage pbs\n\tnode pihanga\n";

    fn report(tz: &str) -> HostReport {
        HostReport {
            version: REPORT_VERSION,
            host: "pihanga".to_owned(),
            timezone: tz.to_owned(),
            clock: MONDAY,
            source: "test".to_owned(),
            jobs_cfg: JobsCfgState {
                digest: JobsCfg::parse(TEXT).digest().to_string(),
                text: Some(TEXT.to_owned()),
                warnings: Vec::new(),
            },
            jobs: vec![JobReport {
                id: "backup-pihanga".to_owned(),
                schedule: "mon..fri 02:45".to_owned(),
                enabled: true,
                node: Some("pihanga".to_owned()),
                storage: Some("pbs".to_owned()),
                runs: Vec::new(),
                stats: None,
            }],
            load: None,
            pressure: None,
        }
    }

    fn settings() -> FleetSettings {
        FleetSettings {
            slot_minutes: 5,
            guard_minutes: 0.0,
            stability_weight: 1.0,
            window: None,
            percentile: Percentile::P95,
            unknown_duration_minutes: 30.0,
            hosts: Vec::new(),
            resources: Vec::new(),
        }
    }

    /// The plan that moves the one job to `start`.
    fn moved_to(fleet: &FleetSnapshot, start: &str) -> Plan {
        Plan {
            feasible: true,
            overflow: 0,
            objective: 1.0,
            moved: 1,
            solve_ms: 0,
            bound: None,
            proven_optimal: false,
            assignments: vec![Assignment {
                id: fleet.jobs[0].id.clone(),
                start: start.to_owned(),
                moved: true,
                current: Some("01:45".to_owned()),
                why: "test".to_owned(),
            }],
        }
    }

    fn states(kind: TransportKind, tz: &str, zone: ScheduleZone) -> Vec<HostState> {
        let report = report(tz);
        let fleet = build(std::slice::from_ref(&report), &settings(), MONDAY);
        let plan = moved_to(&fleet, "14:35");
        host_states(&[(kind, report)], &fleet, &plan, zone, MONDAY).expect("states")
    }

    #[test]
    fn a_moved_job_gets_its_utc_days_and_start() {
        let states = states(TransportKind::Agent, "UTC", ScheduleZone::Utc);
        let change = &states[0].changes[0];
        assert_eq!(change.from, "mon..fri 02:45");
        assert_eq!(change.to, "mon..fri 14:35 UTC");
        assert_eq!(states[0].previous_schedules()[0].schedule, "mon..fri 02:45");
    }

    #[test]
    fn in_local_time_the_hosts_weekdays_follow_the_utc_days() {
        // Auckland mon..fri 02:45 (UTC+13) is sun..thu 13:45 UTC; 14:35 UTC there is 03:35 local.
        let states = states(
            TransportKind::Agent,
            "Pacific/Auckland",
            ScheduleZone::Local,
        );
        assert_eq!(states[0].changes[0].to, "mon..fri 3:35");
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_recognised_by_its_digest() {
        for kind in [TransportKind::Agent, TransportKind::Ssh] {
            let state = &states(kind, "UTC", ScheduleZone::Utc)[0];
            let mut report = report("UTC");
            assert!(
                !write_landed(state, &report),
                "{kind:?}: the old file is not the write"
            );
            let mut cfg = JobsCfg::parse(TEXT);
            cfg.set_schedule("backup-pihanga", "mon..fri 14:35 UTC")
                .expect("edit");
            let written = if kind.rewrites_whole_file() {
                cfg.proxmox_rewrite().expect("rewrite")
            } else {
                cfg.render()
            };
            report.jobs_cfg.digest = JobsCfg::parse(&written).digest().to_string();
            assert!(write_landed(state, &report), "{kind:?}");
        }
    }

    #[test]
    fn the_agent_diff_keeps_every_other_byte_and_ssh_shows_proxmox_rewrite() {
        let agent = diff(&states(TransportKind::Agent, "UTC", ScheduleZone::Utc)[0]).expect("diff");
        assert!(
            agent.contains("-\tschedule mon..fri 02:45\n+\tschedule mon..fri 14:35 UTC\n"),
            "{agent}"
        );
        assert!(!agent.contains("-# hand-written note"), "{agent}");
        let ssh = diff(&states(TransportKind::Ssh, "UTC", ScheduleZone::Utc)[0]).expect("diff");
        // Proxmox drops the comment and writes `enabled` and sorted keys.
        assert!(ssh.contains("-# hand-written note"), "{ssh}");
        assert!(ssh.contains("+\tenabled 1"), "{ssh}");
    }
}
