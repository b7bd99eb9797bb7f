//! When an event fires next: proxmox-time's search, on wall-clock time.
//!
//! proxmox-time (`compute_next_event`) starts at `last + 1` and checks the
//! fields year → month → day → weekday → hour → minute → second; the first
//! one that does not match jumps to its next allowed value (the smaller
//! fields reset to their minimum, the date normalised like libc's `timegm`,
//! so hour 25 is 01:00 the next day) and the check starts over. It gives up
//! after 1000 such steps. We run the same steps on "wall-clock seconds" (the
//! local date and time counted as if it were UTC), with our own calendar
//! arithmetic: no libc, no allocation, a handful of steps for everyday events.
//!
//! In a time zone, Proxmox converts the result with glibc's `mktime`. The rule
//! that reproduces what it does (FORMATS.md (c), "DST gaps and folds"): walk
//! wall-clock time forward from `last + 1`, take the first matching wall-clock
//! time that exists (times in a spring-forward gap are skipped), and if it
//! occurs twice (a fall-back fold), its earliest instant after `last`.

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use chrono_tz::Tz;

use super::{CalendarEvent, Value};

/// proxmox-time's search gives up after this many steps (1001 checks).
const MAX_STEPS: u32 = 1000;

/// Restarts of the search after a non-existent or already past wall-clock time.
const MAX_RESTARTS: u32 = 1000;

const SECONDS_PER_DAY: i64 = 86_400;

/// See [`CalendarEvent::next_after`].
pub(super) fn next_after(event: &CalendarEvent, after: i64, tz: Tz) -> Option<i64> {
    let start = after.checked_add(1)?;
    // Stay inside the range chrono (and our arithmetic) handles: years ±262 000.
    DateTime::from_timestamp(start, 0)?;
    if event.utc {
        return search(event, start);
    }
    let mut from = wall_clock(start, tz)?;
    for _ in 0..MAX_RESTARTS {
        let found = search(event, from)?;
        match resolve(found, tz)? {
            Instants::Once(instant) if instant > after => return Some(instant),
            Instants::Twice(first, second) => {
                if first > after {
                    return Some(first);
                }
                if second > after {
                    return Some(second);
                }
                from = found + 1;
            }
            Instants::Once(_) => from = found + 1,
            Instants::Never => from = first_existing_after(found, tz)?,
        }
    }
    None
}

/// See [`CalendarEvent::matches`].
pub(super) fn matches(event: &CalendarEvent, instant: i64, tz: Tz) -> bool {
    if DateTime::from_timestamp(instant, 0).is_none() {
        return false;
    }
    let secs = if event.utc {
        Some(instant)
    } else {
        wall_clock(instant, tz)
    };
    let Some(secs) = secs else {
        return false;
    };
    let t = Fields::of(secs);
    let year_ok = event.year.is_empty()
        || u32::try_from(t.year).is_ok_and(|year| list_contains(&event.year, year));
    year_ok
        && (event.month.is_empty() || list_contains(&event.month, t.month))
        && (event.day.is_empty() || list_contains(&event.day, t.day))
        && weekday_allowed(event.weekdays, t.weekday)
        && (event.hour.is_empty() || list_contains(&event.hour, t.hour))
        && (event.minute.is_empty() || list_contains(&event.minute, t.minute))
        && (event.second.is_empty() || list_contains(&event.second, t.second))
}

fn weekday_allowed(weekdays: u8, weekday: u32) -> bool {
    weekdays == 0 || weekdays & (1 << weekday) != 0
}

/// proxmox-time's step loop, from wall-clock second `start` (inclusive).
fn search(event: &CalendarEvent, start: i64) -> Option<i64> {
    let mut t = start;
    for _ in 0..=MAX_STEPS {
        match step(event, Fields::of(t)) {
            Step::Found => return Some(t),
            Step::Jump(next) => t = next,
            Step::Never => return None,
        }
    }
    None
}

/// What one check of all fields decides.
enum Step {
    Found,
    Jump(i64),
    Never,
}

