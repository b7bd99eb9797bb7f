//! A planned start back to a calendar event.
//!
//! The planner's start is a UTC time of day on the job's UTC weekdays. By
//! default it is written as `H:MM UTC` (with the weekdays when the job does
//! not run daily: `mon..fri 2:35 UTC`): Proxmox then evaluates it in UTC, so
//! daylight saving and hosts in different zones cannot shift it. With
//! [`ScheduleZone::Local`] it is written in the host's local time with the
//! local weekdays the UTC days become, as of `now`; a local time that does
//! not exist (a spring-forward gap) or occurs twice (a fall-back fold) on one
//! of the job's days within the next year is reported, and so is the next
//! change of the zone's UTC offset, after which the local event starts at
//! another UTC time (re-plan before it).

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use crate::calendar::CalendarEvent;

const DAY: i64 = 86_400;

/// Weekday names as calendar events write them, 0 = Monday.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The zone planned schedules are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleZone {
    /// `H:MM UTC`.
    Utc,
    /// The host's local time.
    Local,
}

/// A calendar event for a planned start, and what the admin should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenEvent {
    /// The event (`2:35 UTC`, `sat 3:35`).
    pub event: String,
    /// DST gaps, folds and offset changes that concern it (local events only).
    pub warnings: Vec<String>,
}

/// The event that starts at `start_minute` (after 00:00 UTC) on UTC weekdays
/// `days` (0 = Monday), written in `zone` (`tz` is the host's zone), as of `now`.
pub fn event_for(
    days: &[u8],
    start_minute: u32,
    zone: ScheduleZone,
    tz: Tz,
    now: i64,
) -> Result<WrittenEvent, String> {
    if start_minute >= 1440 {
        return Err(format!("start minute {start_minute} is not a time of day"));
    }
    let days: BTreeSet<u8> = days.iter().copied().filter(|&d| d < 7).collect();
    if days.is_empty() {
        return Err("a job needs at least one weekday".to_owned());
    }
    let written = match zone {
        ScheduleZone::Utc => WrittenEvent {
            event: format!("{}{} UTC", weekday_prefix(&days), clock(start_minute)),
            warnings: Vec::new(),
        },
        ScheduleZone::Local => local_event(&days, start_minute, tz, now)?,
    };
    // Never hand out an event Proxmox would not read.
    CalendarEvent::parse(&written.event)
        .map_err(|e| format!("internal error: '{}' does not parse: {e}", written.event))?;
    Ok(written)
}

fn local_event(
    days: &BTreeSet<u8>,
    start_minute: u32,
    tz: Tz,
    now: i64,
) -> Result<WrittenEvent, String> {
    let mut local_days = BTreeSet::new();
    let mut local_minutes = BTreeSet::new();
    for &day in days {
        let instant = next_utc(day, start_minute, now);
        let local = at(instant).with_timezone(&tz);
        local_days.insert(u8::try_from(local.weekday().num_days_from_monday()).unwrap_or(0));
        local_minutes.insert(local.hour() * 60 + local.minute());
    }
    let Some(&minute) = local_minutes.iter().next() else {
        return Err("a job needs at least one weekday".to_owned());
    };
    if local_minutes.len() > 1 {
        return Err(format!(
            "{tz} changes its UTC offset within the coming week: the runs would start at different local times; \
             write this schedule in UTC (policy.schedule-zone = \"utc\") or plan again after the change"
        ));
    }
    let event = format!("{}{}", weekday_prefix(&local_days), clock(minute));
    let mut warnings = dst_warnings(&local_days, minute, tz, now);
    if let Some(change) = next_offset_change(tz, now) {
        warnings.push(format!(
            "{tz} changes its UTC offset on {change}: from then on '{event}' starts at another UTC time; re-plan before"
        ));
    }
    Ok(WrittenEvent { event, warnings })
}

/// The first instant after `now` on UTC weekday `day` at `minute` UTC.
fn next_utc(day: u8, minute: u32, now: i64) -> i64 {
    let today = now.div_euclid(DAY);
    // 1970-01-01 was a Thursday (weekday 3).
    let weekday = (today + 3).rem_euclid(7);
    let ahead = (i64::from(day) - weekday).rem_euclid(7);
    let mut instant = (today + ahead) * DAY + i64::from(minute) * 60;
    if instant <= now {
        instant += 7 * DAY;
    }
    instant
}

