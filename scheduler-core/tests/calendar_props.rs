//! Properties of calendar events over generated events, instants and zones.
//!
//! * The canonical form parses back to an equal event, and is stable.
//! * Next events are strictly increasing and each matches the event, in UTC
//!   and in zones with day-light saving (gaps and folds included).
//! * Any text at all parses or fails cleanly: no panic, the error position
//!   lies inside the text, and the messages can be printed.

use chrono_tz::Tz;
use proptest::prelude::*;
use scheduler_core::calendar::CalendarEvent;

/// One list item below `max`: `V`, `V..W`, `V/R` or `V..W/R`.
fn item(max: u32) -> impl Strategy<Value = String> {
    (0..max, 0..max, 0..max, 0..4u8).prop_map(|(a, b, r, shape)| {
        let (low, high) = (a.min(b), a.max(b));
        match shape {
            0 => format!("{a}"),
            1 => format!("{low}..{high}"),
            2 => format!("{a}/{r}"),
            _ => format!("{low}..{high}/{r}"),
        }
    })
}

/// A field's list: `*`, `*/R` (R >= 1) or items separated by commas.
fn list(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        1 => (1..max).prop_map(|r| format!("*/{r}")),
        4 => prop::collection::vec(item(max), 1..4).prop_map(|items| items.join(",")),
    ]
}

fn weekdays() -> impl Strategy<Value = String> {
    let day = prop::sample::select(vec![
        "mon", "tue", "wed", "thu", "fri", "sat", "sun", "Monday", "FRIDAY", "sunday",
    ]);
    let range = (day.clone(), prop::option::of(day))
        .prop_map(|(a, b)| b.map_or(a.to_string(), |b| format!("{a}..{b}")));
    prop::collection::vec(range, 1..4).prop_map(|ranges| ranges.join(","))
}

fn date() -> impl Strategy<Value = String> {
    (prop::option::of(list(2200)), list(13), list(32)).prop_map(|(year, month, day)| match year {
        Some(year) => format!("{year}-{month}-{day}"),
        None => format!("{month}-{day}"),
    })
}

fn time() -> impl Strategy<Value = String> {
    (
        prop::option::of(list(24)),
        list(60),
        prop::option::of(list(60)),
    )
        .prop_map(|(hour, minute, second)| {
            let mut text = hour.map(|h| format!("{h}:")).unwrap_or_default();
            text.push_str(&minute);
            if let Some(second) = second {
                text.push(':');
                text.push_str(&second);
            }
            text
        })
}

/// Event text from the grammar; it may still be invalid (`5..1`-free, but
/// e.g. a two-part date read differently), so properties skip what fails.
fn event_text() -> impl Strategy<Value = String> {
    let keyword = prop::sample::select(vec![
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
    ])
    .prop_map(str::to_string);
    let parts = (
        prop::option::of(weekdays()),
        prop::option::of(date()),
        prop::option::of(time()),
    )
        .prop_filter("at least one part", |(w, d, t)| {
            w.is_some() || d.is_some() || t.is_some()
        })
        .prop_map(|(w, d, t)| {
            [w, d, t]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        });
    let body = prop_oneof![1 => keyword, 6 => parts];
    let suffix = prop::sample::select(vec!["", "", " UTC", "UTC"]);
    (body, suffix).prop_map(|(body, suffix)| format!("{body}{suffix}"))
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::Europe::Vienna,
        chrono_tz::America::New_York,
        chrono_tz::America::Sao_Paulo,
        chrono_tz::Australia::Sydney,
        chrono_tz::Pacific::Auckland,
        chrono_tz::Asia::Kolkata,
    ])
}

/// Instants from 1970 to 2100, with DST change days of recent years well covered.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => 0..4_102_444_800i64,
        1 => 1_500_000_000..1_800_000_000i64,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_form_parses_back_to_the_same_event(text in event_text()) {
        let Ok(event) = CalendarEvent::parse(&text) else {
            return Ok(());
        };
        let printed = event.to_string();
        let again = CalendarEvent::parse(&printed);
        prop_assert_eq!(again.as_ref().ok(), Some(&event), "{} printed as {}", text, printed);
        prop_assert_eq!(again.map(|e| e.to_string()).ok(), Some(printed));
    }

    #[test]
    fn next_events_increase_and_match(text in event_text(), start in instant(), tz in zone()) {
        let Ok(event) = CalendarEvent::parse(&text) else {
            return Ok(());
        };
        let mut after = start;
        for _ in 0..4 {
            let Some(next) = event.next_after(after, tz) else {
                break;
            };
            prop_assert!(next > after, "{}: {} is not after {}", text, next, after);
            prop_assert!(event.matches(next, tz), "{}: {} does not match in {}", text, next, tz);
            after = next;
        }
    }

    #[test]
    fn next_event_is_the_first_match_when_no_repetition_runs_open(
        text in bounded_event_text(),
        start in instant(),
    ) {
        let event = CalendarEvent::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let next = event.next_after(start, Tz::UTC);
        prop_assert_eq!(next, first_match_by_minutes(&event, start), "{}", text);
    }

    #[test]
    fn any_text_parses_or_fails_cleanly(text in any::<String>()) {
        check_clean(&text)?;
    }

    #[test]
    fn near_miss_text_parses_or_fails_cleanly(text in "[0-9a-zA-Z*/.,:~@ -]{0,24}(UTC)?") {
        check_clean(&text)?;
    }
}

/// Items without an open-ended repetition (`V/R`, `*/R`), which proxmox-time
/// may carry past the end of the hour or day and so skip a match on purpose.
fn bounded_list(max: u32) -> impl Strategy<Value = String> {
    let item = (0..max, 0..max, 1..max, 0..3u8).prop_map(|(a, b, r, shape)| {
        let (low, high) = (a.min(b), a.max(b));
        match shape {
            0 => format!("{a}"),
            1 => format!("{low}..{high}"),
            _ => format!("{low}..{high}/{r}"),
        }
    });
    prop_oneof![
        1 => Just("*".to_string()),
        4 => prop::collection::vec(item, 1..4).prop_map(|items| items.join(",")),
    ]
}

/// Weekdays and `HOURS:MINUTES` (seconds 0): an event that fires within a week.
fn bounded_event_text() -> impl Strategy<Value = String> {
    (
        prop::option::of(weekdays()),
        bounded_list(24),
        bounded_list(60),
    )
        .prop_map(|(days, hours, minutes)| match days {
            Some(days) => format!("{days} {hours}:{minutes}"),
            None => format!("{hours}:{minutes}"),
        })
}

/// The first whole minute after `after` that matches, tried one by one (up to 8 days).
fn first_match_by_minutes(event: &CalendarEvent, after: i64) -> Option<i64> {
    let first_minute = (after + 1 + 59).div_euclid(60) * 60;
    (0..8 * 24 * 60)
        .map(|i| first_minute + i * 60)
        .find(|&t| event.matches(t, Tz::UTC))
}

fn check_clean(text: &str) -> Result<(), TestCaseError> {
    match CalendarEvent::parse(text) {
        Ok(event) => {
            let printed = event.to_string();
            prop_assert_eq!(CalendarEvent::parse(&printed).ok(), Some(event));
        }
        Err(err) => {
            prop_assert!(err.position() <= text.len());
            prop_assert!(err.to_string().starts_with("invalid calendar event '"));
            prop_assert!(err
                .proxmox_message()
                .starts_with("unable to parse calendar event at '"));
        }
    }
    Ok(())
}
