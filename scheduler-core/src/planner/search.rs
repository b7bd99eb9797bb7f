//! Heuristic search on one component: a greedy start, simulated annealing
//! with shift and shift-and-repair moves, then a descent to a local optimum.
//!
//! The objective is lexicographic (overflow, then cost); the search works on
//! `penalty * overflow + cost`, where `penalty` exceeds the largest possible
//! difference of cost, so that no cost saving can pay for one unit of overflow.
//! All randomness comes from [`Rng`], seeded by the caller: the same seed and
//! the same budget give the same result.

use super::component::Component;
use super::Deadline;

/// A small, fast, seeded generator (SplitMix64): reproducible on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        // Multiply-shift: unbiased enough for search, exact for reproducibility.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A complete assignment of one component with its occupancy and numbers.
#[derive(Debug, Clone)]
pub struct State {
    /// Index into each job's `starts`.
    pub choice: Vec<usize>,
    /// Runs per cell.
    pub occupancy: Vec<u16>,
    /// Current overflow.
    pub overflow: u64,
    /// Current cost.
    pub cost: f64,
}

impl State {
    /// An empty state (no job placed) for `c`.
    fn empty(c: &Component) -> State {
        State {
            choice: vec![usize::MAX; c.jobs.len()],
            occupancy: vec![0; c.cell_capacity.len()],
            overflow: 0,
            cost: 0.0,
        }
    }

    /// The state of the given choices.
    pub fn from_choices(c: &Component, choice: &[usize]) -> State {
        let mut s = State::empty(c);
        for (j, &i) in choice.iter().enumerate() {
            s.insert(c, j, i);
        }
        s
    }

    /// Places job `j` at its start index `i`.
    pub fn insert(&mut self, c: &Component, j: usize, i: usize) {
        let occ = &mut self.occupancy;
        let mut added = 0;
        c.for_cells(j, usize::from(c.jobs[j].starts[i]), |cell| {
            if occ[cell] >= c.cell_capacity[cell] {
                added += 1;
            }
            occ[cell] += 1;
        });
        self.overflow += added;
        self.cost += c.jobs[j].costs[i];
        self.choice[j] = i;
    }

    /// Takes job `j` out.
    pub fn remove(&mut self, c: &Component, j: usize) {
        let i = self.choice[j];
        let occ = &mut self.occupancy;
        let mut removed = 0;
        c.for_cells(j, usize::from(c.jobs[j].starts[i]), |cell| {
            occ[cell] -= 1;
            if occ[cell] >= c.cell_capacity[cell] {
                removed += 1;
            }
        });
        self.overflow -= removed;
        self.cost -= c.jobs[j].costs[i];
        self.choice[j] = usize::MAX;
    }

    /// The overflow job `j` (taken out) would add at start index `i`.
    pub fn added_overflow(&self, c: &Component, j: usize, i: usize) -> u64 {
        let mut added = 0;
        c.for_cells(j, usize::from(c.jobs[j].starts[i]), |cell| {
            if self.occupancy[cell] >= c.cell_capacity[cell] {
                added += 1;
            }
        });
        added
    }

    /// The best start index for job `j` (taken out): least added overflow,
    /// then least cost, then the earliest start.
    pub fn best_start(&self, c: &Component, j: usize) -> (usize, u64) {
        let job = &c.jobs[j];
        let mut best = (0, u64::MAX, f64::INFINITY);
        for i in 0..job.starts.len() {
            // A start that costs more than the best cannot win unless it overflows less.
            if best.1 == 0 && job.costs[i] >= best.2 {
                continue;
            }
            let added = self.added_overflow(c, j, i);
            if added < best.1 || (added == best.1 && job.costs[i] < best.2) {
                best = (i, added, job.costs[i]);
            }
        }
        (best.0, best.1)
    }

    /// `penalty * overflow + cost`.
    pub fn value(&self, penalty: f64) -> f64 {
        self.overflow as f64 * penalty + self.cost
    }

    /// True when `self` is lexicographically better than `other`.
    pub fn better_than(&self, other: &State) -> bool {
        self.overflow < other.overflow
            || (self.overflow == other.overflow && self.cost < other.cost - 1e-9)
    }
}

/// The overflow penalty: more than any difference of cost in the component.
pub fn penalty(c: &Component) -> f64 {
    let spread: f64 = c
        .jobs
        .iter()
        .map(|j| {
            let max = j.costs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = j.costs.iter().copied().fold(f64::INFINITY, f64::min);
            max - min
        })
        .sum();
    spread + 1.0
}

