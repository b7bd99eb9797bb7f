//! `schedctl calendar` as a user runs it: the built binary, its stdout, stderr and exit code.

use std::process::{Command, Output};

use super::util::{stderr, stdout};

fn schedctl(args: &[&str]) -> Output {
    super::util::schedctl(&[&["calendar"], args].concat())
}

fn json(output: &Output) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

#[test]
fn json_lists_the_next_runs_with_epoch_utc_and_local_time() {
    let output = schedctl(&[
        "mon..fri 02:00",
        "--after",
        "2024-11-02T10:00:00Z",
        "--iterations",
        "2",
        "--tz",
        "Pacific/Auckland",
        "--format",
        "json",
    ]);
    assert_eq!(
        json(&output),
        serde_json::json!({
            "event": "mon..fri 02:00",
            "normalized": "mon..fri *-*-* 02:00:00",
            "next": [
                {"epoch": 1730638800, "utc": "2024-11-03T13:00:00Z", "local": "2024-11-04T02:00:00+13:00"},
                {"epoch": 1730725200, "utc": "2024-11-04T13:00:00Z", "local": "2024-11-05T02:00:00+13:00"},
            ]
        })
    );
}

#[test]
fn utc_events_ignore_the_zone_but_show_local_time() {
    let output = schedctl(&[
        "02:30 UTC",
        "--after",
        "@0",
        "--tz",
        "Europe/Vienna",
        "--format",
        "json",
    ]);
    let report = json(&output);
    assert_eq!(report["next"][0]["epoch"], 9000);
    assert_eq!(report["next"][0]["local"], "1970-01-01T03:30:00+01:00");
}

#[test]
fn an_impossible_date_has_an_empty_next_list() {
    let output = schedctl(&[
        "2021-02-29",
        "--after",
        "@0",
        "--tz",
        "UTC",
        "--format",
        "json",
    ]);
    let report = json(&output);
    assert_eq!(report["next"], serde_json::json!([]));
    assert_eq!(report["normalized"], "2021-02-29 00:00:00");
}

#[test]
fn text_output_reads_like_systemd_analyze() {
    let output = schedctl(&["daily", "--after", "@0", "--tz", "UTC", "--iterations", "2"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "  Original form: daily\n\
         Normalized form: *-*-* 00:00:00\n\
         \x20     Time zone: UTC\n\
         \x20   Next elapse: Fri 1970-01-02 00:00:00 UTC\n\
         \x20      (in UTC): Fri 1970-01-02 00:00:00 UTC\n\
         \x20      Iter. #2: Sat 1970-01-03 00:00:00 UTC\n\
         \x20      (in UTC): Sat 1970-01-03 00:00:00 UTC\n"
    );
    let never = schedctl(&["2021-02-29", "--after", "@0", "--tz", "UTC"]);
    assert!(
        stdout(&never).contains("Next elapse: never"),
        "{}",
        stdout(&never)
    );
}

#[test]
fn a_bad_event_exits_2_showing_the_event_with_a_caret() {
    let output = schedctl(&["mon 2:60", "--tz", "UTC"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert_eq!(
        stderr(&output),
        "error: invalid calendar event 'mon 2:60': minute 60 is out of range (0..59) at position 6\n\
         \x20   mon 2:60\n\
         \x20         ^^\n\
         \x20 hint: write a minute from 0 to 59\n"
    );
}

#[test]
fn a_time_zone_name_in_the_event_gets_the_utc_hint() {
    let output = schedctl(&["02:00 Europe/Vienna", "--tz", "UTC"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("at position 6"), "{err}");
    assert!(
        err.contains("write the time in UTC and add ' UTC'"),
        "{err}"
    );
}

#[test]
fn a_bad_zone_exits_2_with_an_example() {
    let output = schedctl(&["daily", "--tz", "Mars/Olympus"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("'Mars/Olympus' is not an IANA time zone"),
        "{err}"
    );
    assert!(err.contains("Europe/Vienna"), "{err}");
}

#[test]
fn a_bad_after_exits_2_naming_the_accepted_forms() {
    let output = schedctl(&["daily", "--after", "tomorrow", "--tz", "UTC"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("RFC 3339") && err.contains("@EPOCH"), "{err}");
}

#[test]
fn zero_iterations_is_bad_input() {
    let output = schedctl(&["daily", "--iterations", "0", "--tz", "UTC"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--iterations"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_tz_the_tz_variable_is_the_zone() {
    let output = Command::new(env!("CARGO_BIN_EXE_schedctl"))
        .args(["calendar", "02:30", "--after", "@0", "--format", "json"])
        .env("TZ", "Asia/Kolkata")
        .output()
        .expect("schedctl runs");
    let report = json(&output);
    // 02:30 IST (+05:30) is 21:00 UTC the day before; after epoch 0 that is 1970-01-01T21:00Z.
    assert_eq!(report["next"][0]["utc"], "1970-01-01T21:00:00Z");
    assert_eq!(report["next"][0]["local"], "1970-01-02T02:30:00+05:30");
}
