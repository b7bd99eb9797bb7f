//! Why a calendar event did not parse: for people, and as Proxmox says it.
//!
//! [`CalendarError`]'s `Display` names the problem and its position, repeats
//! the event with a caret line under the offending part and adds a hint on
//! how to write it. [`CalendarError::proxmox_message`] gives the text
//! proxmox-time itself reports for the same input, which the jobs.cfg codec
//! needs to reproduce Proxmox's warnings.

use std::fmt;

use super::parse::KEYWORDS;

/// Why proxmox-time's parser stopped (the three ways its top level can fail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// Letters that name no weekday (and the text is no keyword).
    UnknownWeekday { pos: usize, end: usize },
    /// A weekday was expected but no letters came (unreachable from the top
    /// level, which only reads weekdays after a letter; kept for totality).
    NotAWeekday { pos: usize },
    /// Neither weekdays, nor a date, nor a time.
    NoSpec { pos: usize },
    /// The event was read but text is left over.
    Trailing { pos: usize },
}

/// Why an alternative failed on the way (proxmox-time forgets these; we keep
/// them to explain the final failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Problem {
    pos: usize,
    end: usize,
    what: String,
    hint: Option<String>,
    /// An hour of 24 or more: the parser then reads `H:M` as minute:second.
    hour_too_large: bool,
}

impl Problem {
    fn new(pos: usize, end: usize, what: String, hint: Option<String>) -> Self {
        Problem {
            pos,
            end,
            what,
            hint,
            hour_too_large: false,
        }
    }

    pub(super) fn too_large(
        pos: usize,
        end: usize,
        field: &str,
        digits: &str,
        min: u32,
        max: u32,
    ) -> Self {
        let what = format!("{field} {digits} is out of range ({min}..{max})");
        let hint = format!("write a {field} from {min} to {max}");
        Problem::new(pos, end, what, Some(hint))
    }

    pub(super) fn hour_too_large(pos: usize, end: usize, digits: &str) -> Self {
        let what = format!("hour {digits} is out of range (0..23)");
        let hint = if digits.trim_start_matches('0') == "24" {
            "24:00 means minute 24 of every hour; for midnight write 00:00".to_string()
        } else {
            format!(
                "an hour of {digits} makes '{digits}:MM' mean minute {digits} of every hour; \
                 write an hour from 0 to 23"
            )
        };
        Problem {
            hour_too_large: true,
            ..Problem::new(pos, end, what, Some(hint))
        }
    }

    pub(super) fn backwards_range(pos: usize, end: usize, field: &str, from: u32, to: u32) -> Self {
        let what = format!("{field} range {from}..{to} starts after its end");
        let hint = format!("write the smaller value first: {to}..{from}");
        Problem::new(pos, end, what, Some(hint))
    }

    pub(super) fn zero_repetition(slash: usize, end: usize, written: &str) -> Self {
        let what = format!("'{written}' repeats every 0");
        let hint = "write '*' for every value or '*/N' with N of 1 or more".to_string();
        Problem::new(slash, end, what, Some(hint))
    }

    pub(super) fn tilde(pos: usize) -> Self {
        let what = "'~' (days counted from the end of the month) is not supported".to_string();
        let hint = "list the days instead, e.g. '*-*-28..31'".to_string();
        Problem::new(pos, pos + 1, what, Some(hint))
    }

    pub(super) fn missing_repetition(slash: usize) -> Self {
        let what = "'/' is not followed by a repetition".to_string();
        let hint = "write a number after '/', e.g. '*/15' or '0/15'".to_string();
        Problem::new(slash, slash + 1, what, Some(hint))
    }
}

/// An invalid calendar event: what is wrong, where, how to fix it, and what Proxmox says.
///
/// `Display` reads
/// `invalid calendar event '<text>': <what> at position N`, followed by the
/// event, a caret line under the offending part and, where there is one, a
/// hint. N is the byte offset of the offending part ([`position`](Self::position)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarError {
    /// Boxed: a `Result` with this error stays small on the happy path.
    details: Box<Details>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Details {
    event: String,
    position: usize,
    end: usize,
    what: String,
    hint: Option<String>,
    /// The remaining input proxmox-time reports, and its nom error kind.
    proxmox_at: String,
    proxmox_kind: &'static str,
}

