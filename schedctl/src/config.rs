//! `/etc/stagger/schedctl.toml`: the fleet, its shared resources and the planning policy.
//!
//! Keys are kebab-case; an unknown key is an error naming its line. Each
//! `[[host]]` has exactly one transport table: `[host.agent]` (the agent's
//! HTTPS API), `[host.ssh]` (`pvesh` over SSH) or `[host.pve-api]` (the Proxmox
//! API). `config.example.toml` at the repository root documents every key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where schedctl looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/stagger/schedctl.toml";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The SQLite store of plans, applies, rollbacks and leases.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// How many hosts are contacted at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds before a host that does not answer counts as unreachable.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The coordinator (`schedctl serve`).
    #[serde(default)]
    pub serve: ServeConfig,
    /// How plans are made.
    #[serde(default)]
    pub policy: Policy,
    /// The hosts of the fleet.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostConfig>,
    /// Shared resources (PBS datastores, uplinks).
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceConfig>,
}

/// `[serve]`: the coordinator daemon.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeConfig {
    /// Address of the lease service, `/metrics` and the status page.
    #[serde(default = "default_serve_listen")]
    pub listen: String,
    /// Serve plain HTTP instead of HTTPS: allowed only on a loopback address.
    #[serde(default)]
    pub plain_http: bool,
    /// The bearer token hooks and clients present (a root-only file).
    #[serde(default = "default_serve_token_file")]
    pub token_file: PathBuf,
    /// Where the coordinator keeps its certificate.
    #[serde(default = "default_serve_state_dir")]
    pub state_dir: PathBuf,
    /// Seconds between two collections of reports.
    #[serde(default = "default_collect_interval_secs")]
    pub collect_interval_secs: u64,
    /// Minutes added to a lease's reserved duration before it expires on its own.
    #[serde(default = "default_lease_margin_minutes")]
    pub lease_margin_minutes: u64,
}

/// `[policy]`: how plans are made and applied.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Start of the allowed backup window, `HH:MM` UTC (with `window-end`; none: all day).
    #[serde(default)]
    pub window_start: Option<String>,
    /// End of the allowed backup window, `HH:MM` UTC (may be before the start: over midnight).
    #[serde(default)]
    pub window_end: Option<String>,
    /// Minutes kept free between two runs that share a resource.
    #[serde(default = "default_guard_minutes")]
    pub guard_minutes: f64,
    /// The planning grid, minutes.
    #[serde(default = "default_slot_minutes")]
    pub slot_minutes: u32,
    /// Cost of moving a job away from its current start (PLANNING-MODEL.md).
    #[serde(default = "default_stability_weight")]
    pub stability_weight: f64,
    /// Which duration a plan reserves for each job.
    #[serde(default)]
    pub duration_percentile: DurationPercentile,
    /// Duration reserved for a job with no finished run yet, minutes.
    #[serde(default = "default_unknown_duration_minutes")]
    pub unknown_duration_minutes: f64,
    /// How planned schedules are written: `utc` (`2:35 UTC`) or `local` (the host's zone).
    #[serde(default)]
    pub schedule_zone: ScheduleZone,
    /// Whether `serve` applies a new plan itself (`auto`) or stores it for an admin (`manual`).
    #[serde(default)]
    pub approval: Approval,
    /// Re-plan when a job's reserved duration (or a host's load profile) drifts by more than this ratio.
    #[serde(default = "default_replan_drift")]
    pub replan_drift: f64,
}

/// Which duration a plan reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurationPercentile {
    /// The median run.
    P50,
    /// The 95th percentile (default).
    #[default]
    P95,
    /// The longest run seen.
    Max,
}

/// The zone planned schedules are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleZone {
    /// `H:MM UTC`: immune to daylight saving and mixed zones (default).
    #[default]
    Utc,
    /// `H:MM` in the host's own zone.
    Local,
}

/// Who approves a plan made by `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    /// Store it; an admin runs `schedctl apply` (default).
    #[default]
    Manual,
    /// Apply it at once.
    Auto,
}

/// `[[host]]`: one Proxmox host and how to reach it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostConfig {
    /// The Proxmox node name.
    pub name: String,
    /// How much this host's workloads suffer from I/O load (0 = not at all).
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    /// How many backups the host's own disks take at once.
    #[serde(default = "default_host_capacity")]
    pub capacity: u32,
    /// Reach the host through its agent.
    #[serde(default)]
    pub agent: Option<AgentTransport>,
    /// Reach the host over SSH and run `pvesh` there.
    #[serde(default)]
    pub ssh: Option<SshTransport>,
    /// Reach the host through the Proxmox API.
    #[serde(default)]
    pub pve_api: Option<PveApiTransport>,
}

