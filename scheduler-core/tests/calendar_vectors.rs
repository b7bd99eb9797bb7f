//! Every row of the calendar vectors recorded from proxmox-time must pass.
//!
//! `calendar-vectors.tsv`: schedule, start, expected next (or valid / error /
//! none / some), the process's time zone. `calendar-doc-examples.tsv`: the
//! strings of the Proxmox docs and GUI, whether they parse and their first
//! event after epoch 0 in UTC. Each test checks every row and reports all
//! failing rows at once.

use std::path::PathBuf;

use chrono_tz::Tz;
use scheduler_core::calendar::CalendarEvent;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proxmox")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The data rows: not comments, not the header, split on tabs.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .skip(1)
        .map(|line| line.split('\t').collect())
        .collect()
}

/// What a row of calendar-vectors.tsv expects, checked; `Err` says what we got instead.
fn check_vector(schedule: &str, start: &str, expected: &str, tz: Tz) -> Result<(), String> {
    let parsed = CalendarEvent::parse(schedule);
    match (expected, parsed) {
        ("error", Ok(event)) => return Err(format!("parsed as {event}")),
        ("error", Err(_)) => return Ok(()),
        (_, Err(err)) => return Err(format!("parse error: {err}")),
        ("valid", Ok(_)) => return Ok(()),
        (_, Ok(event)) => {
            let start: i64 = start.parse().map_err(|_| format!("bad start {start:?}"))?;
            let got = event.next_after(start, tz);
            let ok = match expected {
                "none" => got.is_none(),
                "some" => got.is_some(),
                epoch => epoch.parse::<i64>().ok() == got,
            };
            if !ok {
                return Err(format!("{got:?}"));
            }
            if let Some(next) = got {
                if !event.matches(next, tz) {
                    return Err(format!("{next} does not match the event"));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_calendar_vector_passes() {
    let text = fixture("calendar-vectors.tsv");
    let rows = rows(&text);
    assert!(rows.len() > 200, "only {} rows read", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let [schedule, start, expected, tz, ..] = row[..] else {
            panic!("short row {row:?}");
        };
        let zone: Tz = tz
            .parse()
            .unwrap_or_else(|err| panic!("zone {tz:?}: {err}"));
        if let Err(got) = check_vector(schedule, start, expected, zone) {
            failures.push(format!(
                "schedule={schedule:?} start={start} tz={tz} expected={expected} got={got}"
            ));
        }
    }
    assert_every_row_passes(&failures, rows.len());
}

#[test]
fn every_doc_example_passes() {
    let text = fixture("calendar-doc-examples.tsv");
    let rows = rows(&text);
    assert!(rows.len() > 60, "only {} rows read", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let [schedule, valid, next, ..] = row[..] else {
            panic!("short row {row:?}");
        };
        let got = match CalendarEvent::parse(schedule) {
            Err(err) if valid == "no" => {
                // Errors must point inside the text and never panic to print.
                assert!(err.position() <= schedule.len(), "{schedule:?}: {err}");
                continue;
            }
            Err(err) => format!("parse error: {err}"),
            Ok(event) if valid == "no" => format!("parsed as {event}"),
            Ok(event) => match event.next_after(0, Tz::UTC) {
                Some(got) if next.parse::<i64>().ok() == Some(got) => continue,
                got => format!("next {got:?}"),
            },
        };
        failures.push(format!(
            "schedule={schedule:?} valid={valid} next={next} got={got}"
        ));
    }
    assert_every_row_passes(&failures, rows.len());
}

#[test]
fn the_recorded_proxmox_error_messages_are_reproduced() {
    // From fixtures/expected/jobs-invalid-bad-schedule.expected.json and
    // api-error-400-bad-schedule.json (real Proxmox output).
    let cases = [
        ("*/00", "unable to parse calendar event at '/00' - Nom(Eof)"),
        (
            "2:60",
            "unable to parse calendar event at '2:60' - Context(\"date or time specification\")",
        ),
        (
            "02:00 Europe/Vienna",
            "unable to parse calendar event at ' Europe/Vienna' - Nom(Eof)",
        ),
    ];
    for (event, message) in cases {
        let err = CalendarEvent::parse(event).expect_err(event);
        assert_eq!(err.proxmox_message(), message, "{event}");
    }
    let expected = fixture("fixtures/expected/jobs-invalid-bad-schedule.expected.json");
    for (event, message) in cases {
        let line = format!("invalid calendar event '{event}' - {message}");
        let escaped = line.replace('"', "\\\"");
        assert!(expected.contains(&escaped), "fixture lacks {escaped}");
    }
}

#[test]
fn proxmox_time_upstream_cases_outside_the_shipped_half() {
    // Cases of proxmox-time's own test (src/test.rs, test_compute_next_event),
    // computed in UTC from Thursday 1970-01-01 (0), 2020-07-31 (JUL) and 2020-12-31 (DEC).
    const MIN: i64 = 60;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    const JUL: i64 = 1_596_153_600;
    const DEC: i64 = 1_609_372_800;
    let cases: &[(&str, i64, Option<i64>)] = &[
        ("*:3:5", 0, Some(3 * MIN + 5)),
        ("mon 2:*", 0, Some(4 * DAY + 2 * HOUR)),
        ("tue", 0, Some(5 * DAY)),
        ("thu", 0, Some(7 * DAY)),
        ("4..10/2:0", 11 * HOUR, Some(DAY + 4 * HOUR)),
        ("4..10/2:0", 5 * HOUR, Some(6 * HOUR)),
        ("10,5:8,4", 0, Some(5 * HOUR + 4 * MIN)),
        ("4..10,6:5/5,23", 0, Some(4 * HOUR + 5 * MIN)),
        ("sun", JUL, Some(JUL + 2 * DAY)),
        ("thu", JUL, Some(JUL + 6 * DAY)),
        ("tue", DEC, Some(DEC + 5 * DAY)),
        ("daily", 1, Some(DAY)),
        ("5/2:0", 7 * HOUR, Some(9 * HOUR)),
        ("2020-07-31", 0, Some(JUL)),
        ("02-29", 0, Some(2 * 365 * DAY + (31 + 28) * DAY)),
        ("2020-7..9-2/2", JUL, Some(JUL + 2 * DAY)),
        ("minutely", 0, Some(MIN)),
        ("weekly", 0, Some(4 * DAY)),
        ("quarterly", 0, Some((31 + 28 + 31) * DAY)),
        (
            "semi-annually",
            0,
            Some((31 + 28 + 31 + 30 + 31 + 30) * DAY),
        ),
        ("annually", 0, Some(365 * DAY)),
        ("02-30", 0, None),
    ];
    let mut failures = Vec::new();
    for &(schedule, start, expected) in cases {
        let event = CalendarEvent::parse(&format!("{schedule} UTC")).expect(schedule);
        let got = event.next_after(start, chrono_tz::Europe::Vienna);
        if got != expected {
            failures.push(format!(
                "{schedule} after {start}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for weekdays in ["MON", "thursday", "mon,tue..wednesday,fri..sat", "sun..sat"] {
        assert!(CalendarEvent::parse(weekdays).is_ok(), "{weekdays}");
    }
}

/// Fails with every failing row at once, so one run shows the whole picture.
fn assert_every_row_passes(failures: &[String], rows: usize) {
    assert!(
        failures.is_empty(),
        "{} of {} rows fail:\n{}",
        failures.len(),
        rows,
        failures.join("\n")
    );
}
