//! The canonical ("normalized") form of a calendar event.
//!
//! Systemd-like and explicit: `[weekdays ]YEARS-MONTHS-DAYS HOURS:MINUTES:SECONDS[ UTC]`,
//! e.g. `mon..fri *-*-* 02:00:00` or `*-*-* *:00/15:00`. Keywords are
//! expanded (`daily` prints as `*-*-* 00:00:00`). Every list is printed item by
//! item as it was written, so the text parses back to an equal event, and
//! printing that again gives the same text.

use std::fmt::{self, Write};

use super::{CalendarEvent, Value};

const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl fmt::Display for CalendarEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weekdays != 0 {
            write_weekdays(f, self.weekdays)?;
            f.write_char(' ')?;
        }
        write_list(f, &self.year, 4)?;
        f.write_char('-')?;
        write_list(f, &self.month, 2)?;
        f.write_char('-')?;
        write_list(f, &self.day, 2)?;
        f.write_char(' ')?;
        write_list(f, &self.hour, 2)?;
        f.write_char(':')?;
        write_list(f, &self.minute, 2)?;
        f.write_char(':')?;
        write_list(f, &self.second, 2)?;
        if self.utc {
            f.write_str(" UTC")?;
        }
        Ok(())
    }
}

/// Runs of consecutive days as `a..b`, single days by name: `mon,wed..fri`.
fn write_weekdays(f: &mut fmt::Formatter<'_>, weekdays: u8) -> fmt::Result {
    let mut first = true;
    let mut day = 0;
    while day < 7 {
        if weekdays & (1 << day) == 0 {
            day += 1;
            continue;
        }
        let mut last = day;
        while last + 1 < 7 && weekdays & (1 << (last + 1)) != 0 {
            last += 1;
        }
        if !first {
            f.write_char(',')?;
        }
        first = false;
        f.write_str(WEEKDAY_NAMES[day])?;
        if last > day {
            write!(f, "..{}", WEEKDAY_NAMES[last])?;
        }
        day = last + 1;
    }
    Ok(())
}

/// `*` for any value, else the items, zero-padded to `width` digits.
fn write_list(f: &mut fmt::Formatter<'_>, list: &[Value], width: usize) -> fmt::Result {
    if list.is_empty() {
        return f.write_char('*');
    }
    for (index, value) in list.iter().enumerate() {
        if index > 0 {
            f.write_char(',')?;
        }
        match *value {
            Value::Single(v) => write!(f, "{v:0width$}")?,
            Value::Range(start, end) => write!(f, "{start:0width$}..{end:0width$}")?,
            Value::Repeated(start, repeat, None) => write!(f, "{start:0width$}/{repeat}")?,
            Value::Repeated(start, repeat, Some(end)) => {
                write!(f, "{start:0width$}..{end:0width$}/{repeat}")?
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::calendar::CalendarEvent;

    fn normalized(text: &str) -> String {
        match CalendarEvent::parse(text) {
            Ok(event) => event.to_string(),
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn canonical_forms_are_explicit() {
        assert_eq!(normalized("mon..fri 02:00"), "mon..fri *-*-* 02:00:00");
        assert_eq!(normalized("*:0/15"), "*-*-* *:00/15:00");
        assert_eq!(normalized("daily"), "*-*-* 00:00:00");
        assert_eq!(normalized("minutely"), "*-*-* *:*:00");
        assert_eq!(normalized("weekly UTC"), "mon *-*-* 00:00:00 UTC");
        assert_eq!(normalized("quarterly"), "*-01,04,07,10-01 00:00:00");
        assert_eq!(normalized("fri..mon"), "mon,fri..sun *-*-* 00:00:00");
        assert_eq!(normalized("Sat *-1..7 15:00"), "sat *-*-01..07 15:00:00");
        assert_eq!(normalized("1965/5-01-01"), "1965/5-01-01 00:00:00");
        assert_eq!(normalized("25:00"), "*-*-* *:25:00");
        assert_eq!(normalized("*/2:*"), "*-*-* 00/2:*:00");
        assert_eq!(normalized("4..10/2:0"), "*-*-* 04..10/2:00:00");
    }

    #[test]
    fn canonical_forms_parse_back_equal() {
        for text in [
            "mon..fri 02:00",
            "fri..mon 1..3/0:5/0",
            "*-0-1",
            "12:00:*",
            "dailyUTC",
        ] {
            let event = CalendarEvent::parse(text).expect("test input parses");
            let again = CalendarEvent::parse(&event.to_string()).expect("canonical form parses");
            assert_eq!(again, event, "{text}");
        }
    }
}
