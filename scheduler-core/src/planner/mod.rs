//! The planner (PLANNING-MODEL.md): chooses a start for every job so that the
//! overflow is minimal and then the cost.
//!
//! How: the jobs fall into independent components (jobs linked by resources
//! that can overflow, see [`component`]); each is solved on its own and the
//! plan is their union. Two passes, both on all threads:
//!
//! 1. every component gets a greedy start, simulated annealing and a descent
//!    ([`search`]), largest components first;
//! 2. then the components that can still improve are either solved exactly
//!    by branch and bound on the LP relaxation ([`exact`]; the small ones,
//!    cheapest first, as many as their predicted time fits), or improved by
//!    large-neighbourhood search with exact sub-problems ([`lns`]) and given a
//!    Lagrangian lower bound ([`bound`]).
//!
//! Determinism: every component is solved with its own generator seeded by
//! the plan's seed and the component's first job, and with an amount of work
//! (moves, nodes, rounds, steps, which components go exact) computed from the
//! model and the options only — never from the clock. Threads only decide
//! which component is solved when, never how. So the same snapshot, seed,
//! time limit and thread count give the same plan — unless the deadline
//! expires before that work is done: then the search stops early and returns
//! the best plan found so far, the only case where timing shapes the result.

pub mod bound;
pub mod component;
pub mod exact;
pub mod lns;
pub mod search;
mod why;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::plan::Plan;
use crate::snapshot::Model;

use component::Component;
use search::{Anneal, Rng, State};

/// Tells the planner when to stop improving. The caller owns the clock:
/// `scheduler-core` never reads one.
pub trait Deadline: Sync {
    /// True once the planner should return the best plan it has.
    fn expired(&self) -> bool;

    /// Time left, for solvers that take a time budget; `None` means no limit.
    fn remaining(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A deadline that never expires: the planner does its fixed work.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadline;

impl Deadline for NoDeadline {
    fn expired(&self) -> bool {
        false
    }
}

/// How the planner works.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seeds every random choice; the same seed gives the same plan.
    pub seed: u64,
    /// The time the caller allows, in seconds: sizes the fixed amount of work
    /// (the caller's [`Deadline`] enforces it).
    pub time_limit_secs: f64,
    /// Worker threads (at least 1).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            time_limit_secs: 10.0,
            threads: 2,
        }
    }
}

/// Annealing moves one thread does per second, conservatively (release build).
const MOVES_PER_SECOND: f64 = 1.0e6;
/// Annealing moves per job of a component, when time allows.
const MOVES_PER_JOB: f64 = 100_000.0;
/// Share of the time limit sized for the annealing pass.
const SEARCH_SHARE: f64 = 0.45;
/// Share of the time limit sized for the exact pass (the rest: reading, printing, slack).
const EXACT_SHARE: f64 = 0.35;
/// Components with more jobs than this are improved by large-neighbourhood
/// search instead of being solved exactly at once (the LP grows too slow).
const EXACT_MAX_JOBS: usize = 60;
/// Share of the time limit sized for the Lagrangian bounds.
const BOUND_SHARE: f64 = 0.03;
/// Simple operations one thread does per second, conservatively.
const OPS_PER_SECOND: f64 = 5.0e8;
/// Subgradient steps at most per component.
const MAX_BOUND_ITERATIONS: usize = 300;
/// Jobs freed in one round of large-neighbourhood search.
const LNS_FREE_JOBS: usize = 16;
/// Rounds of large-neighbourhood search at most per component.
const MAX_LNS_ROUNDS: usize = 2000;
/// Predicted exact time per (thousand variables)^3, in seconds.
const EXACT_SECS_PER_KVARS_CUBED: f64 = 0.03;

/// What solving one component gave.
#[derive(Debug, Clone)]
struct Solved {
    /// Start index per job of the component.
    choice: Vec<usize>,
    /// Lower bound on the component's cost.
    bound: f64,
}

/// Plans every job of `model`. `solve_ms` is left at 0 for the caller, who owns the clock.
///
/// ```
/// use scheduler_core::planner::{plan, NoDeadline, Options};
/// use scheduler_core::snapshot::Model;
///
/// // Two hosts back up to one datastore at the same time.
/// let model = Model::from_json(r#"{
///     "version": 1, "window": {"start": "01:00", "end": "05:00"},
///     "resources": [{"name": "pbs:main", "capacity": 1}],
///     "hosts": [{"name": "ruapehu"}, {"name": "pihanga"}],
///     "jobs": [
///         {"id": "a", "host": "ruapehu", "current_start": "02:00", "duration_minutes": 30, "resources": ["pbs:main"]},
///         {"id": "b", "host": "pihanga", "current_start": "02:00", "duration_minutes": 30, "resources": ["pbs:main"]}
///     ]}"#).unwrap();
/// let plan = plan(&model, &Options::default(), &NoDeadline);
/// assert!(plan.feasible);
/// assert_eq!(plan.moved, 1); // one of them moves, the other keeps 02:00
/// assert_eq!(plan.objective, 1.0); // no load, one move
/// ```
pub fn plan(model: &Model, options: &Options, deadline: &dyn Deadline) -> Plan {
    let components = component::components(model);
    let budgets = budgets(&components, options);
    let solved = solve_all(&components, &budgets, options, deadline);
    let mut starts: Vec<usize> = model.jobs.iter().map(|j| j.current_start).collect();
    let mut bound = 0.0;
    for (c, s) in components.iter().zip(&solved) {
        for (job, &i) in c.jobs.iter().zip(&s.choice) {
            starts[job.model_index] = usize::from(job.starts[i]);
        }
        bound += s.bound;
    }
    let reasons = why::reasons(model, &starts);
    Plan::from_starts(model, &starts, reasons, Some(bound), 0)
}