/// Checks the fields in proxmox-time's order; the first mismatch jumps.
fn step(event: &CalendarEvent, t: Fields) -> Step {
    let (year, month0, day) = (t.year, i64::from(t.month) - 1, i64::from(t.day));
    if !event.year.is_empty() {
        // proxmox-time fails (no event) on a year that is not a u32.
        let Ok(this_year) = u32::try_from(t.year) else {
            return Step::Never;
        };
        if !list_contains(&event.year, this_year) {
            return match find_next(&event.year, this_year) {
                Some(next) => Step::Jump(compose(next, 0, 1, 0, 0, 0)),
                None => Step::Never,
            };
        }
    }
    if !event.month.is_empty() && !list_contains(&event.month, t.month) {
        return Step::Jump(match find_next(&event.month, t.month) {
            Some(next) => compose(year, next - 1, 1, 0, 0, 0),
            None => compose(year + 1, 0, 1, 0, 0, 0),
        });
    }
    if !event.day.is_empty() && !list_contains(&event.day, t.day) {
        return Step::Jump(match find_next(&event.day, t.day) {
            Some(next) => compose(year, month0, next, 0, 0, 0),
            None => compose(year, month0 + 1, 1, 0, 0, 0),
        });
    }
    let all_days = event.weekdays == 0 || event.weekdays == 0x7f;
    if !all_days && !weekday_allowed(event.weekdays, t.weekday) {
        let later = (t.weekday + 1..7).find(|&d| weekday_allowed(event.weekdays, d));
        let days = i64::from(later.unwrap_or(7) - t.weekday);
        return Step::Jump(compose(year, month0, day + days, 0, 0, 0));
    }
    let hour = i64::from(t.hour);
    if !event.hour.is_empty() && !list_contains(&event.hour, t.hour) {
        return Step::Jump(match find_next(&event.hour, t.hour) {
            Some(next) => compose(year, month0, day, next, 0, 0),
            None => compose(year, month0, day + 1, 0, 0, 0),
        });
    }
    let minute = i64::from(t.minute);
    if !event.minute.is_empty() && !list_contains(&event.minute, t.minute) {
        return Step::Jump(match find_next(&event.minute, t.minute) {
            Some(next) => compose(year, month0, day, hour, next, 0),
            None => compose(year, month0, day, hour + 1, 0, 0),
        });
    }
    if !event.second.is_empty() && !list_contains(&event.second, t.second) {
        return Step::Jump(match find_next(&event.second, t.second) {
            Some(next) => compose(year, month0, day, hour, minute, next),
            None => compose(year, month0, day, hour, minute + 1, 0),
        });
    }
    Step::Found
}

impl Value {
    fn contains(self, value: u32) -> bool {
        match self {
            Value::Single(v) => v == value,
            Value::Range(start, end) => (start..=end).contains(&value),
            Value::Repeated(start, repeat, end) => {
                if value < start || end.is_some_and(|end| value > end) {
                    false
                } else if repeat == 0 {
                    value == start
                } else {
                    (value - start).is_multiple_of(repeat)
                }
            }
        }
    }

    /// The smallest value of this item above `value`, as proxmox-time finds it:
    /// a repetition without end may name a value beyond the field (minute 75),
    /// which the caller's date normalisation carries into the next hour.
    fn next_above(self, value: u32) -> Option<i64> {
        let value = u64::from(value);
        let next = match self {
            Value::Single(v) => (u64::from(v) > value).then_some(u64::from(v)),
            Value::Range(start, end) => {
                let (start, end) = (u64::from(start), u64::from(end));
                let next = if value < start { start } else { value + 1 };
                (next <= end).then_some(next)
            }
            Value::Repeated(start, repeat, end) => {
                let (start, repeat) = (u64::from(start), u64::from(repeat));
                if value < start {
                    Some(start)
                } else {
                    // The next multiple of `repeat` above `value`; none for a repetition of 0.
                    let steps = (value - start + repeat).checked_div(repeat);
                    let next = steps.map(|steps| start + steps * repeat);
                    next.filter(|next| end.is_none_or(|end| *next <= u64::from(end)))
                }
            }
        };
        next.and_then(|next| i64::try_from(next).ok())
    }
}