impl CalendarError {
    /// Explains `failure` of `input` (whose text without the `UTC` suffix is `body`).
    pub(super) fn new(input: &str, body: &str, failure: Failure, problems: &[Problem]) -> Self {
        let (pos, proxmox_kind, proxmox_end) = match failure {
            Failure::UnknownWeekday { pos, end } => (pos, "Context(\"weekday\")", end),
            Failure::NotAWeekday { pos } => (pos, "Nom(Alpha)", body.len()),
            Failure::NoSpec { pos } => (pos, "Context(\"date or time specification\")", body.len()),
            Failure::Trailing { pos } => (pos, "Nom(Eof)", body.len()),
        };
        let explained = explain(input, body, failure, problems);
        let details = Details {
            event: input.to_string(),
            position: explained.pos,
            end: explained.end.max(explained.pos),
            what: explained.what,
            hint: explained.hint,
            proxmox_at: body[pos..proxmox_end].to_string(),
            proxmox_kind,
        };
        CalendarError {
            details: Box::new(details),
        }
    }

    /// Byte offset of the offending part in the input.
    pub fn position(&self) -> usize {
        self.details.position
    }

    /// The event as given.
    pub fn event(&self) -> &str {
        &self.details.event
    }

    /// How to write it instead, when there is advice to give.
    pub fn hint(&self) -> Option<&str> {
        self.details.hint.as_deref()
    }

    /// The text Proxmox itself reports, e.g. "unable to parse calendar event at '/00' - Nom(Eof)"
    /// or "unable to parse calendar event at '2:60' - Context(\"date or time specification\")".
    /// The jobs.cfg codec reproduces Proxmox's warnings with it:
    /// "invalid format - invalid calendar event '<text>' - " + proxmox_message().
    pub fn proxmox_message(&self) -> String {
        format!(
            "unable to parse calendar event at '{}' - {}",
            self.details.proxmox_at, self.details.proxmox_kind
        )
    }
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid calendar event '{}': {} at position {}",
            self.details.event, self.details.what, self.details.position
        )?;
        let shown = one_line(&self.details.event);
        let before = shown.get(..self.details.position).unwrap_or(&shown);
        let marked = shown
            .get(self.details.position..self.details.end.min(shown.len()))
            .unwrap_or("");
        let indent: String = before
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(marked.chars().count().max(1));
        write!(f, "\n    {shown}\n    {indent}{carets}")?;
        if let Some(hint) = &self.details.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CalendarError {}

/// The event on one line: line breaks become spaces (byte offsets stay valid).
fn one_line(event: &str) -> String {
    event.replace(['\n', '\r'], " ")
}

/// The explanation chosen for people: position, extent, what, hint.
struct Explained {
    pos: usize,
    end: usize,
    what: String,
    hint: Option<String>,
}

impl From<&Problem> for Explained {
    fn from(problem: &Problem) -> Self {
        Explained {
            pos: problem.pos,
            end: problem.end,
            what: problem.what.clone(),
            hint: problem.hint.clone(),
        }
    }
}

const EXAMPLES: &str = "e.g. 'mon..fri 02:00', '*-*-01 03:30', '*/15' or 'daily'";

fn explain(input: &str, body: &str, failure: Failure, problems: &[Problem]) -> Explained {
    if let Some(hint) = lower_case_utc(input) {
        let pos = input.len() - 3;
        let what = "'utc' is not the UTC suffix".to_string();
        return Explained {
            pos,
            end: input.len(),
            what,
            hint: Some(hint),
        };
    }
    match failure {
        Failure::UnknownWeekday { pos, end } => unknown_word(body, pos, end),
        Failure::NotAWeekday { pos } => Explained {
            pos,
            end: pos + 1,
            what: "expected a weekday".to_string(),
            hint: Some("weekdays are mon, tue, wed, thu, fri, sat, sun".to_string()),
        },
        Failure::NoSpec { pos } => match deepest_from(problems, pos) {
            Some(problem) => problem.into(),
            None => no_spec(body, pos),
        },
        Failure::Trailing { pos } => match deepest_from(problems, pos) {
            Some(problem) => problem.into(),
            None => trailing(body, pos, problems),
        },
    }
}