/// Annealing moves per component: `MOVES_PER_JOB` per job, scaled down so the
/// whole fits in the time limit on the given threads.
fn budgets(components: &[Component], options: &Options) -> Vec<u64> {
    let wanted: Vec<f64> = components
        .iter()
        .map(|c| {
            let movable = c.jobs.iter().filter(|j| j.is_movable()).count();
            if movable < 2 {
                0.0
            } else {
                MOVES_PER_JOB * movable as f64
            }
        })
        .collect();
    let total: f64 = wanted.iter().sum();
    let threads = options.threads.max(1) as f64;
    let affordable = MOVES_PER_SECOND * threads * options.time_limit_secs.max(0.0) * SEARCH_SHARE;
    let scale = if total > affordable {
        affordable / total
    } else {
        1.0
    };
    wanted.iter().map(|w| (w * scale) as u64).collect()
}

/// Runs `work` on every index of `order` on up to `threads` threads and
/// returns the results by index. Which thread takes which index does not
/// change any result.
fn run_parallel<T: Send>(
    order: &[usize],
    len: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
) -> Vec<Option<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..len).map(|_| None).collect());
    let worker = || loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(&i) = order.get(k) else { break };
        let result = work(i);
        if let Ok(mut r) = results.lock() {
            r[i] = Some(result);
        }
    };
    let threads = threads.max(1).min(order.len().max(1));
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(worker);
        }
        worker();
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Two passes: first every component gets its heuristic (largest first, a
/// fixed amount of work), then the small ones are solved exactly (smallest
/// first) while time remains.
fn solve_all(
    components: &[Component],
    budgets: &[u64],
    options: &Options,
    deadline: &dyn Deadline,
) -> Vec<Solved> {
    let n = components.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(components[i].jobs.len()), i));
    let heuristic = run_parallel(&order, n, options.threads, |i| {
        let c = &components[i];
        let seed =
            options.seed ^ (c.jobs[0].model_index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
        heuristic(c, budgets[i], seed, deadline)
    });
    let states: Vec<State> = heuristic
        .into_iter()
        .zip(components)
        .map(|(s, c)| s.unwrap_or_else(|| search::greedy(c)))
        .collect();
    let (exact_set, lns_rounds) = second_pass_plan(components, &states, options);
    let bound_iterations = bound_iterations(components, &lns_rounds, options);
    let mut second: Vec<usize> = exact_set;
    second.extend((0..n).filter(|&i| lns_rounds[i] > 0));
    let improved = run_parallel(&second, n, options.threads, |i| {
        let c = &components[i];
        if deadline.expired() {
            None
        } else if lns_rounds[i] > 0 {
            let seed = options.seed ^ 0x5DEE_CE66 ^ (c.jobs[0].model_index as u64);
            let mut rng = Rng::new(seed);
            let state = lns::improve(
                c,
                states[i].clone(),
                lns_rounds[i],
                LNS_FREE_JOBS,
                &mut rng,
                deadline,
            );
            let bound = if state.overflow == 0 && bound_iterations[i] > 0 {
                bound::lagrangian(c, state.cost, bound_iterations[i])
            } else {
                c.trivial_bound()
            };
            Some(exact::Exact {
                state,
                bound,
                proven: false,
            })
        } else {
            exact::solve(c, &states[i], deadline)
        }
    });
    states
        .into_iter()
        .zip(improved)
        .zip(components)
        .map(|((state, exact), c)| finish(c, state, exact.flatten()))
        .collect()
}

/// The second pass, decided from the model and the options only (never the
/// clock): which components are solved exactly, and how many rounds of
/// large-neighbourhood search each of the others gets.
fn second_pass_plan(
    components: &[Component],
    states: &[State],
    options: &Options,
) -> (Vec<usize>, Vec<usize>) {
    let mut budget = options.time_limit_secs.max(0.0) * EXACT_SHARE * options.threads.max(1) as f64;
    let exact_set = exact_selection(components, states, &mut budget);
    let mut rounds = vec![0; components.len()];
    let rest: Vec<usize> = (0..components.len())
        .filter(|i| !exact_set.contains(i))
        .filter(|&i| {
            components[i].jobs.len() > LNS_FREE_JOBS && needs_exact(&components[i], &states[i])
        })
        .collect();
    let jobs: usize = rest.iter().map(|&i| components[i].jobs.len()).sum();
    for &i in &rest {
        let c = &components[i];
        let share = budget * c.jobs.len() as f64 / jobs.max(1) as f64;
        let avg_starts =
            c.jobs.iter().map(|j| j.starts.len()).sum::<usize>() as f64 / c.jobs.len() as f64;
        let round = predicted_secs(LNS_FREE_JOBS as f64 * avg_starts);
        rounds[i] = ((share / round.max(1e-6)) as usize).min(MAX_LNS_ROUNDS);
    }
    (exact_set, rounds)
}

