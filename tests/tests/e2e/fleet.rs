//! A fleet of simulated Proxmox hosts on loopback and the schedctl.toml that reaches them.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use std::net::TcpStream;

use crate::harness::process::{free_port, Daemon};
use crate::harness::{binary, run, run_ok, tool};

/// How schedctl reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A real sshd, with `pve-sim pvesh` as the host's pvesh.
    Ssh,
    /// `pve-sim serve`: the Proxmox API.
    PveApi,
    /// `sched-agent` on the host's pve-sim tree (HTTPS, pinned certificate, bearer token).
    Agent,
}

/// One simulated host.
pub struct Host {
    /// The node name.
    pub name: String,
    /// Its pve-sim tree.
    pub tree: PathBuf,
    /// sshd or pve-sim serve (`None` once killed).
    daemon: Option<Daemon>,
    /// sshd's pid file (SSH hosts).
    pid_file: Option<PathBuf>,
    /// Its `[[host]]` table.
    toml: String,
}

impl Host {
    /// Kills its sshd or its Proxmox API now: the host is gone.
    pub fn kill(&mut self) {
        self.daemon = None;
    }

    /// Stops (`freeze = true`) or resumes its sshd: connections then hang
    /// instead of failing, as with a host that stopped answering.
    pub fn freeze(&self, freeze: bool) {
        let pid_file = self
            .pid_file
            .as_ref()
            .expect("only SSH hosts can be frozen");
        let pid = std::fs::read_to_string(pid_file).expect("sshd wrote its pid file");
        let signal = if freeze { "-STOP" } else { "-CONT" };
        run_ok(Command::new("kill").args([signal, pid.trim()]));
    }

    /// Its jobs.cfg.
    pub fn jobs_cfg_path(&self) -> PathBuf {
        self.tree.join("etc/pve/jobs.cfg")
    }

    /// Its jobs.cfg's bytes now.
    pub fn jobs_cfg(&self) -> String {
        std::fs::read_to_string(self.jobs_cfg_path()).expect("jobs.cfg is readable")
    }
}

/// The fleet, its directory and its configuration file.
pub struct Fleet {
    /// Everything lives here; removed when the fleet is dropped.
    pub dir: tempfile::TempDir,
    /// The hosts, in configuration order.
    pub hosts: Vec<Host>,
    /// schedctl.toml.
    pub config: PathBuf,
}

/// jobs.cfg of a host with one backup job, as Proxmox itself writes it
/// (so that a Proxmox rewrite gives back the same bytes).
pub fn jobs_cfg_text(node: &str, schedule: &str, vmid: u32) -> String {
    format!(
        "vzdump: backup-{node}\n\tschedule {schedule}\n\tenabled 1\n\tmode snapshot\n\tnode {node}\n\tstorage pbs\n\tvmid {vmid}\n\n"
    )
}

impl Fleet {
    /// Starts one host per `(name, schedule, transport)`.
    pub fn start(hosts: &[(&str, &str, Via)]) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let client_key = dir.path().join("id_ed25519");
        keygen(&client_key);
        let mut started = Vec::new();
        for (i, (name, schedule, via)) in hosts.iter().enumerate() {
            let vmid = 100 + u32::try_from(i).unwrap();
            let tree = init_tree(
                dir.path(),
                name,
                &[name],
                &jobs_cfg_text(name, schedule, vmid),
            );
            started.push(match via {
                Via::Ssh => start_ssh_host(dir.path(), name, tree, &client_key),
                Via::PveApi => start_api_host(dir.path(), name, tree),
                Via::Agent => start_agent_host(dir.path(), name, tree),
            });
        }
        let config = dir.path().join("schedctl.toml");
        let fleet = Fleet {
            config,
            hosts: started,
            dir,
        };
        fleet.write_config(&[]);
        fleet
    }

    /// Starts one cluster: the nodes share one pve-sim tree (one jobs.cfg),
    /// each node reached over SSH through its own sshd.
    pub fn start_cluster(nodes: &[&str], jobs_cfg: &str) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let client_key = dir.path().join("id_ed25519");
        keygen(&client_key);
        let tree = init_tree(dir.path(), "cluster", nodes, jobs_cfg);
        let hosts = nodes
            .iter()
            .map(|name| start_ssh_host(dir.path(), name, tree.clone(), &client_key))
            .collect();
        let config = dir.path().join("schedctl.toml");
        let fleet = Fleet { config, hosts, dir };
        fleet.write_config(&[]);
        fleet
    }

    /// Writes schedctl.toml; `extra_hosts` are raw `[[host]]` tables appended.
    pub fn write_config(&self, extra_hosts: &[String]) {
        let mut text = format!(
            "store = \"{}\"\nconcurrency = 4\ntimeout-secs = 10\n\n\
             [policy]\nwindow-start = \"00:00\"\nwindow-end = \"07:00\"\nguard-minutes = 5\n\
             unknown-duration-minutes = 50\n\n\
             [[resource]]\nname = \"pbs-main\"\ncapacity = 1\nstorages = [\"pbs\"]\n",
            self.dir.path().join("schedctl.db").display()
        );
        for host in &self.hosts {
            text.push('\n');
            text.push_str(&host.toml);
        }
        for extra in extra_hosts {
            text.push('\n');
            text.push_str(extra);
        }
        std::fs::write(&self.config, text).expect("write schedctl.toml");
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("a host of the fleet")
    }

    /// The host named `name`, to kill it.
    pub fn host_mut(&mut self, name: &str) -> &mut Host {
        self.hosts
            .iter_mut()
            .find(|h| h.name == name)
            .expect("a host of the fleet")
    }

    /// Runs `schedctl --config <this fleet's> args...`.
    pub fn schedctl(&self, args: &[&str]) -> Output {
        run(&mut self.schedctl_command(args))
    }

    /// The command line of `schedctl --config <this fleet's> args...`.
    pub fn schedctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("schedctl", "schedctl"));
        command.arg("--config").arg(&self.config).args(args);
        command
    }

    /// Every host's jobs.cfg, by name.
    pub fn all_jobs_cfg(&self) -> Vec<(String, String)> {
        self.hosts
            .iter()
            .map(|h| (h.name.clone(), h.jobs_cfg()))
            .collect()
    }
}

