//! The crate's error type.
//!
//! Each module reports its own error type (a caller that parses a calendar
//! event matches on calendar errors only); [`Error`] gathers them for callers
//! that mix modules. Every message says what was wrong, where (file, line,
//! position or field path) and, where there is one, what to do about it.

/// Any error of `scheduler-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {}