fn list_contains(list: &[Value], value: u32) -> bool {
    list.iter().any(|item| item.contains(value))
}

fn find_next(list: &[Value], value: u32) -> Option<i64> {
    list.iter().filter_map(|item| item.next_above(value)).min()
}

/// A wall-clock second taken apart, as `struct tm` holds it.
#[derive(Clone, Copy, Debug)]
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Monday .. 6 = Sunday.
    weekday: u32,
}

impl Fields {
    fn of(secs: i64) -> Fields {
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let in_day = secs.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Fields {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            // 1970-01-01 was a Thursday.
            weekday: (days + 3).rem_euclid(7) as u32,
        }
    }
}

/// Wall-clock seconds of a date and time whose fields may be out of range
/// (month 13, day 32, hour 25, minute 60): they carry over as in `timegm`.
fn compose(year: i64, month0: i64, day: i64, hour: i64, minute: i64, second: i64) -> i64 {
    let year = year + month0.div_euclid(12);
    let month = month0.rem_euclid(12) + 1;
    let days = days_from_civil(year, month, 1) + day - 1;
    days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, any day).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March so that the leap day ends the year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The wall-clock second of `instant` in `tz`.
fn wall_clock(instant: i64, tz: Tz) -> Option<i64> {
    let utc = DateTime::from_timestamp(instant, 0)?.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix().local_minus_utc();
    Some(instant + i64::from(offset))
}

/// The instants at which a wall-clock second occurs in a zone.
enum Instants {
    Once(i64),
    /// In a fold, earlier first.
    Twice(i64, i64),
    /// In a gap.
    Never,
}

fn resolve(wall: i64, tz: Tz) -> Option<Instants> {
    let naive = DateTime::from_timestamp(wall, 0)?.naive_utc();
    Some(match tz.from_local_datetime(&naive) {
        LocalResult::Single(at) => Instants::Once(at.timestamp()),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.timestamp(), b.timestamp());
            Instants::Twice(a.min(b), a.max(b))
        }
        LocalResult::None => Instants::Never,
    })
}

