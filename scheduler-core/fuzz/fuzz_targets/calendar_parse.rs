//! Fuzz target: any bytes as a calendar event.
//!
//! Parsing must never panic; an error must point inside the text and print;
//! an event must print a canonical form that parses back equal and is
//! stable; and computing next events (UTC and a DST zone) must not panic,
//! must move forward and must match the event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scheduler_core::calendar::CalendarEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match CalendarEvent::parse(text) {
        Err(err) => {
            assert!(err.position() <= text.len(), "{text:?}: position {}", err.position());
            let _ = err.to_string();
            let _ = err.proxmox_message();
        }
        Ok(event) => {
            let printed = event.to_string();
            let again = CalendarEvent::parse(&printed).expect("canonical form parses");
            assert_eq!(again, event, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed);
            for tz in [chrono_tz::UTC, chrono_tz::Europe::Vienna] {
                let mut after = 1_540_680_000; // 2018-10-27, the eve of a fold in Vienna
                for _ in 0..3 {
                    let Some(next) = event.next_after(after, tz) else {
                        break;
                    };
                    assert!(next > after, "{text:?}: {next} <= {after}");
                    assert!(event.matches(next, tz), "{text:?}: {next} does not match");
                    after = next;
                }
            }
        }
    }
});
