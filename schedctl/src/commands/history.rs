//! `schedctl history`: plans, applies and rollbacks from the store, newest first.

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;

use super::{open_store, Context};
use crate::exit::CommandResult;
use crate::fleet::planned::short;
use crate::output::{self, Format};
use crate::store::{ApplyRow, RollbackRow};

/// List what was planned, applied and rolled back.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many of each to show.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Serialize)]
struct PlanEntry {
    id: i64,
    created_at: i64,
    created_by: String,
    source: String,
    summary: String,
}

#[derive(Serialize)]
struct HistoryOutput {
    /// The store file and its schema version.
    store: String,
    schema_version: i64,
    plans: Vec<PlanEntry>,
    applies: Vec<ApplyRow>,
    rollbacks: Vec<RollbackRow>,
    /// Applies that never finished (a schedctl killed mid-rollout).
    unfinished: Vec<i64>,
}

/// Runs `schedctl history`.
pub fn run(context: &Context, args: &HistoryArgs) -> CommandResult {
    let config = context.config()?;
    let store = open_store(&config)?;
    let limit = args.limit.max(1);
    let plans: Vec<PlanEntry> = store
        .plans(limit)?
        .into_iter()
        .map(|p| PlanEntry {
            id: p.id,
            created_at: p.created_at,
            created_by: p.created_by,
            source: p.source,
            summary: p.summary,
        })
        .collect();
    let applies = store.applies(limit)?;
    let rollbacks = store.rollbacks(limit)?;
    let unfinished: Vec<i64> = store.unfinished_applies()?.iter().map(|a| a.id).collect();
    let out = HistoryOutput {
        store: store.path().display().to_string(),
        schema_version: store.schema_version()?,
        plans,
        applies,
        rollbacks,
        unfinished,
    };
    match args.format {
        Format::Json => output::print_json(&out)?,
        Format::Text => output::print_text(&render(&out))?,
    }
    Ok(())
}

fn render(h: &HistoryOutput) -> String {
    // (time, order within the same second, line)
    let mut lines: Vec<(i64, i64, String)> = Vec::new();
    for p in &h.plans {
        lines.push((
            p.created_at,
            0,
            format!(
                "plan {:<4} by {:<10} {} ({})",
                p.id, p.created_by, p.summary, p.source
            ),
        ));
    }
    for a in &h.applies {
        let mut text = format!(
            "apply {:<3} by {:<10} plan {}: {}{}",
            a.id,
            a.started_by,
            a.plan_id,
            if a.finished_at.is_none() {
                "DID NOT FINISH"
            } else {
                a.status.as_str()
            },
            if a.message.is_empty() {
                String::new()
            } else {
                format!(" — {}", a.message)
            }
        );
        for host in &a.hosts {
            let _ = write!(
                text,
                "\n      {}. {} ({}): {}{}",
                host.position,
                host.host,
                host.transport,
                host.status,
                host.digest_after
                    .as_deref()
                    .map(|d| format!(", digest {} → {}", short(&host.digest_before), short(d)))
                    .unwrap_or_default()
            );
        }
        lines.push((a.started_at, 1, text));
    }
    for r in &h.rollbacks {
        lines.push((
            r.started_at,
            2,
            format!(
                "rollback {:<2} by {:<8} apply {}: {} — {}",
                r.id, r.started_by, r.apply_id, r.status, r.message
            ),
        ));
    }
    lines.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = String::new();
    if lines.is_empty() {
        out.push_str("Nothing yet: make a plan with `schedctl plan`.\n");
    }
    for (at, _, line) in lines {
        let _ = writeln!(out, "{}  {line}", output::utc_time(at));
    }
    for id in &h.unfinished {
        let _ = writeln!(
            out,
            "\nApply {id} did not finish (schedctl stopped mid-rollout): see its hosts above; `schedctl rollback {id}` puts them back."
        );
    }
    out
}
