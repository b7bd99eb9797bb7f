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
