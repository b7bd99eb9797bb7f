#![allow(missing_docs, clippy::unwrap_used)]
use scheduler_core::planner::{component, exact, search, NoDeadline};
use scheduler_core::snapshot::Model;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let ncomp: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(5);
    let moves: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(20000);
    let tfac: f64 = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(0.05);
    let model = Model::from_json(&text).unwrap();
    let comps = component::components(&model);
    let mut comps: Vec<_> = comps.into_iter().filter(|c| c.jobs.len() > 1).collect();
    comps.sort_by_key(|c| std::cmp::Reverse(c.jobs.len()));
    let (mut tg, mut ts, mut te) = (0.0, 0.0, 0.0);
    for c in comps.iter().take(ncomp) {
        let mut rng = search::Rng::new(1);
        let mut g = search::greedy(c);
        search::descend(c, &mut g, &NoDeadline);
        let t0 = Instant::now();
        let spreads: Vec<f64> = c.jobs.iter().map(|j| j.costs.iter().cloned().fold(f64::MIN, f64::max) - j.costs.iter().cloned().fold(f64::MAX, f64::min)).collect();
        let mean = spreads.iter().sum::<f64>() / spreads.len() as f64;
        let t_start = tfac * mean;
        let soft: f64 = std::env::var("SOFT").map(|v| v.parse().unwrap()).unwrap_or(0.0);
        let repair: f64 = std::env::var("REPAIR").map(|v| v.parse().unwrap()).unwrap_or(0.5);
        let settings = search::Anneal { iterations: moves * c.jobs.len() as u64, t_start, t_end: t_start * 1e-3, soft_penalty: if soft > 0.0 { Some(soft * mean) } else { None }, repair, swap: std::env::var("SWAP").map(|v| v.parse().unwrap()).unwrap_or(0.3) };
        let mut s = search::anneal(c, g.clone(), settings, &mut rng, &NoDeadline);
        let ta0 = t0.elapsed();
        search::descend(c, &mut s, &NoDeadline);
        let ta = t0.elapsed();
        eprint!("anneal {:?} ", ta0);
        let t1 = Instant::now();
        if std::env::var("NOEXACT").is_ok() { continue; }
        let e = exact::solve(c, &s, &NoDeadline).unwrap();
        println!("jobs {:3} greedy {:.3}/{} sa {:.3}/{} ({:?}) exact {:.3}/{} proven {} ({:?}) mean spread {:.2}", c.jobs.len(), g.cost, g.overflow, s.cost, s.overflow, ta, e.state.cost, e.state.overflow, e.proven, t1.elapsed(), mean);
        tg += g.cost; ts += s.cost; te += e.state.cost;
    }
    println!("greedy {:.4} sa {:.4}", tg / te, ts / te);
}
