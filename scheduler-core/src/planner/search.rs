//! Heuristic search on one component: a greedy start, simulated annealing
//! with shift, shift-and-repair and swap moves, then a descent to a local optimum.
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

    /// The overflow job `j` (taken out) would add at start index `i`,
    /// counted only up to `limit` (the caller needs to know "at least `limit`").
    pub fn added_overflow_up_to(&self, c: &Component, j: usize, i: usize, limit: u64) -> u64 {
        let job = &c.jobs[j];
        let start = usize::from(job.starts[i]);
        let mut added = 0;
        for b in &job.bases {
            for (lo, hi) in c.run_ranges(b, start, job.length) {
                let occ = &self.occupancy[lo..hi];
                let cap = &c.cell_capacity[lo..hi];
                added += occ.iter().zip(cap).filter(|(o, k)| o >= k).count() as u64;
            }
            if added >= limit {
                return added;
            }
        }
        added
    }

    /// True when a cell of job `j` (placed) holds more runs than its capacity.
    pub fn overfull_cells(&self, c: &Component, j: usize) -> bool {
        let job = &c.jobs[j];
        let start = usize::from(job.starts[self.choice[j]]);
        job.bases.iter().any(|b| {
            c.run_ranges(b, start, job.length).any(|(lo, hi)| {
                self.occupancy[lo..hi]
                    .iter()
                    .zip(&c.cell_capacity[lo..hi])
                    .any(|(o, k)| o > k)
            })
        })
    }

    /// The best start index for job `j` (taken out): least added overflow,
    /// then least cost, then the earliest start. Starts are tried cheapest
    /// first, so the first one that adds no overflow is the answer.
    pub fn best_start(&self, c: &Component, j: usize) -> (usize, u64) {
        self.best_start_among(c, j, usize::MAX)
    }

    /// [`State::best_start`] among the `limit` cheapest starts only.
    pub fn best_start_among(&self, c: &Component, j: usize, limit: usize) -> (usize, u64) {
        let job = &c.jobs[j];
        let mut best = (usize::from(job.by_cost[0]), u64::MAX);
        for &i in job.by_cost.iter().take(limit) {
            let i = usize::from(i);
            let added = self.added_overflow_up_to(c, j, i, best.1);
            if added < best.1 {
                best = (i, added);
                if added == 0 {
                    break;
                }
            }
        }
        best
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
    /// Cost of one unit of overflow during the walk (the best state is still
    /// chosen lexicographically); `None` for the strict penalty.
    pub soft_penalty: Option<f64>,
    /// Probability of repairing the neighbours after a move that adds overflow.
    pub repair: f64,
    /// Probability that a move exchanges the starts of two neighbours.
    pub swap: f64,
}

/// How many of its cheapest starts a repaired neighbour tries.
const REPAIR_CANDIDATES: usize = 24;

/// Simulated annealing from `s`; returns the best state seen.
pub fn anneal(
    c: &Component,
    mut s: State,
    settings: Anneal,
    rng: &mut Rng,
    deadline: &dyn Deadline,
) -> State {
    let movable = c.movable_jobs();
    if movable.is_empty() || settings.iterations == 0 {
        return s;
    }
    // Only the choices of the best state are kept; its occupancy is rebuilt at the end.
    let mut best = (s.overflow, s.cost, s.choice.clone());
    let penalty = settings.soft_penalty.unwrap_or_else(|| penalty(c));
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
        let before = s.value(penalty);
        let overflow_before = s.overflow;
        let old = s.choice[j];
        // Metropolis: accept when the change is at most `threshold`. Drawn first,
        // so a move whose own cost already exceeds it is refused without trying it.
        let threshold = -temperature * rng.unit().ln();
        scratch.clear();
        if rng.unit() < settings.swap {
            // Exchange start times with a neighbour, where both windows allow it.
            let Some((k, i, ik)) = swap_partner(c, &s, j, rng) else {
                continue;
            };
            let cost_change = c.jobs[j].costs[i] + c.jobs[k].costs[ik]
                - c.jobs[j].costs[old]
                - c.jobs[k].costs[s.choice[k]];
            if overflow_before == 0 && cost_change > threshold {
                continue;
            }
            scratch.push((k, s.choice[k]));
            s.remove(c, j);
            s.remove(c, k);
            s.insert(c, j, i);
            s.insert(c, k, ik);
        } else {
            let i = rng.below(c.jobs[j].starts.len());
            if i == old {
                continue;
            }
            // Repairs could pay back some of the cost; only a clearly bad move is skipped.
            if overflow_before == 0 && c.jobs[j].costs[i] - c.jobs[j].costs[old] > 2.0 * threshold {
                continue;
            }
            s.remove(c, j);
            s.insert(c, j, i);
            if s.overflow > overflow_before && rng.unit() < settings.repair {
                repair_neighbours(c, &mut s, j, &mut scratch);
            }
        }
        let delta = s.value(penalty) - before;
        if delta <= threshold {
            if s.overflow < best.0 || (s.overflow == best.0 && s.cost < best.1 - 1e-9) {
                best.0 = s.overflow;
                best.1 = s.cost;
                best.2.copy_from_slice(&s.choice);
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
    State::from_choices(c, &best.2)
}

/// A neighbour `k` of `j` and the start indices `(for j, for k)` that exchange their start times.
fn swap_partner(
    c: &Component,
    s: &State,
    j: usize,
    rng: &mut Rng,
) -> Option<(usize, usize, usize)> {
    let neighbours = &c.neighbours[j];
    if neighbours.is_empty() {
        return None;
    }
    let k = neighbours[rng.below(neighbours.len())] as usize;
    let (sj, sk) = (c.jobs[j].starts[s.choice[j]], c.jobs[k].starts[s.choice[k]]);
    if sj == sk || c.jobs[k].starts.len() < 2 {
        return None;
    }
    let i = c.jobs[j].starts.binary_search(&sk).ok()?;
    let ik = c.jobs[k].starts.binary_search(&sj).ok()?;
    Some((k, i, ik))
}

/// After moving `j`, moves each neighbour that now overflows to its best start.
/// Records `(neighbour, previous start index)` for undo.
fn repair_neighbours(c: &Component, s: &mut State, j: usize, moved: &mut Vec<(usize, usize)>) {
    for &k in &c.neighbours[j] {
        let k = k as usize;
        if c.jobs[k].starts.len() < 2 || !s.overfull_cells(c, k) {
            continue;
        }
        let prev = s.choice[k];
        s.remove(c, k);
        let here = s.added_overflow(c, k, prev);
        let (i, added) = s.best_start_among(c, k, REPAIR_CANDIDATES);
        let i = if added < here { i } else { prev };
        s.insert(c, k, i);
        if i != prev {
            moved.push((k, prev));
        }
    }
}
