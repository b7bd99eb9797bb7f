//! The demo's daemons, each a real process on a free port of 127.0.0.1:
//! per host the Proxmox API (`pve-sim serve`) and `sched-agent` on the
//! host's tree with the vzdump hook installed; and the coordinator,
//! `schedctl serve`, which the hooks ask for leases and which collects the
//! agents. Every connection is HTTPS with a pinned certificate and a token.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::fleet::{self, HostTree, STORAGE};
use super::procs::Demo;

/// How long a daemon may take to start.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The executables the demo runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `schedctl` (this one).
    pub schedctl: PathBuf,
    /// `pve-sim`.
    pub pve_sim: PathBuf,
    /// `sched-agent`.
    pub agent: PathBuf,
}

impl Binaries {
    /// This executable and its siblings `pve-sim` and `sched-agent`.
    pub fn beside_this() -> Result<Binaries> {
        let schedctl = std::env::current_exe().context("cannot find the schedctl executable")?;
        let dir = schedctl
            .parent()
            .context("the schedctl executable has no directory")?
            .to_path_buf();
        let found = Binaries {
            pve_sim: dir.join("pve-sim"),
            agent: dir.join("sched-agent"),
            schedctl,
        };
        for (path, package) in [(&found.pve_sim, "pve-sim"), (&found.agent, "sched-agent")] {
            if !path.is_file() {
                bail!(
                    "{} is missing: the demo runs it beside schedctl; build it with `cargo build --release -p {package}` (./scripts/demo builds all three)",
                    path.display()
                );
            }
        }
        Ok(found)
    }
}

/// One host's daemons.
#[derive(Debug, Clone)]
pub struct HostDaemons {
    /// Its Proxmox API.
    pub api_url: String,
    /// Its agent.
    pub agent_url: String,
}

/// Everything running.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Per host.
    pub hosts: Vec<HostDaemons>,
    /// The coordinator.
    pub coordinator_url: String,
    /// schedctl.toml.
    pub config: PathBuf,
    /// The coordinator's store.
    pub store: PathBuf,
}

/// Starts every daemon for `trees`.
pub fn start(demo: &Demo, bin: &Binaries, trees: &[HostTree]) -> Result<Fleet> {
    let dir = demo.dir();
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let coordinator_token = write_token(&tokens.join("coordinator"), "coordinator")?;
    let coordinator_port = free_port()?;
    let config = dir.join("schedctl.toml");
    let store = dir.join("schedctl.db");
    // The coordinator's certificate first: the hooks pin it.
    std::fs::write(
        &config,
        coordinator_toml(dir, coordinator_port, &coordinator_token, &store, &[]),
    )?;
    let coordinator_fingerprint = stdout_of(
        Command::new(&bin.schedctl)
            .arg("--config")
            .arg(&config)
            .args(["serve", "--fingerprint"]),
    )?;
    let mut hosts = Vec::new();
    let mut host_tables = Vec::new();
    for tree in trees {
        let api_url = start_api(demo, bin, tree)?;
        let (agent_url, table) = start_agent(
            demo,
            bin,
            tree,
            coordinator_port,
            &coordinator_token,
            &coordinator_fingerprint,
        )?;
        hosts.push(HostDaemons { api_url, agent_url });
        host_tables.push(table);
    }
    std::fs::write(
        &config,
        coordinator_toml(
            dir,
            coordinator_port,
            &coordinator_token,
            &store,
            &host_tables,
        ),
    )?;
    demo.spawn(
        "schedctl-serve",
        Command::new(&bin.schedctl)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("NO_COLOR", "1")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET"),
    )?;
    let coordinator_url = demo.wait_for_line("schedctl-serve", "listening: ", START_LIMIT)?;
    Ok(Fleet {
        hosts,
        coordinator_url,
        config,
        store,
    })
}

/// schedctl.toml: the coordinator, the datastore, the hosts' `[[host]]` tables.
fn coordinator_toml(dir: &Path, port: u16, token: &Path, store: &Path, hosts: &[String]) -> String {
    let mut text = format!(
        "# The demo's fleet: schedctl and the coordinator (`schedctl serve`).\n\
         store = \"{store}\"\nconcurrency = 8\ntimeout-secs = 10\n\n\
         [serve]\nlisten = \"127.0.0.1:{port}\"\ntoken-file = \"{token}\"\n\
         state-dir = \"{state}\"\ncollect-interval-secs = 2\n\n\
         [policy]\nwindow-start = \"00:00\"\nwindow-end = \"07:00\"\napproval = \"manual\"\n\n\
         [[resource]]\nname = \"{STORAGE}\"\ncapacity = 1\nstorages = [\"{STORAGE}\"]\n",
        store = store.display(),
        token = token.display(),
        state = dir.join("coordinator").display(),
    );
    for table in hosts {
        text.push('\n');
        text.push_str(table);
    }
    text
}

