//! The `/metrics` answer: OpenMetrics text, or the classic Prometheus text
//! format (0.0.4) for a client that asks only for `text/plain`.
//!
//! Prometheus prefers OpenMetrics and says so in its `Accept` header;
//! `promtool check metrics` reads only the classic format (on OpenMetrics it
//! misses the help of every counter and stops at `# EOF`), so a linter fetches
//! with `Accept: text/plain`. Both come from prometheus-client's own encoders.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;

/// The OpenMetrics content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The classic text format's content type.
pub const CLASSIC_TEXT: &str = prometheus_text::CONTENT_TYPE;

/// Which exposition format a request's `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text (the default).
    OpenMetrics,
    /// The classic text format 0.0.4.
    ClassicText,
}

impl Format {
    /// OpenMetrics unless `accept` names `text/plain` and not OpenMetrics.
    pub fn from_accept(accept: Option<&HeaderValue>) -> Format {
        let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("");
        if !accept.contains("application/openmetrics-text") && accept.contains("text/plain") {
            Format::ClassicText
        } else {
            Format::OpenMetrics
        }
    }
}

/// The registry's exposition in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut body = String::new();
    match format {
        Format::OpenMetrics => text::encode(&mut body, registry)?,
        Format::ClassicText => prometheus_text::encode(&mut body, registry)?,
    }
    Ok(body)
}

/// The `/metrics` response for a request with `accept`.
pub fn respond(registry: &Registry, accept: Option<&HeaderValue>) -> Response {
    let format = Format::from_accept(accept);
    let content_type = match format {
        Format::OpenMetrics => OPENMETRICS,
        Format::ClassicText => CLASSIC_TEXT,
    };
    match encode(registry, format) {
        Ok(body) => ([(CONTENT_TYPE, content_type)], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "Could not encode the metrics.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    fn registry() -> Registry {
        let mut registry = Registry::with_prefix("stagger");
        let counter: Counter = Counter::default();
        counter.inc();
        registry.register("hook_fail_opens", "Hook runs that let a backup go", counter);
        registry
    }

    #[test]
    fn prometheus_gets_openmetrics_and_promtool_gets_the_classic_format() {
        let prometheus = HeaderValue::from_static(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        );
        assert_eq!(Format::from_accept(Some(&prometheus)), Format::OpenMetrics);
        let curl = HeaderValue::from_static("text/plain");
        assert_eq!(Format::from_accept(Some(&curl)), Format::ClassicText);
        assert_eq!(Format::from_accept(None), Format::OpenMetrics);
    }

    #[test]
    fn the_classic_format_names_the_counter_sample_in_help_and_type() {
        let classic = encode(&registry(), Format::ClassicText).expect("encodes");
        assert!(
            classic.contains("# TYPE stagger_hook_fail_opens_total counter"),
            "{classic}"
        );
        assert!(!classic.contains("# EOF"), "{classic}");
        let open = encode(&registry(), Format::OpenMetrics).expect("encodes");
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
