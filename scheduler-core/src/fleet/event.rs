//! From a calendar event to the planner's terms: UTC weekdays and one UTC
//! start per day (PLANNING-MODEL.md, "From a plan to hosts").
//!
//! Proxmox evaluates an event in the host's zone unless it ends in `UTC`.
//! Rather than reasoning on the event's fields, this looks at what the event
//! does: its runs over the next [`WEEKS_EXAMINED`] weeks from a reference
//! instant, as Proxmox computes them (DST included). An event the planner can
//! move fires at most once a local day, always at the same local time, on the
//! same weekdays every week (a run a DST gap swallows aside). Events that fire
//! several times a day on a weekly pattern (`hourly`, `0/6:00`) are
//! [`Pattern::Repeating`]; the rest (`monthly`, `sat *-1..7`, a date) are
//! [`Pattern::Irregular`], with the reason in words.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::calendar::CalendarEvent;

/// How many weeks of runs are examined.
pub const WEEKS_EXAMINED: i64 = 5;

/// Runs examined at most: more than one an hour over the whole span is
/// "every few minutes" and need not be listed further.
const MAX_RUNS: usize = (WEEKS_EXAMINED as usize) * 7 * 24;

const DAY: i64 = 86_400;

/// What an event does, in the planner's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Once a day at one time on fixed weekdays: the planner may move it.
    Daily(DailyRun),
    /// Several times a day at fixed times on fixed weekdays: each time is a
    /// run the planner must count but cannot move.
    Repeating(Vec<DailyRun>),
    /// No weekly pattern the planner can represent; the reason in words.
    Irregular(String),
}

/// One run a day on some UTC weekdays, at one UTC time of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyRun {
    /// UTC weekdays, 0 = Monday, ascending.
    pub days: Vec<u8>,
    /// Seconds after 00:00 UTC.
    pub start_secs: u32,
    /// Something the caller should tell (a UTC offset change within the week).
    pub note: Option<String>,
}

/// What `event` does from `reference` (Unix seconds) on, evaluated in `tz`
/// unless the event ends in `UTC`.
pub fn pattern(event: &CalendarEvent, tz: Tz, reference: i64) -> Pattern {
    let zone = if event.is_utc() { Tz::UTC } else { tz };
    let end = reference + WEEKS_EXAMINED * 7 * DAY;
    let runs = runs_between(event, zone, reference, end);
    if runs.is_empty() {
        return Pattern::Irregular(format!(
            "it does not fire in the next {WEEKS_EXAMINED} weeks"
        ));
    }
    if runs.len() > MAX_RUNS {
        return Pattern::Irregular("it fires more often than once an hour".to_owned());
    }
    // Local (evaluation-zone) date -> local times of day of its runs.
    let mut by_date: BTreeMap<NaiveDate, BTreeSet<u32>> = BTreeMap::new();
    for &run in &runs {
        let local = local_time(run, zone);
        by_date
            .entry(local.date_naive())
            .or_default()
            .insert(local.num_seconds_from_midnight());
    }
    let (first, last) = whole_days(zone, reference, end);
    let interior = |date: &NaiveDate| *date >= first && *date < last;
    let day_times: BTreeSet<u32> = by_date.values().flatten().copied().collect();
    for (date, times) in &by_date {
        // Runs a DST gap swallows are missing on that day only.
        let expected: BTreeSet<u32> = day_times
            .iter()
            .copied()
            .filter(|&t| !in_gap(*date, t, zone))
            .collect();
        let regular = if interior(date) {
            *times == expected
        } else {
            times.is_subset(&day_times)
        };
        if !regular {
            return Pattern::Irregular(
                "it fires at different times of day on different days".to_owned(),
            );
        }
    }
    let day_times: Vec<u32> = day_times.into_iter().collect();
    let weekdays: BTreeSet<u32> = by_date
        .keys()
        .map(|d| d.weekday().num_days_from_monday())
        .collect();
    if let Some(reason) = irregular_days(&by_date, &weekdays, &day_times, zone, first, last) {
        return Pattern::Irregular(reason);
    }
    if day_times.len() == 1 {
        Pattern::Daily(utc_run(&runs, reference, zone, None))
    } else {
        let runs = day_times
            .iter()
            .map(|&t| utc_run(&runs, reference, zone, Some(t)))
            .collect();
        Pattern::Repeating(runs)
    }
}

/// Every run in `(from, end)`, at most `MAX_RUNS + 1` of them.
fn runs_between(event: &CalendarEvent, zone: Tz, from: i64, end: i64) -> Vec<i64> {
    let mut runs = Vec::new();
    let mut last = from;
    while let Some(next) = event.next_after(last, zone) {
        if next >= end || runs.len() > MAX_RUNS {
            break;
        }
        runs.push(next);
        last = next;
    }
    runs
}

fn local_time(instant: i64, zone: Tz) -> DateTime<Tz> {
    DateTime::<Utc>::from_timestamp(instant, 0)
        .unwrap_or_default()
        .with_timezone(&zone)
}

/// The whole local days of the span `[first, last)`: its first and last day are partial.
fn whole_days(zone: Tz, reference: i64, end: i64) -> (NaiveDate, NaiveDate) {
    let first = local_time(reference, zone).date_naive();
    let last = local_time(end, zone).date_naive();
    (first.succ_opt().unwrap_or(first), last)
}

