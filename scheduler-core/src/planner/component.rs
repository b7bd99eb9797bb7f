//! Independent parts of a planning problem and their compact, index-based form.
//!
//! A resource can only overflow when the runs that may use it at once exceed
//! its capacity ("tight"). Jobs linked through tight resources form a
//! component; components share nothing, so the overflow and the cost of a plan
//! are sums over components, each solved on its own. Inside a component the
//! occupancy of its tight resources is one flat array of cells
//! (`local resource * slots_per_week + week slot`).

use crate::snapshot::Model;

/// One job of a component: its candidate starts, their costs and where its runs fall.
#[derive(Debug, Clone)]
pub struct CJob {
    /// Index of the job in the model.
    pub model_index: usize,
    /// Allowed starts (slots of the day), ascending.
    pub starts: Vec<u16>,
    /// Cost of each allowed start (load cost plus stability), parallel to `starts`.
    pub costs: Vec<f64>,
    /// Indices into `starts`, cheapest first (ties: earlier start first).
    pub by_cost: Vec<u16>,
    /// Index in `starts` of the current start, if it is allowed.
    pub current: Option<usize>,
    /// First cell of each (tight resource, day) of a run starting at slot 0 of the day.
    pub bases: Vec<Base>,
    /// Occupied slots per run.
    pub length: usize,
}

impl CJob {
    /// Whether the planner has a choice for this job (more than one allowed start).
    pub fn is_movable(&self) -> bool {
        self.starts.len() > 1
    }
}

/// Where one run of a job on one resource begins (for a start at slot 0).
#[derive(Debug, Clone, Copy)]
pub struct Base {
    /// `local resource * slots_per_week`.
    pub resource_offset: u32,
    /// `day * slots_per_day`.
    pub day_offset: u32,
}

/// A component: jobs linked by tight resources, with its cells.
#[derive(Debug, Clone)]
pub struct Component {
    /// Slots in a day.
    pub spd: usize,
    /// Slots in the week.
    pub week: usize,
    /// The component's jobs.
    pub jobs: Vec<CJob>,
    /// Model indices of its tight resources (local index = position).
    pub resources: Vec<usize>,
    /// Capacity of each cell (of its resource).
    pub cell_capacity: Vec<u16>,
    /// For each job, the other jobs that share a tight resource with it.
    pub neighbours: Vec<Vec<u32>>,
}

impl Component {
    /// Local indices of the jobs that have a choice (more than one allowed start).
    pub fn movable_jobs(&self) -> Vec<usize> {
        (0..self.jobs.len())
            .filter(|&j| self.jobs[j].is_movable())
            .collect()
    }

    /// Calls `f` on every cell a job occupies when it starts at `start`.
    #[inline]
    pub fn for_cells(&self, job: usize, start: usize, mut f: impl FnMut(usize)) {
        let j = &self.jobs[job];
        for b in &j.bases {
            for (lo, hi) in self.run_ranges(b, start, j.length) {
                (lo..hi).for_each(&mut f);
            }
        }
    }

    /// The cells of one run as at most a few contiguous ranges `[lo, hi)`
    /// (a run that wraps from Sunday into Monday, or one longer than the week, splits).
    #[inline]
    pub fn run_ranges(
        &self,
        b: &Base,
        start: usize,
        length: usize,
    ) -> impl Iterator<Item = (usize, usize)> {
        let week = self.week;
        let base = b.resource_offset as usize;
        let mut first = (b.day_offset as usize + start) % week;
        let mut left = length;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let take = left.min(week - first);
            let range = (base + first, base + first + take);
            left -= take;
            first = 0;
            Some(range)
        })
    }

    /// A lower bound on the cost: every job at its cheapest start.
    pub fn trivial_bound(&self) -> f64 {
        self.jobs
            .iter()
            .map(|j| j.costs.iter().copied().fold(f64::INFINITY, f64::min))
            .sum()
    }
}

/// How many runs of one job can overlap each other on a resource.
fn self_overlap(model: &Model, job: usize) -> u32 {
    let length = model.jobs[job].length;
    let spd = model.slots_per_day;
    if length <= spd {
        1
    } else {
        u32::try_from(length.div_ceil(spd) + 1).unwrap_or(u32::MAX)
    }
}

/// Which resources can overflow: the runs that may use them at once exceed the capacity.
pub fn tight_resources(model: &Model) -> Vec<bool> {
    let mut demand = vec![0u64; model.resources.len()];
    for (j, job) in model.jobs.iter().enumerate() {
        for &r in &job.resources {
            demand[r] += u64::from(self_overlap(model, j));
        }
    }
    demand
        .iter()
        .zip(&model.resources)
        .map(|(&d, r)| d > u64::from(r.capacity))
        .collect()
}

/// Splits the model into components, in order of their first job.
pub fn components(model: &Model) -> Vec<Component> {
    let tight = tight_resources(model);
    let groups = group_jobs(model, &tight);
    let loads = LoadSums::new(model);
    groups
        .into_iter()
        .map(|jobs| build_component(model, &tight, &loads, &jobs))
        .collect()
}

/// Running sums of every host's load over two weeks, so that the load of a
/// run is one subtraction (the search's costs; plans are scored by [`Model::score`]).
struct LoadSums {
    /// Per host: `sums[t] = load(0) + ... + load(t - 1)`, for `t` in `0 ..= 2 * week`.
    sums: Vec<Vec<f64>>,
}