/// Greedy: least flexible jobs first, each at its best start given those before it.
pub fn greedy(c: &Component) -> State {
    let mut order: Vec<usize> = (0..c.jobs.len()).collect();
    order.sort_by_key(|&j| {
        let job = &c.jobs[j];
        (
            job.starts.len(),
            std::cmp::Reverse(job.bases.len() * job.length),
            j,
        )
    });
    let mut s = State::empty(c);
    for j in order {
        let (i, _) = s.best_start(c, j);
        s.insert(c, j, i);
    }
    s
}

/// Moves every job to its best start until no single move improves.
pub fn descend(c: &Component, s: &mut State, deadline: &dyn Deadline) {
    loop {
        let mut improved = false;
        for j in 0..c.jobs.len() {
            if c.jobs[j].starts.len() < 2 {
                continue;
            }
            let old = s.choice[j];
            let old_cost = c.jobs[j].costs[old];
            s.remove(c, j);
            let old_added = s.added_overflow(c, j, old);
            let (i, added) = s.best_start(c, j);
            let better =
                added < old_added || (added == old_added && c.jobs[j].costs[i] < old_cost - 1e-12);
            s.insert(c, j, if better { i } else { old });
            improved |= better;
        }
        if !improved || deadline.expired() {
            return;
        }
    }
}

/// Settings of one annealing run.
#[derive(Debug, Clone, Copy)]
pub struct Anneal {
    /// Moves to try.
    pub iterations: u64,
    /// Start temperature, in cost units.
    pub t_start: f64,
    /// End temperature, in cost units.
    pub t_end: f64,
}

/// Simulated annealing from `s`; returns the best state seen.
pub fn anneal(
    c: &Component,
    mut s: State,
    settings: Anneal,
    rng: &mut Rng,
    deadline: &dyn Deadline,
) -> State {
    let movable: Vec<usize> = (0..c.jobs.len())
        .filter(|&j| c.jobs[j].starts.len() > 1)
        .collect();
    let mut best = s.clone();
    if movable.is_empty() || settings.iterations == 0 {
        return best;
    }
    let penalty = penalty(c);
    let ratio = (settings.t_end / settings.t_start).ln();
    let mut temperature = settings.t_start;
    let mut scratch = Vec::new();
    for it in 0..settings.iterations {
        if it % 1024 == 0 {
            if deadline.expired() {
                break;
            }
            let progress = it as f64 / settings.iterations as f64;
            temperature = settings.t_start * (ratio * progress).exp();
        }
        let j = movable[rng.below(movable.len())];
        let i = rng.below(c.jobs[j].starts.len());
        if i == s.choice[j] {
            continue;
        }
        let before = s.value(penalty);
        let overflow_before = s.overflow;
        let old = s.choice[j];
        s.remove(c, j);
        s.insert(c, j, i);
        scratch.clear();
        if s.overflow > overflow_before && rng.below(2) == 0 {
            repair_neighbours(c, &mut s, j, &mut scratch);
        }
        let delta = s.value(penalty) - before;
        if delta <= 0.0 || rng.unit() < (-delta / temperature).exp() {
            if s.better_than(&best) {
                best = s.clone();
            }
        } else {
            // Undo: the repaired neighbours first (last moved first), then j.
            for &(k, prev) in scratch.iter().rev() {
                s.remove(c, k);
                s.insert(c, k, prev);
            }
            s.remove(c, j);
            s.insert(c, j, old);
        }
    }
    best
}

/// After moving `j`, moves each neighbour that now overflows to its best start.
/// Records `(neighbour, previous start index)` for undo.
fn repair_neighbours(c: &Component, s: &mut State, j: usize, moved: &mut Vec<(usize, usize)>) {
    for &k in &c.neighbours[j] {
        let k = k as usize;
        if c.jobs[k].starts.len() < 2 {
            continue;
        }
        let prev = s.choice[k];
        s.remove(c, k);
        let here = s.added_overflow(c, k, prev);
        if here == 0 {
            s.insert(c, k, prev);
            continue;
        }
        let (i, added) = s.best_start(c, k);
        let i = if added < here { i } else { prev };
        s.insert(c, k, i);
        if i != prev {
            moved.push((k, prev));
        }
    }
}
