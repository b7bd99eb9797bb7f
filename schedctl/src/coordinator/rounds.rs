//! The serve loop: every `collect-interval-secs`, one round.
//!
//! 1. Collect every host's report (at most `concurrency` at once, each
//!    within `timeout-secs`: `fleet::collect`).
//! 2. Build the fleet snapshot (`scheduler_core::fleet::build`); tell the
//!    lease service each job's storage and reserved duration.
//! 3. Fill the fleet metrics: reachability, reserved durations, who is in a
//!    planned backup window, jobs.cfg drift, the overlap risk of the current
//!    schedule (the storm simulator, 28 noisy nights), plan age and pending.
//! 4. Plan again when [`assess::replan_reason`] says so and every host
//!    answered: from the reports of step 1, in-process and stored as
//!    `schedctl plan` stores it ([`planning`]); with `approval = "auto"` the
//!    plan is written as `schedctl apply` writes it ([`rollout`]): host by
//!    host in the rollout order, each write digest-checked and read back,
//!    rolling back on failure, every step recorded in the store.
//!
//! Plans and applies are recorded as made by `schedctl-serve`. An apply cut
//! short by a crash is found by the next `serve` (or `apply`) from the
//! store, where every host's step is recorded before it is taken. The apply
//! does not ask the hosts again before writing, as `schedctl apply` does:
//! the plan is seconds old, and a write to a jobs.cfg that changed since is
//! refused by its digest and the hosts already written are rolled back.
//! A failed round is logged and the next one comes anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use scheduler_core::plan::Plan;
use scheduler_core::report::HostReport;
use scheduler_core::sim::{Fleet, Options};
use scheduler_core::snapshot::{Model, Snapshot};
use tokio::sync::watch;

use super::assess;
use super::lease_service::LeaseService;
use super::leases::KnownJob;
use super::metrics::{HostLabel, JobLabel, Metrics, ResourceLabel, ResultLabel};
use crate::config::{Approval, Config, TransportKind};
use crate::exit::{CommandError, Kind};
use crate::fleet::planned::PlanBody;
use crate::fleet::planning::{self, Collected, PlanOptions};
use crate::fleet::rollout::{self, Applied, Progress};
use crate::fleet::{collect, schedule_zone};
use crate::store::{ApplyRow, Store};
use crate::transport::HostTransport;

/// How often the clock-driven gauges follow the time between rounds.
const REFRESH: Duration = Duration::from_secs(15);

/// Nights the overlap risk is simulated over.
const RISK_NIGHTS: u32 = 28;

/// Who the store records for the coordinator's plans and applies.
pub const SERVE_USER: &str = "schedctl-serve";

/// How many of the latest plans and applies a round reads from the store.
const RECENT: i64 = 50;

/// What the status page shows, as of the latest round.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// When the latest collection ended, Unix seconds.
    pub collected_at: Option<i64>,
    /// The fleet as collected (hosts that answered).
    pub current: Option<Snapshot>,
    /// The latest stored plan when it waits to be applied: its id, its snapshot, the plan.
    pub pending: Option<(i64, Snapshot, Plan)>,
    /// Hosts that did not answer, with what failed.
    pub unreachable: Vec<(String, String)>,
    /// Applies that never finished (a crash mid-rollout), in words.
    pub unfinished: Vec<String>,
    /// The latest thing the coordinator did about plans, in words.
    pub last_action: Option<String>,
    /// When the latest live plan was made, Unix seconds.
    pub plan_made_at: Option<i64>,
}

/// The latest live plan in the store, as the basis of the next decisions.
struct Basis {
    id: i64,
    body: PlanBody,
}

/// The serve loop's state.
pub struct Rounds {
    config: Config,
    transports: Vec<Arc<dyn HostTransport>>,
    metrics: Arc<Metrics>,
    leases: Arc<LeaseService>,
    store: Mutex<Store>,
    view: Arc<RwLock<View>>,
    /// Before any plan: the first digest seen of each host.
    first_seen: Mutex<BTreeMap<String, String>>,
    /// The latest live plan as last read (plans are never changed once
    /// stored: its body is read again only when a newer one comes).
    basis: Mutex<Option<Arc<Basis>>>,
    /// The model of the latest round's snapshot, for the gauges that follow the clock.
    model: Mutex<Option<Arc<Model>>>,
}

