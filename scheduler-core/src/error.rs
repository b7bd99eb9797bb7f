//! The crate's error type.
//!
//! Each module reports its own error type (a caller that parses a calendar
//! event matches on calendar errors only); [`Error`] gathers them for callers
//! that mix modules. Every message says what was wrong, where (file, line,
//! position or field path) and, where there is one, what to do about it.

use crate::calendar::CalendarError;
use crate::jobs_cfg::{DigestParseError, EditError, RewriteError};
use crate::load::LoadError;

/// Any error of `scheduler-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A calendar event did not parse.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// A Proxmox write of jobs.cfg would fail.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// An edit of jobs.cfg was refused.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// A digest is not 40 hex digits.
    #[error(transparent)]
    Digest(#[from] DigestParseError),
    /// A load profile could not be made or read back.
    #[error(transparent)]
    Load(#[from] LoadError),
}
