//! The grammar of calendar events, written by hand after proxmox-time's nom parser.
//!
//! proxmox-time tries alternatives and silently backtracks (`opt`, comma lists
//! that stop before a bad item), so the set of accepted strings and the place
//! where a bad one stops depend on that order. Every function here mirrors one
//! of its combinators and keeps the same order, which is what makes `25:00`
//! mean minute 25 and `*/0` fail at `/0`. Cursor positions are byte offsets
//! into the text; the `UTC` suffix is cut off first, so they are offsets into
//! the caller's string too.
//!
//! Alternatives that fail are recorded as [`Problem`]s: when the whole parse
//! fails, the deepest of them usually says why better than the place where
//! the parser finally gave up (`2:60` stops at `2`, the reason is minute 60).

use super::error::{CalendarError, Failure, Problem};
use super::{CalendarEvent, Value};

/// A field of the date or time, with the bounds proxmox-time checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Field {
    /// Values must be below this (there is no lower bound check).
    fn limit(self) -> u32 {
        match self {
            Field::Year => 2200,
            Field::Month => 13,
            Field::Day => 32,
            Field::Hour => 24,
            Field::Minute | Field::Second => 60,
        }
    }

    /// The first value of `*/R`.
    fn first(self) -> u32 {
        match self {
            Field::Month | Field::Day => 1,
            _ => 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Year => "year",
            Field::Month => "month",
            Field::Day => "day",
            Field::Hour => "hour",
            Field::Minute => "minute",
            Field::Second => "second",
        }
    }
}

/// Weekday bits, Monday = bit 0 .. Sunday = bit 6.
const MONDAY: u8 = 1;
const SUNDAY: u8 = 1 << 6;

/// A failed alternative: the caller tries the next one (nom's recoverable error).
struct Backtrack;

/// The cursor after a successful step, and what the step read.
type Step<T> = Result<(usize, T), Backtrack>;

/// Parses `input` as proxmox-time does.
pub(super) fn parse_event(input: &str) -> Result<CalendarEvent, CalendarError> {
    let (body, utc) = split_utc_suffix(input);
    let mut parser = Parser {
        text: body,
        problems: Vec::new(),
    };
    match parser.event(utc) {
        Ok(event) => Ok(event),
        Err(failure) => Err(CalendarError::new(input, body, failure, &parser.problems)),
    }
}

/// `UTC` must end the text, case-sensitive; spaces before it are dropped.
fn split_utc_suffix(input: &str) -> (&str, bool) {
    match input.strip_suffix("UTC") {
        Some(body) => (body.trim_end_matches(' '), true),
        None => (input, false),
    }
}

/// The keywords that stand for a whole event (each matched in [`keyword`]).
pub(super) const KEYWORDS: [&str; 10] = [
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "annually",
    "quarterly",
    "semiannually",
    "semi-annually",
];

/// The event a keyword stands for, when the whole body is one.
fn keyword(body: &str, utc: bool) -> Option<CalendarEvent> {
    let zero = || vec![Value::Single(0)];
    let first = || vec![Value::Single(1)];
    let mut event = CalendarEvent::any(utc);
    event.second = zero();
    match body {
        "minutely" => {}
        "hourly" => event.minute = zero(),
        "daily" => (event.hour, event.minute) = (zero(), zero()),
        "weekly" => {
            (event.hour, event.minute) = (zero(), zero());
            event.weekdays = MONDAY;
        }
        "monthly" => {
            (event.hour, event.minute, event.day) = (zero(), zero(), first());
        }
        "yearly" | "annually" => {
            (event.hour, event.minute, event.day, event.month) = (zero(), zero(), first(), first());
        }
        "quarterly" => {
            (event.hour, event.minute, event.day) = (zero(), zero(), first());
            event.month = [1, 4, 7, 10].map(Value::Single).to_vec();
        }
        "semiannually" | "semi-annually" => {
            (event.hour, event.minute, event.day) = (zero(), zero(), first());
            event.month = [1, 7].map(Value::Single).to_vec();
        }
        _ => return None,
    }
    Some(event)
}

impl CalendarEvent {
    /// Every second of every day: the starting point the parser fills in.
    fn any(utc: bool) -> Self {
        CalendarEvent {
            utc,
            weekdays: 0,
            year: Vec::new(),
            month: Vec::new(),
            day: Vec::new(),
            hour: Vec::new(),
            minute: Vec::new(),
            second: Vec::new(),
        }
    }
}

