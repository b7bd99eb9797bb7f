//! What a Proxmox write (GUI, API, pvesh) turns jobs.cfg into after reading it:
//! `PVE::SectionConfig::write_config` as called by `PVE::Job::Registry`.
//!
//! Sections in Proxmox's order; per section the header, the comment
//! (percent-encoded, only when truthy), the required keys sorted, then every
//! other set key sorted by byte order, each as TAB key SPACE value; an empty
//! line after every section. Everything Proxmox did not keep is gone.

use std::collections::BTreeMap;

use super::comment;
use super::property_string;
use super::reading::{Reading, Section};
use super::schema::{Kind, SectionType, Usage};
use super::value::Value;

/// Why a Proxmox write of the file fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A section was skipped but its id left behind without values; Proxmox's
    /// writer dies on it with `unknown section type ''`.
    #[error(
        "section '{id}' (lines {header_line}-{last_line}) was skipped by Proxmox: {problem}; \
         until it is repaired, every Proxmox write of the file (GUI, API, pvesh) fails with \
         \"unknown section type ''\" and pvescheduler may stop at this job; {repair}"
    )]
    SectionLeftBehind {
        /// The section id.
        id: String,
        /// 1-based line of its header.
        header_line: usize,
        /// 1-based line of its last processed line.
        last_line: usize,
        /// Proxmox's reason for skipping it.
        problem: String,
        /// How to repair the file.
        repair: String,
    },
}

impl RewriteError {
    /// The error text Proxmox's writer dies with.
    pub fn proxmox_message(&self) -> &'static str {
        match self {
            RewriteError::SectionLeftBehind { .. } => "unknown section type ''\n",
        }
    }
}

/// The text a Proxmox write produces from `reading`.
pub(crate) fn rewrite(reading: &Reading) -> Result<String, RewriteError> {
    let mut out = String::new();
    for section in &reading.sections {
        let (Some(values), Some(section_type)) = (
            section.values.as_ref(),
            SectionType::from_name(&section.section_type),
        ) else {
            return Err(left_behind(section));
        };
        write_section(&mut out, section, section_type, values);
    }
    Ok(out)
}

fn left_behind(section: &Section) -> RewriteError {
    RewriteError::SectionLeftBehind {
        id: section.id.clone(),
        header_line: section.header_line,
        last_line: section.last_line,
        problem: section
            .problem
            .clone()
            .unwrap_or_else(|| "no values".to_owned()),
        repair: match &section.missing_option {
            Some(option) => format!(
                "add a valid '{option}' line to section '{}' (lines {}-{}) or remove the section",
                section.id, section.header_line, section.last_line
            ),
            None => format!("remove section '{}'", section.id),
        },
    }
}

fn write_section(
    out: &mut String,
    section: &Section,
    section_type: SectionType,
    values: &BTreeMap<&'static str, Value>,
) {
    out.push_str(&format!("{}: {}\n", section_type.name(), section.id));
    if let Some(Value::Text(text)) = values.get("comment") {
        let encoded = comment::encode(text);
        if !(encoded.is_empty() || encoded == "0") {
            out.push_str(&format!("\tcomment {encoded}\n"));
        }
    }
    let keys = section_type.options().filter(|p| p.name != "comment");
    let (required, optional): (Vec<_>, Vec<_>) =
        keys.partition(|p| section_type.usage(p) == Usage::Required);
    for property in required.into_iter().chain(optional) {
        if let Some(value) = values.get(property.name) {
            write_value(out, property.name, &property.kind, value);
        }
    }
    out.push('\n');
}

/// `format_config_line`: booleans as 0/1, one line per array element, empty strings omitted.
fn write_value(out: &mut String, key: &str, kind: &Kind, value: &Value) {
    let text = match (kind, value) {
        (_, Value::Bool(flag)) => u8::from(*flag).to_string(),
        (_, Value::List(items)) => {
            for item in items {
                out.push_str(&format!("\t{key} {item}\n"));
            }
            return;
        }
        (Kind::Properties(format), Value::Properties(map)) => property_string::print(format, map),
        (_, Value::Properties(_)) => return,
        (_, Value::Integer(text) | Value::Text(text)) => text.clone(),
    };
    if !text.is_empty() {
        out.push_str(&format!("\t{key} {text}\n"));
    }
}
