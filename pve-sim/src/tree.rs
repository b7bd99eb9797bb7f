//! The directory layout of a simulated cluster, and its small config file.
//!
//! ```text
//! <root>/pve-sim.json                         SimConfig: nodes + zones, token, clock, runs
//! <root>/etc/pve/jobs.cfg                     cluster-wide (pmxcfs) jobs file
//! <root>/etc/pve/priv/lock/                   cluster locks (mkdir/rmdir dirs)
//! <root>/etc/pve/local/pve-ssl.{pem,key}      the API certificate and key
//! <root>/nodes/<node>/                        the node's own file system root:
//!     etc/pve -> ../../../etc/pve             (symlink: every node sees the cluster files)
//!     etc/vzdump.conf                         node-local vzdump defaults (`script:` hook)
//!     var/log/pve/tasks/{index,index.1,active,<X>/<UPID>}
//!     var/lib/pve-manager/jobs/vzdump-<id>.json
//!     proc/pressure/io                        simulated I/O pressure
//! ```
//!
//! Paths only: reading and writing happen in the modules that own the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The root of a simulated cluster.
#[derive(Clone, Debug)]
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    /// The tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Tree {
        Tree { root: root.into() }
    }

    /// `<root>/pve-sim.json`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("pve-sim.json")
    }

    /// `<root>/etc/pve` (pmxcfs).
    pub fn pve_dir(&self) -> PathBuf {
        self.root.join("etc/pve")
    }

    /// `<root>/etc/pve/jobs.cfg`.
    pub fn jobs_cfg(&self) -> PathBuf {
        self.pve_dir().join("jobs.cfg")
    }

    /// `<root>/etc/pve/priv/lock`.
    pub fn lock_dir(&self) -> PathBuf {
        self.pve_dir().join("priv/lock")
    }

    /// The API certificate (PEM).
    pub fn cert_file(&self) -> PathBuf {
        self.pve_dir().join("local/pve-ssl.pem")
    }

    /// The API certificate's private key (PEM).
    pub fn key_file(&self) -> PathBuf {
        self.pve_dir().join("local/pve-ssl.key")
    }

    /// The node-local file system of `node`.
    pub fn node(&self, node: &str) -> NodeTree {
        NodeTree {
            root: self.root.join("nodes").join(node),
        }
    }

    /// Reads `pve-sim.json`.
    pub fn read_config(&self) -> Result<SimConfig> {
        let path = self.config_file();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}; lay out a host first with `pve-sim init --root {}`",
                path.display(),
                self.root.display()
            )
        })?;
        let config: SimConfig = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid pve-sim config", path.display()))?;
        config
            .validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    /// Writes `pve-sim.json`.
    pub fn write_config(&self, config: &SimConfig) -> Result<()> {
        let path = self.config_file();
        let text = serde_json::to_string_pretty(config)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The node-local files of one node.
#[derive(Clone, Debug)]
pub struct NodeTree {
    root: PathBuf,
}

impl NodeTree {
    /// The node's root (`<root>/nodes/<node>`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `var/log/pve/tasks`.
    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("var/log/pve/tasks")
    }

    /// `var/log/pve/tasks/index`.
    pub fn task_index(&self) -> PathBuf {
        self.tasks_dir().join("index")
    }

    /// `var/log/pve/tasks/index.1` (the rotated index).
    pub fn task_index_old(&self) -> PathBuf {
        self.tasks_dir().join("index.1")
    }

    /// `var/log/pve/tasks/active`.
    pub fn task_active(&self) -> PathBuf {
        self.tasks_dir().join("active")
    }

    /// `var/log/pve/tasks/<X>/<UPID>`, X = last hex digit of the start time field.
    pub fn task_log(&self, upid: &str) -> PathBuf {
        let fields: Vec<&str> = upid.split(':').collect();
        let bucket = fields
            .get(4)
            .and_then(|start| start.chars().last())
            .map(|c| c.to_ascii_uppercase().to_string())
            .unwrap_or_else(|| "0".to_owned());
        self.tasks_dir().join(bucket).join(upid)
    }

    /// `var/lib/pve-manager/jobs`.
    pub fn job_state_dir(&self) -> PathBuf {
        self.root.join("var/lib/pve-manager/jobs")
    }

    /// `var/lib/pve-manager/jobs/vzdump-<id>.json`.
    pub fn job_state(&self, job_id: &str) -> PathBuf {
        self.job_state_dir().join(format!("vzdump-{job_id}.json"))
    }

    /// `etc/vzdump.conf`.
    pub fn vzdump_conf(&self) -> PathBuf {
        self.root.join("etc/vzdump.conf")
    }

    /// `proc/pressure/io`.
    pub fn pressure_io(&self) -> PathBuf {
        self.root.join("proc/pressure/io")
    }
}