/// The parser's state: the text (without the `UTC` suffix) and the reasons
/// alternatives failed.
struct Parser<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Parser<'_> {
    /// `body = keyword | [weekdays] [date] [time]`, the whole text consumed.
    fn event(&mut self, utc: bool) -> Result<CalendarEvent, Failure> {
        let starts_with_letter = self.text.starts_with(|c: char| c.is_ascii_alphabetic());
        if starts_with_letter {
            if let Some(event) = keyword(self.text, utc) {
                return Ok(event);
            }
        }
        let mut event = CalendarEvent::any(utc);
        let mut pos = 0;
        let mut has_spec = false;

        if starts_with_letter {
            let (after, weekdays) = self.weekday_list(pos)?;
            event.weekdays = weekdays;
            pos = self.spaces(after);
            has_spec = true;
        }
        if let Ok((after, [year, month, day])) = self.date_spec(pos) {
            (event.year, event.month, event.day) = (year, month, day);
            pos = self.spaces(after);
            has_spec = true;
        }
        match self.time_spec(pos) {
            Ok((after, [hour, minute, second])) => {
                (event.hour, event.minute, event.second) = (hour, minute, second);
                pos = after;
                has_spec = true;
            }
            Err(Backtrack) => {
                let zero = vec![Value::Single(0)];
                (event.hour, event.minute, event.second) = (zero.clone(), zero.clone(), zero);
            }
        }

        if !has_spec {
            return Err(Failure::NoSpec { pos });
        }
        if pos < self.text.len() {
            return Err(Failure::Trailing { pos });
        }
        Ok(event)
    }

    fn at(&self, pos: usize, tag: &str) -> bool {
        self.text.as_bytes()[pos..].starts_with(tag.as_bytes())
    }

    /// Zero or more spaces or tabs (nom's `space0`).
    fn spaces(&self, pos: usize) -> usize {
        let skipped = self.text.as_bytes()[pos..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        pos + skipped
    }

    /// `wrange *("," wrange)`; a bad item after a comma ends the list before the comma.
    fn weekday_list(&mut self, pos: usize) -> Result<(usize, u8), Failure> {
        let (mut pos, mut days) = self.weekday_range(pos)?;
        while self.at(pos, ",") {
            match self.weekday_range(pos + 1) {
                Ok((after, more)) => {
                    days |= more;
                    pos = after;
                }
                Err(_) => break,
            }
        }
        Ok((pos, days))
    }

    /// `day [".." day]`; `fri..mon` wraps over the weekend.
    fn weekday_range(&mut self, pos: usize) -> Result<(usize, u8), Failure> {
        let (after, start) = self.weekday(pos)?;
        if self.at(after, "..") {
            if let Ok((end_pos, end)) = self.weekday(after + 2) {
                let days = if start > end {
                    bits_between(start, SUNDAY) | bits_between(MONDAY, end)
                } else {
                    bits_between(start, end)
                };
                return Ok((end_pos, days));
            }
        }
        Ok((after, start))
    }

    /// A run of ASCII letters naming a weekday, any case.
    fn weekday(&self, pos: usize) -> Result<(usize, u8), Failure> {
        let len = self.text.as_bytes()[pos..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if len == 0 {
            return Err(Failure::NotAWeekday { pos });
        }
        let end = pos + len;
        let day = match self.text[pos..end].to_ascii_lowercase().as_str() {
            "monday" | "mon" => 0,
            "tuesday" | "tue" => 1,
            "wednesday" | "wed" => 2,
            "thursday" | "thu" => 3,
            "friday" | "fri" => 4,
            "saturday" | "sat" => 5,
            "sunday" | "sun" => 6,
            _ => return Err(Failure::UnknownWeekday { pos, end }),
        };
        Ok((end, 1 << day))
    }

    /// `[years "-"] months "-" days`: the three-part form first, then the two-part one.
    fn date_spec(&mut self, pos: usize) -> Step<[Vec<Value>; 3]> {
        if let Ok(found) = self.year_month_day(pos) {
            return Ok(found);
        }
        let (after, [month, day]) = self.month_day(pos)?;
        Ok((after, [Vec::new(), month, day]))
    }

    /// `years "-" months "-" days`.
    fn year_month_day(&mut self, pos: usize) -> Step<[Vec<Value>; 3]> {
        let (after, year) = self.list(pos, Field::Year)?;
        let (after, [month, day]) = self.dash_then(after, |p, at| p.month_day(at))?;
        Ok((after, [year, month, day]))
    }

    /// `months "-" days`.
    fn month_day(&mut self, pos: usize) -> Step<[Vec<Value>; 2]> {
        let (after, month) = self.list(pos, Field::Month)?;
        let (after, day) = self.dash_then(after, |p, at| p.list(at, Field::Day))?;
        Ok((after, [month, day]))
    }

    /// `"-"` followed by what `next` reads.
    fn dash_then<T>(
        &mut self,
        pos: usize,
        next: impl FnOnce(&mut Self, usize) -> Step<T>,
    ) -> Step<T> {
        if self.at(pos, "-") {
            return next(self, pos + 1);
        }
        if self.at(pos, "~") {
            self.problems.push(Problem::tilde(pos));
        }
        Err(Backtrack)
    }

    /// `[hours ":"] minutes [":" seconds]`; seconds default to 0, hours to any.
    fn time_spec(&mut self, pos: usize) -> Step<[Vec<Value>; 3]> {
        // An hour list not followed by ':' (or one that fails, like `25`) is
        // no hour at all: the same text is read again as minutes.
        let (pos, hour) = match self.list(pos, Field::Hour) {
            Ok((after, hour)) if self.at(after, ":") => (after + 1, hour),
            _ => (pos, Vec::new()),
        };
        let (pos, minute) = self.list(pos, Field::Minute)?;
        let (pos, second) = match self.at(pos, ":") {
            true => match self.list(pos + 1, Field::Second) {
                Ok((after, second)) => (after, second),
                Err(Backtrack) => (pos, vec![Value::Single(0)]),
            },
            false => (pos, vec![Value::Single(0)]),
        };
        Ok((pos, [hour, minute, second]))
    }

    /// `"*" | "*/" N | item *("," item)`; `*` is the empty list (any value).
    fn list(&mut self, pos: usize, field: Field) -> Step<Vec<Value>> {
        if self.at(pos, "*") {
            let rest = pos + 1;
            if self.at(rest, "/") {
                let (after, repeat) = self.repetition(rest, field)?;
                if repeat > 0 {
                    return Ok((after, vec![Value::Repeated(field.first(), repeat, None)]));
                }
                let written = &self.text[pos..after];
                self.problems
                    .push(Problem::zero_repetition(rest, after, written));
            }
            // `*/0` leaves `/0` unread, and the text after `*` must fit what follows.
            return Ok((rest, Vec::new()));
        }
        let (mut pos, first) = self.item(pos, field)?;
        let mut items = vec![first];
        while self.at(pos, ",") {
            match self.item(pos + 1, field) {
                Ok((after, item)) => {
                    items.push(item);
                    pos = after;
                }
                Err(Backtrack) => break,
            }
        }
        Ok((pos, items))
    }

    /// `V | V ".." W | V "/" R | V ".." W "/" R`.
    fn item(&mut self, pos: usize, field: Field) -> Step<Value> {
        let (after, start) = self.number(pos, field)?;
        if self.at(after, "..") {
            if let Ok((after_end, end)) = self.number(after + 2, field) {
                if start > end {
                    self.problems.push(Problem::backwards_range(
                        pos,
                        after_end,
                        field.name(),
                        start,
                        end,
                    ));
                    return Err(Backtrack);
                }
                if self.at(after_end, "/") {
                    let (after, repeat) = self.repetition(after_end, field)?;
                    return Ok((after, Value::Repeated(start, repeat, Some(end))));
                }
                return Ok((after_end, Value::Range(start, end)));
            }
        }
        if self.at(after, "/") {
            let (after, repeat) = self.repetition(after, field)?;
            return Ok((after, Value::Repeated(start, repeat, None)));
        }
        Ok((after, Value::Single(start)))
    }

    /// The number after the `/` at `slash`.
    fn repetition(&mut self, slash: usize, field: Field) -> Step<u32> {
        let found = self.number(slash + 1, field);
        let digit_follows = self
            .text
            .as_bytes()
            .get(slash + 1)
            .is_some_and(u8::is_ascii_digit);
        if found.is_err() && !digit_follows {
            self.problems.push(Problem::missing_repetition(slash));
        }
        found
    }

    /// Decimal digits below the field's limit.
    fn number(&mut self, pos: usize, field: Field) -> Step<u32> {
        let len = self.text.as_bytes()[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if len == 0 {
            return Err(Backtrack);
        }
        let end = pos + len;
        let digits = &self.text[pos..end];
        match digits.parse::<u32>() {
            Ok(value) if value < field.limit() => Ok((end, value)),
            _ => {
                let problem = match field {
                    Field::Hour => Problem::hour_too_large(pos, end, digits),
                    _ => Problem::too_large(
                        pos,
                        end,
                        field.name(),
                        digits,
                        field.first(),
                        field.limit() - 1,
                    ),
                };
                self.problems.push(problem);
                Err(Backtrack)
            }
        }
    }
}

/// Weekday bits from `start` to `end` (both single bits, start <= end).
fn bits_between(start: u8, end: u8) -> u8 {
    let mut days = 0;
    let mut bit = start;
    loop {
        days |= bit;
        if bit >= end {
            return days;
        }
        bit <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CalendarEvent {
        match parse_event(text) {
            Ok(event) => event,
            Err(err) => panic!("{text:?} should parse: {err}"),
        }
    }

    fn proxmox_error(text: &str) -> String {
        match parse_event(text) {
            Ok(event) => panic!("{text:?} should fail, got {event:?}"),
            Err(err) => err.proxmox_message(),
        }
    }

    #[test]
    fn an_hour_out_of_range_is_read_as_minute_and_second() {
        let event = parse("25:00");
        assert!(event.hour.is_empty());
        assert_eq!(event.minute, vec![Value::Single(25)]);
        assert_eq!(event.second, vec![Value::Single(0)]);
        let event = parse("24:00");
        assert_eq!(event.minute, vec![Value::Single(24)]);
    }

    #[test]
    fn a_single_time_component_is_minutes() {
        let event = parse("5");
        assert!(event.hour.is_empty());
        assert_eq!(event.minute, vec![Value::Single(5)]);
        assert_eq!(parse("*/10").minute, vec![Value::Repeated(0, 10, None)]);
    }

    #[test]
    fn weekday_ranges_wrap_over_the_weekend() {
        // fri, sat, sun, mon
        assert_eq!(parse("fri..mon").weekdays, 0b111_0001);
        assert_eq!(parse("Fri..Mon").weekdays, 0b111_0001);
        assert_eq!(parse("mon..fri").weekdays, 0b001_1111);
        assert_eq!(parse("wed,mon..tue,fri").weekdays, 0b001_0111);
    }

    #[test]
    fn star_slash_zero_is_an_error_but_value_slash_zero_is_not() {
        assert_eq!(
            proxmox_error("*/0"),
            "unable to parse calendar event at '/0' - Nom(Eof)"
        );
        assert_eq!(
            proxmox_error("*/00"),
            "unable to parse calendar event at '/00' - Nom(Eof)"
        );
        assert_eq!(parse("5/0").minute, vec![Value::Repeated(5, 0, None)]);
    }

    #[test]
    fn utc_suffix_needs_no_space_but_must_be_upper_case() {
        assert!(parse("dailyUTC").is_utc());
        assert!(parse("daily UTC").is_utc());
        assert!(!parse("daily").is_utc());
        assert_eq!(
            proxmox_error("daily utc"),
            "unable to parse calendar event at 'daily' - Context(\"weekday\")"
        );
    }

    #[test]
    fn keywords_stand_alone_and_are_case_sensitive() {
        assert_eq!(parse("hourly").minute, vec![Value::Single(0)]);
        assert_eq!(
            parse("semi-annually").month,
            vec![Value::Single(1), Value::Single(7)]
        );
        assert!(parse_event("Daily").is_err());
        assert!(parse_event("daily 02:00").is_err());
    }

    #[test]
    fn proxmox_messages_match_the_recorded_outputs() {
        assert_eq!(
            proxmox_error("2:60"),
            "unable to parse calendar event at '2:60' - Context(\"date or time specification\")"
        );
        assert_eq!(
            proxmox_error("02:00 Europe/Vienna"),
            "unable to parse calendar event at ' Europe/Vienna' - Nom(Eof)"
        );
        assert_eq!(
            proxmox_error(""),
            "unable to parse calendar event at '' - Context(\"date or time specification\")"
        );
    }

    #[test]
    fn a_bad_item_after_a_comma_ends_the_list_before_the_comma() {
        assert_eq!(
            proxmox_error("1,5..3"),
            "unable to parse calendar event at ',5..3' - Nom(Eof)"
        );
        assert_eq!(
            proxmox_error("mon,xyz"),
            "unable to parse calendar event at ',xyz' - Nom(Eof)"
        );
    }

    #[test]
    fn dates_take_the_three_part_form_first() {
        let event = parse("1-2");
        assert!(event.year.is_empty());
        assert_eq!(event.month, vec![Value::Single(1)]);
        assert_eq!(event.day, vec![Value::Single(2)]);
        let event = parse("2015-10-21");
        assert_eq!(event.year, vec![Value::Single(2015)]);
        // Month 0 parses (there is no lower bound); it never matches.
        assert_eq!(parse("*-0-1").month, vec![Value::Single(0)]);
    }

    #[test]
    fn spaces_only_between_parts() {
        assert!(parse_event("mon12:00").is_ok());
        assert!(parse_event("mon \t 12:00").is_ok());
        assert!(parse_event(" mon 0 0").is_err());
        assert!(parse_event("mon, tue").is_err());
        assert!(parse_event("12:00 ").is_err());
        assert!(parse_event("12:00   UTC").is_ok());
    }
}
