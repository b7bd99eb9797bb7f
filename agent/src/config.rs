//! `/etc/stagger/agent.toml`: the agent's settings.
//!
//! Keys are kebab-case, as in Proxmox's own files; an unknown key is an error
//! naming its line, so a typo never silently falls back to a default. Every
//! path the agent reads or writes is a setting, so tests point the agent at
//! real files in a temporary directory (or at a `pve-sim` node's tree).
//! `config.example.toml` at the repository root documents every key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the agent looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/stagger/agent.toml";

/// The agent's configuration, every default filled in.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The Proxmox node name; default: the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// The host's IANA time zone; default: the system's (`/etc/localtime`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Address of the HTTPS API and `/metrics`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve plain HTTP instead of HTTPS: allowed only on a loopback address.
    #[serde(default)]
    pub plain_http: bool,
    /// The bearer token clients must present (a root-only file, one line).
    #[serde(default = "default_token_file")]
    pub token_file: PathBuf,
    /// Where `/proc/pressure/io`, `/proc/diskstats` and `/proc/stat` are read.
    #[serde(default = "default_proc_root")]
    pub proc_root: PathBuf,
    /// Proxmox's cluster file system: `jobs.cfg` and `priv/lock/` live here.
    #[serde(default = "default_pve_root")]
    pub pve_root: PathBuf,
    /// Proxmox's task records: `index`, `active` and the task logs.
    #[serde(default = "default_task_dir")]
    pub task_dir: PathBuf,
    /// Proxmox's job state files (`vzdump-<id>.json`).
    #[serde(default = "default_job_state_dir")]
    pub job_state_dir: PathBuf,
    /// The node's vzdump defaults, where the hook is installed (`script:`).
    #[serde(default = "default_vzdump_conf")]
    pub vzdump_conf: PathBuf,
    /// The agent's own state: load profile, run history, certificate, backups, audit log.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Seconds between two samples of the I/O counters.
    #[serde(default = "default_sample_interval_secs")]
    pub sample_interval_secs: u64,
    /// How many previous copies of jobs.cfg to keep in `state-dir/backups/`.
    #[serde(default = "default_backups_keep")]
    pub backups_keep: usize,
    /// How many past runs to keep per job.
    #[serde(default = "default_runs_keep")]
    pub runs_keep: usize,
    /// Weeks after which a week's load counts half in the load profile.
    #[serde(default = "default_load_half_life_weeks")]
    pub load_half_life_weeks: f64,
    /// How long an apply waits for Proxmox's cluster lock on jobs.cfg
    /// (Proxmox's own tools wait 10 s); at most 30, so the whole write stays
    /// well inside the 60 s Proxmox allows a lock holder.
    #[serde(default = "default_lock_timeout_secs")]
    pub lock_timeout_secs: u64,
    /// Where `sched-agent hook install` puts the vzdump hook executable (a
    /// small wrapper that runs this binary's `hook` subcommand).
    #[serde(default = "default_hook_script")]
    pub hook_script: PathBuf,
    /// Names and addresses the agent's certificate is valid for, besides the
    /// node name, `localhost`, `127.0.0.1` and `::1`.
    #[serde(default)]
    pub tls_names: Vec<String>,
    /// How schedules are written: `file` (jobs.cfg under the cluster lock,
    /// byte-preserving) or `api` (the Proxmox API, which renormalises the file).
    #[serde(default)]
    pub backend: Backend,
    /// The Proxmox API, for `backend = "api"`.
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// The coordinator, for the guard hook's leases.
    #[serde(default)]
    pub coordinator: Option<CoordinatorConfig>,
}

/// How the agent writes schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// jobs.cfg itself, under Proxmox's cluster lock.
    #[default]
    File,
    /// `PUT /cluster/backup/{id}` on the Proxmox API.
    Api,
}

/// The Proxmox API the `api` backend talks to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApiConfig {
    /// Base URL, `https://127.0.0.1:8006`.
    #[serde(default = "default_api_url")]
    pub url: String,
    /// A file holding the API token, `user@realm!tokenid=secret`.
    pub token_file: PathBuf,
    /// The SHA-256 fingerprint of the API certificate (`AA:BB:...`).
    pub fingerprint: String,
}

