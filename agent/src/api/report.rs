//! `GET /v1/report`: what this host knows about itself — its jobs (parsed
//! from jobs.cfg, with the digest an apply must name), their runs and
//! duration statistics, the weekly load profile, the pressure now, the clock
//! and the time zone.

use axum::extract::State;
use scheduler_core::history::duration_stats;
use scheduler_core::jobs_cfg::JobsCfg;
use scheduler_core::report::{HostReport, JobReport, JobsCfgState, REPORT_VERSION};
use stagger_service::api::ApiError;
use stagger_service::auth::Authorized;

use super::ApiState;
use crate::context::Agent;
use crate::jobs_file;
use crate::state::unix_now;

/// The report.
pub async fn get(
    State(state): State<ApiState>,
    _auth: Authorized,
) -> Result<axum::Json<HostReport>, ApiError> {
    let agent = state.agent.clone();
    let report = tokio::task::spawn_blocking(move || build(&agent))
        .await
        .map_err(ApiError::internal)??;
    Ok(axum::Json(report))
}

/// Builds the report from jobs.cfg as it is now and the agent's state.
pub fn build(agent: &Agent) -> Result<HostReport, ApiError> {
    let text = agent
        .jobs_file
        .read()
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let cfg = JobsCfg::parse(&text);
    let warnings = cfg
        .proxmox_reading(&agent.jobs_file.path.display().to_string())
        .warnings
        .into_iter()
        .map(|w| w.message)
        .collect();
    let now = unix_now();
    let history = agent.runs.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let jobs = jobs_file::node_jobs(&cfg, &agent.node)
        .into_iter()
        .map(|job| {
            let runs = history.jobs.get(&job.id).cloned().unwrap_or_default();
            JobReport {
                stats: duration_stats(&runs),
                id: job.id,
                schedule: job.schedule,
                enabled: job.enabled,
                node: job.node,
                storage: job.storage,
                runs,
            }
        })
        .collect();
    let (load, pressure) = {
        let state = agent.load.lock().unwrap_or_else(|p| p.into_inner());
        (state.profile.profile(now), state.pressure.clone())
    };
    Ok(HostReport {
        version: REPORT_VERSION,
        host: agent.node.clone(),
        timezone: agent.timezone.clone(),
        clock: now,
        source: format!("sched-agent {}", env!("CARGO_PKG_VERSION")),
        jobs_cfg: JobsCfgState {
            digest: cfg.digest().to_string(),
            text: Some(text),
            warnings,
        },
        jobs,
        load: Some(load),
        pressure,
    })
}