/// The failed alternative that got furthest, at or after `pos` (the later one on ties).
fn deepest_from(problems: &[Problem], pos: usize) -> Option<&Problem> {
    problems
        .iter()
        .filter(|problem| problem.pos >= pos)
        .max_by_key(|problem| problem.pos)
}

/// A hint when the event ends in `utc` in the wrong case.
fn lower_case_utc(input: &str) -> Option<String> {
    let tail = input.get(input.len().checked_sub(3)?..)?;
    let before = &input[..input.len() - 3];
    let separated = before.is_empty() || before.ends_with(' ') || tail == "utc";
    (tail != "UTC" && tail.eq_ignore_ascii_case("utc") && separated).then(|| {
        let fixed = format!("{} UTC", before.trim_end_matches(' '));
        format!(
            "the suffix is case-sensitive: write '{}'",
            fixed.trim_start()
        )
    })
}

fn unknown_word(body: &str, pos: usize, end: usize) -> Explained {
    let word = &body[pos..end];
    let lower = word.to_ascii_lowercase();
    let hint = if KEYWORDS.contains(&lower.as_str()) && word != lower {
        format!("keywords are lower case: write '{lower}'")
    } else if KEYWORDS.iter().any(|k| body.starts_with(k)) {
        "a keyword such as 'daily' stands alone (only ' UTC' may follow it); \
         for another time write the time, e.g. '02:30'"
            .to_string()
    } else {
        "weekdays are mon, tue, wed, thu, fri, sat, sun (or monday .. sunday); keywords are \
         minutely, hourly, daily, weekly, monthly, yearly, annually, quarterly, semiannually"
            .to_string()
    };
    Explained {
        pos,
        end,
        what: format!("'{word}' is neither a weekday nor a keyword"),
        hint: Some(hint),
    }
}

fn no_spec(body: &str, pos: usize) -> Explained {
    let rest = &body[pos..];
    let (what, hint) = if rest.is_empty() {
        (
            "the event is empty".to_string(),
            format!("write a weekday, a date or a time, {EXAMPLES}"),
        )
    } else if rest.starts_with([' ', '\t']) {
        (
            "the event starts with a space".to_string(),
            "remove leading spaces (Proxmox trims the value before parsing)".to_string(),
        )
    } else if rest.starts_with('@') {
        (
            "'@EPOCH' is not a calendar event".to_string(),
            format!("Proxmox does not accept Unix times; {EXAMPLES}"),
        )
    } else {
        (
            "expected a weekday, a date or a time".to_string(),
            format!(
                "write [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]], {EXAMPLES}"
            ),
        )
    };
    Explained {
        pos,
        end: pos + first_word_len(rest),
        what,
        hint: Some(hint),
    }
}

