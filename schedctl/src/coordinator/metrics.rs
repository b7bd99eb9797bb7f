//! Every metric of the coordinator (`schedctl serve`), in one place.
//!
//! Names follow CONTRACTS.md ("Metric names"): prefix `stagger_`, base
//! units, `_total` for counters, a backup job's id as `job_id`. A value the
//! coordinator does not know yet (no collection, no plan) is absent from the
//! exposition rather than a made-up 0: those gauges are families whose one
//! series appears when it is first set.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// A gauge holding a float (ratios, seconds).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// A series without labels that exists only once it has a value.
pub type Optional<M> = Family<NoLabels, M>;

/// The empty label set of an [`Optional`] series.
pub type NoLabels = Vec<(String, String)>;

/// `{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct VersionLabel {
    /// The schedctl version.
    pub version: String,
}

/// `{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HostLabel {
    /// The Proxmox node name.
    pub host: String,
}

/// `{host, job_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct JobLabel {
    /// The Proxmox node name.
    pub host: String,
    /// The backup job's id.
    pub job_id: String,
}

/// `{resource}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResourceLabel {
    /// `host:<name>` or a `[[resource]]` name.
    pub resource: String,
}

/// `{result}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabel {
    /// How it ended.
    pub result: String,
}

/// Buckets of `stagger_lease_wait_seconds`: from an instant grant to a long queue.
const LEASE_WAIT_BUCKETS: [f64; 11] = [
    0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// Buckets of `stagger_collection_duration_seconds`.
const COLLECTION_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The coordinator's registry and a handle on each metric.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `stagger_host_reachable{host}`: whether the last collection reached the host.
    pub host_reachable: Family<HostLabel, Gauge>,
    /// `stagger_fleet_hosts`: hosts in the configuration.
    pub fleet_hosts: Gauge,
    /// `stagger_fleet_overlap_risk_ratio`: probability that a night of the current schedule overlaps beyond a resource's capacity.
    pub fleet_overlap_risk: Optional<FloatGauge>,
    /// `stagger_resource_overlap_risk_ratio{resource}`.
    pub resource_overlap_risk: Family<ResourceLabel, FloatGauge>,
    /// `stagger_plan_age_seconds`: age of the latest plan.
    pub plan_age: Optional<FloatGauge>,
    /// `stagger_plan_pending`: 1 while a plan waits for an admin's apply.
    pub plan_pending: Gauge,
    /// `stagger_plan_reserved_seconds{host,job_id}`.
    pub plan_reserved: Family<JobLabel, FloatGauge>,
    /// `stagger_backup_window_active{host}`.
    pub backup_window_active: Family<HostLabel, Gauge>,
    /// `stagger_jobs_cfg_drift{host}`.
    pub jobs_cfg_drift: Family<HostLabel, Gauge>,
    /// `stagger_leases_granted_total`.
    pub leases_granted: Counter,
    /// `stagger_leases_queued_total`.
    pub leases_queued: Counter,
    /// `stagger_leases_expired_total`.
    pub leases_expired: Counter,
    /// `stagger_leases_released_total`.
    pub leases_released: Counter,
    /// `stagger_leases_active`.
    pub leases_active: Gauge,
    /// `stagger_lease_wait_seconds`.
    pub lease_wait: Histogram,
    /// `stagger_resource_running_backups{resource}`.
    pub resource_running: Family<ResourceLabel, Gauge>,
    /// `stagger_resource_capacity{resource}`.
    pub resource_capacity: Family<ResourceLabel, Gauge>,
    /// `stagger_applies_total{result}`.
    pub applies: Family<ResultLabel, Counter>,
    /// `stagger_collections_total{result}`.
    pub collections: Family<ResultLabel, Counter>,
    /// `stagger_collection_duration_seconds`.
    pub collection_duration: Histogram,
}