impl Rounds {
    /// The loop for `config`.
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        leases: Arc<LeaseService>,
        view: Arc<RwLock<View>>,
    ) -> Result<Rounds, super::SetupError> {
        let hosts: Vec<&crate::config::HostConfig> = config.hosts.iter().collect();
        let transports = collect::transports(&hosts, &config)
            .map_err(|e| super::SetupError::Config(e.into()))?;
        let store = Store::open(&config.store).map_err(|e| super::SetupError::Failed(e.into()))?;
        Ok(Rounds {
            config,
            transports,
            metrics,
            leases,
            store: Mutex::new(store),
            view,
            first_seen: Mutex::new(BTreeMap::new()),
            basis: Mutex::new(None),
            model: Mutex::new(None),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn view_mut(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reports applies that never finished (a coordinator or an admin's
    /// `apply` killed mid-rollout): logged, and shown on the status page.
    pub fn report_unfinished(&self) -> anyhow::Result<()> {
        let unfinished = self.store().unfinished_applies()?;
        let lines: Vec<String> = unfinished.iter().map(describe_unfinished).collect();
        for line in &lines {
            tracing::error!("{line}");
        }
        self.view_mut().unfinished = lines;
        Ok(())
    }

    /// Runs a round now and then every `collect-interval-secs`, until
    /// `stopping`; in between, the clock-driven gauges (backup windows, plan
    /// age) follow the time every [`REFRESH`].
    pub async fn run(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let interval = Duration::from_secs(self.config.serve.collect_interval_secs.max(1));
        loop {
            if let Err(error) = self.round(&stopping).await {
                tracing::error!(error = %format!("{error:#}"), "A round of the coordinator failed; the next one comes anyway.");
            }
            let next = tokio::time::Instant::now() + interval;
            loop {
                let now = tokio::time::Instant::now();
                if now >= next {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep((next - now).min(REFRESH)) => {}
                    _ = stopping.wait_for(|stop| *stop) => return,
                }
                self.refresh_clock_gauges(crate::fleet::now());
            }
        }
    }

    /// Backup windows and plan age as of `now`, from the latest round's fleet and plan.
    fn refresh_clock_gauges(&self, now: i64) {
        let made_at = self
            .view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .plan_made_at;
        let model = self
            .model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(model) = model {
            self.fill_windows(&model, now);
        }
        if let Some(made_at) = made_at {
            self.metrics
                .plan_age
                .get_or_create(&Vec::new())
                .set((now - made_at).max(0) as f64);
        }
    }

    fn fill_windows(&self, model: &scheduler_core::snapshot::Model, now: i64) {
        for (host, active) in assess::window_active(model, now) {
            self.metrics
                .backup_window_active
                .get_or_create(&HostLabel { host })
                .set(i64::from(active));
        }
    }

    /// One round: collect, assess, maybe plan and apply (a plan stops early
    /// and is dropped once `stopping` is set).
    pub async fn round(&self, stopping: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let started = Instant::now();
        let outcomes = collect::reports(
            &self.transports,
            self.config.concurrency,
            Duration::from_secs(self.config.timeout_secs),
        )
        .await;
        let mut reports: Vec<(TransportKind, HostReport)> = Vec::new();
        let mut unreachable = Vec::new();
        for outcome in outcomes {
            let reached = outcome.result.is_ok();
            self.metrics
                .host_reachable
                .get_or_create(&HostLabel {
                    host: outcome.host.clone(),
                })
                .set(i64::from(reached));
            match outcome.result {
                Ok(report) => reports.push((outcome.kind, report)),
                Err(error) => {
                    tracing::warn!(host = %outcome.host, error = %error, "A host did not answer the collection.");
                    unreachable.push((outcome.host, error.to_string()));
                }
            }
        }
        let result = match (reports.len(), unreachable.len()) {
            (0, _) => "failed",
            (_, 0) => "ok",
            _ => "partial",
        };
        self.metrics
            .collections
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        self.metrics
            .collection_duration
            .observe(started.elapsed().as_secs_f64());
        let now = crate::fleet::now();
        {
            let mut view = self.view_mut();
            view.unreachable.clone_from(&unreachable);
        }
        if reports.is_empty() {
            return Err(anyhow!("no host answered the collection"));
        }
        let fleet = planning::build(&self.config, &reports, now);
        let model = Arc::new(
            fleet
                .snapshot
                .validate()
                .context("the snapshot built from the reports is not valid")?,
        );
        *self.model.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&model));
        let reserved = assess::reserved(&fleet);
        self.tell_leases(&reserved, &reports);
        self.fill_fleet_metrics(&fleet.snapshot, &reserved, &model, now)
            .await?;
        let applies = self.store().applies(RECENT)?;
        let basis = self.basis()?;
        self.fill_drift(&reports, basis.as_deref(), &applies);
        {
            let mut view = self.view_mut();
            view.collected_at = Some(now);
            view.current = Some(fleet.snapshot.clone());
        }
        let reason = assess::replan_reason(
            basis.as_ref().map(|b| &b.body.fleet.snapshot),
            &fleet.snapshot,
            self.config.policy.replan_drift,
        );
        let mut replanned = false;
        if let Some(reason) = reason {
            if unreachable.is_empty() {
                let collected = Collected {
                    reports,
                    fleet,
                    made_at: now,
                    unreachable: Vec::new(),
                };
                self.replan(&reason, collected, model, stopping).await;
                replanned = true;
            } else {
                tracing::warn!(
                    reason,
                    unreachable = unreachable.len(),
                    "A new plan is due but waits until every host answers: a plan without a host's jobs could move others onto them."
                );
            }
        }
        let (basis, applies) = if replanned {
            (self.basis()?, self.store().applies(RECENT)?)
        } else {
            (basis, applies)
        };
        self.fill_plan_metrics(basis.as_deref(), &applies, now);
        Ok(())
    }

    /// The lease service learns each job's storage and reserved duration.
    fn tell_leases(
        &self,
        reserved: &[(String, String, f64)],
        reports: &[(TransportKind, HostReport)],
    ) {
        let storages: BTreeMap<(&str, &str), Option<String>> = reports
            .iter()
            .flat_map(|(_, r)| {
                r.jobs
                    .iter()
                    .map(move |j| ((r.host.as_str(), j.id.as_str()), j.storage.clone()))
            })
            .collect();
        let jobs = reserved
            .iter()
            .map(|(host, job, secs)| KnownJob {
                storage: storages
                    .get(&(host.as_str(), job.as_str()))
                    .cloned()
                    .flatten(),
                reserved_secs: Some(secs.round() as i64),
                host: host.clone(),
                job: job.clone(),
            })
            .collect();
        self.leases.set_jobs(jobs);
    }

    /// Reserved durations, backup windows and the overlap risk of the current schedule.
    async fn fill_fleet_metrics(
        &self,
        snapshot: &Snapshot,
        reserved: &[(String, String, f64)],
        model: &Model,
        now: i64,
    ) -> anyhow::Result<()> {
        self.metrics.plan_reserved.clear();
        for (host, job_id, secs) in reserved {
            self.metrics
                .plan_reserved
                .get_or_create(&JobLabel {
                    host: host.clone(),
                    job_id: job_id.clone(),
                })
                .set(*secs);
        }
        self.fill_windows(model, now);
        let snapshot = snapshot.clone();
        let report = tokio::task::spawn_blocking(move || {
            let fleet = Fleet::from_snapshot(&snapshot)?;
            let options = Options {
                nights: RISK_NIGHTS,
                ..Options::default()
            };
            anyhow::Ok(fleet.simulate(&fleet.current_schedule(), &options)?)
        })
        .await
        .context("the storm simulation stopped")??;
        let nights = f64::from(report.nights.max(1));
        self.metrics
            .fleet_overlap_risk
            .get_or_create(&Vec::new())
            .set(f64::from(report.fleet.nights_with_overlap) / nights);
        for resource in &report.resources {
            self.metrics
                .resource_overlap_risk
                .get_or_create(&ResourceLabel {
                    resource: resource.name.clone(),
                })
                .set(resource.overlap_probability);
        }
        Ok(())
    }

    /// `stagger_jobs_cfg_drift`: a digest that is neither the latest plan's,
    /// nor one Stagger wrote, nor (before any plan) the first one seen.
    fn fill_drift(
        &self,
        reports: &[(TransportKind, HostReport)],
        basis: Option<&Basis>,
        applies: &[ApplyRow],
    ) {
        // Per host: every digest Stagger wrote, and the one the plan was made from.
        let mut written: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for host in applies.iter().flat_map(|a| &a.hosts) {
            if let Some(digest) = &host.digest_after {
                written
                    .entry(host.host.as_str())
                    .or_default()
                    .insert(digest.clone());
            }
        }
        let planned: BTreeMap<&str, &str> = basis
            .map(|b| {
                b.body
                    .hosts
                    .iter()
                    .map(|h| (h.host.as_str(), h.digest.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let mut first_seen = self
            .first_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, report) in reports {
            let mut known = written.remove(report.host.as_str()).unwrap_or_default();
            match planned.get(report.host.as_str()) {
                Some(digest) => {
                    known.insert((*digest).to_owned());
                }
                None => {
                    let first = first_seen
                        .entry(report.host.clone())
                        .or_insert_with(|| report.jobs_cfg.digest.clone());
                    known.insert(first.clone());
                }
            }
            let drifted = assess::drifted(&report.jobs_cfg.digest, &known);
            if drifted {
                tracing::warn!(host = %report.host, digest = %report.jobs_cfg.digest, "jobs.cfg changed outside Stagger; `schedctl plan` makes a plan from the new file.");
            }
            self.metrics
                .jobs_cfg_drift
                .get_or_create(&HostLabel {
                    host: report.host.clone(),
                })
                .set(i64::from(drifted));
        }
    }

    /// Plan age and pending (no apply of it succeeded yet), and the pending
    /// plan for the status page.
    fn fill_plan_metrics(&self, basis: Option<&Basis>, applies: &[ApplyRow], now: i64) {
        let pending = basis.filter(|b| {
            b.body.changes() > 0
                && !applies
                    .iter()
                    .any(|a| a.plan_id == b.id && a.status == "ok")
        });
        self.metrics.plan_pending.set(i64::from(pending.is_some()));
        if let Some(basis) = basis {
            self.metrics
                .plan_age
                .get_or_create(&Vec::new())
                .set((now - basis.body.made_at).max(0) as f64);
        }
        let mut view = self.view_mut();
        view.plan_made_at = basis.map(|b| b.body.made_at);
        view.pending = pending.map(|b| (b.id, b.body.fleet.snapshot.clone(), b.body.plan.clone()));
    }

    /// The latest live plan (its body read from the store only when it is
    /// not the one read last).
    fn basis(&self) -> anyhow::Result<Option<Arc<Basis>>> {
        let store = self.store();
        let Some(listed) = store
            .plans(RECENT)?
            .into_iter()
            .find(|p| p.source == "live")
        else {
            return Ok(None);
        };
        let mut cached = self.basis.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(basis) = cached.as_ref().filter(|b| b.id == listed.id) {
            return Ok(Some(Arc::clone(basis)));
        }
        // The listing leaves the bodies out.
        let Some(row) = store.plan(Some(listed.id))? else {
            return Ok(None);
        };
        let body: PlanBody = serde_json::from_str(&row.body)
            .with_context(|| format!("plan {} in the store is not readable", row.id))?;
        let basis = Arc::new(Basis { id: row.id, body });
        *cached = Some(Arc::clone(&basis));
        Ok(Some(basis))
    }

    /// Makes and stores a new plan of `collected`; with `approval = "auto"`, applies it.
    async fn replan(
        &self,
        reason: &str,
        collected: Collected,
        model: Arc<Model>,
        stopping: &watch::Receiver<bool>,
    ) {
        tracing::info!(reason, "Planning again.");
        let zone = schedule_zone(&self.config);
        let stop = stopping.clone();
        let planned = tokio::task::spawn_blocking(move || {
            let stopped = || *stop.borrow();
            planning::plan_live(
                collected,
                &model,
                zone,
                &PlanOptions::default(),
                Instant::now(),
                &stopped,
            )
        })
        .await
        .context("the planner stopped")
        .and_then(|planned| planned);
        if *stopping.borrow() {
            // Cut short by the shutdown: not the plan the fleet deserves.
            return;
        }
        let stored = planned.and_then(|body| {
            let id = planning::store(&self.store(), &body, "live", SERVE_USER)?;
            Ok((id, body))
        });
        let (plan_id, body) = match stored {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "Planning failed; the next round tries again.");
                return;
            }
        };
        // The new basis, without reading back what was just stored.
        let basis = Arc::new(Basis { id: plan_id, body });
        *self.basis.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&basis));
        let changes = basis.body.changes();
        tracing::info!(plan = plan_id, changes, "Stored a new plan.");
        self.view_mut().last_action = Some(format!(
            "plan {plan_id} made because {reason}; {changes} schedule(s) to change"
        ));
        if changes == 0 {
            return;
        }
        if self.config.policy.approval != Approval::Auto {
            tracing::info!(
                plan = plan_id,
                "The plan waits for an admin (approval = \"manual\"): `schedctl diff`, then `schedctl apply`."
            );
            return;
        }
        self.apply(plan_id, &basis.body).await;
    }

    /// Writes plan `plan_id` as `schedctl apply PLAN --yes` does, counted by its result.
    async fn apply(&self, plan_id: i64, body: &PlanBody) {
        // What stopped the apply, and whether its rollout was rolled back.
        let stopped = match self.roll_out(plan_id, body).await {
            Ok(applied) => applied
                .error()
                .map(|error| (error, applied.status == "rolled_back")),
            Err(error) => Some((error, false)),
        };
        let result = match &stopped {
            None => "ok",
            Some((error, _)) if error.kind() == Kind::Refused => "refused",
            Some((_, true)) => "rolled_back",
            Some(_) => "failed",
        };
        self.metrics
            .applies
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        match &stopped {
            None => tracing::info!(plan = plan_id, "Applied the plan (approval = \"auto\")."),
            Some((error, _)) => {
                tracing::error!(plan = plan_id, result, detail = %error, "The plan was not applied.");
            }
        }
        self.view_mut().last_action = Some(format!("apply of plan {plan_id}: {result}"));
        if let Err(error) = self.report_unfinished() {
            tracing::warn!(error = %format!("{error:#}"), "Cannot read the store's applies.");
        }
    }

    /// The rollout of `schedctl apply`: refused while an earlier apply is
    /// unfinished, in the safe order only, recorded under [`SERVE_USER`].
    async fn roll_out(&self, plan_id: i64, body: &PlanBody) -> Result<Applied, CommandError> {
        rollout::refuse_if_unfinished(&self.store())?;
        let changed = body.changed_hosts();
        let targets = rollout::targets(&self.config, &changed)?;
        let order = rollout::order(body, &changed, false)?;
        rollout::apply(
            &self.store,
            plan_id,
            SERVE_USER,
            &targets,
            &order,
            Duration::from_secs(self.config.timeout_secs),
            Progress::Log,
        )
        .await
    }
}

/// An apply that never finished, with each host's last recorded step.
fn describe_unfinished(apply: &ApplyRow) -> String {
    let hosts: Vec<String> = apply
        .hosts
        .iter()
        .map(|h| format!("{} {}", h.host, h.status))
        .collect();
    format!(
        "apply {} of plan {} (started {} by {}) did not finish: {}; `schedctl rollback {}` puts \
         the hosts it wrote back",
        apply.id,
        apply.plan_id,
        crate::output::utc_time(apply.started_at),
        apply.started_by,
        hosts.join(", "),
        apply.id
    )
}