/// `[host.agent]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AgentTransport {
    /// `https://pihanga:8150`.
    pub url: String,
    /// A file holding the agent's bearer token.
    pub token_file: PathBuf,
    /// The agent certificate's SHA-256 fingerprint (`sched-agent fingerprint` prints it).
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// `[host.ssh]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SshTransport {
    /// `pihanga:22` or `10.0.0.3:22`.
    pub address: String,
    /// The remote user.
    #[serde(default = "default_ssh_user")]
    pub user: String,
    /// The private key file.
    pub key_file: PathBuf,
    /// The pinned host key, as `ssh-keygen -lf` prints it (`SHA256:...`).
    pub host_key: String,
    /// The remote `pvesh` command line, put in front of the arguments as written.
    #[serde(default = "default_pvesh")]
    pub pvesh: String,
    /// Where jobs.cfg is on the host (read for its digest and diff).
    #[serde(default = "default_jobs_cfg")]
    pub jobs_cfg: PathBuf,
}

/// `[host.pve-api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PveApiTransport {
    /// `https://pihanga:8006`.
    pub url: String,
    /// A file holding the API token, `user@realm!tokenid=secret`.
    pub token_file: PathBuf,
    /// The API certificate's SHA-256 fingerprint (`AA:BB:...`).
    pub fingerprint: String,
}

/// The transport a host is reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// `[host.agent]`.
    Agent,
    /// `[host.ssh]`.
    Ssh,
    /// `[host.pve-api]`.
    PveApi,
}

impl TransportKind {
    /// `agent`, `ssh` or `pve-api`, as in schedctl.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Agent => "agent",
            TransportKind::Ssh => "ssh",
            TransportKind::PveApi => "pve-api",
        }
    }

    /// Whether a write makes Proxmox rewrite the whole jobs.cfg in its
    /// canonical form (comments, unknown keys and hand formatting are lost),
    /// rather than changing only the schedule values byte for byte.
    pub fn rewrites_whole_file(self) -> bool {
        !matches!(self, TransportKind::Agent)
    }
}

impl HostConfig {
    /// The transport configured for this host (checked to be exactly one by [`Config::parse`]).
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match (&self.agent, &self.ssh, &self.pve_api) {
            (Some(_), None, None) => Some(TransportKind::Agent),
            (None, Some(_), None) => Some(TransportKind::Ssh),
            (None, None, Some(_)) => Some(TransportKind::PveApi),
            _ => None,
        }
    }
}

/// `[[resource]]`: a shared resource such as a PBS datastore or an uplink.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResourceConfig {
    /// Its name (`pbs-main`).
    pub name: String,
    /// How many backups it takes at once.
    #[serde(default = "default_resource_capacity")]
    pub capacity: u32,
    /// The jobs.cfg `storage` names that write to it: a job with one of these uses it.
    #[serde(default)]
    pub storages: Vec<String>,
    /// Hosts whose workloads suffer while a job using this resource runs, with a weight.
    #[serde(default)]
    pub impacts: BTreeMap<String, f64>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad or unknown key.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A setting is valid TOML but not usable.
    #[error("{path}: {place}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key or table (`host "pihanga"`, `policy.window-start`).
        place: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

