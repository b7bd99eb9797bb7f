//! `pve-sim init`: lays out a simulated cluster from a fixture directory.
//!
//! From `--from DIR` it copies: the jobs file (`--jobs NAME`, else
//! `DIR/jobs.cfg`; none gives an empty jobs.cfg) to `etc/pve/jobs.cfg`;
//! `tasks-index` and `tasks-active` to the task records of the node their
//! UPIDs name; every `state-vzdump-<id>[-<state word>].json` to the job state
//! dir of the node its UPID names (every node when it has none); `vzdump.conf`
//! to every node. Nodes are `--node NAME[=ZONE]` in order, else the nodes the
//! files name (jobs' `node` keys, then UPIDs), else `pve`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use pve_api::tasks::{parse_active_line, parse_index_line};
use pve_api::Upid;

use crate::tree::{NodeConfig, RunConfig, SimConfig, TokenConfig, Tree, VersionConfig};

/// What `init` is asked to do (the arguments of `pve-sim init`).
#[derive(Clone, Debug, clap::Args)]
pub struct InitOptions {
    /// The directory to create the cluster in.
    #[arg(long)]
    pub root: PathBuf,
    /// Fixture directory (jobs.cfg or --jobs, tasks-index, tasks-active, state-vzdump-*.json, vzdump.conf).
    #[arg(long)]
    pub from: PathBuf,
    /// The jobs file to use, a name in --from or a path (default: jobs.cfg).
    #[arg(long)]
    pub jobs: Option<PathBuf>,
    /// Node NAME or NAME=ZONE, repeatable, in order; default: the nodes the fixtures name.
    #[arg(long = "node")]
    pub nodes: Vec<String>,
    /// Time zone of nodes given without one.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// API token id the server accepts.
    #[arg(long, default_value = "root@pam!stagger")]
    pub token_id: String,
    /// Token secret (default: a random UUID).
    #[arg(long)]
    pub token_secret: Option<String>,
}

/// Lays out the tree; returns its config.
pub fn init(options: &InitOptions) -> Result<SimConfig> {
    let tree = Tree::new(&options.root);
    if tree.config_file().exists() {
        bail!(
            "{} already holds a simulated cluster ({} exists); choose an empty directory",
            options.root.display(),
            tree.config_file().display()
        );
    }
    let from = &options.from;
    if !from.is_dir() {
        bail!("fixture directory {} does not exist", from.display());
    }
    let jobs_text = read_jobs(from, options.jobs.as_deref())?;
    let index = read_optional(&from.join("tasks-index"))?;
    let active = read_optional(&from.join("tasks-active"))?;
    let states = state_files(from)?;
    let nodes = node_list(options, &jobs_text, [&index, &active])?;
    let first_upid = [&index, &active]
        .into_iter()
        .flatten()
        .flat_map(|t| t.lines())
        .find_map(|l| l.split(' ').next().and_then(|u| u.parse::<Upid>().ok()));
    let boot_time = match &first_upid {
        Some(upid) => upid.starttime() - i64::try_from(upid.pstart() / 100).unwrap_or(0),
        None => (crate::clock::real_now() as i64 / 86_400 - 1) * 86_400,
    };
    let config = SimConfig {
        nodes,
        token: TokenConfig {
            id: options.token_id.clone(),
            secret: match &options.token_secret {
                Some(secret) => secret.clone(),
                None => random_uuid()?,
            },
        },
        version: VersionConfig::default(),
        boot_time,
        runs: RunConfig::default(),
    };
    config.validate()?;
    lay_out(&tree, &config)?;
    write(&tree.jobs_cfg(), &jobs_text)?;
    for (text, file) in [(&index, "index"), (&active, "active")] {
        if let Some(text) = text {
            let node = upid_node(text).filter(|n| config.node(n).is_some());
            let node = node.unwrap_or_else(|| config.local_node().name.clone());
            write(&tree.node(&node).tasks_dir().join(file), text)?;
        }
    }
    for (job_id, text) in &states {
        let named = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["upid"].as_str().and_then(|u| u.parse::<Upid>().ok()))
            .map(|u| u.node().to_owned())
            .filter(|n| config.node(n).is_some());
        for node in &config.nodes {
            if named.as_ref().is_none_or(|n| *n == node.name) {
                write(&tree.node(&node.name).job_state(job_id), text)?;
            }
        }
    }
    if let Some(conf) = read_optional(&from.join("vzdump.conf"))? {
        for node in &config.nodes {
            write(&tree.node(&node.name).vzdump_conf(), &conf)?;
        }
    }
    crate::tls::ensure_certificate(&tree)?;
    tree.write_config(&config)?;
    Ok(config)
}

