//! Large-neighbourhood search for components too big to solve exactly at
//! once: free a connected handful of jobs, keep every other job where it is,
//! and solve the freed jobs exactly on the capacity the others leave.
//!
//! A round never makes the plan worse (the exact solver starts from the
//! freed jobs' current starts); which jobs are freed is drawn from the
//! seeded generator, so the same seed gives the same rounds.

use super::component::Component;
use super::exact;
use super::search::{Rng, State};
use super::Deadline;

/// Branch-and-bound nodes at most per round.
const NODES_PER_ROUND: u64 = 400;

/// Runs `rounds` rounds that each free `free` jobs; returns the improved state.
pub fn improve(
    c: &Component,
    mut state: State,
    rounds: usize,
    free: usize,
    rng: &mut Rng,
    deadline: &dyn Deadline,
) -> State {
    let movable = c.movable_jobs();
    if movable.len() < 2 {
        return state;
    }
    for _ in 0..rounds {
        if deadline.expired() {
            break;
        }
        let subset = pick(c, &state, &movable, free, rng);
        let sub = restrict(c, &state, &subset);
        let choice: Vec<usize> = subset.iter().map(|&j| state.choice[j]).collect();
        // Cells the fixed jobs already fill count every further run as
        // overflow, so the freed jobs' overflow differs from the whole
        // component's by a constant and minimising one minimises the other.
        let warm = State::from_choices(&sub, &choice);
        let Some(result) = exact::solve_with_nodes(&sub, &warm, NODES_PER_ROUND, deadline) else {
            continue;
        };
        if result.state.better_than(&warm) {
            for (k, &j) in subset.iter().enumerate() {
                state.remove(c, j);
                state.insert(c, j, result.state.choice[k]);
            }
        }
    }
    state
}

/// A connected set of `free` movable jobs around a random one, ascending.
/// Every other round grows it by time: among the candidates it takes one of
/// the few whose current start lies closest to the first job's, since runs
/// far apart in the day barely interact.
fn pick(c: &Component, state: &State, movable: &[usize], free: usize, rng: &mut Rng) -> Vec<usize> {
    let first = movable[rng.below(movable.len())];
    let by_time = rng.below(2) == 0;
    let start_of = |j: usize| i64::from(c.jobs[j].starts[state.choice[j]]);
    let origin = start_of(first);
    let mut chosen = vec![first];
    let mut frontier: Vec<usize> = Vec::new();
    let mut in_set = vec![false; c.jobs.len()];
    in_set[first] = true;
    let grow = |j: usize, frontier: &mut Vec<usize>, in_set: &[bool]| {
        for &k in &c.neighbours[j] {
            let k = k as usize;
            if !in_set[k] && c.jobs[k].is_movable() && !frontier.contains(&k) {
                frontier.push(k);
            }
        }
    };
    grow(first, &mut frontier, &in_set);
    while chosen.len() < free && !frontier.is_empty() {
        let at = if by_time {
            frontier.sort_by_key(|&k| ((start_of(k) - origin).abs(), k));
            rng.below(frontier.len().min(3))
        } else {
            rng.below(frontier.len())
        };
        let k = frontier.swap_remove(at);
        in_set[k] = true;
        chosen.push(k);
        grow(k, &mut frontier, &in_set);
    }
    chosen.sort_unstable();
    chosen
}

/// The component of the `subset` jobs alone, on the capacity the other jobs
/// leave (none where they already fill or overfill a cell).
fn restrict(c: &Component, state: &State, subset: &[usize]) -> Component {
    let mut occupancy = state.occupancy.clone();
    for &j in subset {
        c.for_cells(j, usize::from(c.jobs[j].starts[state.choice[j]]), |cell| {
            occupancy[cell] -= 1;
        });
    }
    let cell_capacity = c
        .cell_capacity
        .iter()
        .zip(&occupancy)
        .map(|(&cap, &used)| cap.saturating_sub(used))
        .collect();
    let position = |j: usize| subset.binary_search(&j).ok();
    let neighbours = subset
        .iter()
        .map(|&j| {
            c.neighbours[j]
                .iter()
                .filter_map(|&k| position(k as usize))
                .map(|k| u32::try_from(k).unwrap_or(0))
                .collect()
        })
        .collect();
    Component {
        spd: c.spd,
        week: c.week,
        jobs: subset.iter().map(|&j| c.jobs[j].clone()).collect(),
        resources: c.resources.clone(),
        cell_capacity,
        neighbours,
    }
}