/// Why the weekly pattern does not hold, if it does not: a whole day whose
/// weekday fires elsewhere has no run, and no DST gap explains it.
fn irregular_days(
    by_date: &BTreeMap<NaiveDate, BTreeSet<u32>>,
    weekdays: &BTreeSet<u32>,
    day_times: &[u32],
    zone: Tz,
    first: NaiveDate,
    last: NaiveDate,
) -> Option<String> {
    let mut date = first;
    while date < last {
        let weekday = date.weekday().num_days_from_monday();
        if weekdays.contains(&weekday) && !by_date.contains_key(&date) {
            let swallowed = day_times.iter().all(|&t| in_gap(date, t, zone));
            if !swallowed {
                return Some(format!(
                    "it fires on some {}s but not on {date} (a monthly or dated event)",
                    date.format("%A")
                ));
            }
        }
        date = date.succ_opt()?;
    }
    None
}

/// Whether local time `secs` of `date` does not exist in `zone` (a spring-forward gap).
pub(crate) fn in_gap(date: NaiveDate, secs: u32, zone: Tz) -> bool {
    let Some(time) = chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, 0) else {
        return false;
    };
    matches!(
        zone.from_local_datetime(&date.and_time(time)),
        LocalResult::None
    )
}

/// The UTC weekdays and start of the runs, from the first run of each local
/// weekday (only the runs at local time `only_secs` when given).
fn utc_run(runs: &[i64], reference: i64, zone: Tz, only_secs: Option<u32>) -> DailyRun {
    let mut first_of_weekday: BTreeMap<u32, i64> = BTreeMap::new();
    for &run in runs {
        let local = local_time(run, zone);
        if only_secs.is_some_and(|secs| local.num_seconds_from_midnight() != secs) {
            continue;
        }
        first_of_weekday
            .entry(local.weekday().num_days_from_monday())
            .or_insert(run);
    }
    let mut days = BTreeSet::new();
    // UTC time of day -> (how many weekdays start then, the earliest such run).
    let mut starts: BTreeMap<u32, (usize, i64)> = BTreeMap::new();
    for &run in first_of_weekday.values() {
        let utc = local_time(run, Tz::UTC);
        days.insert(u8::try_from(utc.weekday().num_days_from_monday()).unwrap_or(0));
        let entry = starts
            .entry(utc.num_seconds_from_midnight())
            .or_insert((0, run));
        entry.0 += 1;
        entry.1 = entry.1.min(run);
    }
    // Most runs decide; on a tie, the earliest run's time.
    let chosen = starts
        .iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
        .map(|(&secs, _)| secs)
        .unwrap_or(0);
    let note = (starts.len() > 1).then(|| {
        let from = local_time(reference, Tz::UTC).format("%Y-%m-%d");
        format!(
            "the host's UTC offset changes within the week from {from} (daylight saving): \
             planned with the start of most runs, {}",
            format_utc(chosen)
        )
    });
    DailyRun {
        days: days.into_iter().collect(),
        start_secs: chosen,
        note,
    }
}

/// `HH:MM UTC` (with `:SS` when not zero) of seconds after midnight UTC.
pub fn format_utc(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        format!("{h:02}:{m:02} UTC")
    } else {
        format!("{h:02}:{m:02}:{s:02} UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-11-04 00:00 UTC, a Monday.
    const MONDAY: i64 = 1_730_678_400;

    fn pattern_of(text: &str, tz: Tz, reference: i64) -> Pattern {
        pattern(&text.parse().expect("valid event"), tz, reference)
    }

    fn daily(text: &str, tz: Tz) -> DailyRun {
        match pattern_of(text, tz, MONDAY) {
            Pattern::Daily(run) => run,
            other => panic!("{text}: expected a daily run, got {other:?}"),
        }
    }

    #[test]
    fn a_utc_event_keeps_its_time_and_days() {
        let run = daily("02:45 UTC", chrono_tz::Pacific::Auckland);
        assert_eq!(run.days, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(run.start_secs, 2 * 3600 + 45 * 60);
        let run = daily("mon..fri 21:00 UTC", Tz::UTC);
        assert_eq!(run.days, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_local_event_becomes_utc_days_and_time() {
        // Auckland is UTC+13 in November: Saturday 03:00 there is Friday 14:00 UTC.
        let run = daily("sat 03:00", chrono_tz::Pacific::Auckland);
        assert_eq!(run.days, vec![4]);
        assert_eq!(run.start_secs, 14 * 3600);
        assert_eq!(run.note, None);
    }

    #[test]
    fn hourly_repeats_and_monthly_is_irregular() {
        match pattern_of("hourly", Tz::UTC, MONDAY) {
            Pattern::Repeating(runs) => assert_eq!(runs.len(), 24),
            other => panic!("{other:?}"),
        }
        match pattern_of("0/6:00", Tz::UTC, MONDAY) {
            Pattern::Repeating(runs) => {
                let starts: Vec<u32> = runs.iter().map(|r| r.start_secs / 3600).collect();
                assert_eq!(starts, vec![0, 6, 12, 18]);
            }
            other => panic!("{other:?}"),
        }
        for text in ["monthly", "sat *-1..7 15:00", "*/5", "2020-01-01"] {
            assert!(
                matches!(pattern_of(text, Tz::UTC, MONDAY), Pattern::Irregular(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_dst_gap_does_not_make_a_daily_event_irregular() {
        // Vienna springs forward on 2026-03-29 at 02:00: 02:30 does not exist that day.
        let reference = 1_773_964_800; // 2026-03-20 00:00 UTC
        let event: CalendarEvent = "02:30".parse().expect("valid");
        let vienna = chrono_tz::Europe::Vienna;
        match pattern(&event, vienna, reference) {
            Pattern::Daily(run) => {
                assert_eq!(run.days.len(), 7);
                // Before the change Vienna is UTC+1: 01:30 UTC.
                assert_eq!(run.start_secs, 3600 + 1800);
            }
            other => panic!("{other:?}"),
        }
    }
}