/// `pve-sim.json`: what the directory tree cannot say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SimConfig {
    /// The cluster's nodes; the first one answers API requests.
    pub nodes: Vec<NodeConfig>,
    /// The one API token the server accepts.
    pub token: TokenConfig,
    /// What `GET /version` answers.
    #[serde(default)]
    pub version: VersionConfig,
    /// Epoch of the simulated boot (for UPID pstart values).
    pub boot_time: i64,
    /// How long simulated runs take.
    #[serde(default)]
    pub runs: RunConfig,
}

/// One node: name, time zone, guests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    /// Node name (`pihanga`).
    pub name: String,
    /// IANA time zone of the node (`Pacific/Auckland`).
    pub timezone: String,
    /// Guests on the node; empty means: the guests a job names, or 100, 101, 102.
    #[serde(default)]
    pub guests: Vec<Guest>,
}

/// A guest on a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Guest {
    /// VMID.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub guest_type: String,
}

/// The accepted API token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenConfig {
    /// `user@realm!tokenid`.
    pub id: String,
    /// The secret (a UUID).
    pub secret: String,
}

/// `GET /version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VersionConfig {
    /// Package version (`9.1.2`).
    pub version: String,
    /// `x.y`.
    pub release: String,
    /// Git id of the build.
    pub repoid: String,
}

impl Default for VersionConfig {
    fn default() -> Self {
        VersionConfig {
            version: "9.1.2".to_owned(),
            release: "9.1".to_owned(),
            repoid: "3a1d2f0c9b8e7d6a".to_owned(),
        }
    }
}

/// Run lengths of simulated backups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunConfig {
    /// Length of a run alone on its storage, in minutes, unless listed below.
    pub default_minutes: u32,
    /// Per job id, in minutes.
    #[serde(default)]
    pub job_minutes: BTreeMap<String, u32>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            default_minutes: 20,
            job_minutes: BTreeMap::new(),
        }
    }
}

impl SimConfig {
    /// Every problem at once: no nodes, duplicate names, unknown zones, a bad token id.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.nodes.is_empty() {
            problems.push("`nodes` is empty: give at least one node".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for node in &self.nodes {
            if !seen.insert(&node.name) {
                problems.push(format!("node '{}' is listed twice", node.name));
            }
            if node.timezone.parse::<chrono_tz::Tz>().is_err() {
                problems.push(format!(
                    "node '{}': unknown time zone '{}' (use an IANA name such as Europe/Vienna)",
                    node.name, node.timezone
                ));
            }
        }
        if !self.token.id.contains('!') || !self.token.id.contains('@') {
            problems.push(format!(
                "token id '{}' is not of the form user@realm!tokenid",
                self.token.id
            ));
        }
        if self.runs.default_minutes == 0 {
            problems.push("runs.default-minutes must be at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid config: {}", problems.join("; "))
        }
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node answering API requests (the first).
    pub fn local_node(&self) -> &NodeConfig {
        // validate() guarantees at least one node; fall back defensively.
        &self.nodes[0]
    }
}

impl NodeConfig {
    /// The node's zone (UTC if the name does not parse; validate() reports that).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}