impl LoadSums {
    fn new(model: &Model) -> Self {
        let week = model.slots_per_week;
        let sums = (0..model.hosts.len())
            .map(|h| {
                let mut acc = 0.0;
                let mut sums = Vec::with_capacity(2 * week + 1);
                sums.push(0.0);
                for t in 0..2 * week {
                    acc += model.host_load(h, t % week);
                    sums.push(acc);
                }
                sums
            })
            .collect();
        LoadSums { sums }
    }

    /// `start_cost` of the model, from the running sums.
    fn start_cost(&self, model: &Model, job: usize, start: usize) -> f64 {
        let j = &model.jobs[job];
        let week = model.slots_per_week;
        let mut cost = 0.0;
        for &(h, weight) in &j.impacts {
            let factor = weight * model.hosts[h].sensitivity;
            if factor == 0.0 {
                continue;
            }
            let sums = &self.sums[h];
            let mut load = 0.0;
            for &d in &j.days {
                let first = usize::from(d) * model.slots_per_day + start;
                // A run longer than the rest of two weeks does not occur: L is at most a week.
                let (a, b) = (first, (first + j.length).min(2 * week));
                load += sums[b] - sums[a];
            }
            cost += factor * load;
        }
        if start != j.current_start {
            cost += model.stability_weight;
        }
        cost
    }
}

/// Union-find over jobs joined by tight resources; groups listed by first job.
fn group_jobs(model: &Model, tight: &[bool]) -> Vec<Vec<usize>> {
    let n = model.jobs.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut first_user: Vec<Option<usize>> = vec![None; model.resources.len()];
    for (j, job) in model.jobs.iter().enumerate() {
        for &r in job.resources.iter().filter(|&&r| tight[r]) {
            match first_user[r] {
                None => first_user[r] = Some(j),
                Some(u) => {
                    let (a, b) = (find(&mut parent, u), find(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
    }
    let mut index_of_root = vec![usize::MAX; n];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for j in 0..n {
        let root = find(&mut parent, j);
        if index_of_root[root] == usize::MAX {
            index_of_root[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[index_of_root[root]].push(j);
    }
    groups
}

fn build_component(model: &Model, tight: &[bool], loads: &LoadSums, jobs: &[usize]) -> Component {
    let spd = model.slots_per_day;
    let week = model.slots_per_week;
    let mut resources: Vec<usize> = jobs
        .iter()
        .flat_map(|&j| model.jobs[j].resources.iter().copied())
        .filter(|&r| tight[r])
        .collect();
    resources.sort_unstable();
    resources.dedup();
    let local = |r: usize| resources.binary_search(&r).unwrap_or(0);
    let mut cell_capacity = Vec::with_capacity(resources.len() * week);
    for &r in &resources {
        let cap = u16::try_from(model.resources[r].capacity).unwrap_or(u16::MAX);
        cell_capacity.extend(std::iter::repeat_n(cap, week));
    }
    let cjobs: Vec<CJob> = jobs
        .iter()
        .map(|&j| {
            let job = &model.jobs[j];
            let starts: Vec<u16> = job
                .allowed_starts
                .iter()
                .map(|&s| u16::try_from(s).unwrap_or(u16::MAX))
                .collect();
            let costs: Vec<f64> = job
                .allowed_starts
                .iter()
                .map(|&s| loads.start_cost(model, j, s))
                .collect();
            let current = job.allowed_starts.binary_search(&job.current_start).ok();
            let by_cost = cost_order(&costs);
            let bases = job
                .resources
                .iter()
                .filter(|&&r| tight[r])
                .flat_map(|&r| job.days.iter().map(move |&d| (r, d)))
                .map(|(r, d)| Base {
                    resource_offset: u32::try_from(local(r) * week).unwrap_or(0),
                    day_offset: u32::try_from(usize::from(d) * spd).unwrap_or(0),
                })
                .collect();
            CJob {
                model_index: j,
                starts,
                costs,
                by_cost,
                current,
                bases,
                length: job.length,
            }
        })
        .collect();
    let neighbours = neighbours(model, tight, jobs);
    Component {
        spd,
        week,
        jobs: cjobs,
        resources,
        cell_capacity,
        neighbours,
    }
}

fn neighbours(model: &Model, tight: &[bool], jobs: &[usize]) -> Vec<Vec<u32>> {
    jobs.iter()
        .map(|&a| {
            let ra = &model.jobs[a].resources;
            jobs.iter()
                .enumerate()
                .filter(|&(_, &b)| {
                    b != a
                        && model.jobs[b]
                            .resources
                            .iter()
                            .any(|r| tight[*r] && ra.contains(r))
                })
                .map(|(i, _)| u32::try_from(i).unwrap_or(0))
                .collect()
        })
        .collect()
}

/// Indices of `costs`, cheapest first; ties by index.
fn cost_order(costs: &[f64]) -> Vec<u16> {
    let mut order: Vec<u16> = (0..costs.len())
        .map(|i| u16::try_from(i).unwrap_or(u16::MAX))
        .collect();
    order.sort_by(|&a, &b| {
        costs[usize::from(a)]
            .total_cmp(&costs[usize::from(b)])
            .then(a.cmp(&b))
    });
    order
}
