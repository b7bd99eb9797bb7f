//! Everything `schedctl` prints on stdout goes through here: text for people,
//! `--format json` for scripts.

use std::io::Write;

use serde::Serialize;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Readable text and tables.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Writes `value` as pretty JSON and a final newline on stdout.
pub fn print_json<T: Serialize>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes text on stdout as it is (the caller ends lines).
pub fn print_text(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
