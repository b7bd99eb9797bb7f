//! `schedctl rollback [APPLY_ID]`: put back every host an apply wrote.
//!
//! Per host, newest write first, after reading it again: jobs.cfg at the
//! digest the apply left → rolled back (the agent restores its kept copy;
//! over SSH and the Proxmox API the previous schedules are set back, and
//! Proxmox renormalises the file); already at the digest from before → left
//! as it is; anything else → changed since, not touched (exit 3). An apply
//! that never finished is resolved here too: a host recorded as `writing`
//! whose jobs.cfg still has the old digest was never written.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::collect_hosts;
use super::{confirm, open_store, stored_plan, Context};
use crate::exit::{bad_input, refused, CommandError, CommandResult, Kind};
use crate::fleet::planned::{short, write_landed};
use crate::fleet::rollout::Progress;
use crate::fleet::{collect, now, writes};
use crate::output::{self, Format};
use crate::store::{current_user, ApplyHostRow, ApplyRow, HostUpdate, Store};

/// Undo an apply.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The apply (an id from `schedctl history`); default: the latest apply that wrote something.
    #[arg(value_name = "APPLY_ID")]
    pub apply: Option<i64>,
    /// Roll back without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Output format: progress and a summary for people, or JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
struct HostOutcome {
    host: String,
    /// restored | unchanged | not_written | changed_since | failed
    status: String,
    digest: Option<String>,
    detail: String,
}

#[derive(Serialize)]
struct RollbackOutput {
    rollback_id: i64,
    apply_id: i64,
    status: String,
    hosts: Vec<HostOutcome>,
}

const TOUCHED: [&str; 3] = ["written", "writing", "rollback_failed"];

