//! Proxmox calendar events: parse, print, and compute the next runs in a time zone.
//!
//! Proxmox VE and Proxmox Backup Server schedule jobs with "calendar events"
//! (`mon..fri 02:00`, `*/15`, `daily`, `sat *-1..7 15:00 UTC`), a dialect of
//! systemd's calendar events implemented by proxmox-time. This module reads
//! them exactly as proxmox-time does (the same strings are accepted, with the
//! same meaning and the same quirks: `25:00` is minute 25 of every hour) and
//! computes the next events with proxmox-time's search, including its limit of
//! about 1000 search steps and, in a time zone, Proxmox's behaviour around
//! day-light-saving gaps and folds.
//!
//! * `parse.rs`: the hand-written grammar, mirroring proxmox-time's
//!   parser step for step so that the same inputs fail at the same place.
//! * `display.rs`: the canonical form, `mon..fri *-*-* 02:00:00`.
//! * `next.rs`: next events and matching, on wall-clock time.
//! * `error.rs`: [`CalendarError`], with a caret under the offending
//!   part, a hint, and the message Proxmox itself would give.
//!
//! ```
//! use scheduler_core::calendar::CalendarEvent;
//!
//! let event: CalendarEvent = "mon..fri 02:00".parse()?;
//! assert_eq!(event.to_string(), "mon..fri *-*-* 02:00:00");
//! // 1970-01-01 was a Thursday: the first run is on Thursday at 02:00 UTC.
//! assert_eq!(event.next_after(0, chrono_tz::UTC), Some(7200));
//! # Ok::<(), scheduler_core::calendar::CalendarError>(())
//! ```

mod display;
mod error;
mod next;
mod parse;

pub use error::CalendarError;

/// A parsed Proxmox calendar event.
///
/// Equality is structural: two events are equal when they were written with
/// the same lists (`1,2` and `1..2` differ even though they match the same
/// minutes). [`Display`](std::fmt::Display) prints the canonical form, which
/// parses back to an equal event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarEvent {
    /// Evaluated in UTC (the ` UTC` suffix) rather than in the given zone.
    utc: bool,
    /// Weekdays as a bit set, bit 0 = Monday .. bit 6 = Sunday; 0 = any day.
    weekdays: u8,
    /// Allowed years; empty = any.
    year: Vec<Value>,
    /// Allowed months (1-12); empty = any.
    month: Vec<Value>,
    /// Allowed days of the month (1-31); empty = any.
    day: Vec<Value>,
    /// Allowed hours (0-23); empty = any.
    hour: Vec<Value>,
    /// Allowed minutes (0-59); empty = any.
    minute: Vec<Value>,
    /// Allowed seconds (0-59); empty = any.
    second: Vec<Value>,
}

/// One item of a field's comma-separated list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    /// `V`
    Single(u32),
    /// `V..W`
    Range(u32, u32),
    /// `V/R` (no end) or `V..W/R`; a repetition of 0 matches only `V`.
    Repeated(u32, u32, Option<u32>),
}

impl CalendarEvent {
    /// Parses exactly as proxmox-time does (no trimming: PVE trims before; callers trim).
    ///
    /// # Errors
    ///
    /// A [`CalendarError`] naming the offending part of `text`.
    pub fn parse(text: &str) -> Result<CalendarEvent, CalendarError> {
        parse::parse_event(text)
    }

    /// True when the event ends in `UTC` (evaluated in UTC whatever the zone).
    pub fn is_utc(&self) -> bool {
        self.utc
    }

    /// First matching instant strictly after `after` (Unix seconds), evaluated in `tz`
    /// (ignored when is_utc), with Proxmox's DST rules; None when no further event exists.
    ///
    /// "No further event" includes proxmox-time's give-up point: a search that
    /// needs more than 1000 steps (for example `*-02-30`) finds nothing.
    pub fn next_after(&self, after: i64, tz: chrono_tz::Tz) -> Option<i64> {
        next::next_after(self, after, tz)
    }

    /// Whether the instant matches the event in `tz` (for tests and the simulator).
    pub fn matches(&self, instant: i64, tz: chrono_tz::Tz) -> bool {
        next::matches(self, instant, tz)
    }
}

impl std::str::FromStr for CalendarEvent {
    type Err = CalendarError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CalendarEvent::parse(text)
    }
}
