//! A lower bound on a component's cost by Lagrangian relaxation of the
//! capacity constraints.
//!
//! With a price `λ ≥ 0` on every cell, each job alone takes its start of least
//! `cost + prices of its cells`; the sum of those minima minus
//! `Σ λ × capacity` is below the cost of every plan that keeps every
//! capacity. Subgradient steps (Polyak's rule toward the best known plan)
//! raise it; the best value seen is the bound. Only valid for plans without
//! overflow, so the caller asks only when its plan has none.

use super::component::Component;

/// The best Lagrangian bound found in `iterations` subgradient steps, given
/// the cost `upper` of a known plan without overflow.
pub fn lagrangian(c: &Component, upper: f64, iterations: usize) -> f64 {
    let cells = c.cell_capacity.len();
    let week = c.week;
    let mut price = vec![0.0f64; cells];
    // Running sums of the prices of each resource row over two weeks (for wraps).
    let rows = c.resources.len();
    let mut sums = vec![0.0f64; rows * (2 * week + 1)];
    let mut occupancy = vec![0u32; cells];
    let mut best = f64::NEG_INFINITY;
    let mut step_scale = 2.0;
    let mut since_better = 0;
    for _ in 0..iterations {
        fill_sums(&price, rows, week, &mut sums);
        occupancy.fill(0);
        let mut value = 0.0;
        for (j, job) in c.jobs.iter().enumerate() {
            let (i, reduced) = cheapest(c, j, &sums);
            value += reduced;
            c.for_cells(j, usize::from(job.starts[i]), |cell| occupancy[cell] += 1);
        }
        let capacity_price: f64 = price
            .iter()
            .zip(&c.cell_capacity)
            .map(|(p, &k)| p * f64::from(k))
            .sum();
        value -= capacity_price;
        if best == f64::NEG_INFINITY || value > best + 1e-9 * best.abs().max(1.0) {
            best = value;
            since_better = 0;
        } else {
            since_better += 1;
            if since_better >= 10 {
                step_scale /= 2.0;
                since_better = 0;
            }
        }
        let gradient = |cell: usize| f64::from(occupancy[cell]) - f64::from(c.cell_capacity[cell]);
        let norm: f64 = (0..cells)
            .map(|cell| {
                let g = gradient(cell);
                // Cells at price 0 with a negative gradient cannot move.
                if price[cell] <= 0.0 && g < 0.0 {
                    0.0
                } else {
                    g * g
                }
            })
            .sum();
        let gap = upper - value;
        if norm == 0.0 || gap <= 1e-9 * upper.abs().max(1.0) || step_scale < 1e-4 {
            break;
        }
        let step = step_scale * gap / norm;
        for (cell, p) in price.iter_mut().enumerate() {
            *p = (*p + step * gradient(cell)).max(0.0);
        }
    }
    // Leave room for the rounding of the sums: a bound must never exceed the optimum.
    (best - 1e-9 * best.abs().max(1.0)).min(upper)
}

/// `sums[row * (2 week + 1) + t]` = sum of the row's prices over slots `0 .. t` (two weeks).
fn fill_sums(price: &[f64], rows: usize, week: usize, sums: &mut [f64]) {
    let stride = 2 * week + 1;
    for r in 0..rows {
        let row = &price[r * week..(r + 1) * week];
        let out = &mut sums[r * stride..(r + 1) * stride];
        out[0] = 0.0;
        for t in 0..2 * week {
            out[t + 1] = out[t] + row[t % week];
        }
    }
}

/// The start of job `j` with the least cost plus prices, and that value.
fn cheapest(c: &Component, j: usize, sums: &[f64]) -> (usize, f64) {
    let job = &c.jobs[j];
    let week = c.week;
    let stride = 2 * week + 1;
    let mut best = (0, f64::INFINITY);
    for (i, &s) in job.starts.iter().enumerate() {
        let mut value = job.costs[i];
        for b in &job.bases {
            let row = b.resource_offset as usize / week;
            let first = b.day_offset as usize + usize::from(s);
            let last = (first + job.length).min(2 * week);
            value += sums[row * stride + last] - sums[row * stride + first];
        }
        if value < best.1 {
            best = (i, value);
        }
    }
    best
}
