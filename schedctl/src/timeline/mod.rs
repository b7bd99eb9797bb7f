//! The backup timeline: the week of a fleet's backups drawn as SVG, and the
//! status page around it (`schedctl serve` at `/`, `schedctl plan --format
//! svg|html`).
//!
//! Pure: the caller hands in the validated snapshot ([`Model`]), the
//! schedules to draw ([`Schedule`]: one start per job) and, for the page, the
//! time it was made; nothing here reads a clock or a file. One row per host,
//! one lane per job of that host; each run is a bar from its start to start +
//! reserved duration + guard on each of its days (the model's `length`), the
//! host's load profile is a shaded band behind the lanes, and every slot in
//! which a resource holds more runs than its capacity is drawn red on the
//! bars that occupy it. Hosts and job ids are text in the document.
//!
//! | file | what it draws |
//! | --- | --- |
//! | `mod.rs` | schedules, occupancy and overlaps, escaping |
//! | `svg.rs` | one timeline panel, and the SVG with the current schedule and the plan side by side |
//! | `page.rs` | the HTML status page: header, panels, job tables, overlap lists |

mod page;
mod svg;

use scheduler_core::plan::Plan;
use scheduler_core::snapshot::Model;

pub use page::{render_page, Page};
pub use svg::render_svg;

/// A schedule to draw: a title and one start (slot of the day, UTC) per job
/// of the model, in model order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The panel's title, e.g. "Current schedule".
    pub title: String,
    /// Start slot of each job, in model order.
    pub starts: Vec<usize>,
    /// Whether each job starts elsewhere than in the current schedule.
    pub moved: Vec<bool>,
}

/// Why a plan cannot be drawn over a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    /// The plan does not list the snapshot's jobs in the snapshot's order.
    #[error(
        "the plan does not belong to this snapshot: assignment {index} is {found:?}, \
         the snapshot's job {index} is {expected:?}; plan the snapshot again"
    )]
    PlanMismatch {
        /// Position in the plan's assignments.
        index: usize,
        /// The snapshot's job id there (empty when the snapshot has fewer jobs).
        expected: String,
        /// The plan's job id there (empty when the plan has fewer assignments).
        found: String,
    },
    /// A planned start is not an `HH:MM` on the snapshot's slot grid.
    #[error("the plan's start {start:?} of job {job:?} is not an HH:MM on the {slot}-minute grid")]
    BadStart {
        /// The job.
        job: String,
        /// The start as written in the plan.
        start: String,
        /// The snapshot's slot minutes.
        slot: u32,
    },
}

impl Schedule {
    /// The schedule in force: every job at its `current_start`.
    pub fn current(model: &Model) -> Schedule {
        Schedule {
            title: "Current schedule".to_owned(),
            starts: model.jobs.iter().map(|j| j.current_start).collect(),
            moved: vec![false; model.jobs.len()],
        }
    }

    /// The starts of a plan made from `model`.
    pub fn from_plan(model: &Model, plan: &Plan, title: &str) -> Result<Schedule, TimelineError> {
        let count = model.jobs.len().max(plan.assignments.len());
        let mut starts = Vec::with_capacity(count);
        for index in 0..count {
            let job = model.jobs.get(index);
            let assignment = plan.assignments.get(index);
            let (Some(job), Some(assignment)) = (job, assignment) else {
                return Err(mismatch(
                    index,
                    job.map(|j| &j.id),
                    assignment.map(|a| &a.id),
                ));
            };
            if job.id != assignment.id {
                return Err(mismatch(index, Some(&job.id), Some(&assignment.id)));
            }
            let start = slot_of(&assignment.start, model.slot_minutes).ok_or_else(|| {
                TimelineError::BadStart {
                    job: job.id.clone(),
                    start: assignment.start.clone(),
                    slot: model.slot_minutes,
                }
            })?;
            starts.push(start);
        }
        let moved = starts
            .iter()
            .zip(&model.jobs)
            .map(|(&s, j)| s != j.current_start)
            .collect();
        Ok(Schedule {
            title: title.to_owned(),
            starts,
            moved,
        })
    }
}

fn mismatch(index: usize, expected: Option<&String>, found: Option<&String>) -> TimelineError {
    TimelineError::PlanMismatch {
        index,
        expected: expected.cloned().unwrap_or_default(),
        found: found.cloned().unwrap_or_default(),
    }
}

/// The slot of the day of a strict `HH:MM` on the grid.
fn slot_of(text: &str, slot_minutes: u32) -> Option<usize> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h * 60 + m;
    (h < 24 && m < 60 && minutes % slot_minutes == 0).then_some((minutes / slot_minutes) as usize)
}

/// A stretch of week slots `[from, to)` in which one resource holds more
/// runs than its capacity, with the jobs that occupy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Index of the resource in the model.
    pub resource: usize,
    /// First week slot over capacity.
    pub from: usize,
    /// First week slot after the stretch.
    pub to: usize,
    /// Jobs occupying the resource in the stretch, in model order.
    pub jobs: Vec<usize>,
}

