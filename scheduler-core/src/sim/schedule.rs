//! The schedule a simulation replays: one start (a UTC minute of the day) per
//! job, taken from the snapshot's current starts, from planner output, or
//! from a plan's JSON text.
//!
//! A plan's JSON is read leniently (PLANNING-MODEL.md, "Plan"): only
//! `assignments[].id` and `assignments[].start` are read, every other field
//! is ignored. Its ids must be exactly the snapshot's jobs; every mismatch is
//! reported with its path. Starts are `HH:MM`; the simulator works in
//! minutes, so a start off the slot grid is simulated as written.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::SimError;
use crate::plan::Plan;
use crate::snapshot::{Model, Problem};

/// Minutes in a day.
const DAY_MINUTES: u32 = 1440;

/// How many missing job ids a mismatch message lists.
const MISSING_SHOWN: usize = 8;

/// One start per job of a model, in minutes after 00:00 UTC, in job order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    starts: Vec<u32>,
}

/// The part of a plan the simulator reads.
#[derive(Deserialize)]
struct PlanFile {
    assignments: Vec<PlanEntry>,
}

#[derive(Deserialize)]
struct PlanEntry {
    id: String,
    start: String,
}

impl Schedule {
    /// Every job at its `current_start`.
    pub fn current(model: &Model) -> Schedule {
        let slot = model.slot_minutes;
        Schedule {
            starts: model
                .jobs
                .iter()
                .map(|j| slot_minute(j.current_start, slot))
                .collect(),
        }
    }

    /// The starts of a plan value.
    pub fn from_plan(model: &Model, plan: &Plan) -> Result<Schedule, SimError> {
        Schedule::from_assignments(
            model,
            plan.assignments
                .iter()
                .map(|a| (a.id.as_str(), a.start.as_str())),
        )
    }

    /// The starts of a plan's JSON text (extra fields are ignored).
    pub fn from_plan_json(model: &Model, text: &str) -> Result<Schedule, SimError> {
        let file: PlanFile = serde_json::from_str(text).map_err(|e| SimError::PlanJson {
            line: e.line(),
            column: e.column(),
            message: json_error_message(&e),
        })?;
        Schedule::from_assignments(
            model,
            file.assignments
                .iter()
                .map(|a| (a.id.as_str(), a.start.as_str())),
        )
    }

    /// Starts from `(job id, HH:MM)` pairs, which must name every job once.
    pub fn from_assignments<'a>(
        model: &Model,
        assignments: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Schedule, SimError> {
        let index: BTreeMap<&str, usize> = model
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.id.as_str(), i))
            .collect();
        let mut starts: Vec<Option<u32>> = vec![None; model.jobs.len()];
        let mut problems = Vec::new();
        for (k, (id, start)) in assignments.into_iter().enumerate() {
            let path = format!("assignments[{k}]");
            let Some(&job) = index.get(id) else {
                problems.push(Problem {
                    path: format!("{path}.id"),
                    message: format!(
                        "'{id}' is not a job of the snapshot: was the plan made from another snapshot?"
                    ),
                });
                continue;
            };
            let Some(minute) = parse_hhmm(start) else {
                problems.push(Problem {
                    path: format!("{path}.start"),
                    message: format!(
                        "'{start}' is not a time of day, expected HH:MM from 00:00 to 23:59"
                    ),
                });
                continue;
            };
            if starts[job].replace(minute).is_some() {
                problems.push(Problem {
                    path: format!("{path}.id"),
                    message: format!("job '{id}' has a second start, expected one per job"),
                });
            }
        }
        if let Some(problem) = missing_jobs(model, &starts) {
            problems.push(problem);
        }
        if !problems.is_empty() {
            return Err(SimError::Plan(problems));
        }
        Ok(Schedule {
            starts: starts.into_iter().map(Option::unwrap_or_default).collect(),
        })
    }

    /// Each job's start, minutes after 00:00 UTC, in job order.
    pub fn starts(&self) -> &[u32] {
        &self.starts
    }

    /// The start of job `job` as `HH:MM`.
    pub fn format_start(&self, job: usize) -> String {
        let m = self.starts[job];
        format!("{:02}:{:02}", m / 60, m % 60)
    }

    /// A time of day with no run, to start nights at: the middle of the
    /// longest stretch of the day in which no job nominally runs (from its
    /// start for `durations[job]` minutes, on any of its days), on a whole
    /// hour when the stretch holds one. 00:00 without jobs; 12:00 when runs
    /// cover the whole day.
    pub fn quiet_minute(&self, durations: &[f64]) -> u32 {
        let day = DAY_MINUTES as usize;
        let mut covered = vec![false; day];
        for (&start, &minutes) in self.starts.iter().zip(durations) {
            let length = (minutes.ceil().max(1.0) as usize).min(day);
            for k in 0..length {
                covered[(start as usize + k) % day] = true;
            }
        }
        if self.starts.is_empty() {
            return 0;
        }
        let Some((gap_start, gap_length)) = longest_gap(&covered) else {
            return DAY_MINUTES / 2;
        };
        let middle = (gap_start + gap_length / 2) % day;
        let hour = middle - middle % 60;
        // The whole hour before the middle, if it still lies in the gap.
        let back = (middle + day - hour) % day;
        let minute = if back <= gap_length / 2 { hour } else { middle };
        minute as u32
    }

    /// Errors unless the schedule has one start per job of `model`.
    pub(super) fn check_fits(&self, model: &Model) -> Result<(), SimError> {
        if self.starts.len() == model.jobs.len() {
            return Ok(());
        }
        Err(SimError::Plan(vec![Problem {
            path: "assignments".to_owned(),
            message: format!(
                "{} starts for {} jobs: the schedule was made for another snapshot",
                self.starts.len(),
                model.jobs.len()
            ),
        }]))
    }
}

