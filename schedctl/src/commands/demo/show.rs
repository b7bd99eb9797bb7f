//! What the demo prints, made from what the commands answered (their JSON):
//! a small timeline per host and the storm in plain words. Pure.

use std::fmt::Write as _;

use serde_json::Value;

/// Minutes per timeline cell.
const CELL: u32 = 5;

/// A host is busy when its load is at least this (the simulator's default).
const BUSY: f64 = 0.5;

/// One host's row of a timeline: its load, its runs, its storm minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The host.
    pub host: String,
    /// Load per 5-minute slot of the day (288 values).
    pub load: Vec<f64>,
    /// Runs as (start, minutes), minutes after 00:00 UTC.
    pub runs: Vec<(u32, f64)>,
    /// Mean storm minutes per 5-minute cell of the day, by its start minute.
    pub storm: Vec<(u32, f64)>,
}

/// The rows of a `schedctl simulate --format json` report, with each host's load.
pub fn rows(report: &Value, loads: &[(String, Vec<f64>)]) -> Vec<Row> {
    loads
        .iter()
        .map(|(host, load)| Row {
            host: host.clone(),
            load: load.clone(),
            runs: report["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|j| j["host"] == host.as_str())
                .filter_map(|j| {
                    let start = minute_of(j["start"].as_str()?)?;
                    Some((start, j["real_minutes_mean"].as_f64()?))
                })
                .collect(),
            storm: host_report(report, host)
                .and_then(|h| h["storm_times"].as_array())
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some((
                        minute_of(c["time"].as_str()?)?,
                        c["storm_minutes_mean"].as_f64()?,
                    ))
                })
                .collect(),
        })
        .collect()
}

fn host_report<'a>(report: &'a Value, host: &str) -> Option<&'a Value> {
    report["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == host)
}

