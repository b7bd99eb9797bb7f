//! Logging: to journald when systemd started the process (its stdout and
//! stderr are then a journal stream: `JOURNAL_STREAM` is set), to stderr
//! otherwise, and to stderr as well when journald cannot be reached. The
//! filter comes from `RUST_LOG`, `info` by default.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `name` is the syslog identifier in the journal.
pub fn init(name: &str) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_syslog_identifier(name.to_owned());
            let _ = tracing_subscriber::registry()
                .with(filter())
                .with(journald)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
