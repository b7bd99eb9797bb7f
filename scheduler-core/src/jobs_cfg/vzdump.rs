//! The typed view of the backup jobs pvescheduler runs.

use std::collections::BTreeMap;

use super::reading::Reading;
use super::value::Value;

/// A `vzdump` job as Proxmox reads it: the fields Stagger plans with, typed,
/// and every other value Proxmox keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VzdumpJob {
    /// The section id (`backup-5f3a9c1e-2b7d`).
    pub id: String,
    /// The calendar event as written (`02:00`, `mon..fri 23:30 UTC`).
    pub schedule: String,
    /// The node the job runs on; `None` means every node of the cluster.
    pub node: Option<String>,
    /// Whether pvescheduler starts it (absent means enabled).
    pub enabled: bool,
    /// The target storage, if set (else vzdump.conf's, else `local`).
    pub storage: Option<String>,
    /// The comment, percent-decoded.
    pub comment: Option<String>,
    /// 1-based line of the section header.
    pub line: usize,
    /// Every other value Proxmox keeps for the job, by key.
    pub options: BTreeMap<&'static str, Value>,
}

/// The vzdump jobs of `reading`, in Proxmox's order.
pub(crate) fn vzdump_jobs(reading: &Reading) -> Vec<VzdumpJob> {
    reading
        .sections
        .iter()
        .filter(|section| section.section_type == "vzdump")
        .filter_map(|section| {
            let mut options = section.values.clone()?;
            let mut text = |key: &str| match options.remove(key) {
                Some(Value::Text(text)) => Some(text),
                _ => None,
            };
            let schedule = text("schedule")?;
            let node = text("node");
            let storage = text("storage");
            let comment = text("comment");
            let enabled = options
                .remove("enabled")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            Some(VzdumpJob {
                id: section.id.clone(),
                schedule,
                node,
                enabled,
                storage,
                comment,
                line: section.header_line,
                options,
            })
        })
        .collect()
}
