//! `schedctl calendar`: parse a Proxmox calendar event and list its next runs.
//!
//! Arguments are resolved first (event, start instant, zone, count: any bad
//! one is exit 2 before anything is computed), then the runs are computed by
//! `scheduler-core` and printed like `systemd-analyze calendar`, or as one
//! JSON object with `--format json`.

use std::str::FromStr;

use anyhow::anyhow;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::Args;
use scheduler_core::calendar::CalendarEvent;
use serde::Serialize;

use crate::exit::{bad_input, CommandResult};
use crate::output::{self, Format};

/// Parse a Proxmox calendar event and show when it fires next.
#[derive(Debug, Args)]
pub struct CalendarArgs {
    /// The calendar event, as in jobs.cfg (`mon..fri 02:00`, `*/15`, `daily`, `sat 03:30 UTC`).
    pub event: String,
    /// Start after this instant: RFC 3339 (`2024-11-02T10:00:00Z`) or `@EPOCH`. Default: now.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// How many next runs to list.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub iterations: u32,
    /// IANA time zone the event is evaluated in (events ending in `UTC` ignore it). Default: the system zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Runs `schedctl calendar`.
pub fn run(args: &CalendarArgs) -> CommandResult {
    let request = Request::resolve(args)?;
    let runs = next_runs(&request);
    match args.format {
        Format::Json => output::print_json(&JsonReport::new(&request, &runs))?,
        Format::Text => output::print_text(&text_report(&request, &runs))?,
    }
    Ok(())
}

/// More runs than this is a typo, not a question (and would take long to print).
const MAX_ITERATIONS: u32 = 100_000;

/// The validated arguments.
struct Request {
    /// The event as given.
    text: String,
    event: CalendarEvent,
    after: i64,
    iterations: u32,
    tz: Tz,
}

impl Request {
    fn resolve(args: &CalendarArgs) -> Result<Self, crate::exit::CommandError> {
        let event = CalendarEvent::parse(&args.event).map_err(bad_input)?;
        let after = match &args.after {
            Some(text) => parse_instant(text).map_err(bad_input)?,
            None => Utc::now().timestamp(),
        };
        if !(1..=MAX_ITERATIONS).contains(&args.iterations) {
            return Err(bad_input(anyhow!(
                "--iterations {} is out of range; give 1 to {MAX_ITERATIONS}",
                args.iterations
            )));
        }
        let tz = match &args.tz {
            Some(name) => parse_zone(name).map_err(bad_input)?,
            None => system_zone(),
        };
        Ok(Request {
            text: args.event.clone(),
            event,
            after,
            iterations: args.iterations,
            tz,
        })
    }
}

/// `@EPOCH` (Unix seconds) or an RFC 3339 time.
fn parse_instant(text: &str) -> anyhow::Result<i64> {
    if let Some(epoch) = text.strip_prefix('@') {
        return epoch.parse::<i64>().map_err(|_| {
            anyhow!("--after '{text}': '@' must be followed by Unix seconds, e.g. '@1730541600'")
        });
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp())
        .map_err(|err| {
            anyhow!(
                "--after '{text}' is not a time ({err}); write RFC 3339 such as \
                 '2024-11-02T10:00:00Z' or '2024-11-02T23:00:00+13:00', or '@EPOCH' \
                 such as '@1730541600'"
            )
        })
}

fn parse_zone(name: &str) -> anyhow::Result<Tz> {
    Tz::from_str(name).map_err(|_| {
        anyhow!("--tz '{name}' is not an IANA time zone; write a name such as 'Europe/Vienna', 'Pacific/Auckland' or 'UTC'")
    })
}

/// The zone Proxmox would use on this machine: `TZ` if set, else the system's;
/// UTC (with a warning) when neither can be read.
fn system_zone() -> Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_string())
        .filter(|tz| !tz.is_empty());
    let name = from_env.or_else(|| iana_time_zone::get_timezone().ok());
    match name.as_deref().map(Tz::from_str) {
        Some(Ok(tz)) => tz,
        Some(Err(_)) => {
            let name = name.unwrap_or_default();
            eprintln!(
                "warning: the system time zone '{name}' is unknown; using UTC (pass --tz ZONE)"
            );
            Tz::UTC
        }
        None => {
            eprintln!("warning: cannot determine the system time zone; using UTC (pass --tz ZONE)");
            Tz::UTC
        }
    }
}