/// Runs `schedctl rollback`.
pub fn run(context: &Context, args: &RollbackArgs) -> CommandResult {
    let config = context.config()?;
    let store = open_store(&config)?;
    let apply = pick_apply(&store, args.apply)?;
    let hosts: Vec<&ApplyHostRow> = apply
        .hosts
        .iter()
        .rev()
        .filter(|h| TOUCHED.contains(&h.status.as_str()))
        .collect();
    let json = args.format == Format::Json;
    let progress = Progress::beside(args.format);
    let say = |text: &str| progress.line(text);
    if hosts.is_empty() {
        say(&format!("Apply {} left nothing to roll back.", apply.id));
        if apply.finished_at.is_none() {
            store.finish_apply(apply.id, "rolled_back", "nothing had been written", now())?;
        }
        return Ok(());
    }
    let mut text = format!(
        "Apply {} wrote {} host(s); rolling back, newest first:",
        apply.id,
        hosts.len()
    );
    for h in &hosts {
        let _ = write!(
            text,
            "\n  {} ({}): back to digest {}",
            h.host,
            h.transport,
            short(&h.digest_before)
        );
    }
    say(&text);
    if !args.yes {
        confirm("Roll back now?", "nothing was rolled back")?;
    }
    let configured: Vec<&crate::config::HostConfig> = hosts
        .iter()
        .map(|h| {
            config.host(&h.host).ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "host \"{}\" of apply {} is no longer configured; add it back to roll it back",
                    h.host,
                    apply.id
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let (reports, unreachable) = collect::split(collect_hosts(&config, &configured)?);
    let rollback_id = store.start_rollback(apply.id, now(), &current_user())?;
    let runtime = collect::runtime()?;
    let timeout = Duration::from_secs(config.timeout_secs);
    // jobs.cfg's digest on each host now; hosts of one cluster share the file,
    // so undoing one moves the others' digest too.
    let mut current: Vec<(String, String)> = reports
        .iter()
        .map(|(_, r)| (r.host.clone(), r.jobs_cfg.digest.clone()))
        .collect();
    let (_, body) = stored_plan(&store, Some(apply.plan_id))?;
    let landed = |host: &ApplyHostRow| {
        host.status == "writing"
            && host.digest_after.is_none()
            && body
                .hosts
                .iter()
                .find(|s| s.host == host.host)
                .is_some_and(|state| {
                    reports
                        .iter()
                        .find(|(_, r)| r.host == host.host)
                        .is_some_and(|(_, report)| write_landed(state, report))
                })
    };
    let mut outcomes = Vec::new();
    for (host, configured) in hosts.iter().zip(&configured) {
        let now_digest = current
            .iter()
            .find(|(h, _)| *h == host.host)
            .map(|(_, d)| d.clone());
        let outcome = match now_digest {
            None => {
                let why = unreachable
                    .iter()
                    .find(|u| u.host == host.host)
                    .map_or_else(|| "no report".to_owned(), |u| u.error.clone());
                HostOutcome {
                    host: host.host.clone(),
                    status: "failed".to_owned(),
                    digest: None,
                    detail: format!("cannot be asked: {why}"),
                }
            }
            Some(ref digest) => {
                let transport =
                    crate::transport::for_host(configured, timeout).map_err(bad_input)?;
                let outcome = runtime.block_on(roll_back_host(
                    host,
                    digest,
                    landed(host),
                    transport.as_ref(),
                    timeout,
                ));
                if let (true, Some(new)) = (outcome.status == "restored", &outcome.digest) {
                    for entry in current.iter_mut().filter(|(_, d)| d == digest) {
                        entry.1 = new.clone();
                    }
                }
                outcome
            }
        };
        let apply_status = match outcome.status.as_str() {
            "restored" | "unchanged" | "not_written" => "rolled_back",
            "failed" => "rollback_failed",
            _ => host.status.as_str(),
        };
        let before = now_digest.unwrap_or_default();
        store.record_undo(
            apply.id,
            rollback_id,
            &host.host,
            (apply_status, &outcome.detail),
            &HostUpdate {
                status: &outcome.status,
                digest_before: Some(&before),
                digest_after: outcome.digest.as_deref(),
                error: &outcome.detail,
                at: now(),
            },
        )?;
        say(&format!(
            "  {}: {} {}",
            outcome.host,
            outcome.status.replace('_', " "),
            outcome.detail
        ));
        outcomes.push(outcome);
    }
    let changed = outcomes
        .iter()
        .filter(|o| o.status == "changed_since")
        .count();
    let failed = outcomes.iter().filter(|o| o.status == "failed").count();
    let status = if changed + failed == 0 {
        "ok"
    } else {
        "failed"
    };
    let message = format!(
        "{} restored, {changed} changed since (not touched), {failed} failed",
        outcomes.iter().filter(|o| o.status == "restored").count()
    );
    store.finish_rollback(rollback_id, status, &message, now())?;
    if status == "ok" {
        store.finish_apply(
            apply.id,
            "rolled_back",
            &format!("rolled back by rollback {rollback_id}"),
            now(),
        )?;
    }
    if json {
        output::print_json(&RollbackOutput {
            rollback_id,
            apply_id: apply.id,
            status: status.to_owned(),
            hosts: outcomes,
        })?;
    } else {
        say(&format!(
            "Rollback {rollback_id} of apply {}: {status} ({message}).",
            apply.id
        ));
    }
    if failed > 0 {
        return Err(CommandError::new(
            Kind::Failed,
            anyhow::anyhow!("{failed} host(s) could not be rolled back; run `schedctl rollback {}` again once they answer", apply.id),
        ));
    }
    if changed > 0 {
        return Err(refused(anyhow::anyhow!(
            "{changed} host(s) changed after the apply and were not touched; check them with `schedctl status`"
        )));
    }
    Ok(())
}

/// The apply to undo: the given one, or the latest that wrote something not yet rolled back.
fn pick_apply(store: &Store, id: Option<i64>) -> Result<ApplyRow, CommandError> {
    if let Some(id) = id {
        return store.apply(id)?.ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "there is no apply {id}; `schedctl history` lists them"
            ))
        });
    }
    store
        .applies(i64::MAX)?
        .into_iter()
        .find(|a| a.hosts.iter().any(|h| TOUCHED.contains(&h.status.as_str())))
        .ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "no apply has left anything to roll back; `schedctl history` lists them"
            ))
        })
}

async fn roll_back_host(
    host: &ApplyHostRow,
    current: &str,
    landed: bool,
    transport: &dyn crate::transport::HostTransport,
    timeout: Duration,
) -> HostOutcome {
    let outcome = |status: &str, digest: Option<String>, detail: String| HostOutcome {
        host: host.host.clone(),
        status: status.to_owned(),
        digest,
        detail,
    };
    if current == host.digest_before {
        let status = if host.status == "writing" {
            "not_written"
        } else {
            "unchanged"
        };
        return outcome(
            status,
            Some(current.to_owned()),
            format!(
                "(jobs.cfg already at the digest from before, {})",
                short(current)
            ),
        );
    }
    // A write whose answer was lost (schedctl died during it) is undone from where it left the file.
    let after = if landed {
        Some(current)
    } else {
        host.digest_after.as_deref()
    };
    let Some(after) = after.filter(|after| *after == current) else {
        return outcome(
            "changed_since",
            Some(current.to_owned()),
            format!(
                "(jobs.cfg is at digest {}, neither the apply's {} nor the one before; not touched)",
                short(current),
                host.digest_after.as_deref().map_or("(unknown)", short)
            ),
        );
    };
    match writes::undo(
        transport,
        &host.digest_before,
        after,
        &host.previous,
        timeout,
    )
    .await
    {
        Ok(response) => outcome(
            "restored",
            Some(response.digest.clone()),
            format!("(digest {} → {})", short(after), short(&response.digest)),
        ),
        Err(err) => outcome("failed", None, format!("({err})")),
    }
}
