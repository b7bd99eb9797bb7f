//! The plan: the planner's output (PLANNING-MODEL.md, "Plan"), with serde.
//!
//! `assignments` holds every job of the snapshot in the snapshot's order.
//! Besides the normative fields a plan carries `bound` (a proven lower bound
//! on the cost at the plan's overflow, when the planner has one) and, per
//! assignment, `current` (the start before the plan) and `why` (a short
//! human reason when the job moved); scorers ignore extra fields.

use serde::{Deserialize, Serialize};

use crate::snapshot::Model;

/// A plan of start times for every job of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `overflow == 0`: every capacity holds in every slot.
    pub feasible: bool,
    /// Sum over slots and resources of `max(0, occupancy - capacity)`; minimal first.
    pub overflow: u64,
    /// The cost of PLANNING-MODEL.md (load cost plus stability), not counting overflow.
    pub objective: f64,
    /// How many jobs start away from their current start.
    pub moved: usize,
    /// Time the planner took, in milliseconds.
    pub solve_ms: u64,
    /// A lower bound on the cost of any plan with this overflow, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Whether the plan is proven optimal (overflow first, then cost).
    #[serde(default)]
    pub proven_optimal: bool,
    /// One entry per job, in snapshot order.
    pub assignments: Vec<Assignment>,
}

/// The planned start of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The job's id.
    pub id: String,
    /// Its planned start, `HH:MM` UTC.
    pub start: String,
    /// Whether the start differs from the current one.
    pub moved: bool,
    /// Its current start, `HH:MM` UTC (diagnostic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Why it moved, in a few words (diagnostic, empty when it did not).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

impl Plan {
    /// Builds the plan of `starts` (one slot of the day per job, in model order),
    /// with its numbers recomputed from the model. `why` gives one reason per job.
    pub fn from_starts(
        model: &Model,
        starts: &[usize],
        why: Vec<String>,
        bound: Option<f64>,
        solve_ms: u64,
    ) -> Plan {
        let score = model.score(starts);
        let mut why = why.into_iter();
        let assignments = model
            .jobs
            .iter()
            .zip(starts)
            .map(|(job, &start)| {
                let moved = start != job.current_start;
                let reason = why.next().unwrap_or_default();
                Assignment {
                    id: job.id.clone(),
                    start: model.format_start(start),
                    moved,
                    current: Some(model.format_start(job.current_start)),
                    why: if moved { reason } else { String::new() },
                }
            })
            .collect();
        let proven_optimal = bound.is_some_and(|b| score.cost <= b + 1e-7 * b.abs().max(1.0));
        Plan {
            feasible: score.overflow == 0,
            overflow: score.overflow,
            objective: score.cost,
            moved: score.moved,
            solve_ms,
            bound,
            proven_optimal,
            assignments,
        }
    }
}
