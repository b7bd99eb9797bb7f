//! `/cluster/backup` and `/cluster/backup/{id}` (pve-manager `PVE/API2/Backup.pm`),
//! shared by the HTTPS API and `pvesh`.
//!
//! Reads use the codec's Proxmox reading of jobs.cfg; an update takes the
//! cluster lock, edits Proxmox's view of the one job and writes the whole file
//! back with Proxmox's writer (`proxmox_rewrite`), as temp file + rename.

use std::collections::BTreeMap;

use scheduler_core::calendar::CalendarEvent;
use scheduler_core::jobs_cfg::{JobsCfg, Reading, Section, Value};
use serde_json::json;

use super::error::ApiError;
use super::params::Params;
use crate::cluster_lock;
use crate::tree::{SimConfig, Tree};

/// Who is calling: `root@pam` itself (pvesh) or an API token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The literal user root@pam (pvesh, a ticket).
    Root,
    /// An API token `user@realm!id`.
    Token(String),
}

/// Job keys only the literal `root@pam` may set (`assert_param_permission_common`).
const ROOT_ONLY: [&str; 3] = ["script", "dumpdir", "tmpdir"];
/// Keys `delete` may not name: not vzdump options nor in `$deletable`.
const NOT_DELETABLE: [&str; 3] = ["schedule", "enabled", "type"];

/// Reads jobs.cfg (a missing file is an empty one).
fn read_jobs(tree: &Tree) -> Result<JobsCfg, ApiError> {
    let path = tree.jobs_cfg();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(JobsCfg::parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JobsCfg::parse("")),
        Err(e) => Err(ApiError::fail(
            500,
            format!("unable to read '{}' - {e}\n", path.display()),
        )),
    }
}

/// The visible vzdump job `id`, or the 400 Proxmox answers.
fn vzdump_section<'r>(reading: &'r Reading, id: &str) -> Result<&'r Section, ApiError> {
    reading
        .section(id)
        .filter(|s| s.section_type == "vzdump" && s.values.is_some())
        .ok_or_else(|| ApiError::param("id", format!("No such job '{id}'")))
}

/// A job as the API prints it: every stored value, `id`, `type`, `enabled`.
fn job_json(section: &Section) -> serde_json::Map<String, serde_json::Value> {
    let mut job = serde_json::Map::new();
    if let Some(values) = &section.values {
        for (key, value) in values {
            job.insert((*key).to_owned(), api_value(key, value));
        }
    }
    job.entry("enabled").or_insert(json!(1));
    job.insert("id".into(), json!(section.id));
    job.insert("type".into(), json!(section.section_type));
    job
}

/// A value as Perl's JSON prints it: property-string members are strings,
/// except booleans (`fleecing.enabled`, `prune-backups.keep-all`), which
/// `parse_boolean` turned into numbers.
fn api_value(key: &str, value: &Value) -> serde_json::Value {
    let Value::Properties(map) = value else {
        return json!(value);
    };
    let boolean_member = match key {
        "fleecing" => "enabled",
        "prune-backups" => "keep-all",
        _ => "",
    };
    let members = map.iter().map(|(member, text)| {
        let printed = match (member == boolean_member, text.to_ascii_lowercase().as_str()) {
            (true, "1" | "on" | "yes" | "true") => json!(1),
            (true, "0" | "off" | "no" | "false") => json!(0),
            _ => json!(text),
        };
        (member.clone(), printed)
    });
    serde_json::Value::Object(members.collect())
}

/// `GET /cluster/backup`: the vzdump jobs in file order, with `next-run`
/// computed from `now` in the answering node's zone.
pub fn list(tree: &Tree, now: i64, tz: chrono_tz::Tz) -> Result<serde_json::Value, ApiError> {
    let reading = read_jobs(tree)?.proxmox_reading("jobs.cfg");
    let jobs: Vec<_> = reading
        .sections
        .iter()
        .filter(|s| s.section_type == "vzdump" && s.values.is_some())
        .map(|section| {
            let mut job = job_json(section);
            let next = section
                .value("schedule")
                .and_then(Value::as_text)
                .and_then(|s| CalendarEvent::parse(s.trim()).ok())
                .and_then(|event| event.next_after(now, tz));
            if let Some(next) = next {
                job.insert("next-run".into(), json!(next));
            }
            serde_json::Value::Object(job)
        })
        .collect();
    Ok(json!(jobs))
}