/// The coordinator the guard hook asks for leases.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CoordinatorConfig {
    /// Base URL of `schedctl serve`, `https://coordinator:8151`.
    pub url: String,
    /// A file holding the coordinator's bearer token.
    pub token_file: PathBuf,
    /// The SHA-256 fingerprint of the coordinator's certificate (for `https`).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The longest a backup waits for its lease before it starts anyway.
    #[serde(default = "default_lease_wait_max_secs")]
    pub lease_wait_max_secs: u64,
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
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
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
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message: message.to_string(),
        };
        if self.sample_interval_secs == 0 {
            return Err(invalid("sample-interval-secs", "must be at least 1"));
        }
        let addr: std::net::SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                "must be an address with a port, e.g. \"0.0.0.0:8150\" or \"[::]:8150\"",
            )
        })?;
        if self.plain_http && !addr.ip().is_loopback() {
            return Err(invalid(
                "plain-http",
                "plain HTTP is only allowed on a loopback address (127.0.0.1); \
                 remove plain-http to serve HTTPS",
            ));
        }
        if !(self.load_half_life_weeks.is_finite() && self.load_half_life_weeks > 0.0) {
            return Err(invalid(
                "load-half-life-weeks",
                "must be a positive number of weeks, e.g. 4",
            ));
        }
        if !(1..=MAX_LOCK_TIMEOUT_SECS).contains(&self.lock_timeout_secs) {
            return Err(invalid(
                "lock-timeout-secs",
                "must be between 1 and 30: Proxmox aborts a lock holder after 60 s",
            ));
        }
        if self.backups_keep == 0 {
            return Err(invalid(
                "backups-keep",
                "must be at least 1: a rollback needs the previous jobs.cfg",
            ));
        }
        if self.runs_keep == 0 {
            return Err(invalid("runs-keep", "must be at least 1"));
        }
        if !self.hook_script.is_absolute() {
            return Err(invalid(
                "hook-script",
                "must be an absolute path: vzdump runs the hook without PATH",
            ));
        }
        if let Some(node) = &self.node {
            if !is_node_name(node) {
                return Err(invalid(
                    "node",
                    "must be a Proxmox node name: letters, digits and inner dashes",
                ));
            }
        }
        if let Some(zone) = &self.timezone {
            if zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(invalid(
                    "timezone",
                    "must be an IANA time zone such as \"Europe/Vienna\" or \"UTC\"",
                ));
            }
        }
        if let Some(api) = &self.api {
            if api.fingerprint.parse::<pve_api::Fingerprint>().is_err() {
                return Err(invalid(
                    "api.fingerprint",
                    "must be 32 colon-separated hex pairs, as `pvenode cert info` prints it",
                ));
            }
        }
        if let Some(coordinator) = &self.coordinator {
            let https = coordinator.url.starts_with("https://");
            let loopback_http = coordinator
                .url
                .strip_prefix("http://")
                .is_some_and(is_loopback_authority);
            if !https && !loopback_http {
                return Err(invalid(
                    "coordinator.url",
                    "must start with https:// (http:// only for a coordinator on 127.0.0.1, \
                     localhost or [::1]: the token must not cross a network in clear text)",
                ));
            }
            match &coordinator.fingerprint {
                Some(fingerprint) if fingerprint.parse::<pve_api::Fingerprint>().is_err() => {
                    return Err(invalid(
                        "coordinator.fingerprint",
                        "must be 32 colon-separated hex pairs, as `schedctl serve` prints it",
                    ));
                }
                None if https => {
                    return Err(invalid(
                        "coordinator.fingerprint",
                        "an https coordinator needs its certificate fingerprint pinned",
                    ));
                }
                _ => {}
            }
        }
        if self.backend == Backend::Api && self.api.is_none() {
            return Err(invalid(
                "backend",
                "backend = \"api\" needs an [api] table with token-file and fingerprint",
            ));
        }
        Ok(())
    }

    /// The node name: the configured one, else the host name up to its first dot.
    ///
    /// # Errors
    ///
    /// When no node is configured and the host name cannot be read.
    pub fn node_name(&self) -> Result<String, std::io::Error> {
        if let Some(node) = &self.node {
            return Ok(node.clone());
        }
        let text = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
        let name = text.trim().split('.').next().unwrap_or("").to_owned();
        if is_node_name(&name) {
            Ok(name)
        } else {
            Err(std::io::Error::other(format!(
                "the host name {name:?} is not a Proxmox node name; set `node` in the config"
            )))
        }
    }

    /// The time zone: the configured one, else the system's, else UTC.
    pub fn timezone_name(&self) -> String {
        self.timezone
            .clone()
            .or_else(|| iana_time_zone::get_timezone().ok())
            .unwrap_or_else(|| "UTC".to_owned())
    }
}