/// `HH:MM` as minutes after midnight.
pub fn minute_of(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The half hours around every run of `rows`: from 30 minutes before the
/// first start to 30 minutes after the last end, at least three hours.
pub fn span(rows: &[&Row]) -> (u32, u32) {
    let starts = rows.iter().flat_map(|r| r.runs.iter().map(|&(s, _)| s));
    let ends = rows
        .iter()
        .flat_map(|r| r.runs.iter().map(|&(s, m)| s + m.ceil() as u32));
    let from = starts.min().unwrap_or(120).saturating_sub(30) / 30 * 30;
    let to = (ends.max().unwrap_or(240) + 30).div_ceil(30) * 30;
    (from, to.max(from + 180).min(1440))
}

/// The axis and one line per row, `label` before each row's cells.
pub fn timeline(rows: &[(&str, &Row)], (from, to): (u32, u32)) -> String {
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let mut axis = String::new();
    for minute in (from..to).step_by(30) {
        let _ = write!(
            axis,
            "{:<6}",
            format!("{:02}:{:02}", minute / 60, minute % 60)
        );
    }
    let _ = writeln!(out, "   {:width$}  {}", "", axis.trim_end());
    for (label, row) in rows {
        let cells: String = (from..to)
            .step_by(CELL as usize)
            .map(|m| cell(row, m))
            .collect();
        let _ = writeln!(out, "   {label:width$} |{cells}|");
    }
    out
}

/// The legend of [`timeline`].
pub const LEGEND: &str =
    "   = backup   # backup in the host's busy hours: the storm   . busy, no backup   (5 min a cell, the mean night)";

fn cell(row: &Row, minute: u32) -> char {
    let storm = row
        .storm
        .iter()
        .find(|&&(m, _)| m == minute)
        .map_or(0.0, |&(_, mean)| mean);
    if storm >= 1.0 {
        return '#';
    }
    let center = f64::from(minute) + f64::from(CELL) / 2.0;
    let running = row
        .runs
        .iter()
        .any(|&(s, m)| center >= f64::from(s) && center < f64::from(s) + m);
    if running {
        return '=';
    }
    let slot = (minute / 5) as usize;
    if row.load.get(slot).is_some_and(|&l| l >= BUSY) {
        '.'
    } else {
        ' '
    }
}

/// The storm in words: each disturbed host's storm minutes and the shared
/// resources' overlaps.
pub fn storm_words(report: &Value) -> Vec<String> {
    let nights = report["nights"].as_u64().unwrap_or(0);
    let mut lines = Vec::new();
    for host in report["hosts"].as_array().into_iter().flatten() {
        let minutes = host["storm_minutes_mean"].as_f64().unwrap_or(0.0);
        let probability = host["storm_probability"].as_f64().unwrap_or(0.0);
        let name = host["name"].as_str().unwrap_or("?");
        if minutes > 0.0 {
            lines.push(format!(
                "{name}: {minutes:.0} storm minutes a night (backup I/O in its busy hours), on {} of {nights} nights",
                (probability * nights as f64).round()
            ));
        }
    }
    if lines.is_empty() {
        lines.push("No host has a backup in its busy hours: no storm minutes.".to_owned());
    }
    for resource in report["resources"].as_array().into_iter().flatten() {
        let name = resource["name"].as_str().unwrap_or("?");
        let capacity = resource["capacity"].as_u64().unwrap_or(1);
        let probability = resource["overlap_probability"].as_f64().unwrap_or(0.0);
        let minutes = resource["overlap_minutes_mean"].as_f64().unwrap_or(0.0);
        let overlapping = (probability * nights as f64).round();
        if overlapping > 0.0 {
            lines.push(format!(
                "{name} (takes {capacity} backup at a time): backups overlap on {overlapping} of {nights} nights, {minutes:.0} minutes a night"
            ));
        } else {
            lines.push(format!(
                "{name} (takes {capacity} backup at a time): no overlap on any of the {nights} nights"
            ));
        }
    }
    lines
}

/// Storm minutes of `host` in a report.
pub fn storm_minutes(report: &Value, host: &str) -> f64 {
    host_report(report, host)
        .and_then(|h| h["storm_minutes_mean"].as_f64())
        .unwrap_or(0.0)
}

/// Nights with an overlap on any shared resource.
pub fn nights_with_overlap(report: &Value) -> u64 {
    report["fleet"]["nights_with_overlap"].as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_pihanga() -> Vec<f64> {
        (0..288)
            .map(|slot| if (30..42).contains(&slot) { 0.85 } else { 0.3 })
            .collect()
    }

    #[test]
    fn a_run_in_the_busy_hour_is_storm_and_the_rest_backup_or_busy() {
        let row = Row {
            host: "pihanga".into(),
            load: busy_pihanga(),
            runs: vec![(165, 55.0)],
            storm: vec![
                (165, 14.0),
                (170, 14.0),
                (175, 14.0),
                (180, 14.0),
                (185, 14.0),
                (190, 14.0),
                (195, 14.0),
                (200, 14.0),
                (205, 14.0),
            ],
        };
        let text = timeline(&[("pihanga", &row)], (120, 300));
        let cells: String = text
            .lines()
            .nth(1)
            .expect("row")
            .split('|')
            .nth(1)
            .expect("cells")
            .to_owned();
        // 02:00..02:30 quiet, 02:30..02:45 busy, 02:45..03:30 storm, 03:30..03:45 backup, then quiet.
        assert_eq!(&cells[..6], "      ");
        assert_eq!(&cells[6..9], "...");
        assert_eq!(&cells[9..18], "#########");
        assert_eq!(&cells[18..20], "==");
        assert!(cells[20..].trim().is_empty(), "{cells:?}");
        assert!(text.starts_with("            02:00 02:30 03:00"), "{text}");
    }

    #[test]
    fn the_span_covers_every_run_with_half_an_hour_around() {
        let row = Row {
            host: "h".into(),
            load: Vec::new(),
            runs: vec![(120, 25.0), (215, 44.0)],
            storm: Vec::new(),
        };
        assert_eq!(span(&[&row]), (90, 300));
    }

    #[test]
    fn words_name_the_storm_and_the_overlaps() {
        let report: Value = serde_json::json!({
            "nights": 14,
            "fleet": {"nights_with_overlap": 13},
            "hosts": [
                {"name": "hikurangi", "storm_minutes_mean": 0.0, "storm_probability": 0.0},
                {"name": "pihanga", "storm_minutes_mean": 31.4, "storm_probability": 1.0}
            ],
            "resources": [{"name": "pbs-main", "capacity": 1, "overlap_probability": 0.93, "overlap_minutes_mean": 9.6}]
        });
        let words = storm_words(&report);
        assert_eq!(
            words[0],
            "pihanga: 31 storm minutes a night (backup I/O in its busy hours), on 14 of 14 nights"
        );
        assert_eq!(words[1], "pbs-main (takes 1 backup at a time): backups overlap on 13 of 14 nights, 10 minutes a night");
        assert_eq!(nights_with_overlap(&report), 13);
        assert_eq!(storm_minutes(&report, "pihanga"), 31.4);
    }
}