/// `GET /cluster/backup/{id}`.
pub fn get(tree: &Tree, id: &str) -> Result<serde_json::Value, ApiError> {
    let reading = read_jobs(tree)?.proxmox_reading("jobs.cfg");
    let section = vzdump_section(&reading, id)?;
    Ok(serde_json::Value::Object(job_json(section)))
}

/// What a PUT asks for, after parameter verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Update {
    /// Keys to set, each with its line values (several for `exclude-path`).
    set: BTreeMap<String, Vec<String>>,
    /// Keys to delete.
    delete: Vec<String>,
}

/// `PUT /cluster/backup/{id}`.
pub fn update(tree: &Tree, id: &str, params: &Params, caller: &Caller) -> Result<(), ApiError> {
    let update = verify_update(params, caller)?;
    write_locked(tree, id, |reading, canonical| {
        vzdump_section(reading, id)?;
        apply(canonical, id, &update)
    })
}

/// `POST /cluster/backup`: a new job appended at the end; `enabled 1` unless
/// given; the id is `id` or a random UUID.
pub fn create(tree: &Tree, params: &Params, caller: &Caller) -> Result<(), ApiError> {
    let mut rest = Params::default();
    let mut id = None;
    for (key, value) in &params.0 {
        match key.as_str() {
            "id" => id = Some(value.clone()),
            _ => rest.0.push((key.clone(), value.clone())),
        }
    }
    let mut create = verify_update(&rest, caller).or_else(|e| match e.status {
        500 => Ok(Update::default()),
        _ => Err(e),
    })?;
    let mut errors = BTreeMap::new();
    if let Some(id) = &id {
        if !is_config_id(id) {
            errors.insert(
                "id".to_owned(),
                format!("invalid format - invalid configuration ID '{id}'\n"),
            );
        }
    }
    if !create.set.contains_key("schedule") {
        errors.insert(
            "schedule".to_owned(),
            "property is missing and it is not optional".to_owned(),
        );
    }
    if !create.delete.is_empty() {
        errors.insert("delete".to_owned(), not_in_schema());
    }
    if !errors.is_empty() {
        return Err(ApiError::params(errors));
    }
    create
        .set
        .entry("enabled".to_owned())
        .or_insert_with(|| vec!["1".to_owned()]);
    let id = match id {
        Some(id) => id,
        None => crate::init::random_uuid().map_err(|e| ApiError::internal(&e))?,
    };
    write_locked(tree, &id, |reading, canonical| {
        if reading.section(&id).is_some() {
            return Err(ApiError::fail(500, format!("Job '{id}' already exists\n")));
        }
        let with_new = format!("{canonical}vzdump: {id}\n\n");
        apply(&with_new, &id, &create)
    })
}

/// `DELETE /cluster/backup/{id}`: the section goes, and the job's state files.
pub fn delete(tree: &Tree, config: &SimConfig, id: &str) -> Result<(), ApiError> {
    write_locked(tree, id, |reading, canonical| {
        vzdump_section(reading, id)?;
        let header = format!("vzdump: {id}\n");
        Ok(canonical
            .split_inclusive("\n\n")
            .filter(|block| !block.starts_with(&header))
            .collect())
    })?;
    for node in &config.nodes {
        let state = tree.node(&node.name).job_state(id);
        if let Err(e) = std::fs::remove_file(&state) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(ApiError::fail(
                    500,
                    format!("unable to remove '{}' - {e}\n", state.display()),
                ));
            }
        }
    }
    Ok(())
}