/// What a schedule does to the fleet's resources, slot by slot.
struct Occupancy {
    week: usize,
    /// `over[r * week + t]`: resource `r` is over capacity in week slot `t`.
    over: Vec<bool>,
    /// `runs[r * week + t]`: the jobs occupying resource `r` in slot `t`.
    runs: Vec<Vec<usize>>,
}

impl Occupancy {
    fn new(model: &Model, starts: &[usize]) -> Occupancy {
        let week = model.slots_per_week;
        let mut runs = vec![Vec::new(); model.resources.len() * week];
        for (job, &start) in starts.iter().enumerate() {
            for t in model.run_slots(job, start) {
                for &r in &model.jobs[job].resources {
                    runs[r * week + t].push(job);
                }
            }
        }
        let over = runs
            .iter()
            .enumerate()
            .map(|(i, jobs)| jobs.len() > model.resources[i / week].capacity as usize)
            .collect();
        Occupancy { week, over, runs }
    }

    /// Whether any resource of `job` is over capacity in week slot `t`.
    fn job_over(&self, model: &Model, job: usize, t: usize) -> bool {
        model.jobs[job]
            .resources
            .iter()
            .any(|&r| self.over[r * self.week + t])
    }

    /// Every stretch over capacity, by resource, then time.
    fn overlaps(&self, resources: usize) -> Vec<Overlap> {
        let mut found = Vec::new();
        for r in 0..resources {
            let base = r * self.week;
            let mut t = 0;
            while t < self.week {
                if !self.over[base + t] {
                    t += 1;
                    continue;
                }
                let from = t;
                let mut jobs = Vec::new();
                while t < self.week && self.over[base + t] {
                    jobs.extend(&self.runs[base + t]);
                    t += 1;
                }
                jobs.sort_unstable();
                jobs.dedup();
                found.push(Overlap {
                    resource: r,
                    from,
                    to: t,
                    jobs,
                });
            }
        }
        found
    }
}

/// The overlaps of a schedule.
pub fn overlaps(model: &Model, schedule: &Schedule) -> Vec<Overlap> {
    Occupancy::new(model, &schedule.starts).overlaps(model.resources.len())
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `Mon 02:45` of a week slot.
fn week_time(model: &Model, t: usize) -> String {
    let minutes = t * model.slot_minutes as usize;
    let day = DAYS[(minutes / 1440) % 7];
    let minute = minutes % 1440;
    format!("{day} {:02}:{:02}", minute / 60, minute % 60)
}

/// Text made safe for XML and HTML, in text and in quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn model(json: &str) -> Model {
        Model::from_json(json).expect("valid test snapshot")
    }

    /// Two hosts sharing `pbs` (capacity 1): `a` at 02:00 for 30 minutes,
    /// `b` at 02:20 for 30 minutes, so they overlap 02:20-02:30 every day.
    pub(super) const TWO_HOSTS: &str = r#"{
        "version": 1, "slot_minutes": 5,
        "resources": [{"name": "pbs", "capacity": 1}],
        "hosts": [{"name": "alpha"}, {"name": "beta"}],
        "jobs": [
            {"id": "job-a", "host": "alpha", "current_start": "02:00", "duration_minutes": 30, "resources": ["pbs"]},
            {"id": "job-b", "host": "beta", "current_start": "02:20", "duration_minutes": 30, "resources": ["pbs"], "days": [0]}
        ]
    }"#;

    #[test]
    fn overlaps_are_the_stretches_over_capacity_with_their_jobs() {
        let model = model(TWO_HOSTS);
        let found = overlaps(&model, &Schedule::current(&model));
        // job-b runs only on Monday: one overlap, 02:20-02:30 on Monday, on pbs
        assert_eq!(found.len(), 1, "{found:?}");
        let o = &found[0];
        assert_eq!(model.resources[o.resource].name, "pbs");
        assert_eq!(
            (week_time(&model, o.from), week_time(&model, o.to)),
            ("Mon 02:20".into(), "Mon 02:30".into())
        );
        assert_eq!(o.jobs, vec![0, 1]);
    }

    #[test]
    fn a_plan_is_read_against_the_snapshot_it_was_made_from() {
        let model = model(TWO_HOSTS);
        let plan: Plan = serde_json::from_str(
            r#"{"feasible": true, "overflow": 0, "objective": 1.0, "moved": 1, "solve_ms": 1,
                "assignments": [{"id": "job-a", "start": "02:00", "moved": false},
                                {"id": "job-b", "start": "03:00", "moved": true}]}"#,
        )
        .expect("plan");
        let planned = Schedule::from_plan(&model, &plan, "Plan").expect("matches");
        assert_eq!(planned.starts, vec![24, 36]);
        assert_eq!(planned.moved, vec![false, true]);
        assert!(overlaps(&model, &planned).is_empty());

        let mut other = plan.clone();
        other.assignments.swap(0, 1);
        let err = Schedule::from_plan(&model, &other, "Plan").expect_err("order matters");
        assert!(err.to_string().contains("\"job-b\""), "{err}");
        let mut off_grid = plan;
        off_grid.assignments[1].start = "03:02".into();
        let err = Schedule::from_plan(&model, &off_grid, "Plan").expect_err("off the grid");
        assert!(err.to_string().contains("03:02"), "{err}");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