/// Up to `iterations` next runs, each strictly after the previous one.
fn next_runs(request: &Request) -> Vec<i64> {
    let mut runs = Vec::new();
    let mut after = request.after;
    while runs.len() < request.iterations as usize {
        match request.event.next_after(after, request.tz) {
            Some(next) => {
                runs.push(next);
                after = next;
            }
            None => break,
        }
    }
    runs
}

/// `--format json`: `{"event", "normalized", "next": [{"epoch", "utc", "local"}]}`.
#[derive(Debug, Serialize)]
struct JsonReport {
    event: String,
    normalized: String,
    next: Vec<JsonRun>,
}

#[derive(Debug, Serialize)]
struct JsonRun {
    epoch: i64,
    utc: String,
    local: String,
}

impl JsonReport {
    fn new(request: &Request, runs: &[i64]) -> Self {
        let next = runs
            .iter()
            .filter_map(|&epoch| {
                let utc = DateTime::from_timestamp(epoch, 0)?;
                Some(JsonRun {
                    epoch,
                    utc: utc.to_rfc3339_opts(SecondsFormat::Secs, true),
                    local: utc
                        .with_timezone(&request.tz)
                        .to_rfc3339_opts(SecondsFormat::Secs, false),
                })
            })
            .collect();
        JsonReport {
            event: request.text.clone(),
            normalized: request.event.to_string(),
            next,
        }
    }
}

/// The text report, laid out like `systemd-analyze calendar`.
fn text_report(request: &Request, runs: &[i64]) -> String {
    let zone = if request.event.is_utc() {
        format!("{} (the event is evaluated in UTC)", request.tz.name())
    } else {
        request.tz.name().to_string()
    };
    let mut lines = vec![
        line("Original form", &request.text),
        line("Normalized form", &request.event.to_string()),
        line("Time zone", &zone),
    ];
    if runs.is_empty() {
        lines.push(line("Next elapse", "never"));
    }
    for (index, &epoch) in runs.iter().enumerate() {
        let Some(utc) = DateTime::from_timestamp(epoch, 0) else {
            continue;
        };
        let label = match index {
            0 => "Next elapse".to_string(),
            n => format!("Iter. #{}", n + 1),
        };
        let local = utc.with_timezone(&request.tz);
        lines.push(line(
            &label,
            &local.format("%a %Y-%m-%d %H:%M:%S %Z").to_string(),
        ));
        lines.push(line(
            "(in UTC)",
            &utc.format("%a %Y-%m-%d %H:%M:%S UTC").to_string(),
        ));
    }
    lines.concat()
}

fn line(label: &str, value: &str) -> String {
    format!("{label:>15}: {value}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(event: &str, after: i64, iterations: u32, tz: Tz) -> Request {
        Request {
            text: event.to_string(),
            event: CalendarEvent::parse(event).expect("test event parses"),
            after,
            iterations,
            tz,
        }
    }

    #[test]
    fn text_report_reads_like_systemd_analyze() {
        // 2024-11-02T10:00:00Z is Saturday 23:00 in Auckland (NZDT, +13:00).
        let request = request(
            "mon..fri 02:00",
            1_730_541_600,
            2,
            chrono_tz::Pacific::Auckland,
        );
        let text = text_report(&request, &next_runs(&request));
        assert_eq!(
            text,
            "  Original form: mon..fri 02:00\n\
             Normalized form: mon..fri *-*-* 02:00:00\n\
             \x20     Time zone: Pacific/Auckland\n\
             \x20   Next elapse: Mon 2024-11-04 02:00:00 NZDT\n\
             \x20      (in UTC): Sun 2024-11-03 13:00:00 UTC\n\
             \x20      Iter. #2: Tue 2024-11-05 02:00:00 NZDT\n\
             \x20      (in UTC): Mon 2024-11-04 13:00:00 UTC\n"
        );
    }

    #[test]
    fn no_further_event_reads_never() {
        let request = request("2021-02-29", 0, 3, Tz::UTC);
        let text = text_report(&request, &next_runs(&request));
        assert!(text.ends_with("    Next elapse: never\n"), "{text}");
    }

    #[test]
    fn instants_are_rfc3339_or_epoch() {
        assert_eq!(parse_instant("@1730541600").ok(), Some(1_730_541_600));
        assert_eq!(parse_instant("@-1").ok(), Some(-1));
        assert_eq!(
            parse_instant("2024-11-02T23:00:00+13:00").ok(),
            Some(1_730_541_600)
        );
        assert!(parse_instant("2024-11-02 10:00").is_err());
        assert!(parse_instant("@soon").is_err());
    }
}