impl Config {
    /// Reads and checks the configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        config
            .check()
            .map_err(|(place, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                place,
                message,
            })?;
        Ok(config)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|host| host.name == name)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let mut names = BTreeSet::new();
        for host in &self.hosts {
            let place = format!("host \"{}\"", host.name);
            if !names.insert(host.name.as_str()) {
                return Err((place, "is listed twice; host names must be unique".into()));
            }
            if host.transport_kind().is_none() {
                return Err((
                    place,
                    "needs exactly one of [host.agent], [host.ssh] or [host.pve-api]".into(),
                ));
            }
        }
        let mut resources = BTreeSet::new();
        for resource in &self.resources {
            if !resources.insert(resource.name.as_str()) {
                let place = format!("resource \"{}\"", resource.name);
                return Err((
                    place,
                    "is listed twice; resource names must be unique".into(),
                ));
            }
            for host in resource.impacts.keys() {
                if !names.contains(host.as_str()) {
                    let place = format!("resource \"{}\".impacts", resource.name);
                    return Err((
                        place,
                        format!("names host \"{host}\", which no [[host]] defines"),
                    ));
                }
            }
        }
        if self.concurrency == 0 {
            return Err(("concurrency".into(), "must be at least 1".into()));
        }
        if self.policy.window_start.is_some() != self.policy.window_end.is_some() {
            return Err((
                "policy.window-start".into(),
                "window-start and window-end go together (both or neither)".into(),
            ));
        }
        let slot = self.policy.slot_minutes;
        if slot == 0 || 1440 % slot != 0 {
            return Err((
                "policy.slot-minutes".into(),
                format!("{slot} does not divide a day (1440 minutes); use 5, 10, 15, 30 or 60"),
            ));
        }
        for (key, value) in [
            ("policy.window-start", &self.policy.window_start),
            ("policy.window-end", &self.policy.window_end),
        ] {
            if let Some(text) = value {
                check_time_on_grid(text, slot).map_err(|message| (key.to_owned(), message))?;
            }
        }
        let numbers = [
            ("policy.guard-minutes", self.policy.guard_minutes),
            ("policy.stability-weight", self.policy.stability_weight),
            ("policy.replan-drift", self.policy.replan_drift),
        ];
        for (key, value) in numbers {
            if !(value.is_finite() && value >= 0.0) {
                return Err((
                    key.to_owned(),
                    format!("{value} must be a number of at least 0"),
                ));
            }
        }
        if !(self.policy.unknown_duration_minutes.is_finite()
            && self.policy.unknown_duration_minutes > 0.0)
        {
            return Err((
                "policy.unknown-duration-minutes".into(),
                "must be a positive number of minutes".into(),
            ));
        }
        for host in &self.hosts {
            if !(host.sensitivity.is_finite() && host.sensitivity >= 0.0) {
                return Err((
                    format!("host \"{}\".sensitivity", host.name),
                    "must be a number of at least 0".into(),
                ));
            }
        }
        if self.timeout_secs == 0 {
            return Err(("timeout-secs".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Checks `HH:MM` on the slot grid.
fn check_time_on_grid(text: &str, slot: u32) -> Result<(), String> {
    let parsed = text
        .split_once(':')
        .filter(|(h, m)| h.len() == 2 && m.len() == 2)
        .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
        .filter(|&(h, m)| h < 24 && m < 60);
    match parsed {
        None => Err(format!(
            "\"{text}\" is not a time of day; write HH:MM (UTC), e.g. \"01:00\""
        )),
        Some((h, m)) if (h * 60 + m) % slot != 0 => Err(format!(
            "\"{text}\" is not on the {slot}-minute planning grid (policy.slot-minutes)"
        )),
        Some(_) => Ok(()),
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_serve_listen(),
            plain_http: false,
            token_file: default_serve_token_file(),
            state_dir: default_serve_state_dir(),
            collect_interval_secs: default_collect_interval_secs(),
            lease_margin_minutes: default_lease_margin_minutes(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window_start: None,
            window_end: None,
            guard_minutes: default_guard_minutes(),
            slot_minutes: default_slot_minutes(),
            stability_weight: default_stability_weight(),
            duration_percentile: DurationPercentile::default(),
            unknown_duration_minutes: default_unknown_duration_minutes(),
            schedule_zone: ScheduleZone::default(),
            approval: Approval::default(),
            replan_drift: default_replan_drift(),
        }
    }
}

fn default_store() -> PathBuf {
    "/var/lib/stagger/schedctl.db".into()
}
fn default_concurrency() -> usize {
    64
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_serve_listen() -> String {
    "0.0.0.0:8151".into()
}
fn default_serve_token_file() -> PathBuf {
    "/etc/stagger/schedctl.token".into()
}
fn default_serve_state_dir() -> PathBuf {
    "/var/lib/stagger".into()
}
fn default_collect_interval_secs() -> u64 {
    300
}
fn default_lease_margin_minutes() -> u64 {
    30
}
fn default_guard_minutes() -> f64 {
    5.0
}
fn default_slot_minutes() -> u32 {
    5
}
fn default_stability_weight() -> f64 {
    0.01
}
fn default_unknown_duration_minutes() -> f64 {
    60.0
}
fn default_replan_drift() -> f64 {
    0.2
}
fn default_sensitivity() -> f64 {
    1.0
}
fn default_host_capacity() -> u32 {
    1
}
fn default_resource_capacity() -> u32 {
    1
}
fn default_ssh_user() -> String {
    "root".into()
}
fn default_pvesh() -> String {
    "pvesh".into()
}
fn default_jobs_cfg() -> PathBuf {
    "/etc/pve/jobs.cfg".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("schedctl.toml"))
    }

    const TWO_HOSTS: &str = r#"
[[host]]
name = "hikurangi"
[host.agent]
url = "https://127.0.0.1:8150"
token-file = "/etc/stagger/hikurangi.token"

[[host]]
name = "pihanga"
[host.ssh]
address = "127.0.0.1:22"
key-file = "/root/.ssh/id_ed25519"
host-key = "SHA256:abc"

[[resource]]
name = "pbs-main"
storages = ["pbs"]
impacts = { pihanga = 1.0 }
"#;

    #[test]
    fn hosts_with_their_transports_read() {
        let config = parse(TWO_HOSTS).expect("valid");
        assert_eq!(config.hosts.len(), 2);
        assert_eq!(config.hosts[0].transport_kind(), Some(TransportKind::Agent));
        assert_eq!(config.hosts[1].transport_kind(), Some(TransportKind::Ssh));
        assert_eq!(config.resources[0].capacity, 1);
    }

    #[test]
    fn a_host_without_a_transport_is_refused_by_name() {
        let err = parse("[[host]]\nname = \"ruapehu\"\n").expect_err("refused");
        assert!(err.to_string().contains("host \"ruapehu\""), "{err}");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let err = parse("concurency = 3\n").expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("concurency") && text.contains("line 1"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod example {
    use super::*;

    const MARKER: &str = "# ===== schedctl.toml =====";

    /// The schedctl part of `config.example.toml`: from its marker to the next marker or the end.
    fn schedctl_part() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.example.toml");
        let text =
            std::fs::read_to_string(&path).expect("config.example.toml at the repository root");
        // The marker alone on its line (the file's header quotes it too).
        let line = format!("\n{MARKER}\n");
        let start = text.find(&line).expect("the schedctl.toml marker line");
        let rest = &text[start + line.len()..];
        let end = rest.find("\n# ===== ").map_or(rest.len(), |i| i + 1);
        rest[..end].to_owned()
    }

    #[test]
    fn the_example_parses_with_every_transport() {
        let config = Config::parse(&schedctl_part(), Path::new("config.example.toml"))
            .expect("the example is valid");
        let kinds: Vec<_> = config
            .hosts
            .iter()
            .map(HostConfig::transport_kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                Some(TransportKind::Agent),
                Some(TransportKind::Ssh),
                Some(TransportKind::PveApi)
            ]
        );
        assert_eq!(config.policy.window_start.as_deref(), Some("00:00"));
        assert_eq!(config.resources[0].impacts.get("pihanga"), Some(&0.5));
        // Every default the example states is the real default.
        let defaults = Config::parse("", Path::new("empty.toml")).expect("no keys at all is valid");
        assert_eq!(
            config.policy.duration_percentile,
            defaults.policy.duration_percentile
        );
        assert_eq!(config.policy.slot_minutes, defaults.policy.slot_minutes);
        assert_eq!(
            config.policy.unknown_duration_minutes,
            defaults.policy.unknown_duration_minutes
        );
        assert_eq!(
            config.policy.stability_weight,
            defaults.policy.stability_weight
        );
        assert_eq!(config.serve, defaults.serve);
        assert_eq!(config.concurrency, defaults.concurrency);
        assert_eq!(config.timeout_secs, defaults.timeout_secs);
        assert_eq!(config.store, defaults.store);
    }

    #[test]
    fn the_example_names_every_key() {
        let text = schedctl_part();
        for key in [
            "store",
            "concurrency",
            "timeout-secs",
            "listen",
            "plain-http",
            "token-file",
            "state-dir",
            "collect-interval-secs",
            "lease-margin-minutes",
            "window-start",
            "window-end",
            "guard-minutes",
            "slot-minutes",
            "stability-weight",
            "duration-percentile",
            "unknown-duration-minutes",
            "schedule-zone",
            "approval",
            "replan-drift",
            "sensitivity",
            "capacity",
            "url",
            "fingerprint",
            "address",
            "user",
            "key-file",
            "host-key",
            "pvesh",
            "jobs-cfg",
            "storages",
            "impacts",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{key} ="))),
                "config.example.toml's schedctl part lacks `{key}`"
            );
        }
    }

    #[test]
    fn settings_off_the_grid_are_refused_with_their_key() {
        let err = Config::parse(
            "[policy]\nwindow-start = \"00:03\"\nwindow-end = \"07:00\"\n",
            Path::new("s.toml"),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("policy.window-start"), "{err}");
        let err = Config::parse("[policy]\nslot-minutes = 7\n", Path::new("s.toml"))
            .expect_err("refused");
        assert!(err.to_string().contains("does not divide a day"), "{err}");
        let err = Config::parse("[[host]]\nname = \"a\"\n[host.ssh]\naddress = \"a:22\"\nkey-file = \"k\"\nhost-key = \"SHA256:x\"\njobs-config = \"/x\"\n", Path::new("s.toml"))
            .expect_err("refused");
        assert!(err.to_string().contains("jobs-config"), "{err}");
    }
}