/// The longest `lock-timeout-secs`.
pub const MAX_LOCK_TIMEOUT_SECS: u64 = 30;

/// Whether `host[:port][/path]` names this host's loopback interface.
fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A Proxmox node name (`pve-node`): `^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`.
pub fn is_node_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

impl Config {
    /// Where the agent keeps its certificate and key.
    pub fn tls_dir(&self) -> PathBuf {
        self.state_dir.join("tls")
    }

    /// The names the certificate is made for.
    pub fn subject_names(&self, node: &str) -> Vec<String> {
        let mut names = vec![
            node.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        for name in &self.tls_names {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

fn default_listen() -> String {
    "0.0.0.0:8150".into()
}
fn default_token_file() -> PathBuf {
    "/etc/stagger/agent.token".into()
}
fn default_proc_root() -> PathBuf {
    "/proc".into()
}
fn default_pve_root() -> PathBuf {
    "/etc/pve".into()
}
fn default_task_dir() -> PathBuf {
    "/var/log/pve/tasks".into()
}
fn default_job_state_dir() -> PathBuf {
    "/var/lib/pve-manager/jobs".into()
}
fn default_vzdump_conf() -> PathBuf {
    "/etc/vzdump.conf".into()
}
fn default_state_dir() -> PathBuf {
    "/var/lib/stagger".into()
}
fn default_sample_interval_secs() -> u64 {
    10
}
fn default_backups_keep() -> usize {
    20
}
fn default_runs_keep() -> usize {
    200
}
fn default_load_half_life_weeks() -> f64 {
    4.0
}
fn default_lock_timeout_secs() -> u64 {
    10
}
fn default_hook_script() -> PathBuf {
    "/usr/local/lib/stagger/vzdump-hook".into()
}
fn default_api_url() -> String {
    "https://127.0.0.1:8006".into()
}
fn default_lease_wait_max_secs() -> u64 {
    1800
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("agent.toml"))
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = parse("").expect("defaults");
        assert_eq!(config.pve_root, PathBuf::from("/etc/pve"));
        assert_eq!(config.sample_interval_secs, 10);
        assert_eq!(config.backend, Backend::File);
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let err =
            parse("listen = \"127.0.0.1:1\"\nsample-intervall-secs = 5\n").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("sample-intervall-secs"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn a_coordinator_over_plain_http_must_be_on_loopback() {
        let table = |url: &str| format!("[coordinator]\nurl = \"{url}\"\ntoken-file = \"/t\"\n");
        for url in [
            "http://127.0.0.1:8151",
            "http://localhost:1",
            "http://[::1]:8151/",
        ] {
            assert!(parse(&table(url)).is_ok(), "{url}");
        }
        for url in ["http://10.0.0.1:8151", "http://coordinator:8151", "ftp://x"] {
            let err = parse(&table(url)).expect_err(url);
            assert!(err.to_string().contains("coordinator.url"), "{err}");
        }
        let err = parse(&table("https://coordinator:8151")).expect_err("no pin");
        assert!(err.to_string().contains("fingerprint"), "{err}");
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let err = parse("listen = \"0.0.0.0:8150\"\nplain-http = true\n").expect_err("refused");
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(parse("listen = \"127.0.0.1:8150\"\nplain-http = true\n").is_ok());
    }
}