impl Metrics {
    /// A registry with every coordinator metric.
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("stagger"),
            host_reachable: Family::default(),
            fleet_hosts: Gauge::default(),
            fleet_overlap_risk: Family::default(),
            resource_overlap_risk: Family::default(),
            plan_age: Family::default(),
            plan_pending: Gauge::default(),
            plan_reserved: Family::default(),
            backup_window_active: Family::default(),
            jobs_cfg_drift: Family::default(),
            leases_granted: Counter::default(),
            leases_queued: Counter::default(),
            leases_expired: Counter::default(),
            leases_released: Counter::default(),
            leases_active: Gauge::default(),
            lease_wait: Histogram::new(LEASE_WAIT_BUCKETS),
            resource_running: Family::default(),
            resource_capacity: Family::default(),
            applies: Family::default(),
            collections: Family::default(),
            collection_duration: Histogram::new(COLLECTION_BUCKETS),
        };
        metrics.register_all();
        // Counters of a known, small label set start at 0, so that they are
        // exposed (and rate() works) before the first apply or collection.
        for result in ["ok", "rolled_back", "failed", "refused"] {
            let _ = metrics.applies.get_or_create(&ResultLabel {
                result: result.to_owned(),
            });
        }
        for result in ["ok", "partial", "failed"] {
            let _ = metrics.collections.get_or_create(&ResultLabel {
                result: result.to_owned(),
            });
        }
        metrics
    }

    fn register_all(&mut self) {
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        let r = &mut self.registry;
        r.register("build_info", "The schedctl version, as a label", build_info);
        r.register(
            "host_reachable",
            "Whether the last collection reached the host (1) or not (0)",
            self.host_reachable.clone(),
        );
        r.register(
            "fleet_hosts",
            "Hosts in the coordinator's configuration",
            self.fleet_hosts.clone(),
        );
        r.register(
            "fleet_overlap_risk_ratio",
            "Probability that a night of the current schedule overlaps beyond a resource's capacity (storm simulator)",
            self.fleet_overlap_risk.clone(),
        );
        r.register(
            "resource_overlap_risk_ratio",
            "Probability that a night of the current schedule overloads this resource (storm simulator)",
            self.resource_overlap_risk.clone(),
        );
        r.register_with_unit(
            "plan_age",
            "Age of the latest plan",
            Unit::Seconds,
            self.plan_age.clone(),
        );
        r.register(
            "plan_pending",
            "Whether a plan waits for an admin to apply it (approval = manual)",
            self.plan_pending.clone(),
        );
        r.register_with_unit(
            "plan_reserved",
            "Duration the current plan reserves for each backup job",
            Unit::Seconds,
            self.plan_reserved.clone(),
        );
        r.register(
            "backup_window_active",
            "Whether now is inside a planned run of the host (start to start + reserved + guard)",
            self.backup_window_active.clone(),
        );
        r.register(
            "jobs_cfg_drift",
            "Whether the host's jobs.cfg changed since Stagger last saw or wrote it, not by Stagger",
            self.jobs_cfg_drift.clone(),
        );
        r.register(
            "leases_granted",
            "Lease requests granted, at once or after waiting",
            self.leases_granted.clone(),
        );
        r.register(
            "leases_queued",
            "Lease requests that had to wait for a resource",
            self.leases_queued.clone(),
        );
        r.register(
            "leases_expired",
            "Leases and waiting requests that ended without a release (expired, abandoned, or replaced by a later run)",
            self.leases_expired.clone(),
        );
        r.register(
            "leases_released",
            "Leases released by the hook (job end or abort), waiting requests withdrawn",
            self.leases_released.clone(),
        );
        r.register(
            "leases_active",
            "Granted leases that have not ended",
            self.leases_active.clone(),
        );
        r.register_with_unit(
            "lease_wait",
            "Time from a lease request to its grant",
            Unit::Seconds,
            self.lease_wait.clone(),
        );
        r.register(
            "resource_running_backups",
            "Backups holding a lease on the resource now",
            self.resource_running.clone(),
        );
        r.register(
            "resource_capacity",
            "Backups the resource takes at once",
            self.resource_capacity.clone(),
        );
        r.register(
            "applies",
            "Plans written to the fleet, by result",
            self.applies.clone(),
        );
        r.register(
            "collections",
            "Rounds of report collection, by result",
            self.collections.clone(),
        );
        r.register_with_unit(
            "collection_duration",
            "Time one round of report collection took",
            Unit::Seconds,
            self.collection_duration.clone(),
        );
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagger_service::metrics::{encode, Format};

    #[test]
    fn every_contract_name_is_exposed_once_set() {
        let metrics = Metrics::new();
        let host = HostLabel {
            host: "pihanga".into(),
        };
        let resource = ResourceLabel {
            resource: "pbs-main".into(),
        };
        let result = ResultLabel {
            result: "ok".into(),
        };
        metrics.host_reachable.get_or_create(&host).set(1);
        metrics
            .fleet_overlap_risk
            .get_or_create(&Vec::new())
            .set(0.5);
        metrics
            .resource_overlap_risk
            .get_or_create(&resource)
            .set(0.5);
        metrics.plan_age.get_or_create(&Vec::new()).set(60.0);
        metrics
            .plan_reserved
            .get_or_create(&JobLabel {
                host: "pihanga".into(),
                job_id: "backup-pihanga".into(),
            })
            .set(2400.0);
        metrics.backup_window_active.get_or_create(&host).set(0);
        metrics.jobs_cfg_drift.get_or_create(&host).set(0);
        metrics.resource_running.get_or_create(&resource).set(1);
        metrics.resource_capacity.get_or_create(&resource).set(1);
        metrics.applies.get_or_create(&result).inc();
        metrics.collections.get_or_create(&result).inc();
        let text = encode(metrics.registry(), Format::ClassicText).expect("encodes");
        for name in [
            "stagger_build_info{version=",
            "stagger_host_reachable{host=\"pihanga\"} 1",
            "stagger_fleet_hosts 0",
            "stagger_fleet_overlap_risk_ratio 0.5",
            "stagger_resource_overlap_risk_ratio{resource=\"pbs-main\"} 0.5",
            "stagger_plan_age_seconds 60",
            "stagger_plan_pending 0",
            "stagger_plan_reserved_seconds{host=\"pihanga\",job_id=\"backup-pihanga\"} 2400",
            "stagger_backup_window_active{host=\"pihanga\"} 0",
            "stagger_jobs_cfg_drift{host=\"pihanga\"} 0",
            "stagger_leases_granted_total 0",
            "stagger_leases_queued_total 0",
            "stagger_leases_expired_total 0",
            "stagger_leases_released_total 0",
            "stagger_leases_active 0",
            "stagger_lease_wait_seconds_bucket{le=\"0.01\"} 0",
            "stagger_resource_running_backups{resource=\"pbs-main\"} 1",
            "stagger_resource_capacity{resource=\"pbs-main\"} 1",
            "stagger_applies_total{result=\"ok\"} 1",
            "stagger_applies_total{result=\"refused\"} 0",
            "stagger_collections_total{result=\"ok\"} 1",
            "stagger_collections_total{result=\"partial\"} 0",
            "stagger_collection_duration_seconds_count 0",
        ] {
            assert!(text.contains(name), "{name} missing in:\n{text}");
        }
    }

    #[test]
    fn unknown_values_are_absent_not_zero() {
        let metrics = Metrics::new();
        let text = encode(metrics.registry(), Format::ClassicText).expect("encodes");
        assert!(!text.contains("stagger_plan_age_seconds "), "{text}");
        assert!(
            !text.contains("stagger_fleet_overlap_risk_ratio "),
            "{text}"
        );
    }
}
