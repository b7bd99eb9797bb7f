//! `schedctl` against a fleet of simulated Proxmox hosts, as an admin runs it.
//!
//! Each host is its own `pve-sim` tree (one node, the origin story's names
//! and starts: hikurangi 02:00, ruapehu 02:20, pihanga 02:45 UTC, all
//! writing to the `pbs` storage of one datastore), reached over a real
//! OpenSSH server started by the test (with `pve-sim pvesh` as the host's
//! `pvesh`), through `pve-sim serve` (the Proxmox API), or through a real
//! `sched-agent` on the host's tree. Everything runs on 127.0.0.1 and is
//! stopped when the test ends.
//!
//! | module | scenario |
//! | --- | --- |
//! | `fleet` | the hosts (sshd + pve-sim, pve-sim serve, sched-agent) and schedctl.toml |
//! | `agent` | through the agent only the schedule bytes change; an agent killed mid-rollout |
//! | `cluster` | two nodes of one cluster: the shared job pinned per node, chained writes, rollback newest first |
//! | `crashed` | schedctl killed mid-rollout: the unfinished apply is reported, blocks new applies, and is rolled back |
//! | `rollout` | plan → diff → apply → status shows the new schedules → rollback restores the previous bytes |
//! | `stale` | jobs.cfg changed between plan and apply: refused, nothing written |
//! | `killed` | a host lost mid-rollout: the hosts already written are rolled back |
//! | `identity` | a changed SSH host key or certificate is refused, naming both and what to do |
//! | `guard` | the vzdump hooks' leases on live nights: a backup sharing the datastore waits at job-start until the running one ends; without the guard the runs overlap; a lease never released expires; a hook that gave up withdraws |
//! | `serve` | the coordinator: plans and applies with `approval = "auto"`, waits with `manual`, metrics, drift, status page, killed mid-rollout |

pub(crate) mod fleet;

mod agent;
mod cluster;
mod crashed;
mod guard;
mod identity;
mod killed;
mod rollout;
mod serve;
mod stale;

/// Bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout and stderr of a finished command, for failure messages.
pub fn both(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The host of a line of the rollout order `schedctl apply` prints
/// (`  2. ruapehu (ssh)`).
pub fn order_line(line: &str) -> Option<String> {
    let (number, rest) = line.trim_start().split_once(". ")?;
    if !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rest.split_whitespace().next().map(str::to_owned)
}

/// A `schedctl apply` that asks before writing, read as an admin reads it.
pub struct AskingApply {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    /// What it printed on stdout so far.
    pub seen: String,
}

/// How an [`AskingApply`] ended.
pub struct Answered {
    /// Its exit code.
    pub code: Option<i32>,
    /// stdout after the rollout order.
    pub rest: String,
    /// stderr after the prompt.
    pub errors: String,
    /// Everything it printed, for failure messages.
    pub all: String,
}

impl AskingApply {
    /// Starts `schedctl apply ARGS` (no `--yes`) with its stdin, stdout and stderr piped.
    pub fn start(fleet: &fleet::Fleet, args: &[&str]) -> AskingApply {
        use std::process::Stdio;
        let mut child = fleet
            .schedctl_command(&[&["apply"], args].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("schedctl apply starts");
        AskingApply {
            stdout: std::io::BufReader::new(child.stdout.take().expect("stdout")),
            stderr: std::io::BufReader::new(child.stderr.take().expect("stderr")),
            child,
            seen: String::new(),
        }
    }

    /// The rollout order, which comes first: the hosts of the first `hosts` order lines.
    pub fn order(&mut self, hosts: usize) -> Vec<String> {
        use std::io::BufRead;
        let mut order = Vec::new();
        while order.len() < hosts {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "schedctl stopped early:\n{}",
                self.seen
            );
            self.seen.push_str(&line);
            order.extend(order_line(&line));
        }
        order
    }

    /// Waits for the question on stderr, asked once every host answered with the plan's digest.
    pub fn wait_for_prompt(&mut self) {
        use std::io::Read;
        let mut prompt = Vec::new();
        while !String::from_utf8_lossy(&prompt).contains("[y/N]") {
            let mut byte = [0u8; 1];
            assert_eq!(
                self.stderr.read(&mut byte).unwrap(),
                1,
                "no prompt:\n{}",
                self.seen
            );
            prompt.push(byte[0]);
        }
    }

    /// Answers yes and waits for the end.
    pub fn answer_yes(mut self) -> Answered {
        use std::io::{Read, Write};
        writeln!(self.child.stdin.take().expect("stdin"), "y").unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let mut errors = String::new();
        self.stderr.read_to_string(&mut errors).unwrap();
        let code = self.child.wait().unwrap().code();
        Answered {
            code,
            all: format!("{}{rest}\n--- stderr\n{errors}", self.seen),
            rest,
            errors,
        }
    }
}