/// `pve-sim serve` on the tree, its clock standing at the demo's start.
fn start_api(demo: &Demo, bin: &Binaries, tree: &HostTree) -> Result<String> {
    let name = format!("pve-sim-{}", tree.host.name);
    demo.spawn(
        &name,
        Command::new(&bin.pve_sim)
            .arg("serve")
            .arg("--root")
            .arg(&tree.root)
            .args(["--listen", "127.0.0.1:0", "--speed", "0"]),
    )?;
    demo.wait_for_line(&name, "listening: ", START_LIMIT)
}

/// `sched-agent run` on the host's tree, its load profile seeded, the hook
/// installed; returns its URL and its `[[host]]` table for schedctl.toml.
fn start_agent(
    demo: &Demo,
    bin: &Binaries,
    tree: &HostTree,
    coordinator_port: u16,
    coordinator_token: &Path,
    coordinator_fingerprint: &str,
) -> Result<(String, String)> {
    let dir = demo.dir();
    let host = &tree.host;
    let node = tree.root.join("nodes").join(&host.name);
    let state = dir.join("agents").join(&host.name);
    std::fs::create_dir_all(&state)?;
    std::fs::write(
        state.join("load-profile.json"),
        fleet::load_profile_json(host, crate::fleet::now())?,
    )?;
    // What the agent samples besides the PSI file pve-sim writes: one idle disk, one CPU line.
    std::fs::write(
        node.join("proc/diskstats"),
        "   8       0 sda 1000 0 8000 500 2000 0 16000 900 0 1200 1400 0 0 0 0 0 0\n",
    )?;
    std::fs::write(node.join("proc/stat"), "cpu  100 0 50 1000 25 0 5 0 0 0\n")?;
    let token = write_token(
        &dir.join("tokens").join(format!("agent-{}", host.name)),
        &host.name,
    )?;
    let port = free_port()?;
    let config = dir.join(format!("agent-{}.toml", host.name));
    let path = |rel: &str| node.join(rel).display().to_string();
    std::fs::write(
        &config,
        format!(
            "node = \"{name}\"\ntimezone = \"UTC\"\nlisten = \"127.0.0.1:{port}\"\ntoken-file = \"{token}\"\n\
             proc-root = \"{proc}\"\npve-root = \"{pve}\"\ntask-dir = \"{tasks}\"\n\
             job-state-dir = \"{jobs}\"\nvzdump-conf = \"{vzdump}\"\nhook-script = \"{hook}\"\n\
             state-dir = \"{state}\"\nsample-interval-secs = 1\n\n\
             [coordinator]\nurl = \"https://127.0.0.1:{coordinator_port}\"\ntoken-file = \"{ctoken}\"\n\
             fingerprint = \"{coordinator_fingerprint}\"\nlease-wait-max-secs = 120\n",
            name = host.name,
            token = token.display(),
            proc = path("proc"),
            pve = path("etc/pve"),
            tasks = path("var/log/pve/tasks"),
            jobs = path("var/lib/pve-manager/jobs"),
            vzdump = path("etc/vzdump.conf"),
            hook = dir.join("hooks").join(&host.name).display(),
            state = state.display(),
            ctoken = coordinator_token.display(),
        ),
    )?;
    let agent = |args: &[&str]| {
        let mut command = Command::new(&bin.agent);
        command.arg("--config").arg(&config).args(args);
        command
    };
    let fingerprint = stdout_of(&mut agent(&["fingerprint"]))?;
    stdout_of(&mut agent(&["hook", "install"]))?;
    let name = format!("sched-agent-{}", host.name);
    demo.spawn(
        &name,
        agent(&["run"])
            .env("NO_COLOR", "1")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET"),
    )?;
    demo.wait_until(&name, START_LIMIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    let url = format!("https://127.0.0.1:{port}");
    let table = format!(
        "[[host]]\nname = \"{name}\"\nsensitivity = {sensitivity}\n[host.agent]\nurl = \"{url}\"\n\
         token-file = \"{token}\"\nfingerprint = \"{fingerprint}\"\n",
        name = host.name,
        sensitivity = host.sensitivity,
        token = token.display(),
    );
    Ok((url, table))
}

/// A root-only token file holding a fresh random token.
fn write_token(path: &Path, who: &str) -> Result<PathBuf> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?,
        &mut bytes,
    )?;
    std::fs::write(path, format!("demo-{who}-{}\n", hex::encode(bytes)))
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path.to_path_buf())
}

/// A port nothing listens on now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Runs a command that must succeed; its stdout, trimmed.
pub fn stdout_of(command: &mut Command) -> Result<String> {
    let output: Output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
