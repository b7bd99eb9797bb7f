//! Task records as a PVE node keeps them (FORMATS.md (e)): UPIDs, the
//! `index` of finished tasks (newest at the end, rotated to `index.1` past
//! 50 000 bytes), the `active` file, and the per-task log file.
//!
//! Parsing is pure (text in); the few functions that touch files take a
//! [`NodeTree`] and stay short.

use std::io::Write;

use anyhow::{Context, Result};

use crate::tree::NodeTree;

/// Size past which `index` is renamed to `index.1`.
const INDEX_ROTATE_BYTES: u64 = 50_000;
/// Lines kept in `active` when fewer tasks than that are running.
const ACTIVE_LINES: usize = 25;

/// A PVE UPID: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upid {
    /// Node name.
    pub node: String,
    /// Worker pid.
    pub pid: u32,
    /// Process start in clock ticks since boot.
    pub pstart: u64,
    /// Start time (epoch).
    pub starttime: i64,
    /// Task type (`vzdump`).
    pub task_type: String,
    /// Task id (a VMID or empty).
    pub id: String,
    /// `user@realm` or `user@realm!token`.
    pub user: String,
}

impl Upid {
    /// Parses a UPID with Proxmox's regex (pid and starttime 8 hex digits, pstart 8 or 9).
    pub fn parse(text: &str) -> Option<Upid> {
        let rest = text.strip_prefix("UPID:")?.strip_suffix(':')?;
        let fields: Vec<&str> = rest.split(':').collect();
        let [node, pid, pstart, start, task_type, id, user] = fields.as_slice() else {
            return None;
        };
        let hex = |s: &str, lens: &[usize]| {
            (lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        let node_ok = !node.is_empty()
            && node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !node.starts_with('-')
            && !node.ends_with('-');
        let word_ok = |s: &str, may_be_empty: bool| {
            (may_be_empty || !s.is_empty()) && !s.contains(|c: char| c.is_whitespace() || c == '/')
        };
        if !node_ok || !word_ok(task_type, false) || !word_ok(id, true) || !word_ok(user, false) {
            return None;
        }
        Some(Upid {
            node: (*node).to_owned(),
            pid: u32::try_from(hex(pid, &[8])?).ok()?,
            pstart: hex(pstart, &[8, 9])?,
            starttime: i64::try_from(hex(start, &[8])?).ok()?,
            task_type: (*task_type).to_owned(),
            id: (*id).to_owned(),
            user: (*user).to_owned(),
        })
    }

    /// The UPID text.
    pub fn render(&self) -> String {
        format!(
            "UPID:{}:{:08X}:{:08X}:{:08X}:{}:{}:{}:",
            self.node, self.pid, self.pstart, self.starttime, self.task_type, self.id, self.user
        )
    }

    /// The API's task item fields: `user` without the token part, plus `tokenid`.
    pub fn api_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut item = serde_json::Map::new();
        item.insert("upid".into(), self.render().into());
        item.insert("node".into(), self.node.clone().into());
        item.insert("pid".into(), self.pid.into());
        item.insert("pstart".into(), self.pstart.into());
        item.insert("starttime".into(), self.starttime.into());
        item.insert("type".into(), self.task_type.clone().into());
        item.insert("id".into(), self.id.clone().into());
        match self.user.split_once('!') {
            Some((user, token)) => {
                item.insert("user".into(), user.into());
                item.insert("tokenid".into(), token.into());
            }
            None => {
                item.insert("user".into(), self.user.clone().into());
            }
        }
        item
    }
}

/// A task as the records hold it: finished ones have an end and a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEntry {
    /// The UPID as written.
    pub upid: Upid,
    /// End time and status, when finished.
    pub end: Option<(i64, String)>,
}

/// One `index` line: `<UPID> <ENDTIME hex> <status>`.
pub fn parse_index_line(line: &str) -> Option<TaskEntry> {
    let (upid, rest) = line.split_once(' ')?;
    let (end, status) = rest.split_once(' ')?;
    Some(TaskEntry {
        upid: Upid::parse(upid)?,
        end: Some((i64::from_str_radix(end, 16).ok()?, status.to_owned())),
    })
}

/// One `active` line: `<UPID> <saved>[ <ENDTIME hex> <status>]`.
pub fn parse_active_line(line: &str) -> Option<TaskEntry> {
    let mut parts = line.splitn(4, ' ');
    let upid = Upid::parse(parts.next()?)?;
    let _saved = parts.next()?;
    let end = match (parts.next(), parts.next()) {
        (Some(end), Some(status)) => Some((i64::from_str_radix(end, 16).ok()?, status.to_owned())),
        _ => None,
    };
    Some(TaskEntry { upid, end })
}

/// Renders an index line.
pub fn index_line(upid: &Upid, end: i64, status: &str) -> String {
    format!("{} {:08X} {}", upid.render(), end, status)
}

/// Finished tasks of a node, newest first: `index` read backwards, then `index.1`.
pub fn read_archive(node: &NodeTree) -> Result<Vec<TaskEntry>> {
    let mut entries = Vec::new();
    for path in [node.task_index(), node.task_index_old()] {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        entries.extend(text.lines().rev().filter_map(parse_index_line));
    }
    Ok(entries)
}

/// The `active` file's entries, in file order.
pub fn read_active(node: &NodeTree) -> Result<Vec<TaskEntry>> {
    let path = node.task_active();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter_map(parse_active_line).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Appends finished tasks to `index` (rotating it first when too large).
pub fn append_index(node: &NodeTree, lines: &[String]) -> Result<()> {
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
    for line in lines {
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
        text.push_str(&format!("{} 0\n", upid.render()));
    }
    let room = ACTIVE_LINES.saturating_sub(running.len());
    for entry in finished.iter().take(room) {
        if let Some((end, status)) = &entry.end {
            text.push_str(&format!("{} 1 {:08X} {}\n", entry.upid.render(), end, status));
        }
    }
    std::fs::create_dir_all(node.tasks_dir())?;
    crate::cluster_lock::replace_file(&node.task_active(), &text)
        .with_context(|| format!("cannot write {}", node.task_active().display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_round_trip_and_split_tokens() {
        let text = "UPID:pihanga:0013B137:06E438C5:6725EC68:vzdump:310:root@pam!stagger:";
        let upid = Upid::parse(text).expect("valid UPID");
        assert_eq!(upid.pid, 1290551);
        assert_eq!(upid.pstart, 115620037);
        assert_eq!(upid.starttime, 1730538600);
        assert_eq!(upid.render(), text);
        let fields = upid.api_fields();
        assert_eq!(fields["user"], "root@pam");
        assert_eq!(fields["tokenid"], "stagger");
        assert!(Upid::parse("UPID:pihanga:13B137:06E438C5:6725EC68:vzdump::root@pam:").is_none());
        assert!(Upid::parse("UPID:-x:0013B137:06E438C5:6725EC68:vzdump::root@pam:").is_none());
    }

    #[test]
    fn index_and_active_lines_parse() {
        let line = "UPID:pihanga:00147A7D:07813CDD:67277E5E:vzdump::root@pam: 67277E60 command 'x job-start' failed: exit code 75";
        let entry = parse_index_line(line).expect("index line");
        assert_eq!(
            entry.end,
            Some((
                0x67277E60,
                "command 'x job-start' failed: exit code 75".to_owned()
            ))
        );
        let running = parse_active_line("UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam: 0")
            .expect("active line");
        assert_eq!(running.end, None);
    }
}
