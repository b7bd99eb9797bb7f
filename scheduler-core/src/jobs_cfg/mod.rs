//! The lossless jobs.cfg codec.
//!
//! `/etc/pve/jobs.cfg` is Proxmox's section-config file of scheduled jobs
//! (`vzdump` backups and `realm-sync` jobs). Proxmox's own parser is lossy: a
//! write through the GUI or API drops comments, unknown keys and hand
//! formatting. [`JobsCfg`] is not: it keeps the file's bytes, so
//! [`render`](JobsCfg::render) gives back exactly what was parsed, and an edit
//! ([`set_schedule`](JobsCfg::set_schedule), [`set_enabled`](JobsCfg::set_enabled))
//! changes only the bytes of the value it edits.
//!
//! Beside the bytes, the codec knows how Proxmox itself reads the file
//! ([`proxmox_reading`](JobsCfg::proxmox_reading): warnings with line numbers,
//! rejected values, skipped sections, ids left behind) and what a Proxmox write
//! would turn it into ([`proxmox_rewrite`](JobsCfg::proxmox_rewrite)), so
//! Stagger can report what Proxmox would drop and never write a file Proxmox
//! would choke on.
//!
//! | file | step |
//! | --- | --- |
//! | `document.rs` | the bytes and their line index (lossless layer) |
//! | `syntax.rs` | Proxmox's line regexes: comments, headers, properties |
//! | `schema.rs` | the vzdump / realm-sync key schema and value checks |
//! | `property_string.rs` | `prune-backups`, `fleecing`, `performance` |
//! | `comment.rs` | percent-encoding of comments |
//! | `reading.rs` | Proxmox's reading: warnings, errors, sections, order |
//! | `rewrite.rs` | Proxmox's writer |
//! | `edit.rs` | byte-preserving edits |
//! | `vzdump.rs` | the typed view of backup jobs |
//!
//! ```
//! use scheduler_core::jobs_cfg::JobsCfg;
//!
//! let text = "# nightly\nvzdump: backup-a\n\tschedule 02:00\n\tstorage local\n";
//! let mut cfg = JobsCfg::parse(text);
//! assert_eq!(cfg.render(), text);
//!
//! cfg.set_schedule("backup-a", "02:35 UTC")?;
//! assert_eq!(cfg.render(), text.replace("02:00", "02:35 UTC"));
//! assert_eq!(cfg.vzdump_jobs()[0].schedule, "02:35 UTC");
//! # Ok::<(), scheduler_core::jobs_cfg::EditError>(())
//! ```

mod comment;
mod digest;
mod document;
mod edit;
mod property_string;
mod reading;
mod rewrite;
mod schema;
mod syntax;
mod value;
mod vzdump;

pub use digest::{Digest, DigestParseError};
pub use edit::EditError;
pub use reading::{Job, PropertyError, Reading, Section, StoredLine, Warning};
pub use rewrite::RewriteError;
pub use value::Value;
pub use vzdump::VzdumpJob;

use document::Document;

/// A jobs.cfg, kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobsCfg {
    document: Document,
}

impl JobsCfg {
    /// Keeps `text` as it is. Never fails: every line is kept, whatever it holds;
    /// what Proxmox would make of it is [`proxmox_reading`](Self::proxmox_reading).
    pub fn parse(text: &str) -> JobsCfg {
        JobsCfg {
            document: Document::new(text.to_owned()),
        }
    }

    /// The file's text: the parsed bytes, with the edits applied.
    pub fn render(&self) -> String {
        self.document.text().to_owned()
    }

    /// The file's text, borrowed.
    pub fn as_str(&self) -> &str {
        self.document.text()
    }

    /// SHA-1 of the current bytes, as Proxmox computes a config digest.
    pub fn digest(&self) -> Digest {
        Digest::of(self.document.text().as_bytes())
    }

    /// How Proxmox reads the file; `file_name` appears in the warnings as
    /// Proxmox prints it (`file <file_name> line <n> ...`).
    pub fn proxmox_reading(&self, file_name: &str) -> Reading {
        reading::read(&self.document, file_name)
    }

    /// The exact text a Proxmox write (GUI/API/pvesh) produces after reading
    /// this file, or the error that write fails with.
    ///
    /// # Errors
    ///
    /// [`RewriteError::SectionLeftBehind`] when a section was skipped but its
    /// id left behind (e.g. a job without a valid `schedule`).
    pub fn proxmox_rewrite(&self) -> Result<String, RewriteError> {
        rewrite::rewrite(&self.proxmox_reading("jobs.cfg"))
    }

    /// The backup jobs pvescheduler sees, in Proxmox's order.
    pub fn vzdump_jobs(&self) -> Vec<VzdumpJob> {
        vzdump::vzdump_jobs(&self.proxmox_reading("jobs.cfg"))
    }

    /// Sets the schedule of job `job_id`, changing only the bytes of the
    /// schedule value Proxmox uses. The event is trimmed as Proxmox trims it.
    ///
    /// # Errors
    ///
    /// Refuses (and changes nothing) a value with a control character, an
    /// event Proxmox rejects, a job Proxmox does not see, and a file Proxmox
    /// could not write back ([`EditError`]).
    pub fn set_schedule(&mut self, job_id: &str, event: &str) -> Result<(), EditError> {
        edit::set_schedule(&mut self.document, job_id, event)
    }

    /// Enables or disables job `job_id`: changes the `enabled` value in place,
    /// or adds an `enabled 0` line when the job relied on the default.
    ///
    /// # Errors
    ///
    /// Refuses (and changes nothing) a job Proxmox does not see and a file
    /// Proxmox could not write back ([`EditError`]).
    pub fn set_enabled(&mut self, job_id: &str, enabled: bool) -> Result<(), EditError> {
        edit::set_enabled(&mut self.document, job_id, enabled)
    }
}
