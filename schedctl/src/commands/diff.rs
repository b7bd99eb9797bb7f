//! `schedctl diff [PLAN]`: the unified diff each host's jobs.cfg would get.

use clap::Args;
use serde::Serialize;

use super::{open_store, stored_plan, Context};
use crate::exit::{CommandError, CommandResult, Kind};
use crate::fleet::planned;
use crate::output::{self, Format};

/// Show the jobs.cfg diff of a stored plan.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The plan (an id from `schedctl history`); default: the latest.
    #[arg(value_name = "PLAN")]
    pub plan: Option<i64>,
    /// Output format: unified diffs for people, or JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Serialize)]
struct HostDiff<'a> {
    host: &'a str,
    transport: &'a str,
    /// Proxmox writes the whole file (SSH, Proxmox API).
    rewrites_whole_file: bool,
    digest: &'a str,
    changes: &'a [planned::Change],
    diff: String,
}

#[derive(Serialize)]
struct DiffOutput<'a> {
    plan_id: i64,
    hosts: Vec<HostDiff<'a>>,
}

/// Runs `schedctl diff`.
pub fn run(context: &Context, args: &DiffArgs) -> CommandResult {
    let config = context.config()?;
    let store = open_store(&config)?;
    let (row, body) = stored_plan(&store, args.plan)?;
    let mut hosts = Vec::new();
    for state in body.changed_hosts() {
        let diff = planned::diff(state)
            .map_err(|e| CommandError::new(Kind::Failed, anyhow::anyhow!(e)))?;
        hosts.push(HostDiff {
            host: &state.host,
            transport: &state.transport,
            rewrites_whole_file: state.kind().rewrites_whole_file(),
            digest: &state.digest,
            changes: &state.changes,
            diff,
        });
    }
    match args.format {
        Format::Json => output::print_json(&DiffOutput {
            plan_id: row.id,
            hosts,
        })?,
        Format::Text => {
            let mut out = String::new();
            if body.hosts.is_empty() {
                out.push_str(&format!(
                    "Plan {} was made from a snapshot file ({}): it has no hosts' jobs.cfg to diff.\n",
                    row.id, row.source
                ));
            } else if hosts.is_empty() {
                out.push_str(&format!("Plan {} changes nothing.\n", row.id));
            }
            for host in &hosts {
                if host.rewrites_whole_file {
                    out.push_str(&format!(
                        "# {} ({}): Proxmox writes jobs.cfg itself and renormalises the whole file\n",
                        host.host, host.transport
                    ));
                }
                out.push_str(&host.diff);
                if !host.diff.ends_with('\n') {
                    out.push('\n');
                }
            }
            output::print_text(&out)?;
        }
    }
    Ok(())
}
