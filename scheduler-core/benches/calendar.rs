//! How many next-event computations per second: the issue asks for at least
//! 1 000 000 for `mon..fri 02:00`-style events, in UTC and in a zone with DST.
//!
//! Each iteration computes the next event after a different instant (a walk
//! through three years in steps of 7h 13m 17s), so the measurement covers
//! weekends, month ends and DST changes rather than one cached path.
//! `cargo bench -p scheduler-core --bench calendar`; criterion prints the
//! throughput in elements (computations) per second.

use std::hint::black_box;

use chrono_tz::Tz;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scheduler_core::calendar::CalendarEvent;

/// Start instants: 2024-01-01T00:00:00Z on, every 7h 13m 17s.
fn starts() -> Vec<i64> {
    (0..4096).map(|i| 1_704_067_200 + i * 25_997).collect()
}

fn next_events(c: &mut Criterion) {
    let starts = starts();
    let cases = [
        ("mon..fri 02:00", Tz::UTC),
        ("mon..fri 02:00", chrono_tz::Europe::Vienna),
        ("02:30 UTC", chrono_tz::Europe::Vienna),
        ("sat *-1..7 03:15", chrono_tz::Europe::Vienna),
        ("*:0/15", chrono_tz::Europe::Vienna),
    ];
    let mut group = c.benchmark_group("next_after");
    group.throughput(Throughput::Elements(starts.len() as u64));
    for (text, tz) in cases {
        let event = CalendarEvent::parse(text).expect("benchmark event parses");
        group.bench_function(format!("{text} in {tz}"), |b| {
            b.iter(|| {
                for &start in &starts {
                    black_box(event.next_after(black_box(start), tz));
                }
            })
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    c.bench_function("parse mon..fri 02:00", |b| {
        b.iter(|| CalendarEvent::parse(black_box("mon..fri 02:00")))
    });
}

criterion_group!(benches, next_events, parse);
criterion_main!(benches);