/// `pve-configid`: `^[a-z][a-z0-9_-]+$`, case-insensitive.
fn is_config_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// The write path of every change: the legacy vzdump.cron lock, then
/// jobs.cfg's; read; `edit` Proxmox's canonical text; check what Proxmox
/// would drop from job `id`; write Proxmox's rendering as temp file + rename.
fn write_locked(
    tree: &Tree,
    id: &str,
    edit: impl FnOnce(&Reading, &str) -> Result<String, ApiError>,
) -> Result<(), ApiError> {
    let lock_error = |e: cluster_lock::LockError| ApiError::fail(500, format!("{e}\n"));
    let _cron_lock = cluster_lock::acquire(&tree.lock_dir(), "vzdump.cron").map_err(lock_error)?;
    let _lock = cluster_lock::acquire(&tree.lock_dir(), "jobs.cfg").map_err(lock_error)?;
    let cfg = read_jobs(tree)?;
    let reading = cfg.proxmox_reading("jobs.cfg");
    let canonical = cfg
        .proxmox_rewrite()
        .map_err(|e| ApiError::fail(500, e.proxmox_message()));
    // A missing job is reported before a file Proxmox cannot write back.
    let edited = edit(&reading, canonical.as_deref().unwrap_or(""))?;
    canonical?;
    let written = JobsCfg::parse(&edited);
    let errors = section_errors(&written.proxmox_reading("jobs.cfg"), id);
    if !errors.is_empty() {
        return Err(ApiError::params(errors));
    }
    let text = written
        .proxmox_rewrite()
        .map_err(|e| ApiError::fail(500, e.proxmox_message()))?;
    cluster_lock::replace_file(&tree.jobs_cfg(), &text).map_err(|e| {
        ApiError::fail(
            500,
            format!("unable to write '{}' - {e}\n", tree.jobs_cfg().display()),
        )
    })
}

