//! Which backup run a hook call belongs to.
//!
//! vzdump tells its hook only the phase and a few variables (FORMATS.md (d):
//! `STOREID`, `DUMPDIR`, `VMTYPE`, `HOSTNAME`, `TARGET`, `LOGFILE`,
//! `LC_ALL`) — never the job. So the hook finds the run itself:
//!
//! 1. **Candidates**: the vzdump runs of this node that are going on — job
//!    state files (`vzdump-<id>.json`) in state `started` naming a UPID of
//!    this node, whose task is not finished in `index` or `active`.
//! 2. **Ancestry**: on real Proxmox the task's worker process runs the hook,
//!    so the candidate whose UPID pid (with its process start time) is an
//!    ancestor of the hook process is the one.
//! 3. Otherwise **order**: the node's vzdump lock is granted in start order,
//!    so at `job-init` and `job-start` the run is the earliest-started
//!    candidate that has not had this phase yet; at `job-end`/`job-abort` it
//!    is the earliest one that had `job-start` and has not ended. `STOREID`
//!    narrows the candidates to runs writing to that storage.
//!
//! The phases each run has had come from the hook's own events (still
//! spooled, or already folded into `runs.json` by the daemon).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pve_api::{JobPhase, Upid};
use scheduler_core::jobs_cfg::JobsCfg;

use crate::runs::{events, history::RunHistory, records};
use crate::state;

/// A run the hook call may belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The job id.
    pub job: String,
    /// The run's task.
    pub upid: Upid,
    /// The storage it writes to (the job's `storage`, else vzdump.conf's, else `local`).
    pub storage: String,
}

/// A process above the hook: its pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ancestor {
    /// Process id.
    pub pid: u32,
    /// Start time, as `/proc/<pid>/stat` field 22 and the UPID's `pstart`.
    pub start_ticks: u64,
}

/// The run of a hook call for `phase`, given what was gathered.
pub fn choose<'c>(
    candidates: &'c [Candidate],
    phase: &str,
    storage: Option<&str>,
    ancestors: &[Ancestor],
    seen: &BTreeMap<String, BTreeSet<String>>,
) -> Option<&'c Candidate> {
    if let Some(own) = candidates.iter().find(|c| {
        ancestors
            .iter()
            .any(|a| a.pid == c.upid.pid() && a.start_ticks == c.upid.pstart())
    }) {
        return Some(own);
    }
    let mut pool: Vec<&Candidate> = candidates.iter().collect();
    if let Some(storage) = storage {
        let on_storage: Vec<&Candidate> = pool
            .iter()
            .copied()
            .filter(|c| c.storage == storage)
            .collect();
        if !on_storage.is_empty() {
            pool = on_storage;
        }
    }
    pool.sort_by_key(|c| (c.upid.starttime(), c.upid.pid(), c.job.clone()));
    let had = |c: &Candidate, p: &str| {
        seen.get(&c.upid.to_string())
            .is_some_and(|phases| phases.contains(p))
    };
    let first_without = |p: &str| pool.iter().copied().find(|c| !had(c, p));
    match phase {
        "job-end" | "job-abort" => pool
            .iter()
            .copied()
            .find(|c| had(c, "job-start") && !had(c, "job-end") && !had(c, "job-abort"))
            .or_else(|| first_without(phase)),
        _ => first_without(phase),
    }
}

/// The runs of `node` going on now (see the module doc).
pub fn candidates(
    node: &str,
    job_state_dir: &Path,
    task_dir: &Path,
    jobs_cfg: &Path,
    vzdump_conf: &Path,
) -> Vec<Candidate> {
    let states = records::read_job_states(job_state_dir);
    let mut finished: BTreeSet<String> = BTreeSet::new();
    for name in ["index", "index.1"] {
        let text = std::fs::read_to_string(task_dir.join(name)).unwrap_or_default();
        finished.extend(
            records::parse_index_lenient(&text)
                .into_iter()
                .map(|r| r.upid.to_string()),
        );
    }
    let active = std::fs::read_to_string(task_dir.join("active")).unwrap_or_default();
    finished.extend(
        records::parse_active_lenient(&active)
            .into_iter()
            .filter(|r| r.record.end.is_some())
            .map(|r| r.record.upid.to_string()),
    );
    let cfg = JobsCfg::parse(&std::fs::read_to_string(jobs_cfg).unwrap_or_default());
    let jobs = cfg.vzdump_jobs();
    let default_storage = vzdump_conf_value(
        &std::fs::read_to_string(vzdump_conf).unwrap_or_default(),
        "storage",
    )
    .unwrap_or_else(|| "local".to_owned());
    states
        .into_iter()
        .filter_map(|(job, state)| {
            let JobPhase::Started { upid: Some(upid) } = state.phase else {
                return None;
            };
            if upid.node() != node
                || upid.task_type() != "vzdump"
                || finished.contains(&upid.to_string())
            {
                return None;
            }
            let storage = jobs
                .iter()
                .find(|j| j.id == job)
                .and_then(|j| j.storage.clone())
                .unwrap_or_else(|| default_storage.clone());
            Some(Candidate { job, upid, storage })
        })
        .collect()
}

