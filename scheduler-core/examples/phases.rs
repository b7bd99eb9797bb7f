#![allow(missing_docs, clippy::unwrap_used)]
use scheduler_core::planner::{component, plan, NoDeadline, Options};
use scheduler_core::snapshot::Model;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let t = Instant::now();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let model = Model::from_json(&text).unwrap();
    eprintln!("parse {:?}", t.elapsed());
    let t = Instant::now();
    let comps = component::components(&model);
    eprintln!("components {:?} ({})", t.elapsed(), comps.len());
    let t = Instant::now();
    let tl: f64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(2.0);
    let p = plan(&model, &Options { seed: 0, time_limit_secs: tl, threads: 2 }, &NoDeadline);
    eprintln!("plan {:?} obj {} ov {}", t.elapsed(), p.objective, p.overflow);
}