/// The first wall-clock second after `wall` (which lies in a gap) that exists.
fn first_existing_after(wall: i64, tz: Tz) -> Option<i64> {
    let exists = |secs: i64| resolve(secs, tz).is_some_and(|i| !matches!(i, Instants::Never));
    // Gaps last hours at most; widen until past it, then halve the interval.
    let mut missing = wall;
    let mut step = 1;
    let mut existing = loop {
        if step > 7 * SECONDS_PER_DAY {
            return None;
        }
        if exists(wall + step) {
            break wall + step;
        }
        missing = wall + step;
        step *= 2;
    };
    while existing - missing > 1 {
        let middle = missing + (existing - missing) / 2;
        if exists(middle) {
            existing = middle;
        } else {
            missing = middle;
        }
    }
    Some(existing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> CalendarEvent {
        CalendarEvent::parse(text).expect("test event parses")
    }

    fn next(text: &str, after: i64, tz: Tz) -> Option<i64> {
        event(text).next_after(after, tz)
    }

    /// Epoch seconds of a UTC date and time.
    fn utc(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> i64 {
        compose(year, month - 1, day, hour, minute, 0)
    }

    #[test]
    fn calendar_arithmetic_round_trips() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(compose(2024, 12, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0));
        assert_eq!(compose(2024, 0, 32, 25, 0, 0), utc(2024, 2, 2, 1, 0));
    }

    #[test]
    fn a_repetition_past_the_end_of_the_hour_skips_like_proxmox() {
        // From 22:xx, `*/5` hours names hour 25 = 01:00 next day; proxmox-time
        // then moves on to 05:00 and never returns 00:00.
        let after = utc(2024, 1, 1, 22, 30);
        assert_eq!(next("*/5:00", after, Tz::UTC), Some(utc(2024, 1, 2, 5, 0)));
    }

    #[test]
    fn day_of_month_and_weekday_must_both_match() {
        // The first Saturday of February 2024 is the 3rd.
        let after = utc(2024, 1, 31, 0, 0);
        assert_eq!(
            next("Sat *-1..7 15:00", after, Tz::UTC),
            Some(utc(2024, 2, 3, 15, 0))
        );
    }

    #[test]
    fn impossible_dates_have_no_next_event() {
        assert_eq!(next("2021-02-29", 0, Tz::UTC), None);
        assert_eq!(next("*-02-30", 0, Tz::UTC), None);
        // Month 0 parses but never matches.
        assert_eq!(next("*-0-1", 0, Tz::UTC), None);
        assert_eq!(next("2020-01-01", utc(2021, 1, 1, 0, 0), Tz::UTC), None);
    }

    #[test]
    fn a_search_that_cannot_succeed_gives_up() {
        // The Gregorian calendar repeats every 400 years: 29 February of a
        // year divisible by 400 is always a Tuesday (2000-02-29 was one).
        assert_eq!(
            next("tue 0/400-02-29", 0, Tz::UTC),
            Some(utc(2000, 2, 29, 0, 0))
        );
        // Never a Monday: the search jumps 400 years at a time until its
        // 1000 steps are spent, and reports no event.
        assert_eq!(next("mon 0/400-02-29", 0, Tz::UTC), None);
    }

    #[test]
    fn vienna_spring_gap_skips_the_missing_times() {
        let vienna = chrono_tz::Europe::Vienna;
        // 2018-03-25: 02:00 CET jumps to 03:00 CEST.
        // `02:30` after 2018-03-24 02:30 CET fires on 2018-03-26 02:30 CEST.
        assert_eq!(next("02:30", 1_521_855_000, vienna), Some(1_522_024_200));
        // `*:30` after 01:45 CET fires at 03:30 CEST.
        let after = utc(2018, 3, 25, 0, 45);
        assert_eq!(next("*:30", after, vienna), Some(utc(2018, 3, 25, 1, 30)));
        // `*:*:*` inside the gap resumes at its end.
        let after = utc(2018, 3, 25, 0, 59) + 59;
        assert_eq!(next("*:*:*", after, vienna), Some(utc(2018, 3, 25, 1, 0)));
    }

    #[test]
    fn vienna_autumn_fold_fires_once_at_the_first_instance() {
        let vienna = chrono_tz::Europe::Vienna;
        // 2018-10-28: 03:00 CEST falls back to 02:00 CET.
        // `02:30` after 2018-10-27 02:30 CEST: 02:30 CEST (00:30 UTC), then the next day.
        let first = next("02:30", 1_540_600_200, vienna);
        assert_eq!(first, Some(utc(2018, 10, 28, 0, 30)));
        assert_eq!(
            next("02:30", utc(2018, 10, 28, 0, 30), vienna),
            Some(utc(2018, 10, 29, 1, 30))
        );
        // `*:0/15` after 02:45 CEST skips the repeated hour: 03:00 CET.
        let after = utc(2018, 10, 28, 0, 45);
        assert_eq!(next("*:0/15", after, vienna), Some(utc(2018, 10, 28, 2, 0)));
        // Starting inside the second pass (02:10 CET) it stays there: 02:15 CET.
        let after = utc(2018, 10, 28, 1, 10);
        assert_eq!(
            next("*:0/15", after, vienna),
            Some(utc(2018, 10, 28, 1, 15))
        );
    }

    #[test]
    fn utc_events_ignore_the_zone() {
        let vienna = chrono_tz::Europe::Vienna;
        assert_eq!(next("02:30 UTC", 0, vienna), Some(utc(1970, 1, 1, 2, 30)));
        assert!(event("02:30 UTC").matches(utc(1970, 1, 1, 2, 30), vienna));
        assert!(!event("02:30").matches(utc(1970, 1, 1, 2, 30), vienna));
        assert!(event("02:30").matches(utc(1970, 1, 1, 1, 30), vienna));
    }

    #[test]
    fn extreme_instants_give_no_event_instead_of_overflowing() {
        assert_eq!(next("*:*:*", i64::MAX, Tz::UTC), None);
        assert_eq!(next("*:*:*", i64::MIN, Tz::UTC), None);
        assert!(!event("*:*:*").matches(i64::MAX, Tz::UTC));
    }
}