/// The phases each run has had, from the spool and `runs.json` in `state_dir`.
///
/// The spool is read first: the daemon saves `runs.json` with an event before
/// it takes the event out of the spool, so an event folded in between the two
/// reads is in the `runs.json` read second. (Read the other way round, such an
/// event is in neither, and the run looks as if it never had that phase.)
pub fn seen_phases(state_dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, event) in events::read_spool(&state::spool_dir(state_dir)) {
        if let Ok(events::HookEvent {
            upid: Some(upid),
            phase,
            ..
        }) = event
        {
            seen.entry(upid).or_default().insert(phase);
        }
    }
    let history: Option<RunHistory> = std::fs::read(state::runs_path(state_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    for (upid, phases) in history.map(|h| h.phases).unwrap_or_default() {
        seen.entry(upid).or_default().extend(phases);
    }
    seen
}

/// The processes above this one, nearest first, from `<proc_root>/<pid>/stat`.
pub fn ancestors(proc_root: &Path) -> Vec<Ancestor> {
    let mut found = Vec::new();
    let mut pid = std::process::id();
    for _ in 0..64 {
        let Ok(text) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) else {
            break;
        };
        let Some((parent, start_ticks)) = parse_stat(&text) else {
            break;
        };
        if pid != std::process::id() {
            found.push(Ancestor { pid, start_ticks });
        }
        if parent <= 1 {
            break;
        }
        pid = parent;
    }
    found
}

/// `(ppid, starttime)` of a `/proc/<pid>/stat` line; the command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

/// The value of `key` in vzdump.conf text (`key: value` lines, `#` comments).
pub fn vzdump_conf_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = super::install::conf_line(line)?;
        (k == key).then(|| v.to_owned())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn candidate(job: &str, pid: u32, start: i64, storage: &str) -> Candidate {
        Candidate {
            job: job.into(),
            upid: Upid::new(
                "pihanga",
                pid,
                u64::from(pid) * 10,
                start,
                "vzdump",
                "",
                "root@pam",
            )
            .unwrap(),
            storage: storage.into(),
        }
    }

    fn seen(entries: &[(&Candidate, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        entries
            .iter()
            .map(|(c, phases)| {
                (
                    c.upid.to_string(),
                    phases.iter().map(|p| (*p).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_earliest_run_without_the_phase_is_the_one() {
        let a = candidate("backup-a", 100, 1000, "pbs");
        let b = candidate("backup-b", 101, 1000, "pbs");
        let c = candidate("backup-c", 90, 2000, "local");
        let all = vec![c.clone(), b.clone(), a.clone()];
        assert_eq!(
            choose(&all, "job-init", None, &[], &BTreeMap::new()),
            Some(&a)
        );
        let after_a = seen(&[(&a, &["job-init", "job-start"])]);
        assert_eq!(choose(&all, "job-start", None, &[], &after_a), Some(&b));
        assert_eq!(choose(&all, "job-end", None, &[], &after_a), Some(&a));
        assert_eq!(
            choose(&all, "job-start", Some("local"), &[], &after_a),
            Some(&c)
        );
        assert_eq!(
            choose(&all, "job-start", Some("nfs"), &[], &after_a),
            Some(&b),
            "no match: not narrowed"
        );
        let everything = seen(&[
            (&a, &["job-start"]),
            (&b, &["job-start"]),
            (&c, &["job-start"]),
        ]);
        assert_eq!(choose(&all, "job-start", None, &[], &everything), None);
        assert_eq!(choose(&[], "job-start", None, &[], &BTreeMap::new()), None);
    }

    #[test]
    fn an_ancestor_worker_wins() {
        let a = candidate("backup-a", 100, 1000, "pbs");
        let b = candidate("backup-b", 101, 1001, "pbs");
        let all = vec![a.clone(), b.clone()];
        let worker = Ancestor {
            pid: 101,
            start_ticks: 1010,
        };
        assert_eq!(
            choose(&all, "job-start", None, &[worker], &BTreeMap::new()),
            Some(&b)
        );
        let reused_pid = Ancestor {
            pid: 101,
            start_ticks: 5,
        };
        assert_eq!(
            choose(&all, "job-start", None, &[reused_pid], &BTreeMap::new()),
            Some(&a)
        );
    }

    #[test]
    fn stat_lines_with_odd_command_names() {
        let line = "4242 (vzdump (x) y) S 4000 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 18446744073709551615\n";
        assert_eq!(parse_stat(line), Some((4000, 98765)));
        assert_eq!(parse_stat("garbage"), None);
        let own = ancestors(Path::new("/proc"));
        assert!(
            own.iter()
                .any(|a| a.pid == std::os::unix::process::parent_id()),
            "{own:?}"
        );
    }

    #[test]
    fn candidates_come_from_started_states_of_unfinished_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let states = dir.path().join("jobs");
        let tasks = dir.path().join("tasks");
        std::fs::create_dir_all(&states).unwrap();
        std::fs::create_dir_all(&tasks).unwrap();
        let running = "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:";
        let done = "UPID:pihanga:001402BC:06FD6679:67262CDD:vzdump::root@pam:";
        let other = "UPID:ruapehu:00156567:083AA169:672958F9:vzdump::root@pam:";
        for (job, upid) in [
            ("backup-k8s", running),
            ("backup-done", done),
            ("backup-other", other),
        ] {
            std::fs::write(
                states.join(format!("vzdump-{job}.json")),
                format!(r#"{{"state":"started","upid":"{upid}"}}"#),
            )
            .unwrap();
        }
        std::fs::write(tasks.join("index"), format!("{done} 6726372F OK\n")).unwrap();
        let cfg = dir.path().join("jobs.cfg");
        std::fs::write(
            &cfg,
            "vzdump: backup-k8s\n\tschedule 02:00\n\tstorage pbs-main\n",
        )
        .unwrap();
        let conf = dir.path().join("vzdump.conf");
        std::fs::write(&conf, "# defaults\nstorage: nfs\n").unwrap();
        let found = candidates("pihanga", &states, &tasks, &cfg, &conf);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].job, "backup-k8s");
        assert_eq!(found[0].storage, "pbs-main");
    }
}
