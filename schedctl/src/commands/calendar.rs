//! `schedctl calendar`: parse a Proxmox calendar event and list its next runs.

use clap::Args;

use crate::exit::CommandResult;
use crate::output::Format;

/// Parse a Proxmox calendar event and show when it fires next.
#[derive(Debug, Args)]
pub struct CalendarArgs {
    /// The calendar event, as in jobs.cfg (`mon..fri 02:00`, `*/15`, `daily`, `sat 03:30 UTC`).
    pub event: String,
    /// Start after this instant: RFC 3339 (`2024-11-02T10:00:00Z`) or `@EPOCH`. Default: now.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// How many next runs to list.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub iterations: u32,
    /// IANA time zone the event is evaluated in (events ending in `UTC` ignore it). Default: the system zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Runs `schedctl calendar`.
pub fn run(_args: &CalendarArgs) -> CommandResult {
    Err(crate::exit::bad_input(anyhow::anyhow!(
        "calendar: not built yet"
    )))
}