fn trailing(body: &str, pos: usize, problems: &[Problem]) -> Explained {
    let rest = &body[pos..];
    let end = body.len();
    let word = rest.trim_start_matches([' ', '\t']);
    if rest.starts_with([' ', '\t']) && looks_like_zone(word) {
        let hint = "time zones other than the UTC suffix are not supported; write the time in UTC \
                    and add ' UTC'";
        return Explained {
            pos: end - word.len(),
            end,
            what: format!("time zone '{word}' is not supported"),
            hint: Some(hint.to_string()),
        };
    }
    let (what, hint) = if let Some(hour) = problems.iter().find(|problem| problem.hour_too_large) {
        (
            format!("unexpected '{rest}'"),
            hour.hint.clone().unwrap_or_default(),
        )
    } else if word.is_empty() {
        (
            "the event ends in a space".to_string(),
            "remove trailing spaces (Proxmox trims the value before parsing)".to_string(),
        )
    } else if rest.starts_with([' ', '\t']) {
        (
            format!("unexpected '{word}'"),
            "weekdays, date and time come in this order, each at most once: \
             [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]]"
                .to_string(),
        )
    } else if rest.starts_with(", ") || rest.starts_with(",\t") {
        (
            "space inside a list".to_string(),
            "lists take no spaces: write 'mon,tue' or '1,15'".to_string(),
        )
    } else if rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        (
            "fractional seconds are not supported".to_string(),
            "write whole seconds".to_string(),
        )
    } else if rest.starts_with('~') {
        (
            "'~' (days counted from the end of the month) is not supported".to_string(),
            "list the days instead, e.g. '*-*-28..31'".to_string(),
        )
    } else if rest.starts_with('T') {
        (
            "'T' between date and time is not supported".to_string(),
            "separate date and time with a space, e.g. '2024-11-02 10:00'".to_string(),
        )
    } else if rest.starts_with(':') {
        (
            format!("unexpected '{rest}'"),
            "a time has at most three parts: [HOURS:]MINUTES[:SECONDS], hours 0..23, \
             minutes and seconds 0..59"
                .to_string(),
        )
    } else if rest.starts_with('-') {
        (
            format!("unexpected '{rest}'"),
            "a date is [YEARS-]MONTHS-DAYS, months 1..12, days 1..31".to_string(),
        )
    } else {
        (
            format!("unexpected '{rest}'"),
            format!(
                "write [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]], {EXAMPLES}"
            ),
        )
    };
    // Point at the unexpected text itself, not at the spaces before it.
    let pos = if word.is_empty() {
        pos
    } else {
        end - word.len()
    };
    Explained {
        pos,
        end,
        what,
        hint: Some(hint),
    }
}

/// `Europe/Vienna`, `CET`, `EST5EDT`, `GMT+2`: what people append as a zone.
fn looks_like_zone(word: &str) -> bool {
    let abbreviation = word.len() >= 2
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-');
    word.contains('/') || abbreviation || word.parse::<chrono_tz::Tz>().is_ok()
}

fn first_word_len(text: &str) -> usize {
    text.find([' ', '\t'])
        .unwrap_or(text.len())
        .max(1)
        .min(text.len())
}

#[cfg(test)]
mod tests {
    use crate::calendar::CalendarEvent;

    fn error(text: &str) -> super::CalendarError {
        match CalendarEvent::parse(text) {
            Ok(event) => panic!("{text:?} should fail, got {event:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn display_shows_the_event_with_a_caret_under_the_problem() {
        let err = error("mon 2:60");
        assert_eq!(err.position(), 6);
        assert_eq!(
            err.to_string(),
            "invalid calendar event 'mon 2:60': minute 60 is out of range (0..59) at position 6\n\
             \x20   mon 2:60\n\
             \x20         ^^\n\
             \x20 hint: write a minute from 0 to 59"
        );
    }

    #[test]
    fn midnight_written_as_24_gets_a_hint() {
        let err = error("24:00:00");
        assert!(
            err.to_string().contains("for midnight write 00:00"),
            "{err}"
        );
    }

    #[test]
    fn time_zone_names_get_a_hint() {
        let err = error("02:00 Europe/Vienna");
        assert_eq!(err.position(), 6);
        assert!(err.to_string().contains("add ' UTC'"), "{err}");
    }

    #[test]
    fn zero_repetition_points_at_the_slash() {
        let err = error("*/0");
        assert_eq!(err.position(), 1);
        assert!(
            err.to_string().contains("'*/N' with N of 1 or more"),
            "{err}"
        );
    }

    #[test]
    fn lower_case_utc_gets_a_hint() {
        let err = error("daily utc");
        assert_eq!(err.position(), 6);
        assert!(err.to_string().contains("write 'daily UTC'"), "{err}");
    }

    #[test]
    fn backwards_ranges_say_which_way_round() {
        let err = error("0..80");
        assert!(
            err.to_string().contains("minute 80 is out of range"),
            "{err}"
        );
        let err = error("10..5");
        assert!(err.to_string().contains("5..10"), "{err}");
    }
}
