//! The order in which hosts are written.
//!
//! An apply writes one host at a time; between two writes the fleet runs a
//! mix of old and new starts. The rollout order is one in which no such
//! intermediate state overlaps more than the state before it: the overflow
//! (PLANNING-MODEL.md, the sum over slots and resources of occupancy beyond
//! capacity) never grows from one step to the next. Such an order need not
//! exist (two hosts that must swap their slots on a full resource); then
//! [`order`] says so and returns the order whose worst step grows least.
//!
//! The search is a depth-first search over the hosts still to write, the
//! step that lowers the overflow most first, remembering the sets of hosts
//! already tried; it is exact for small fleets and bounded by
//! [`MAX_EXPANSIONS`] for large ones (a large fleet almost always has an
//! order in which every step lowers or keeps the overflow, found at once).

use std::collections::HashSet;

use crate::snapshot::Model;

/// Search states expanded at most before giving up on a monotone order.
pub const MAX_EXPANSIONS: usize = 20_000;

/// One host's write: its jobs (model indices) and their new starts (slots of the day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMove {
    /// The host.
    pub host: String,
    /// `(job index in the model, new start)` for each job the write moves.
    pub jobs: Vec<(usize, usize)>,
}

/// An order of the moves, with the overflow before and after each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Indices into the moves, in write order.
    pub order: Vec<usize>,
    /// `overflow[0]` before any write, `overflow[k]` after the k-th.
    pub overflow: Vec<u64>,
}

/// No order keeps the overflow from growing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no write order keeps the fleet's overlap from growing: in the best order found, step {worst_step} raises the overflow from {} to {}",
    .best.overflow[*.worst_step - 1], .best.overflow[*.worst_step]
)]
pub struct NoMonotoneOrder {
    /// The order whose worst step grows least (greedy).
    pub best: Rollout,
    /// The 1-based step that grows most in it.
    pub worst_step: usize,
}

/// Occupancy of every (resource, week slot), updated move by move.
struct Occupancy<'a> {
    model: &'a Model,
    counts: Vec<u32>,
    overflow: u64,
}

impl<'a> Occupancy<'a> {
    fn new(model: &'a Model, starts: &[usize]) -> Self {
        let mut occ = Occupancy {
            model,
            counts: vec![0; model.resources.len() * model.slots_per_week],
            overflow: 0,
        };
        for (job, &start) in starts.iter().enumerate() {
            occ.place(job, start, true);
        }
        occ
    }

    /// Adds or removes one job's runs, keeping the overflow up to date.
    fn place(&mut self, job: usize, start: usize, add: bool) {
        let week = self.model.slots_per_week;
        let slots: Vec<usize> = self.model.run_slots(job, start).collect();
        for &r in &self.model.jobs[job].resources {
            let capacity = self.model.resources[r].capacity;
            for &t in &slots {
                let count = &mut self.counts[r * week + t];
                if add {
                    if *count >= capacity {
                        self.overflow += 1;
                    }
                    *count += 1;
                } else {
                    *count -= 1;
                    if *count >= capacity {
                        self.overflow -= 1;
                    }
                }
            }
        }
    }

    /// Applies a move (or undoes it) given the current starts.
    fn apply(
        &mut self,
        starts: &mut [usize],
        host_move: &HostMove,
        undo: &mut Vec<(usize, usize)>,
    ) {
        for &(job, start) in &host_move.jobs {
            self.place(job, starts[job], false);
            undo.push((job, starts[job]));
            starts[job] = start;
            self.place(job, start, true);
        }
    }

    fn revert(&mut self, starts: &mut [usize], undo: Vec<(usize, usize)>) {
        for (job, start) in undo.into_iter().rev() {
            self.place(job, starts[job], false);
            starts[job] = start;
            self.place(job, start, true);
        }
    }

    /// The overflow after `host_move`, leaving everything as it was.
    fn overflow_after(&mut self, starts: &mut [usize], host_move: &HostMove) -> u64 {
        let mut undo = Vec::new();
        self.apply(starts, host_move, &mut undo);
        let overflow = self.overflow;
        self.revert(starts, undo);
        overflow
    }
}

