//! Task records as a PVE node keeps them (FORMATS.md (e)): the `index` of
//! finished tasks (newest at the end, rotated to `index.1` past 50 000
//! bytes), the `active` file, and the per-task log file.
//!
//! UPIDs and record lines are parsed and printed by `pve-api` (the same code
//! Stagger reads real hosts with); this module owns the files.

use std::io::Write;

use anyhow::{Context, Result};
use pve_api::tasks::{parse_active_line, parse_index_line};
use pve_api::{ActiveRecord, TaskRecord, TaskStatus, Upid};

use crate::tree::NodeTree;

/// Size past which `index` is renamed to `index.1`.
const INDEX_ROTATE_BYTES: u64 = 50_000;
/// Lines kept in `active` when fewer tasks than that are running.
const ACTIVE_LINES: usize = 25;

/// The API's task item fields: `user` without the token part, plus `tokenid`.
pub fn api_fields(upid: &Upid) -> serde_json::Map<String, serde_json::Value> {
    let mut item = serde_json::Map::new();
    item.insert("upid".into(), upid.to_string().into());
    item.insert("node".into(), upid.node().into());
    item.insert("pid".into(), upid.pid().into());
    item.insert("pstart".into(), upid.pstart().into());
    item.insert("starttime".into(), upid.starttime().into());
    item.insert("type".into(), upid.task_type().into());
    item.insert("id".into(), upid.id().into());
    item.insert("user".into(), upid.user_without_token().into());
    if let Some(token) = upid.token() {
        item.insert("tokenid".into(), token.into());
    }
    item
}

/// A finished task's index line.
pub fn finished(upid: &Upid, end: i64, status: &str) -> TaskRecord {
    TaskRecord {
        upid: upid.clone(),
        end: Some(end),
        status: status
            .parse()
            .unwrap_or_else(|_| TaskStatus::Error(status.to_owned())),
    }
}

/// Finished tasks of a node, newest first: `index` read backwards, then `index.1`.
/// Lines Proxmox would not have written are skipped.
pub fn read_archive(node: &NodeTree) -> Result<Vec<TaskRecord>> {
    let mut entries = Vec::new();
    for path in [node.task_index(), node.task_index_old()] {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        entries.extend(text.lines().rev().filter_map(|l| parse_index_line(l).ok()));
    }
    Ok(entries)
}

/// The `active` file's entries, in file order.
pub fn read_active(node: &NodeTree) -> Result<Vec<ActiveRecord>> {
    let path = node.task_active();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| parse_active_line(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Appends finished tasks to `index` (rotating it first when too large).
pub fn append_index(node: &NodeTree, records: &[TaskRecord]) -> Result<()> {
    let index = node.task_index();
    std::fs::create_dir_all(node.tasks_dir())?;
    if std::fs::metadata(&index).map(|m| m.len()).unwrap_or(0) > INDEX_ROTATE_BYTES {
        std::fs::rename(&index, node.task_index_old())
            .with_context(|| format!("cannot rotate {}", index.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&index)
        .with_context(|| format!("cannot open {}", index.display()))?;
    for line in records.iter().filter_map(TaskRecord::index_line) {
        writeln!(file, "{line}")?;
    }
    Ok(())
}

/// Rewrites `active`: the running tasks, then the most recent finished ones
/// up to 25 lines.
pub fn write_active(node: &NodeTree, running: &[Upid]) -> Result<()> {
    let finished = read_archive(node)?;
    let mut text = String::new();
    for upid in running {
        text.push_str(&format!("{upid} 0\n"));
    }
    let room = ACTIVE_LINES.saturating_sub(running.len());
    for record in finished.into_iter().take(room) {
        let line = pve_api::ActiveRecord {
            record,
            saved: true,
        }
        .active_line();
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::create_dir_all(node.tasks_dir())?;
    crate::cluster_lock::replace_file(&node.task_active(), &text)
        .with_context(|| format!("cannot write {}", node.task_active().display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_index_is_rotated_to_index_1() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = crate::tree::Tree::new(dir.path()).node("pve");
        let upid: Upid = "UPID:pve:00129D1E:06AF1F69:67256479:vzdump::root@pam:"
            .parse()
            .expect("upid");
        let record = finished(&upid, 0x672565F3, "OK");
        let many = vec![record.clone(); 50_000 / 60 + 2];
        append_index(&node, &many).expect("appended");
        append_index(&node, &[record]).expect("appended after rotation");
        let old = std::fs::read_to_string(node.task_index_old()).expect("index.1");
        let new = std::fs::read_to_string(node.task_index()).expect("index");
        assert_eq!(old.lines().count(), many.len());
        assert_eq!(new.lines().count(), 1);
        assert_eq!(read_archive(&node).expect("archive").len(), many.len() + 1);
    }

    #[test]
    fn api_fields_split_the_token() {
        let upid: Upid = "UPID:pihanga:0013B137:06E438C5:6725EC68:vzdump:310:root@pam!stagger:"
            .parse()
            .expect("valid UPID");
        let fields = api_fields(&upid);
        assert_eq!(fields["user"], "root@pam");
        assert_eq!(fields["tokenid"], "stagger");
        assert_eq!(fields["pstart"], 115620037);
        assert_eq!(fields["starttime"], 1730538600);
    }

    #[test]
    fn the_index_is_appended_and_active_lists_running_then_finished() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = crate::tree::Tree::new(dir.path()).node("pihanga");
        let done: Upid = "UPID:pihanga:00129D1E:06AF1F69:67256479:vzdump::root@pam:"
            .parse()
            .expect("upid");
        let running: Upid = "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:"
            .parse()
            .expect("upid");
        append_index(&node, &[finished(&done, 0x672565F3, "OK")]).expect("appended");
        write_active(&node, std::slice::from_ref(&running)).expect("written");
        let index = std::fs::read_to_string(node.task_index()).expect("index");
        assert_eq!(index, format!("{done} 672565F3 OK\n"));
        let active = std::fs::read_to_string(node.task_active()).expect("active");
        assert_eq!(active, format!("{running} 0\n{done} 1 672565F3 OK\n"));
        let archive = read_archive(&node).expect("archive");
        assert_eq!(archive[0].upid, done);
    }
}