fn read_jobs(from: &Path, jobs: Option<&Path>) -> Result<String> {
    match jobs {
        Some(name) => {
            let path = if name.is_absolute() {
                name.to_owned()
            } else {
                from.join(name)
            };
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read jobs file {}", path.display()))
        }
        None => Ok(read_optional(&from.join("jobs.cfg"))?.unwrap_or_default()),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `(job id, text)` of every `state-vzdump-*.json`, sorted by file name.
fn state_files(from: &Path) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_prefix("state-vzdump-")
            .and_then(|s| s.strip_suffix(".json"))
        else {
            continue;
        };
        let id = ["-created", "-starting", "-started", "-stopped", "-updated"]
            .iter()
            .find_map(|suffix| stem.strip_suffix(suffix))
            .unwrap_or(stem);
        let text = std::fs::read_to_string(from.join(&name))?;
        found.push((id.to_owned(), text));
    }
    found.sort();
    Ok(found)
}

fn node_list(
    options: &InitOptions,
    jobs: &str,
    tasks: [&Option<String>; 2],
) -> Result<Vec<NodeConfig>> {
    let mut names: Vec<(String, String)> = Vec::new();
    fn add(names: &mut Vec<(String, String)>, name: &str, zone: &str) {
        if !names.iter().any(|(n, _)| n == name) {
            names.push((name.to_owned(), zone.to_owned()));
        }
    }
    if options.nodes.is_empty() {
        let cfg = scheduler_core::jobs_cfg::JobsCfg::parse(jobs);
        for job in cfg.vzdump_jobs() {
            if let Some(node) = &job.node {
                add(&mut names, node, &options.timezone);
            }
        }
        for text in tasks.into_iter().flatten() {
            if let Some(node) = upid_node(text) {
                add(&mut names, &node, &options.timezone);
            }
        }
        if names.is_empty() {
            add(&mut names, "pve", &options.timezone);
        }
    } else {
        for spec in &options.nodes {
            let (name, zone) = spec.split_once('=').unwrap_or((spec, &options.timezone));
            add(&mut names, name, zone);
        }
    }
    Ok(names
        .into_iter()
        .map(|(name, timezone)| NodeConfig {
            name,
            timezone,
            guests: Vec::new(),
        })
        .collect())
}

fn upid_node(records: &str) -> Option<String> {
    records
        .lines()
        .find_map(|l| {
            parse_active_line(l)
                .map(|a| a.record)
                .or_else(|_| parse_index_line(l))
                .ok()
        })
        .map(|e| e.upid.node().to_owned())
}

/// Creates the directories, and each node's `etc/pve` link to the cluster files.
pub fn lay_out(tree: &Tree, config: &SimConfig) -> Result<()> {
    for dir in [tree.pve_dir(), tree.lock_dir()] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for node in &config.nodes {
        let node_tree = tree.node(&node.name);
        for dir in [
            node_tree.tasks_dir(),
            node_tree.job_state_dir(),
            node_tree.root().join("etc"),
            node_tree.root().join("proc/pressure"),
        ] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let link = node_tree.root().join("etc/pve");
        if !link.exists() {
            std::os::unix::fs::symlink("../../../etc/pve", &link)
                .with_context(|| format!("cannot link {}", link.display()))?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A random (version 4) UUID from the OS's random source.
pub fn random_uuid() -> Result<String> {
    let mut bytes = [0u8; 16];
    let mut source = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut source, &mut bytes).context("cannot read /dev/urandom")?;
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    let hex = hex::encode(bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}
