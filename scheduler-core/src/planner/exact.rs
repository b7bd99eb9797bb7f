//! Exact solution of a small component: the time-indexed integer program,
//! solved by branch and bound on its LP relaxation (the pure-Rust `microlp`).
//!
//! Variables: `x[j][i] = 1` when job `j` starts at its `i`-th allowed start.
//! Each job takes exactly one start; each cell (tight resource, week slot)
//! holds at most its capacity plus `o[cell]`, the overflow of that cell. The
//! objective `penalty * sum(o) + cost` is lexicographic because `penalty`
//! exceeds any difference of cost. Cells that no more than `capacity` jobs
//! can reach are left out, and cells reached by the very same starts are
//! written once. The search starts from the heuristic's plan (warm start),
//! runs in chunks of nodes (deterministic) and stops at the deadline.

use std::collections::BTreeSet;

use microlp::{
    ComparisonOp, OptimizationDirection, Problem, SolveOptions, TerminationReason, Variable,
};

use super::component::Component;
use super::search::{self, State};
use super::Deadline;

/// Branch-and-bound nodes per chunk, between two looks at the deadline.
const NODES_PER_CHUNK: u64 = 200;
/// Nodes at most per component.
const MAX_NODES: u64 = 20_000;

/// What the exact solver found.
#[derive(Debug, Clone)]
pub struct Exact {
    /// The best plan it knows (at least as good as the warm start).
    pub state: State,
    /// A lower bound on the cost at the plan's overflow.
    pub bound: f64,
    /// The plan is proven optimal.
    pub proven: bool,
}

/// The integer program of a component, with its variables.
struct Program {
    problem: Problem,
    /// `x[j][i]`.
    x: Vec<Vec<Variable>>,
    /// Overflow variable of each written cell (empty when overflow is not allowed).
    overflow: Vec<Variable>,
}

/// Solves `c` exactly, starting from `start`; `None` when the solver fails.
pub fn solve(c: &Component, start: &State, deadline: &dyn Deadline) -> Option<Exact> {
    solve_with_nodes(c, start, MAX_NODES, deadline)
}

/// [`solve`] with at most `max_nodes` branch-and-bound nodes.
///
/// `microlp` documents that it may panic on numerically hard problems; such a
/// panic is caught here and reads as "no exact result", so the heuristic's
/// plan stands and the planner still answers.
pub fn solve_with_nodes(
    c: &Component,
    start: &State,
    max_nodes: u64,
    deadline: &dyn Deadline,
) -> Option<Exact> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        branch_and_bound(c, start, max_nodes, deadline)
    }))
    .ok()
    .flatten()
}

fn branch_and_bound(
    c: &Component,
    start: &State,
    max_nodes: u64,
    deadline: &dyn Deadline,
) -> Option<Exact> {
    let with_overflow = start.overflow > 0;
    let program = build(c, with_overflow);
    let warm = warm_start(c, &program, start);
    let mut options = SolveOptions::default();
    options.node_limit = Some(NODES_PER_CHUNK.min(max_nodes));
    options.warm_start = Some(warm);
    options.time_limit = deadline.remaining();
    let mut outcome = program.problem.solve_with(options).ok()?;
    let mut nodes = NODES_PER_CHUNK;
    while !outcome.is_optimal() && nodes < max_nodes && !deadline.expired() {
        let mut resume = outcome.last_resume_options();
        resume.time_limit = deadline.remaining();
        outcome = outcome.resume_with(resume).ok()?;
        nodes += NODES_PER_CHUNK;
    }
    let proven = outcome.termination_reason() == TerminationReason::ProvenOptimal;
    let best_bound = outcome.stats().best_bound;
    let solution = outcome.into_solution().ok()?;
    let choice = read_choice(&program, &solution)?;
    let state = State::from_choices(c, &choice);
    let best = if state.better_than(start) {
        state
    } else {
        start.clone()
    };
    let trivial = c.trivial_bound();
    let bound = if proven {
        best.cost
    } else if !with_overflow {
        // Without overflow variables the program's bound is on the cost itself.
        best_bound.unwrap_or(trivial).max(trivial).min(best.cost)
    } else {
        trivial
    };
    Some(Exact {
        state: best,
        bound,
        proven,
    })
}