/// An order of `moves` from `current` starts (one per model job) in which
/// the overflow never grows, or why there is none.
pub fn order(
    model: &Model,
    current: &[usize],
    moves: &[HostMove],
) -> Result<Rollout, NoMonotoneOrder> {
    let mut starts = current.to_vec();
    let mut occ = Occupancy::new(model, &starts);
    let mut search = Search {
        moves,
        tried: HashSet::new(),
        expansions: 0,
        path: Vec::new(),
        overflow: vec![occ.overflow],
    };
    let mut done = vec![false; moves.len()];
    if search.descend(&mut occ, &mut starts, &mut done) {
        return Ok(Rollout {
            order: search.path,
            overflow: search.overflow,
        });
    }
    Err(greedy(model, current, moves))
}

struct Search<'m> {
    moves: &'m [HostMove],
    tried: HashSet<Vec<bool>>,
    expansions: usize,
    path: Vec<usize>,
    overflow: Vec<u64>,
}

impl Search<'_> {
    /// Extends `path` to a full monotone order; false when none exists below here.
    fn descend(
        &mut self,
        occ: &mut Occupancy<'_>,
        starts: &mut [usize],
        done: &mut [bool],
    ) -> bool {
        if self.path.len() == self.moves.len() {
            return true;
        }
        if self.expansions >= MAX_EXPANSIONS || !self.tried.insert(done.to_vec()) {
            return false;
        }
        self.expansions += 1;
        let now = occ.overflow;
        let mut candidates: Vec<(u64, usize)> = (0..self.moves.len())
            .filter(|&m| !done[m])
            .map(|m| (occ.overflow_after(starts, &self.moves[m]), m))
            .filter(|&(after, _)| after <= now)
            .collect();
        candidates.sort_unstable();
        for (after, m) in candidates {
            let mut undo = Vec::new();
            occ.apply(starts, &self.moves[m], &mut undo);
            done[m] = true;
            self.path.push(m);
            self.overflow.push(after);
            if self.descend(occ, starts, done) {
                return true;
            }
            self.path.pop();
            self.overflow.pop();
            done[m] = false;
            occ.revert(starts, undo);
        }
        false
    }
}

