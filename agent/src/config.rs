//! `/etc/stagger/agent.toml`: the agent's settings.
//!
//! Keys are kebab-case, as in Proxmox's own files; an unknown key is an error
//! naming its line, so a typo never silently falls back to a default. Every
//! path the agent reads or writes is a setting, so tests point the agent at
//! real files in a temporary directory (or at a `pve-sim` node's tree).
//! `config.example.toml` at the repository root documents every key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the agent looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/stagger/agent.toml";

/// The agent's configuration, every default filled in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// jobs.cfg itself, under Proxmox's cluster lock.
    #[default]
    File,
    /// `PUT /cluster/backup/{id}` on the Proxmox API.
    Api,
}

/// The Proxmox API the `api` backend talks to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
        if self.backend == Backend::Api && self.api.is_none() {
            return Err(invalid(
                "backend",
                "backend = \"api\" needs an [api] table with token-file and fingerprint",
            ));
        }
        Ok(())
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
    fn plain_http_is_refused_off_loopback() {
        let err = parse("listen = \"0.0.0.0:8150\"\nplain-http = true\n").expect_err("refused");
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(parse("listen = \"127.0.0.1:8150\"\nplain-http = true\n").is_ok());
    }
}