/// The problem listing the jobs without a start, if any.
fn missing_jobs(model: &Model, starts: &[Option<u32>]) -> Option<Problem> {
    let missing: Vec<&str> = model
        .jobs
        .iter()
        .zip(starts)
        .filter(|(_, s)| s.is_none())
        .map(|(j, _)| j.id.as_str())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut shown: Vec<String> = missing
        .iter()
        .take(MISSING_SHOWN)
        .map(|id| format!("'{id}'"))
        .collect();
    if missing.len() > MISSING_SHOWN {
        shown.push(format!("and {} more", missing.len() - MISSING_SHOWN));
    }
    Some(Problem {
        path: "assignments".to_owned(),
        message: format!(
            "no start for {} job(s) of the snapshot: {}",
            missing.len(),
            shown.join(", ")
        ),
    })
}

/// The longest circular run of `false` in `covered`: (first index, length);
/// `None` when every entry is `true`. The earliest wins a tie.
fn longest_gap(covered: &[bool]) -> Option<(usize, usize)> {
    let n = covered.len();
    // Start scanning just after a covered entry so no gap is cut in two.
    let offset = match covered.iter().position(|&c| c) {
        Some(i) => i + 1,
        None => return Some((0, n)),
    };
    let mut best: Option<(usize, usize)> = None;
    let mut run: Option<(usize, usize)> = None;
    for k in 0..n {
        let i = (offset + k) % n;
        if covered[i] {
            run = None;
            continue;
        }
        let current = run.map_or((i, 1), |(s, l)| (s, l + 1));
        run = Some(current);
        let better =
            best.is_none_or(|(bs, bl)| current.1 > bl || (current.1 == bl && current.0 < bs));
        if better {
            best = Some(current);
        }
    }
    best
}

/// Minutes after midnight of a slot of the day.
fn slot_minute(slot: usize, slot_minutes: u32) -> u32 {
    // A slot of the day is below 1440 / slot_minutes, so this fits.
    u32::try_from(slot).map_or(0, |s| s * slot_minutes) % DAY_MINUTES
}

/// Minutes after midnight of a strict `HH:MM` (two digits each, 00:00–23:59).
fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// serde_json's message without its " at line L column C" tail (we print our own).
fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm_is_strict() {
        assert_eq!(parse_hhmm("00:00"), Some(0));
        assert_eq!(parse_hhmm("02:47"), Some(167));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("2:00"), None);
        assert_eq!(parse_hhmm("02:60"), None);
        assert_eq!(parse_hhmm("+2:00"), None);
        assert_eq!(parse_hhmm("02:0x"), None);
    }

    fn schedule(starts: &[u32]) -> Schedule {
        Schedule {
            starts: starts.to_vec(),
        }
    }

    #[test]
    fn nights_start_in_the_middle_of_the_quiet_hours() {
        // Runs 02:00-03:25: quiet 03:25-02:00, middle 14:42, whole hour 14:00.
        let s = schedule(&[120, 140, 165]);
        assert_eq!(s.quiet_minute(&[25.0, 30.0, 40.0]), 14 * 60);
        // Runs 21:00-02:00 across midnight: quiet 02:00-21:00, middle 11:30.
        let s = schedule(&[21 * 60, 23 * 60]);
        assert_eq!(s.quiet_minute(&[120.0, 180.0]), 11 * 60);
        // A short gap 10:20-10:40: its middle, not the hour before it.
        let s = schedule(&[640]);
        assert_eq!(s.quiet_minute(&[1420.0]), 630);
        assert_eq!(schedule(&[0]).quiet_minute(&[1440.0]), 720);
        assert_eq!(schedule(&[]).quiet_minute(&[]), 0);
    }
}