/// The order that always takes the step with the least overflow after it.
fn greedy(model: &Model, current: &[usize], moves: &[HostMove]) -> NoMonotoneOrder {
    let mut starts = current.to_vec();
    let mut occ = Occupancy::new(model, &starts);
    let mut done = vec![false; moves.len()];
    let mut rollout = Rollout {
        order: Vec::new(),
        overflow: vec![occ.overflow],
    };
    for _ in 0..moves.len() {
        let best = (0..moves.len())
            .filter(|&m| !done[m])
            .map(|m| (occ.overflow_after(&mut starts, &moves[m]), m))
            .min();
        let Some((after, m)) = best else { break };
        let mut undo = Vec::new();
        occ.apply(&mut starts, &moves[m], &mut undo);
        done[m] = true;
        rollout.order.push(m);
        rollout.overflow.push(after);
    }
    let worst_step = (1..rollout.overflow.len())
        .max_by_key(|&k| {
            (
                rollout.overflow[k].saturating_sub(rollout.overflow[k - 1]),
                std::cmp::Reverse(k),
            )
        })
        .unwrap_or(1);
    NoMonotoneOrder {
        best: rollout,
        worst_step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `hosts` hosts with one job each on one datastore of capacity 1, 60-minute slots.
    fn model(starts: &[usize], lengths: &[usize]) -> Model {
        let hosts: Vec<String> = (0..starts.len())
            .map(|i| format!("{{\"name\": \"h{i}\"}}"))
            .collect();
        let jobs: Vec<String> = starts
            .iter()
            .zip(lengths)
            .enumerate()
            .map(|(i, (s, l))| {
                format!(
                    "{{\"id\": \"j{i}\", \"host\": \"h{i}\", \"current_start\": \"{s:02}:00\", \
                     \"duration_minutes\": {}, \"resources\": [\"pbs\"]}}",
                    l * 60
                )
            })
            .collect();
        let text = format!(
            "{{\"version\": 1, \"slot_minutes\": 60, \"resources\": [{{\"name\": \"pbs\", \"capacity\": 1}}], \
             \"hosts\": [{}], \"jobs\": [{}]}}",
            hosts.join(","),
            jobs.join(",")
        );
        Model::from_json(&text).expect("valid model")
    }

    fn moves_to(targets: &[usize]) -> Vec<HostMove> {
        targets
            .iter()
            .enumerate()
            .map(|(i, &t)| HostMove {
                host: format!("h{i}"),
                jobs: vec![(i, t)],
            })
            .collect()
    }

    #[test]
    fn the_host_that_frees_a_slot_goes_first() {
        // j0 and j1 overlap at 02:00; j1 moves to 03:00, j0 to 04:00 (into the
        // slot j2 leaves for 05:00). Writing j0 first would overlap j2.
        let m = model(&[2, 2, 4], &[1, 1, 1]);
        let current = [2, 2, 4];
        let rollout = order(&m, &current, &moves_to(&[4, 3, 5])).expect("an order exists");
        // One overlapping hour on each of the seven days.
        assert_eq!(rollout.overflow[0], 7);
        assert_eq!(*rollout.overflow.last().expect("steps"), 0);
        let pos = |h: usize| {
            rollout
                .order
                .iter()
                .position(|&x| x == h)
                .expect("in order")
        };
        assert!(pos(2) < pos(0), "{rollout:?}");
    }

    #[test]
    fn a_swap_on_a_full_resource_has_no_monotone_order() {
        let m = model(&[1, 3], &[2, 2]);
        let err = order(&m, &[1, 3], &moves_to(&[3, 1])).expect_err("no order");
        assert_eq!(err.best.order.len(), 2);
        assert!(
            err.to_string().contains("raises the overflow from 0 to"),
            "{err}"
        );
    }

    /// All orders of 0..n.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut all = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                all.push(q);
            }
        }
        all
    }

    fn overflows(m: &Model, current: &[usize], moves: &[HostMove], order: &[usize]) -> Vec<u64> {
        let mut starts = current.to_vec();
        let mut list = vec![m.score(&starts).overflow];
        for &k in order {
            for &(job, start) in &moves[k].jobs {
                starts[job] = start;
            }
            list.push(m.score(&starts).overflow);
        }
        list
    }

    proptest! {
        /// A found order is a permutation whose overflow never grows (checked
        /// against a full re-score); when none is found, no order of the
        /// hosts is monotone.
        #[test]
        fn orders_are_monotone_and_complete(
            jobs in proptest::collection::vec((0usize..24, 1usize..4, 0usize..24), 1..6),
        ) {
            let starts: Vec<usize> = jobs.iter().map(|j| j.0).collect();
            let lengths: Vec<usize> = jobs.iter().map(|j| j.1).collect();
            let targets: Vec<usize> = jobs.iter().map(|j| j.2).collect();
            let m = model(&starts, &lengths);
            let moves = moves_to(&targets);
            match order(&m, &starts, &moves) {
                Ok(rollout) => {
                    let mut sorted = rollout.order.clone();
                    sorted.sort_unstable();
                    prop_assert_eq!(sorted, (0..moves.len()).collect::<Vec<_>>());
                    let real = overflows(&m, &starts, &moves, &rollout.order);
                    prop_assert_eq!(&real, &rollout.overflow);
                    prop_assert!(real.windows(2).all(|w| w[1] <= w[0]));
                }
                Err(err) => {
                    let any = permutations(moves.len()).into_iter().any(|p| {
                        overflows(&m, &starts, &moves, &p).windows(2).all(|w| w[1] <= w[0])
                    });
                    prop_assert!(!any, "a monotone order exists but none was found");
                    let real = overflows(&m, &starts, &moves, &err.best.order);
                    prop_assert_eq!(real, err.best.overflow);
                }
            }
        }
    }
}