fn at(instant: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(instant, 0).unwrap_or_default()
}

/// Gaps and folds of local time `minute` on the job's local weekdays within a year.
fn dst_warnings(days: &BTreeSet<u8>, minute: u32, tz: Tz, now: i64) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(time) = chrono::NaiveTime::from_hms_opt(minute / 60, minute % 60, 0) else {
        return warnings;
    };
    let start = at(now).with_timezone(&tz).date_naive();
    let (mut gap, mut fold): (Option<NaiveDate>, Option<NaiveDate>) = (None, None);
    for offset in 0..366 {
        let date = start + Duration::days(offset);
        let weekday = u8::try_from(date.weekday().num_days_from_monday()).unwrap_or(0);
        if !days.contains(&weekday) {
            continue;
        }
        match tz.from_local_datetime(&date.and_time(time)) {
            LocalResult::None if gap.is_none() => gap = Some(date),
            LocalResult::Ambiguous(..) if fold.is_none() => fold = Some(date),
            _ => {}
        }
    }
    let at_time = clock(minute);
    if let Some(date) = gap {
        warnings.push(format!(
            "{at_time} does not exist in {tz} on {date} (daylight saving gap): Proxmox skips that run"
        ));
    }
    if let Some(date) = fold {
        warnings.push(format!(
            "{at_time} occurs twice in {tz} on {date} (daylight saving fold): Proxmox runs it once, at the first"
        ));
    }
    warnings
}

/// The first date within a year after `now` on which `tz`'s UTC offset changes.
fn next_offset_change(tz: Tz, now: i64) -> Option<NaiveDate> {
    let offset_at = |instant: i64| {
        at(instant)
            .with_timezone(&tz)
            .offset()
            .fix()
            .local_minus_utc()
    };
    let first = offset_at(now);
    (1..=366).find_map(|d| {
        let instant = now + d * DAY;
        (offset_at(instant) != first).then(|| {
            // Narrow down to the day of the change.
            let mut day = instant - DAY;
            while offset_at(day) == first {
                day += 3600;
            }
            at(day).with_timezone(&tz).date_naive()
        })
    })
}

/// `mon..fri ` for a weekday set, empty for all seven; runs of three or
/// more consecutive days become ranges.
fn weekday_prefix(days: &BTreeSet<u8>) -> String {
    if days.len() == 7 {
        return String::new();
    }
    let days: Vec<u8> = days.iter().copied().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let mut j = i;
        while j + 1 < days.len() && days[j + 1] == days[j] + 1 {
            j += 1;
        }
        let (a, b) = (usize::from(days[i]), usize::from(days[j]));
        match j - i {
            0 => parts.push(DAY_NAMES[a].to_owned()),
            1 => parts.push(format!("{},{}", DAY_NAMES[a], DAY_NAMES[b])),
            _ => parts.push(format!("{}..{}", DAY_NAMES[a], DAY_NAMES[b])),
        }
        i = j + 1;
    }
    format!("{} ", parts.join(","))
}