/// Parameter verification (before the handler runs, as pve-http-server does):
/// every key must be a job option with a valid value.
fn verify_update(params: &Params, caller: &Caller) -> Result<Update, ApiError> {
    let mut update = Update::default();
    let mut errors = BTreeMap::new();
    for (key, value) in &params.0 {
        match key.as_str() {
            "delete" => update
                .delete
                .extend(split_list(value).into_iter().map(str::to_owned)),
            "id" | "type" | "digest" => {
                errors.insert(key.clone(), not_in_schema());
            }
            _ => update
                .set
                .entry(key.clone())
                .or_default()
                .push(value.clone()),
        }
    }
    for (key, values) in &update.set {
        if values.len() > 1 && key != "exclude-path" {
            errors.insert(
                key.clone(),
                "duplicate parameter (only one value allowed)".to_owned(),
            );
        }
        if ROOT_ONLY.contains(&key.as_str()) && *caller != Caller::Root {
            errors.insert(key.clone(), "Only root may set this option.".to_owned());
        }
    }
    errors.extend(probe_values(&update.set));
    for key in &update.delete {
        if NOT_DELETABLE.contains(&key.as_str()) || !is_job_option(key) {
            errors.insert("delete".to_owned(), format!("unknown option '{key}'"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::params(errors));
    }
    if update.set.is_empty() && update.delete.is_empty() {
        return Err(ApiError::fail(500, "no options specified\n"));
    }
    Ok(update)
}

/// Checks the values with the codec's schema by reading them in a probe section.
fn probe_values(set: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    let mut text = String::from("vzdump: probe\n");
    if !set.contains_key("schedule") {
        text.push_str("\tschedule daily\n");
    }
    for (key, values) in set {
        for value in values {
            if value.contains(['\n', '\r']) || key.contains(char::is_whitespace) {
                errors.insert(key.clone(), "value contains a line feed".to_owned());
                continue;
            }
            text.push_str(&format!("\t{key} {}\n", stored_value(key, value)));
        }
    }
    let reading = JobsCfg::parse(&text).proxmox_reading("jobs.cfg");
    for error in &reading.errors {
        errors
            .entry(error.key.clone())
            .or_insert_with(|| api_message(&error.message));
    }
    if set
        .get("schedule")
        .is_some_and(|v| v.iter().all(|s| s.trim().is_empty()))
    {
        errors.insert(
            "schedule".to_owned(),
            "invalid format - invalid calendar event '' - unable to parse calendar event - event is empty\n"
                .to_owned(),
        );
    }
    errors
}

/// Whether `key` is an option of vzdump jobs (known to the schema).
fn is_job_option(key: &str) -> bool {
    let text = format!("vzdump: probe\n\tschedule daily\n\t{key}\n");
    let reading = JobsCfg::parse(&text).proxmox_reading("jobs.cfg");
    !reading.errors.iter().any(|e| {
        e.message == "unknown property type" || e.message.starts_with("unexpected property")
    })
}

/// The codec's messages as the API's parameter verification words them.
fn api_message(message: &str) -> String {
    if message == "unknown property type" || message.starts_with("unexpected property") {
        not_in_schema()
    } else if message.starts_with("invalid format - ") {
        // Format validators die with a newline, which the API keeps.
        format!("{message}\n")
    } else {
        message.to_owned()
    }
}

fn not_in_schema() -> String {
    "property is not defined in schema and the schema does not allow additional properties"
        .to_owned()
}

/// How a value is written in jobs.cfg (comments are percent-encoded).
fn stored_value(key: &str, value: &str) -> String {
    if key == "comment" {
        encode_comment(value)
    } else {
        value.trim().to_owned()
    }
}

/// pve-common `encode_text`: percent-escape control characters, bytes ≥ 0x7F, `%` and `:`.
fn encode_comment(text: &str) -> String {
    let mut out = String::new();
    for &byte in text.as_bytes() {
        if !(0x20..0x7F).contains(&byte) || byte == b'%' || byte == b':' {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// `PVE::Tools::split_list`: separators `,`, `;`, whitespace and NUL.
fn split_list(text: &str) -> Vec<&str> {
    text.split(|c: char| c == ',' || c == ';' || c == '\0' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The errors Proxmox's reading reports for section `id` (values it would drop).
fn section_errors(reading: &Reading, id: &str) -> BTreeMap<String, String> {
    reading
        .errors
        .iter()
        .filter(|e| e.section == id)
        .map(|e| (e.key.clone(), api_message(&e.message)))
        .collect()
}

/// Applies the update to job `id` of the canonical (Proxmox-written) text,
/// with `update_job`'s rules for `all`/`exclude`/`pool`/`vmid`, and checks
/// `verify_vzdump_parameters`.
fn apply(canonical: &str, id: &str, update: &Update) -> Result<String, ApiError> {
    let header = format!("vzdump: {id}");
    let mut out = String::new();
    for block in canonical.split_inclusive("\n\n") {
        if block.lines().next() != Some(header.as_str()) {
            out.push_str(block);
            continue;
        }
        let mut lines: Vec<(String, String)> = block
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (key, value) = line.strip_prefix('\t')?.split_once(' ')?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect();
        edit_job(&mut lines, update);
        verify_vzdump_parameters(&lines)?;
        out.push_str(&header);
        out.push('\n');
        for (key, value) in &lines {
            out.push_str(&format!("\t{key} {value}\n"));
        }
        out.push('\n');
    }
    Ok(out)
}

fn edit_job(lines: &mut Vec<(String, String)>, update: &Update) {
    let has = |lines: &Vec<(String, String)>, key: &str| lines.iter().any(|(k, _)| k == key);
    let truthy = |lines: &Vec<(String, String)>, key: &str| {
        lines
            .iter()
            .any(|(k, v)| k == key && !v.is_empty() && v != "0")
    };
    let remove = |lines: &mut Vec<(String, String)>, key: &str| lines.retain(|(k, _)| k != key);
    for key in &update.delete {
        remove(lines, key);
    }
    for (key, values) in &update.set {
        remove(lines, key);
        for value in values {
            lines.push((key.clone(), stored_value(key, value)));
        }
    }
    if has(lines, "exclude") && !has(lines, "pool") {
        remove(lines, "all");
        lines.push(("all".to_owned(), "1".to_owned()));
    }
    let param_all = update
        .set
        .get("all")
        .and_then(|v| v.first())
        .is_some_and(|v| v != "0" && !v.is_empty());
    if update.set.contains_key("vmid") {
        for key in ["all", "exclude", "pool"] {
            remove(lines, key);
        }
    } else if param_all {
        for key in ["vmid", "pool"] {
            remove(lines, key);
        }
    } else if truthy(lines, "pool") {
        for key in ["vmid", "all", "exclude"] {
            remove(lines, key);
        }
    }
}

/// `PVE::VZDump::verify_vzdump_parameters($param, 1)`: selection conflicts.
fn verify_vzdump_parameters(lines: &[(String, String)]) -> Result<(), ApiError> {
    let truthy = |key: &str| {
        lines
            .iter()
            .any(|(k, v)| k == key && !v.is_empty() && v != "0")
    };
    for key in ["all", "exclude", "pool"] {
        if truthy(key) && truthy("vmid") {
            return Err(ApiError::param(key, "option conflicts with option 'vmid'"));
        }
    }
    if !(truthy("all") || truthy("stop") || truthy("pool") || truthy("vmid")) {
        return Err(ApiError::param(
            "vmid",
            "property is missing and it is not optional",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_encoded_like_pve_common() {
        assert_eq!(
            encode_comment("Pihanga: über 100%"),
            "Pihanga%3A %C3%BCber 100%25"
        );
    }

    #[test]
    fn a_bad_schedule_is_refused_with_proxmox_words() {
        let params = Params(vec![("schedule".into(), "*/00".into())]);
        let error = verify_update(&params, &Caller::Root).expect_err("refused");
        assert_eq!(error.status, 400);
        assert_eq!(
            error.errors["schedule"],
            "invalid format - invalid calendar event '*/00' - unable to parse calendar event at '/00' - Nom(Eof)\n"
        );
    }

    #[test]
    fn unknown_keys_and_root_only_keys_are_refused() {
        let params = Params(vec![
            ("frobnicate".into(), "1".into()),
            ("script".into(), "/x".into()),
            ("delete".into(), "schedule".into()),
        ]);
        let error =
            verify_update(&params, &Caller::Token("root@pam!x".into())).expect_err("refused");
        assert_eq!(error.errors["frobnicate"], not_in_schema());
        assert_eq!(error.errors["script"], "Only root may set this option.");
        assert_eq!(error.errors["delete"], "unknown option 'schedule'");
    }

    #[test]
    fn setting_vmid_drops_all_and_exclude() {
        let canonical = "vzdump: a\n\tschedule 02:00\n\tall 1\n\texclude 100\n\tenabled 1\n\n";
        let update = Update {
            set: BTreeMap::from([("vmid".to_owned(), vec!["200".to_owned()])]),
            delete: vec![],
        };
        let text = apply(canonical, "a", &update).expect("applied");
        let rewritten = JobsCfg::parse(&text).proxmox_rewrite().expect("writable");
        assert_eq!(
            rewritten,
            "vzdump: a\n\tschedule 02:00\n\tenabled 1\n\tvmid 200\n\n"
        );
    }

    #[test]
    fn removing_the_selection_is_refused() {
        let canonical = "vzdump: a\n\tschedule 02:00\n\tenabled 1\n\tvmid 100\n\n";
        let update = Update {
            set: BTreeMap::new(),
            delete: vec!["vmid".to_owned()],
        };
        let error = apply(canonical, "a", &update).expect_err("refused");
        assert_eq!(
            error.errors["vmid"],
            "property is missing and it is not optional"
        );
    }
}
