//! Edits that change only the bytes they must: a job's schedule value, a job's
//! `enabled` value. Each edit is checked first, so that no edit can produce a
//! file Proxmox would read differently than intended or could not write back.

use super::document::Document;
use super::reading::{self, Reading, Section};
use super::rewrite::{self, RewriteError};
use super::schema;
use super::syntax;

/// Why an edit was refused; the document is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The value holds a newline or another control character, which could
    /// forge a new line or section in the file.
    #[error(
        "value {value:?} contains the control character {character:?} at byte {position}; \
         jobs.cfg values must be a single line of printable text"
    )]
    ControlCharacter {
        /// The value as given.
        value: String,
        /// The offending character.
        character: char,
        /// Its byte offset in the value.
        position: usize,
    },
    /// The new schedule is not a calendar event Proxmox accepts.
    #[error(
        "invalid schedule '{event}': {reason}; give a Proxmox calendar event such as \
         '02:30', 'mon..fri 21:00' or 'sat 03:15 UTC'"
    )]
    InvalidEvent {
        /// The event as given.
        event: String,
        /// Proxmox's reason (`invalid calendar event ...`, `value may only be 128 characters long`).
        reason: String,
    },
    /// No job with this id is visible to Proxmox.
    #[error("no job '{id}' in the file; the jobs Proxmox sees are: {}", known_list(.known))]
    UnknownJob {
        /// The id asked for.
        id: String,
        /// The ids Proxmox sees, in file order.
        known: Vec<String>,
    },
    /// Proxmox itself could not write this file back; editing it would hide the problem.
    #[error("refusing to edit a file that Proxmox cannot write back: {0}")]
    Unwritable(RewriteError),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    }
}

/// Replaces the value of the schedule line Proxmox uses for `job_id`.
pub(crate) fn set_schedule(
    document: &mut Document,
    job_id: &str,
    event: &str,
) -> Result<(), EditError> {
    let event = checked_event(event)?;
    let reading = writable_reading(document)?;
    let section = visible_section(&reading, job_id)?;
    let value = section
        .stored_line("schedule")
        .and_then(|line| line.value_bytes.clone())
        .ok_or_else(|| unknown_job(&reading, job_id))?;
    if document.text()[value.clone()] != *event {
        document.replace(value, event);
    }
    Ok(())
}

/// Sets the `enabled` value Proxmox reads for `job_id`: rewrites the value in
/// place, completes a bare `enabled` key, or adds an `enabled 0` line at the
/// end of the section when the job relies on the default.
pub(crate) fn set_enabled(
    document: &mut Document,
    job_id: &str,
    enabled: bool,
) -> Result<(), EditError> {
    let reading = writable_reading(document)?;
    let section = visible_section(&reading, job_id)?;
    let wanted = if enabled { "1" } else { "0" };
    match section.stored_line("enabled") {
        Some(line) => match line.value_bytes.clone() {
            Some(value) if document.text()[value.clone()] == *wanted => {}
            Some(value) => document.replace(value, wanted),
            // A bare `enabled` key already means 1.
            None if enabled => {}
            None => {
                let at = line.key_bytes.end;
                document.replace(at..at, " 0");
            }
        },
        None if enabled => {}
        None => {
            let last = section.last_line - 1;
            let indent = section
                .stored_line("schedule")
                .map(|line| {
                    let start = document.line_start(line.line - 1);
                    document.text()[start..line.key_bytes.start].to_owned()
                })
                .unwrap_or_else(|| "\t".to_owned());
            let at = document.line_end(last);
            document.replace(at..at, &format!("\n{indent}enabled 0"));
        }
    }
    Ok(())
}

/// The event as it will be written: no control characters, trimmed as PVE
/// trims it, and accepted by Proxmox's calendar parser and length limit.
fn checked_event(event: &str) -> Result<&str, EditError> {
    if let Some((position, character)) = event.char_indices().find(|(_, c)| c.is_control()) {
        return Err(EditError::ControlCharacter {
            value: event.to_owned(),
            character,
            position,
        });
    }
    let trimmed = syntax::trim(event);
    let invalid = |reason: String| EditError::InvalidEvent {
        event: event.to_owned(),
        reason,
    };
    schema::check_calendar_event(trimmed).map_err(|e| invalid(syntax::trim_end(&e).to_owned()))?;
    if trimmed.len() > 128 {
        return Err(invalid("value may only be 128 characters long".to_owned()));
    }
    Ok(trimmed)
}

/// Proxmox's reading of the document, refused when a Proxmox write would fail.
fn writable_reading(document: &Document) -> Result<Reading, EditError> {
    let reading = reading::read(document, "jobs.cfg");
    rewrite::rewrite(&reading).map_err(EditError::Unwritable)?;
    Ok(reading)
}

fn visible_section<'r>(reading: &'r Reading, job_id: &str) -> Result<&'r Section, EditError> {
    reading
        .section(job_id)
        .filter(|section| section.values.is_some())
        .ok_or_else(|| unknown_job(reading, job_id))
}

fn unknown_job(reading: &Reading, job_id: &str) -> EditError {
    EditError::UnknownJob {
        id: job_id.to_owned(),
        known: reading.jobs().into_iter().map(|job| job.id).collect(),
    }
}
