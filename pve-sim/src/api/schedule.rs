//! `GET /cluster/jobs/schedule-analyze` (pve-manager `PVE/API2/Cluster/Jobs.pm`):
//! `iterations` next events chained from `starttime` (default now), in the
//! answering node's zone, each with `utc` in Perl's `gmtime` ctime form.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::TimeZone;
use scheduler_core::calendar::CalendarEvent;
use serde_json::json;

use super::error::ApiError;
use super::params::Params;
use super::{data, Shared};

/// The handler.
pub async fn analyze(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_form(query.unwrap_or_default().as_bytes());
    let now = state.clock.now();
    let tz = state.config.local_node().tz();
    Ok(data(events(&params, now, tz)?))
}

/// The answer's data for `params`, or the 400 of parameter verification.
pub fn events(params: &Params, now: i64, tz: chrono_tz::Tz) -> Result<serde_json::Value, ApiError> {
    params.only(&["schedule", "starttime", "iterations"])?;
    let mut errors = BTreeMap::new();
    let event = match params.get("schedule") {
        None => {
            errors.insert(
                "schedule".to_owned(),
                "property is missing and it is not optional".to_owned(),
            );
            None
        }
        Some(text) => match CalendarEvent::parse(text.trim()) {
            Ok(event) if text.len() <= 128 => Some(event),
            Ok(_) => {
                errors.insert(
                    "schedule".to_owned(),
                    "value may only be 128 characters long".to_owned(),
                );
                None
            }
            Err(e) => {
                let problem = if text.trim().is_empty() {
                    "unable to parse calendar event - event is empty".to_owned()
                } else {
                    e.proxmox_message()
                };
                errors.insert(
                    "schedule".to_owned(),
                    format!("invalid format - invalid calendar event '{text}' - {problem}\n"),
                );
                None
            }
        },
    };
    let start = integer(params, "starttime", 0, i64::MAX, now, &mut errors);
    let iterations = integer(params, "iterations", 1, 100, 10, &mut errors);
    let Some(event) = event.filter(|_| errors.is_empty()) else {
        return Err(ApiError::params(errors));
    };
    let mut result = Vec::new();
    let mut last = start;
    for _ in 0..iterations {
        let Some(next) = event.next_after(last, tz) else {
            break;
        };
        result.push(json!({ "timestamp": next, "utc": perl_gmtime(next) }));
        last = next;
    }
    Ok(json!(result))
}

/// An integer parameter with JSON-schema bounds, or its default.
fn integer(
    params: &Params,
    key: &str,
    min: i64,
    max: i64,
    default: i64,
    errors: &mut BTreeMap<String, String>,
) -> i64 {
    let Some(text) = params.get(key) else {
        return default;
    };
    match text.trim().parse::<i64>() {
        Ok(n) if n < min => {
            errors.insert(
                key.to_owned(),
                format!("value must have a minimum value of {min}"),
            );
            default
        }
        Ok(n) if n > max => {
            errors.insert(
                key.to_owned(),
                format!("value must have a maximum value of {max}"),
            );
            default
        }
        Ok(n) => n,
        Err(_) => {
            errors.insert(
                key.to_owned(),
                format!("type check ('integer') failed - got '{text}'"),
            );
            default
        }
    }
}

/// `scalar(gmtime($t))`: `Sat Nov  2 13:45:00 2024`.
pub fn perl_gmtime(epoch: i64) -> String {
    chrono::Utc
        .timestamp_opt(epoch, 0)
        .single()
        .map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmtime_is_perl_ctime() {
        assert_eq!(perl_gmtime(1_730_555_100), "Sat Nov  2 13:45:00 2024");
        assert_eq!(perl_gmtime(1_731_714_300), "Fri Nov 15 23:45:00 2024");
    }

    #[test]
    fn iterations_are_bounded() {
        let params = Params(vec![
            ("schedule".into(), "02:45".into()),
            ("iterations".into(), "101".into()),
        ]);
        let error = events(&params, 0, chrono_tz::UTC).expect_err("refused");
        assert_eq!(
            error.errors["iterations"],
            "value must have a maximum value of 100"
        );
    }
}
