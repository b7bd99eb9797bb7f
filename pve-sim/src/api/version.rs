//! `GET /version` and `GET /nodes/{node}/time`.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{Offset, TimeZone};
use serde_json::json;

use super::error::ApiError;
use super::{data, Shared};

/// `GET /version`: version, release, repoid from the sim config.
pub async fn version(State(state): State<Shared>) -> Response {
    let v = &state.config.version;
    data(json!({ "version": v.version, "release": v.release, "repoid": v.repoid }))
}

/// `GET /nodes/{node}/time`: zone, epoch, and the epoch shifted by the zone's offset.
pub async fn time(
    State(state): State<Shared>,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    let node = state.node(&node)?;
    let now = state.clock.now();
    Ok(data(json!({
        "timezone": node.timezone,
        "time": now,
        "localtime": local_time(now, node.tz()),
    })))
}

/// Epoch plus the zone's UTC offset at that instant (what PVE calls `localtime`).
pub fn local_time(epoch: i64, tz: chrono_tz::Tz) -> i64 {
    let offset = tz
        .timestamp_opt(epoch, 0)
        .single()
        .map(|t| i64::from(t.offset().fix().local_minus_utc()))
        .unwrap_or(0);
    epoch + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_adds_the_offset_of_the_instant() {
        let auckland: chrono_tz::Tz = "Pacific/Auckland".parse().expect("zone");
        assert_eq!(local_time(1_730_541_600, auckland), 1_730_588_400);
        assert_eq!(local_time(1_730_541_600, chrono_tz::UTC), 1_730_541_600);
    }
}