/// An ed25519 key pair without passphrase at `path` (and `path.pub`).
fn keygen(path: &Path) {
    run_ok(
        Command::new(tool("/usr/bin/ssh-keygen", "openssh-client"))
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "stagger-test", "-f"])
            .arg(path),
    );
}

/// `ssh-keygen -lf` of a public key: its `SHA256:...` fingerprint.
pub fn fingerprint_of(public_key: &Path) -> String {
    let out = run_ok(
        Command::new(tool("/usr/bin/ssh-keygen", "openssh-client"))
            .arg("-lf")
            .arg(public_key),
    );
    out.split_whitespace()
        .nth(1)
        .expect("ssh-keygen -lf prints the fingerprint second")
        .to_owned()
}

/// A pve-sim tree named `name` with `nodes` and this jobs.cfg.
pub fn init_tree(dir: &Path, name: &str, nodes: &[&str], jobs_cfg: &str) -> PathBuf {
    let fixture = dir.join(format!("fixture-{name}"));
    std::fs::create_dir_all(&fixture).unwrap();
    std::fs::write(fixture.join("jobs.cfg"), jobs_cfg).unwrap();
    let tree = dir.join(format!("tree-{name}"));
    run_ok(
        Command::new(binary("pve-sim", "pve-sim"))
            .arg("init")
            .arg("--root")
            .arg(&tree)
            .arg("--from")
            .arg(&fixture)
            .args(nodes.iter().flat_map(|n| ["--node", n])),
    );
    tree
}

fn start_ssh_host(dir: &Path, name: &str, tree: PathBuf, client_key: &Path) -> Host {
    let sshd_dir = dir.join(format!("sshd-{name}"));
    std::fs::create_dir_all(&sshd_dir).unwrap();
    let host_key = sshd_dir.join("host_ed25519");
    keygen(&host_key);
    let pub_key = std::fs::read_to_string(client_key.with_extension("pub")).unwrap();
    std::fs::write(sshd_dir.join("authorized_keys"), pub_key).unwrap();
    let port = free_port();
    let config = sshd_dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
            key = host_key.display(),
            dir = sshd_dir.display()
        ),
    )
    .unwrap();
    // The host's `pvesh` is pve-sim's, on this host's tree, as this node.
    let pvesh = sshd_dir.join("pvesh");
    std::fs::write(
        &pvesh,
        format!(
            "#!/bin/sh\nexec '{}' pvesh --root '{}' --node '{name}' \"$@\"\n",
            binary("pve-sim", "pve-sim").display(),
            tree.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pvesh, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all("/run/sshd")
        .expect("create /run/sshd (sshd's privilege separation directory)");
    let mut daemon = Daemon::start(
        &format!("sshd-{name}"),
        Command::new(tool("/usr/sbin/sshd", "openssh-server"))
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config),
        dir,
    );
    daemon.wait_until(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let toml = format!(
        "[[host]]\nname = \"{name}\"\n[host.ssh]\naddress = \"127.0.0.1:{port}\"\nuser = \"{user}\"\n\
         key-file = \"{key}\"\nhost-key = \"{fp}\"\npvesh = \"{pvesh}\"\njobs-cfg = \"{jobs}\"\n",
        key = client_key.display(),
        fp = fingerprint_of(&host_key.with_extension("pub")),
        pvesh = pvesh.display(),
        jobs = tree.join("etc/pve/jobs.cfg").display()
    );
    Host {
        name: name.to_owned(),
        tree,
        daemon: Some(daemon),
        pid_file: Some(sshd_dir.join("sshd.pid")),
        toml,
    }
}

fn start_api_host(dir: &Path, name: &str, tree: PathBuf) -> Host {
    let port = free_port();
    let mut daemon = Daemon::start(
        &format!("pve-sim-{name}"),
        Command::new(binary("pve-sim", "pve-sim"))
            .arg("serve")
            .arg("--root")
            .arg(&tree)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--speed",
                "0",
                "--auth-delay-ms",
                "10",
            ]),
        dir,
    );
    let log_file = dir.join(format!("pve-sim-{name}.log"));
    let log_says = |what: &str| {
        std::fs::read_to_string(&log_file)
            .unwrap_or_default()
            .contains(what)
    };
    daemon.wait_until(Duration::from_secs(30), || log_says("token: "));
    let log = daemon.log();
    let field = |key: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("pve-sim serve printed no '{key}' line:\n{log}"))
            .to_owned()
    };
    let fingerprint = field("fingerprint:");
    let token_file = dir.join(format!("{name}.token"));
    std::fs::write(&token_file, format!("{}\n", field("token:"))).unwrap();
    let mut toml = String::new();
    let _ = write!(
        toml,
        "[[host]]\nname = \"{name}\"\n[host.pve-api]\nurl = \"https://127.0.0.1:{port}\"\n\
         token-file = \"{}\"\nfingerprint = \"{fingerprint}\"\n",
        token_file.display()
    );
    Host {
        name: name.to_owned(),
        tree,
        daemon: Some(daemon),
        pid_file: None,
        toml,
    }
}