fn build(c: &Component, with_overflow: bool) -> Program {
    let penalty = search::penalty(c);
    let mut problem = Problem::new(OptimizationDirection::Minimize);
    let x: Vec<Vec<Variable>> = c
        .jobs
        .iter()
        .map(|job| {
            job.costs
                .iter()
                .map(|&cost| problem.add_binary_var(cost))
                .collect()
        })
        .collect();
    for vars in &x {
        problem.add_constraint(vars.iter().map(|&v| (v, 1.0)), ComparisonOp::Eq, 1.0);
    }
    let mut overflow = Vec::new();
    for (cell, covering) in capacity_rows(c) {
        let capacity = f64::from(c.cell_capacity[cell]);
        let mut terms: Vec<(Variable, f64)> = covering
            .iter()
            .map(|&(j, i, times)| (x[j][i], f64::from(times)))
            .collect();
        if with_overflow {
            let o = problem.add_var(penalty, (0.0, f64::INFINITY));
            overflow.push(o);
            terms.push((o, -1.0));
        }
        problem.add_constraint(terms, ComparisonOp::Le, capacity);
    }
    Program {
        problem,
        x,
        overflow,
    }
}

/// `(job, start index, times the start covers the cell)` in a capacity row.
type Term = (usize, usize, u32);

/// One row per cell that can overflow, skipping cells covered by exactly the
/// same starts as a row already written. In cell order.
fn capacity_rows(c: &Component) -> Vec<(usize, Vec<Term>)> {
    let mut covering: Vec<Vec<(usize, usize)>> = vec![Vec::new(); c.cell_capacity.len()];
    for (j, job) in c.jobs.iter().enumerate() {
        for (i, &s) in job.starts.iter().enumerate() {
            c.for_cells(j, usize::from(s), |cell| covering[cell].push((j, i)));
        }
    }
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for (cell, pairs) in covering.into_iter().enumerate() {
        let terms = merge(&pairs);
        if max_occupancy(&terms) <= u32::from(c.cell_capacity[cell]) {
            continue;
        }
        if seen.insert((c.cell_capacity[cell], terms.clone())) {
            rows.push((cell, terms));
        }
    }
    rows
}

/// `(job, start index, times covered)` from a sorted list of covering pairs
/// (a run longer than a day covers some cells twice).
fn merge(pairs: &[(usize, usize)]) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::with_capacity(pairs.len());
    for &(j, i) in pairs {
        match out.last_mut() {
            Some(last) if last.0 == j && last.1 == i => last.2 += 1,
            _ => out.push((j, i, 1)),
        }
    }
    out
}

/// The most runs a cell can hold: per job, its start that covers the cell most often.
fn max_occupancy(terms: &[Term]) -> u32 {
    let mut total = 0;
    let mut k = 0;
    while k < terms.len() {
        let j = terms[k].0;
        let mut most = 0;
        while k < terms.len() && terms[k].0 == j {
            most = most.max(terms[k].2);
            k += 1;
        }
        total += most;
    }
    total
}

fn warm_start(c: &Component, program: &Program, start: &State) -> Vec<(Variable, f64)> {
    let mut warm = Vec::new();
    for (j, vars) in program.x.iter().enumerate() {
        for (i, &v) in vars.iter().enumerate() {
            warm.push((v, if start.choice[j] == i { 1.0 } else { 0.0 }));
        }
    }
    if !program.overflow.is_empty() {
        let rows = capacity_rows(c);
        for ((cell, _), &o) in rows.iter().zip(&program.overflow) {
            let excess = start.occupancy[*cell].saturating_sub(c.cell_capacity[*cell]);
            warm.push((o, f64::from(excess)));
        }
    }
    warm
}

/// The chosen start index of every job, or `None` if the solution is not a valid choice.
fn read_choice(program: &Program, solution: &microlp::Solution) -> Option<Vec<usize>> {
    program
        .x
        .iter()
        .map(|vars| vars.iter().position(|&v| solution.var_value_raw(v) > 0.5))
        .collect()
}
