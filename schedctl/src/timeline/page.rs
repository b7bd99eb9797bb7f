//! The status page: plain HTML with the timeline panels as inline SVG, the
//! jobs as tables and the overlaps as lists. No script.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use scheduler_core::snapshot::Model;

use super::svg::{document, overlap_lines, Panel, STYLE};
use super::{escape, Schedule, DAYS};

/// What the status page shows.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The fleet snapshot the schedules belong to.
    pub model: &'a Model,
    /// The schedule in force.
    pub current: &'a Schedule,
    /// The plan waiting for approval, if any.
    pub pending: Option<&'a Schedule>,
    /// When the page is made: printed in its header and marked on the week.
    pub now: DateTime<Utc>,
}

const PAGE_STYLE: &str = "\
body{font-family:sans-serif;margin:16px;color:#1f2328;background:#ffffff}\
h1{font-size:20px;margin:0 0 4px}\
.meta{color:#57606a;margin:0 0 12px}\
.panels{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}\
.panel{flex:1 1 640px;min-width:0}\
.panel svg{max-width:100%;height:auto}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
th,td{border:1px solid #d0d7de;padding:2px 8px;text-align:left}\
th{background:#f6f8fa}\
td.moved{color:#b35900;font-weight:bold}\
ul.overlaps{color:#cf222e;font-size:13px}\
p.ok{color:#1a7f37;font-size:13px}\
.legend span{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px;vertical-align:middle}";

/// The whole status page.
pub fn render_page(page: &Page<'_>) -> String {
    let model = page.model;
    let now = week_slot(page.now, model.slot_minutes);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Stagger: backup timeline</title>\n<style>{PAGE_STYLE}{STYLE}</style>\n</head>\n<body>\n<h1>Stagger: backup timeline</h1>\n<p class=\"meta\">As of {} · {} hosts · {} jobs · {}</p>\n",
        page.now.format("%Y-%m-%d %H:%M UTC"),
        model.hosts.len(),
        model.jobs.len(),
        pending_summary(page.pending)
    );
    out.push_str(LEGEND);
    out.push_str("<div class=\"panels\">\n");
    let mut schedules = vec![page.current];
    schedules.extend(page.pending);
    for schedule in schedules {
        let panel = Panel::draw(model, schedule, Some(now), false);
        let _ = write!(
            out,
            "<section class=\"panel\">\n{}{}{}</section>\n",
            document(&[panel]),
            job_table(model, schedule),
            overlap_section(model, schedule)
        );
    }
    out.push_str("</div>\n</body>\n</html>\n");
    out
}

const LEGEND: &str = "<p class=\"legend\">\
<span style=\"background:#2f6db5\"></span>backup run (start to start + reserved duration + guard)\
<span style=\"background:#d4761c\"></span>moved by the plan\
<span style=\"background:#d62728\"></span>over a shared resource's capacity\
<span style=\"background:#b6cbe6\"></span>host I/O load (row height = 100 %)</p>\n";

fn pending_summary(pending: Option<&Schedule>) -> String {
    match pending {
        None => "no plan pending".to_owned(),
        Some(plan) => {
            let moved = plan.moved.iter().filter(|m| **m).count();
            format!(
                "a plan is pending: it moves {moved} job(s) (`schedctl diff`, `schedctl apply`)"
            )
        }
    }
}

/// The week slot (fractional) of an instant; the week starts Monday 00:00 UTC.
fn week_slot(now: DateTime<Utc>, slot_minutes: u32) -> f64 {
    let minutes = now.weekday().num_days_from_monday() * 1440 + now.hour() * 60 + now.minute();
    (f64::from(minutes) + f64::from(now.second()) / 60.0) / f64::from(slot_minutes)
}

fn job_table(model: &Model, schedule: &Schedule) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>job</th><th>host</th><th>days (UTC)</th><th>start (UTC)</th><th>reserved incl. guard</th></tr>\n",
    );
    for (job, j) in model.jobs.iter().enumerate() {
        let start = model.format_start(schedule.starts[job]);
        let moved = schedule.moved.get(job).copied().unwrap_or(false);
        let start_cell = if moved {
            format!(
                "<td class=\"moved\">{start} (was {})</td>",
                model.format_start(j.current_start)
            )
        } else {
            format!("<td>{start}</td>")
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{start_cell}<td>{} min</td></tr>",
            escape(&j.id),
            escape(&model.hosts[j.host].name),
            days(&j.days),
            j.length * model.slot_minutes as usize
        );
    }
    out.push_str("</table>\n");
    out
}

fn days(days: &[u8]) -> String {
    if days.len() == 7 {
        return "every day".to_owned();
    }
    days.iter()
        .map(|&d| DAYS[usize::from(d) % 7])
        .collect::<Vec<_>>()
        .join(", ")
}

fn overlap_section(model: &Model, schedule: &Schedule) -> String {
    let lines = overlap_lines(model, schedule);
    if lines.is_empty() {
        return "<p class=\"ok\">No overlaps on shared resources.</p>\n".to_owned();
    }
    let mut out = String::from("<ul class=\"overlaps\">\n");
    for line in lines {
        let _ = writeln!(out, "<li>{}</li>", escape(&line));
    }
    out.push_str("</ul>\n");
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::tests::{model, TWO_HOSTS};
    use super::*;

    #[test]
    fn the_page_names_every_host_and_job_and_lists_the_overlap() {
        let model = model(TWO_HOSTS);
        let current = Schedule::current(&model);
        let now = Utc
            .with_ymd_and_hms(2026, 11, 30, 2, 25, 0)
            .single()
            .expect("a time");
        let html = render_page(&Page {
            model: &model,
            current: &current,
            pending: None,
            now,
        });
        for text in [
            "alpha",
            "beta",
            "job-a",
            "job-b",
            "no plan pending",
            "pbs Mon 02:20–02:30 UTC: job-a, job-b",
        ] {
            assert!(html.contains(text), "page lacks {text:?}");
        }
        assert!(!html.contains("<script"), "no script on the page");
        assert_eq!(week_slot(now, 5), 29.0, "2026-11-30 is a Monday");
    }

    #[test]
    fn names_are_escaped() {
        let text = TWO_HOSTS.replace("\"alpha\"", "\"a<b>&\"");
        let model = model(&text);
        let html = render_page(&Page {
            model: &model,
            current: &Schedule::current(&model),
            pending: None,
            now: Utc.timestamp_opt(0, 0).single().expect("epoch"),
        });
        assert!(html.contains("a&lt;b&gt;&amp;"));
        assert!(!html.contains("a<b>&"));
    }
}
