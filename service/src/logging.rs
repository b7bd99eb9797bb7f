//! Logging: to journald when systemd started the process (its stdout and
//! stderr are then a journal stream: `JOURNAL_STREAM` is set), to stderr
//! otherwise, and to stderr as well when journald cannot be reached.
//!
//! The filter comes from `RUST_LOG` in its plain form — a default level and
//! `target=level` pairs, `info,sched_agent::hook=debug` — and is `info` when
//! unset or unreadable. (tracing-subscriber's regex-based `EnvFilter` would
//! add a regex engine to every daemon for span-field filters nobody uses here.)

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; `name` is the syslog identifier in the journal.
pub fn init(name: &str) {
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref());
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_syslog_identifier(name.to_owned());
            let _ = tracing_subscriber::registry()
                .with(journald)
                .with(filter)
                .try_init();
            return;
        }
    }
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(filter)
        .try_init();
}

/// The filter `RUST_LOG` asks for; `info` when it is unset or unreadable.
fn filter_from(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|text| Targets::from_str(text).ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_the_default_and_per_target_levels() {
        let filter = filter_from(Some("warn,sched_agent::hook=debug"));
        assert!(filter.would_enable("sched_agent::hook", &Level::DEBUG));
        assert!(!filter.would_enable("sched_agent::api", &Level::INFO));
        assert!(filter.would_enable("sched_agent::api", &Level::WARN));
    }

    #[test]
    fn no_or_unreadable_rust_log_means_info() {
        for rust_log in [None, Some("=loud=")] {
            let filter = filter_from(rust_log);
            assert!(
                filter.would_enable("anything", &Level::INFO),
                "{rust_log:?}"
            );
            assert!(
                !filter.would_enable("anything", &Level::DEBUG),
                "{rust_log:?}"
            );
        }
    }
}
