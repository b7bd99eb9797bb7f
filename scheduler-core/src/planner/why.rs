//! A short reason for every moved job, for people reading the plan.
//!
//! Checked in this order against the schedule before the plan (every job at
//! its current start): the current start is outside the job's window; the
//! job overlapped another on a shared resource beyond its capacity; its
//! hosts were busier at the old time than at the new one; otherwise it made
//! room for others.

use crate::snapshot::Model;

/// One reason per job (empty for jobs that keep their start).
pub fn reasons(model: &Model, starts: &[usize]) -> Vec<String> {
    let current: Vec<usize> = model.jobs.iter().map(|j| j.current_start).collect();
    let occupancy = occupancy(model, &current);
    (0..model.jobs.len())
        .map(|j| {
            if starts[j] == current[j] {
                String::new()
            } else {
                reason(model, &occupancy, j, starts[j])
            }
        })
        .collect()
}

/// Runs per (resource, week slot) with every job at `starts`.
fn occupancy(model: &Model, starts: &[usize]) -> Vec<u32> {
    let week = model.slots_per_week;
    let mut occ = vec![0u32; model.resources.len() * week];
    for (j, &s) in starts.iter().enumerate() {
        for t in model.run_slots(j, s) {
            for &r in &model.jobs[j].resources {
                occ[r * week + t] += 1;
            }
        }
    }
    occ
}

fn reason(model: &Model, occupancy: &[u32], j: usize, new_start: usize) -> String {
    let job = &model.jobs[j];
    let current = job.current_start;
    if !(0..job.length).all(|k| job.window[(current + k) % model.slots_per_day]) {
        return format!("{} is outside its window", model.format_start(current));
    }
    if let Some(text) = overlap(model, occupancy, j) {
        return text;
    }
    let (old_cost, new_cost) = (model.load_cost(j, current), model.load_cost(j, new_start));
    if old_cost > new_cost {
        return busy_text(model, j, old_cost, new_cost);
    }
    "made room for other jobs".to_owned()
}

/// "overlapped backup-x on pbs:main" when the job shared an overfull slot.
fn overlap(model: &Model, occupancy: &[u32], j: usize) -> Option<String> {
    let week = model.slots_per_week;
    let job = &model.jobs[j];
    let slots: Vec<usize> = model.run_slots(j, job.current_start).collect();
    for &r in &job.resources {
        let capacity = model.resources[r].capacity;
        let Some(&t) = slots.iter().find(|&&t| occupancy[r * week + t] > capacity) else {
            continue;
        };
        let other = (0..model.jobs.len()).find(|&k| {
            k != j
                && model.jobs[k].resources.contains(&r)
                && runs_at(model, k, t)
        });
        let name = &model.resources[r].name;
        return Some(match other {
            Some(k) => format!("overlapped {} on {name}", model.jobs[k].id),
            None => format!("{name} over capacity"),
        });
    }
    None
}

/// "pihanga busy 02:30–03:30" from the busiest impacted host's old run.
fn busy_text(model: &Model, j: usize, old_cost: f64, new_cost: f64) -> String {
    let job = &model.jobs[j];
    let host = job
        .impacts
        .iter()
        .max_by(|a, b| {
            (a.1 * model.hosts[a.0].sensitivity).total_cmp(&(b.1 * model.hosts[b.0].sensitivity))
        })
        .map_or(job.host, |&(h, _)| h);
    let end = (job.current_start + job.length) % model.slots_per_day;
    format!(
        "{} busy {}–{} (load cost {:.1} → {:.1})",
        model.hosts[host].name,
        model.format_start(job.current_start),
        model.format_start(end),
        old_cost,
        new_cost
    )
}

/// Whether job `k`, at its current start, occupies week slot `t`.
fn runs_at(model: &Model, k: usize, t: usize) -> bool {
    let job = &model.jobs[k];
    let (spd, week) = (model.slots_per_day, model.slots_per_week);
    job.days.iter().any(|&d| {
        let first = usize::from(d) * spd + job.current_start;
        // Offset of `t` after the run's first slot, on the cyclic week.
        let offset = (t + week - first % week) % week;
        offset < job.length
    })
}