/// Subgradient steps of the Lagrangian bound for each component improved by
/// large-neighbourhood search, within `BOUND_SHARE` of the time.
fn bound_iterations(
    components: &[Component],
    lns_rounds: &[usize],
    options: &Options,
) -> Vec<usize> {
    let work = |c: &Component| -> f64 {
        let starts: usize = c.jobs.iter().map(|j| j.starts.len() * j.bases.len()).sum();
        (starts + 3 * c.cell_capacity.len()) as f64
    };
    let total: f64 = (0..components.len())
        .filter(|&i| lns_rounds[i] > 0)
        .map(|i| work(&components[i]))
        .sum();
    let budget = options.time_limit_secs.max(0.0)
        * BOUND_SHARE
        * options.threads.max(1) as f64
        * OPS_PER_SECOND;
    // Work shared in proportion to each step's cost: every component gets
    // the same number of steps.
    let steps = if total > 0.0 {
        ((budget / total) as usize).min(MAX_BOUND_ITERATIONS)
    } else {
        0
    };
    lns_rounds
        .iter()
        .map(|&rounds| if rounds > 0 { steps } else { 0 })
        .collect()
}

/// The components the exact pass takes on, in the order it takes them: those
/// that can still improve, cheapest first, as many as the predicted solve
/// times fit in the exact pass's share of the time limit. The choice depends
/// on the model and the options only, never on the clock.
fn exact_selection(components: &[Component], states: &[State], budget: &mut f64) -> Vec<usize> {
    let mut candidates: Vec<(f64, usize)> = (0..components.len())
        .filter(|&i| {
            components[i].jobs.len() <= EXACT_MAX_JOBS && needs_exact(&components[i], &states[i])
        })
        .map(|i| {
            let vars: usize = components[i].jobs.iter().map(|j| j.starts.len()).sum();
            (predicted_secs(vars as f64), i)
        })
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut chosen = Vec::new();
    for (secs, i) in candidates {
        if secs > *budget {
            break;
        }
        *budget -= secs;
        chosen.push(i);
    }
    chosen
}

/// A rough, pessimistic guess of the exact solver's time on a problem with
/// `vars` variables (measured on the public instances).
fn predicted_secs(vars: f64) -> f64 {
    let thousands = vars / 1000.0;
    EXACT_SECS_PER_KVARS_CUBED * thousands.powi(3)
}

/// Whether the exact solver can still improve or prove anything.
fn needs_exact(c: &Component, state: &State) -> bool {
    state.overflow > 0 || state.cost > c.trivial_bound() + 1e-9 * state.cost.abs().max(1.0)
}

/// Greedy, descent, annealing, descent.
fn heuristic(c: &Component, moves: u64, seed: u64, deadline: &dyn Deadline) -> State {
    let mut rng = Rng::new(seed);
    let mut best = search::greedy(c);
    search::descend(c, &mut best, deadline);
    if moves > 0 && !deadline.expired() {
        let settings = anneal_settings(c, moves);
        let mut s = search::anneal(c, best.clone(), settings, &mut rng, deadline);
        search::descend(c, &mut s, deadline);
        if s.better_than(&best) {
            best = s;
        }
    }
    best
}

/// The component's result: the better of heuristic and exact, with the best bound known.
fn finish(c: &Component, heuristic: State, exact: Option<exact::Exact>) -> Solved {
    let trivial = c.trivial_bound();
    let (best, bound) = match exact {
        Some(e) if e.state.better_than(&heuristic) => (e.state, e.bound),
        Some(e) => (heuristic, e.bound),
        None => (heuristic, trivial),
    };
    // The trivial bound holds at any overflow; a component already at it is optimal.
    let bound = bound.max(trivial).min(best.cost);
    Solved {
        choice: best.choice,
        bound,
    }
}

/// Temperatures from the spread of the costs.
fn anneal_settings(c: &Component, moves: u64) -> Anneal {
    let spreads: Vec<f64> = c
        .jobs
        .iter()
        .filter(|j| j.is_movable())
        .map(|j| {
            let max = j.costs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = j.costs.iter().copied().fold(f64::INFINITY, f64::min);
            max - min
        })
        .collect();
    let mean = spreads.iter().sum::<f64>() / spreads.len().max(1) as f64;
    let t_start = (0.05 * mean).max(1e-3);
    Anneal {
        iterations: moves,
        t_start,
        t_end: t_start * 1e-3,
        soft_penalty: None,
        repair: 0.5,
        swap: 0.3,
    }
}