fn start_agent_host(dir: &Path, name: &str, tree: PathBuf) -> Host {
    let token = format!("agent-token-{name}-7c1e");
    let agent = NodeAgent::configure(dir, name, &tree, &token, "");
    // The certificate is made once in the state dir: make it before the agent
    // starts, so that the agent serves the one pinned here.
    let fingerprint = agent.fingerprint();
    let (daemon, port, token_file) = (agent.start(), agent.port, agent.token_file);
    let toml = format!(
        "[[host]]\nname = \"{name}\"\n[host.agent]\nurl = \"https://127.0.0.1:{port}\"\n\
         token-file = \"{}\"\nfingerprint = \"{fingerprint}\"\n",
        token_file.display()
    );
    Host {
        name: name.to_owned(),
        tree,
        daemon: Some(daemon),
        pid_file: None,
        toml,
    }
}

/// A `sched-agent` for node `name` of a pve-sim tree, configured in `dir`
/// (every path into the node's files, a root-only token file, a free port),
/// not started yet.
pub struct NodeAgent {
    pub config: PathBuf,
    pub port: u16,
    pub token_file: PathBuf,
    name: String,
    dir: PathBuf,
}

impl NodeAgent {
    /// Writes `agent-<name>.toml` (with `extra` appended) and the token file.
    pub fn configure(dir: &Path, name: &str, tree: &Path, token: &str, extra: &str) -> NodeAgent {
        let node = tree.join("nodes").join(name);
        let token_file = dir.join(format!("{name}.agent-token"));
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let port = free_port();
        let config = dir.join(format!("agent-{name}.toml"));
        let node_path = |rel: &str| node.join(rel).display().to_string();
        std::fs::write(
            &config,
            format!(
                "node = \"{name}\"\ntimezone = \"UTC\"\nlisten = \"127.0.0.1:{port}\"\ntoken-file = \"{}\"\n\
                 proc-root = \"{}\"\npve-root = \"{}\"\ntask-dir = \"{}\"\njob-state-dir = \"{}\"\n\
                 vzdump-conf = \"{}\"\nstate-dir = \"{}\"\nhook-script = \"{}\"\n{extra}",
                token_file.display(),
                node_path("proc"),
                node_path("etc/pve"),
                node_path("var/log/pve/tasks"),
                node_path("var/lib/pve-manager/jobs"),
                node_path("etc/vzdump.conf"),
                dir.join(format!("agent-state-{name}")).display(),
                dir.join(format!("agent-hook-{name}")).display(),
            ),
        )
        .unwrap();
        NodeAgent {
            config,
            port,
            token_file,
            name: name.to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// `sched-agent --config CONFIG args...`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("sched-agent", "sched-agent"));
        command.arg("--config").arg(&self.config).args(args);
        command
    }

    /// `sched-agent fingerprint`: the certificate (made now if there is none).
    pub fn fingerprint(&self) -> String {
        run_ok(&mut self.command(&["fingerprint"]))
            .trim()
            .to_owned()
    }

    /// Starts `sched-agent run`; returns once it listens.
    pub fn start(&self) -> Daemon {
        let mut daemon = Daemon::start(
            &format!("sched-agent-{}", self.name),
            self.command(&["run"])
                .env("NO_COLOR", "1")
                .env_remove("JOURNAL_STREAM")
                .env_remove("NOTIFY_SOCKET"),
            &self.dir,
        );
        let port = self.port;
        daemon.wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        daemon
    }
}