/// `2:35` (hours without a leading zero, as the issue writes them).
fn clock(minute: u32) -> String {
    format!("{}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2024-11-04 00:00 UTC, a Monday.
    const MONDAY: i64 = 1_730_678_400;

    #[test]
    fn utc_events_read_like_the_issue() {
        let all = [0, 1, 2, 3, 4, 5, 6];
        let e = event_for(&all, 155, ScheduleZone::Utc, Tz::UTC, MONDAY).expect("event");
        assert_eq!(e.event, "2:35 UTC");
        let e =
            event_for(&[0, 1, 2, 3, 4], 155, ScheduleZone::Utc, Tz::UTC, MONDAY).expect("event");
        assert_eq!(e.event, "mon..fri 2:35 UTC");
        let e = event_for(&[5, 0, 2], 840, ScheduleZone::Utc, Tz::UTC, MONDAY).expect("event");
        assert_eq!(e.event, "mon,wed,sat 14:00 UTC");
    }

    #[test]
    fn local_events_keep_the_nights_in_the_hosts_zone() {
        // Friday 14:00 UTC is Saturday 03:00 in Auckland (UTC+13 in November).
        let auckland = chrono_tz::Pacific::Auckland;
        let e =
            event_for(&[4], 14 * 60 + 35, ScheduleZone::Local, auckland, MONDAY).expect("event");
        assert_eq!(e.event, "sat 3:35");
        assert!(
            e.warnings
                .iter()
                .any(|w| w.contains("changes its UTC offset")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn a_local_start_in_a_gap_or_fold_is_reported() {
        let vienna = chrono_tz::Europe::Vienna;
        // 01:30 UTC is 02:30 in Vienna in winter: it does not exist on the last Sunday of March.
        let e = event_for(
            &[0, 1, 2, 3, 4, 5, 6],
            90,
            ScheduleZone::Local,
            vienna,
            MONDAY,
        )
        .expect("event");
        assert_eq!(e.event, "2:30");
        assert!(
            e.warnings
                .iter()
                .any(|w| w.contains("does not exist") && w.contains("2025-03-30")),
            "{:?}",
            e.warnings
        );
        assert!(
            e.warnings
                .iter()
                .any(|w| w.contains("occurs twice") && w.contains("2025-10-26")),
            "{:?}",
            e.warnings
        );
    }

    fn first_runs(event: &str, tz: Tz, from: i64) -> Vec<i64> {
        let event: CalendarEvent = event.parse().expect("parses");
        let mut runs = Vec::new();
        let mut last = from;
        while let Some(next) = event.next_after(last, tz) {
            if next > from + 7 * DAY {
                break;
            }
            runs.push(next);
            last = next;
        }
        runs
    }

    proptest! {
        /// The written UTC event fires exactly on the planned UTC days at the planned time.
        #[test]
        fn a_utc_event_fires_at_the_planned_start(
            days in proptest::collection::btree_set(0u8..7, 1..=7),
            minute in 0u32..1440,
            now in 1_700_000_000i64..1_900_000_000,
        ) {
            let days: Vec<u8> = days.into_iter().collect();
            let written = event_for(&days, minute, ScheduleZone::Utc, chrono_tz::Asia::Kolkata, now).expect("event");
            let runs = first_runs(&written.event, chrono_tz::Asia::Kolkata, now);
            let mut expected: Vec<i64> = days.iter().map(|&d| next_utc(d, minute, now)).collect();
            expected.sort_unstable();
            prop_assert_eq!(runs, expected);
        }

        /// Reading a written event back gives the planned days and start (UTC or local).
        #[test]
        fn a_written_event_reads_back_as_the_planned_run(
            days in proptest::collection::btree_set(0u8..7, 1..=7),
            minute in 0u32..1440,
            now in 1_700_000_000i64..1_900_000_000,
            local in proptest::bool::ANY,
        ) {
            let tz = chrono_tz::Asia::Kolkata;
            let zone = if local { ScheduleZone::Local } else { ScheduleZone::Utc };
            let days: Vec<u8> = days.into_iter().collect();
            let written = event_for(&days, minute, zone, tz, now).expect("event");
            let event: CalendarEvent = written.event.parse().expect("parses");
            match crate::fleet::event::pattern(&event, tz, now) {
                crate::fleet::event::Pattern::Daily(run) => {
                    prop_assert_eq!(run.days, days);
                    prop_assert_eq!(run.start_secs, minute * 60);
                }
                other => prop_assert!(false, "{} read back as {:?}", written.event, other),
            }
        }

        /// Written in a fixed-offset zone, the local event fires at the same instants.
        #[test]
        fn a_local_event_fires_at_the_planned_start(
            days in proptest::collection::btree_set(0u8..7, 1..=7),
            minute in 0u32..1440,
            now in 1_700_000_000i64..1_900_000_000,
        ) {
            let tz = chrono_tz::Asia::Kolkata; // UTC+5:30, no daylight saving
            let days: Vec<u8> = days.into_iter().collect();
            let written = event_for(&days, minute, ScheduleZone::Local, tz, now).expect("event");
            prop_assert!(written.warnings.is_empty());
            let runs = first_runs(&written.event, tz, now);
            let mut expected: Vec<i64> = days.iter().map(|&d| next_utc(d, minute, now)).collect();
            expected.sort_unstable();
            prop_assert_eq!(runs, expected);
        }
    }
}
