//! One timeline panel as SVG, and the SVG document with the current schedule
//! and the pending plan side by side.

use std::fmt::Write as _;

use scheduler_core::snapshot::Model;

use super::{escape, overlaps, week_time, Occupancy, Overlap, Schedule, DAYS};

/// Narrowest column of host names and job labels.
const MIN_LABEL_WIDTH: f64 = 210.0;
/// Where a job's label starts in the label column.
const JOB_LABEL_X: f64 = 10.0;
/// Width of a character of a job label (10 px sans-serif), rounded up.
const JOB_CHAR_WIDTH: f64 = 6.0;
/// Width of a character of a host name (12 px bold sans-serif), rounded up.
const HOST_CHAR_WIDTH: f64 = 8.0;
/// Space between the longest label and the week.
const LABEL_PAD: f64 = 8.0;
/// Horizontal scale: pixels per hour of the week.
const PX_PER_HOUR: f64 = 6.0;
/// Height of the day and hour axis above the rows.
const AXIS_HEIGHT: f64 = 30.0;
/// Height of a host's name line, above its lanes.
const HOST_HEIGHT: f64 = 16.0;
/// Height of one job's lane.
const LANE_HEIGHT: f64 = 14.0;
/// Space between two host rows.
const ROW_GAP: f64 = 6.0;
/// Height of one line of the overlap list.
const LINE_HEIGHT: f64 = 15.0;
/// Overlaps listed under a panel before "and N more".
const OVERLAPS_LISTED: usize = 12;
/// Space between the two panels.
const PANEL_GAP: f64 = 40.0;
/// Margin around everything.
const MARGIN: f64 = 10.0;

/// The styles of the drawing, inlined so that the SVG stands alone.
pub(super) const STYLE: &str = "\
.tl text{font-family:sans-serif;fill:#1f2328}\
.tl .title{font-size:15px;font-weight:bold}\
.tl .day{font-size:11px;fill:#57606a}\
.tl .host{font-size:12px;font-weight:bold}\
.tl .job{font-size:10px}\
.tl .note{font-size:11px}\
.tl .ok{fill:#1a7f37}\
.tl .bad{fill:#cf222e}\
.tl .grid-day{stroke:#afb8c1;stroke-width:1}\
.tl .grid-hour{stroke:#eaeef2;stroke-width:1}\
.tl .row{fill:#f6f8fa}\
.tl .load{fill:#b6cbe6}\
.tl .run{fill:#2f6db5}\
.tl .run.moved{fill:#d4761c}\
.tl .overlap{fill:#d62728}\
.tl .now{stroke:#1f2328;stroke-width:1.5;stroke-dasharray:4 3}";

/// The SVG document: the current schedule and, when there is one, the
/// pending plan beside it.
pub fn render_svg(model: &Model, current: &Schedule, pending: Option<&Schedule>) -> String {
    let mut panels = vec![Panel::draw(model, current, None, true)];
    if let Some(plan) = pending {
        panels.push(Panel::draw(model, plan, None, true));
    }
    document(&panels)
}

/// Panels side by side in one `<svg>`.
pub(super) fn document(panels: &[Panel]) -> String {
    let width = panels.iter().map(|p| p.width).sum::<f64>()
        + PANEL_GAP * (panels.len().saturating_sub(1)) as f64
        + 2.0 * MARGIN;
    let height = panels.iter().map(|p| p.height).fold(0.0, f64::max) + 2.0 * MARGIN;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"tl\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n<style>{STYLE}</style>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    );
    let mut x = MARGIN;
    for panel in panels {
        let _ = writeln!(
            out,
            "<g transform=\"translate({x:.1},{MARGIN:.1})\">\n{}</g>",
            panel.body
        );
        x += panel.width + PANEL_GAP;
    }
    out.push_str("</svg>\n");
    out
}

/// One schedule drawn: its SVG elements (origin at its top left) and size.
pub(super) struct Panel {
    pub(super) body: String,
    pub(super) width: f64,
    pub(super) height: f64,
}

impl Panel {
    /// Draws `schedule` over `model`; `now` is a week slot (fractional) to
    /// mark; `list_overlaps` writes the overlaps under the rows (the page lists
    /// them in HTML instead).
    pub(super) fn draw(
        model: &Model,
        schedule: &Schedule,
        now: Option<f64>,
        list_overlaps: bool,
    ) -> Panel {
        let scale = Scale::new(model);
        let occupancy = Occupancy::new(model, &schedule.starts);
        let mut body = String::new();
        let _ = writeln!(
            body,
            "<text class=\"title\" x=\"0\" y=\"14\">{}</text>",
            escape(&schedule.title)
        );
        let top = 20.0 + AXIS_HEIGHT;
        let rows = rows(model);
        let rows_height: f64 = rows.iter().map(|r| r.height()).sum();
        axis(&mut body, &scale, top, rows_height);
        let mut y = top;
        for row in &rows {
            draw_row(&mut body, model, schedule, &occupancy, &scale, row, y);
            y += row.height();
        }
        if let Some(slot) = now {
            let x = scale.x(slot);
            let _ = writeln!(
                body,
                "<line class=\"now\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{y:.1}\"><title>now</title></line>",
                top - 4.0
            );
        }
        y += 8.0;
        if list_overlaps {
            let found = occupancy.overlaps(model.resources.len());
            y = overlap_list(&mut body, model, &found, y);
        }
        Panel {
            body,
            width: scale.label_width + scale.week_width(),
            height: y,
        }
    }
}

/// Week slots to pixels, right of the label column.
struct Scale {
    label_width: f64,
    px_per_slot: f64,
    slots_per_day: usize,
    week: usize,
}

impl Scale {
    fn new(model: &Model) -> Scale {
        Scale {
            label_width: label_width(model),
            px_per_slot: PX_PER_HOUR * f64::from(model.slot_minutes) / 60.0,
            slots_per_day: model.slots_per_day,
            week: model.slots_per_week,
        }
    }

    fn x(&self, slot: f64) -> f64 {
        self.label_width + slot * self.px_per_slot
    }

    fn week_width(&self) -> f64 {
        self.week as f64 * self.px_per_slot
    }
}

/// The label column's width: the longest host name or job label of the
/// model, a moved job's `(was …)` included, so that no label runs into the
/// week and the schedule's and the plan's panels line up.
fn label_width(model: &Model) -> f64 {
    let chars = |text: &str| text.chars().count() as f64;
    let jobs = model.jobs.iter().map(|j| {
        let start = model.format_start(j.current_start);
        JOB_LABEL_X + JOB_CHAR_WIDTH * chars(&moved_label(&j.id, &start, &start))
    });
    let hosts = model.hosts.iter().map(|h| HOST_CHAR_WIDTH * chars(&h.name));
    jobs.chain(hosts)
        .map(|width| width + LABEL_PAD)
        .fold(MIN_LABEL_WIDTH, f64::max)
        .ceil()
}

/// A moved job's label: `backup-a 02:35 (was 02:00)`.
fn moved_label(id: &str, start: &str, was: &str) -> String {
    format!("{id} {start} (was {was})")
}

/// A host's row: its index and the jobs in its lanes.
struct Row {
    host: usize,
    jobs: Vec<usize>,
}

impl Row {
    fn height(&self) -> f64 {
        HOST_HEIGHT + LANE_HEIGHT * self.jobs.len().max(1) as f64 + ROW_GAP
    }
}

fn rows(model: &Model) -> Vec<Row> {
    (0..model.hosts.len())
        .map(|host| Row {
            host,
            jobs: (0..model.jobs.len())
                .filter(|&j| model.jobs[j].host == host)
                .collect(),
        })
        .collect()
}

/// Day names, day boundaries over every row, and light lines every 6 hours.
fn axis(out: &mut String, scale: &Scale, top: f64, rows_height: f64) {
    let bottom = top + rows_height;
    let day = scale.slots_per_day as f64;
    for (d, name) in DAYS.iter().enumerate() {
        let start = d as f64 * day;
        for quarter in 1..4 {
            let x = scale.x(start + day * f64::from(quarter) / 4.0);
            let _ = writeln!(
                out,
                "<line class=\"grid-hour\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>"
            );
        }
        let x = scale.x(start);
        let _ = writeln!(
            out,
            "<line class=\"grid-day\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>\n<text class=\"day\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{name} (UTC)</text>",
            top - AXIS_HEIGHT + 8.0,
            scale.x(start + day / 2.0),
            top - 8.0
        );
    }
    let x = scale.x(scale.week as f64);
    let _ = writeln!(
        out,
        "<line class=\"grid-day\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>",
        top - AXIS_HEIGHT + 8.0
    );
}

fn draw_row(
    out: &mut String,
    model: &Model,
    schedule: &Schedule,
    occupancy: &Occupancy,
    scale: &Scale,
    row: &Row,
    top: f64,
) {
    let host = &model.hosts[row.host];
    let height = row.height() - ROW_GAP;
    let _ = writeln!(
        out,
        "<g class=\"host-row\" data-host=\"{name}\">\n<rect class=\"row\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{height:.1}\"/>",
        scale.label_width,
        scale.week_width(),
        name = escape(&host.name)
    );
    load_band(out, model, scale, row.host, top, height);
    let _ = writeln!(
        out,
        "<text class=\"host\" x=\"0\" y=\"{:.1}\">{}</text>",
        top + 12.0,
        escape(&host.name)
    );
    for (lane, &job) in row.jobs.iter().enumerate() {
        let lane_top = top + HOST_HEIGHT + LANE_HEIGHT * lane as f64;
        job_lane(out, model, schedule, occupancy, scale, job, lane_top);
    }
    out.push_str("</g>\n");
}

/// The host's load profile over the week as a step area rising from the
/// row's bottom (full height = load 1).
fn load_band(out: &mut String, model: &Model, scale: &Scale, host: usize, top: f64, height: f64) {
    let load = |t: usize| model.host_load(host, t).clamp(0.0, 1.0);
    if (0..scale.week).all(|t| load(t) == 0.0) {
        return;
    }
    let bottom = top + height;
    let mut path = format!("M{:.1},{bottom:.1}", scale.x(0.0));
    let mut t = 0;
    while t < scale.week {
        let value = load(t);
        let mut end = t + 1;
        while end < scale.week && load(end) == value {
            end += 1;
        }
        let _ = write!(
            path,
            "V{:.1}H{:.1}",
            bottom - value * height,
            scale.x(end as f64)
        );
        t = end;
    }
    let _ = writeln!(
        out,
        "<path class=\"load\" d=\"{path}V{bottom:.1}Z\"><title>I/O load of {}</title></path>",
        escape(&model.hosts[host].name)
    );
}

fn job_lane(
    out: &mut String,
    model: &Model,
    schedule: &Schedule,
    occupancy: &Occupancy,
    scale: &Scale,
    job: usize,
    top: f64,
) {
    let j = &model.jobs[job];
    let start = schedule.starts[job];
    let moved = schedule.moved.get(job).copied().unwrap_or(false);
    let label = if moved {
        moved_label(
            &j.id,
            &model.format_start(start),
            &model.format_start(j.current_start),
        )
    } else {
        format!("{} {}", j.id, model.format_start(start))
    };
    let _ = writeln!(
        out,
        "<text class=\"job\" x=\"{JOB_LABEL_X}\" y=\"{:.1}\">{}</text>",
        top + 10.5,
        escape(&label)
    );
    let class = if moved { "run moved" } else { "run" };
    for &day in &j.days {
        let first = usize::from(day) * model.slots_per_day + start;
        let title = format!(
            "{} on {}: {}–{} UTC",
            j.id,
            model.hosts[j.host].name,
            week_time(model, first),
            week_time(model, first + j.length)
        );
        for (from, to) in segments(first, j.length, scale.week) {
            bar(out, scale, class, from, to, top, &title);
            for (a, b) in runs_where(from, to, |t| occupancy.job_over(model, job, t)) {
                bar(
                    out,
                    scale,
                    "overlap",
                    a,
                    b,
                    top,
                    "over capacity on a shared resource",
                );
            }
        }
    }
}

fn bar(
    out: &mut String,
    scale: &Scale,
    class: &str,
    from: usize,
    to: usize,
    top: f64,
    title: &str,
) {
    let x = scale.x(from as f64);
    let width = ((to - from) as f64 * scale.px_per_slot).max(1.5);
    let _ = writeln!(
        out,
        "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
        top + 2.0,
        LANE_HEIGHT - 4.0,
        escape(title)
    );
}

/// A run of `length` slots from week slot `first`, cut where the week wraps.
fn segments(first: usize, length: usize, week: usize) -> Vec<(usize, usize)> {
    let first = first % week;
    let end = first + length.min(week);
    if end <= week {
        vec![(first, end)]
    } else {
        vec![(first, week), (0, end - week)]
    }
}

/// The maximal stretches of `[from, to)` where `hit` holds.
fn runs_where(from: usize, to: usize, hit: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut t = from;
    while t < to {
        if hit(t) {
            let a = t;
            while t < to && hit(t) {
                t += 1;
            }
            found.push((a, t));
        } else {
            t += 1;
        }
    }
    found
}

/// The panel's list of overlaps (or that there are none); returns the new bottom.
fn overlap_list(out: &mut String, model: &Model, found: &[Overlap], mut y: f64) -> f64 {
    y += LINE_HEIGHT;
    if found.is_empty() {
        let _ = writeln!(
            out,
            "<text class=\"note ok\" x=\"0\" y=\"{y:.1}\">No overlaps: every shared resource stays within its capacity all week.</text>"
        );
        return y + 6.0;
    }
    let _ = writeln!(
        out,
        "<text class=\"note bad\" x=\"0\" y=\"{y:.1}\">{} overlap(s) over capacity (red):</text>",
        found.len()
    );
    for overlap in found.iter().take(OVERLAPS_LISTED) {
        y += LINE_HEIGHT;
        let _ = writeln!(
            out,
            "<text class=\"note\" x=\"10\" y=\"{y:.1}\">{}</text>",
            escape(&describe(model, overlap))
        );
    }
    if found.len() > OVERLAPS_LISTED {
        y += LINE_HEIGHT;
        let _ = writeln!(
            out,
            "<text class=\"note\" x=\"10\" y=\"{y:.1}\">and {} more</text>",
            found.len() - OVERLAPS_LISTED
        );
    }
    y + 6.0
}

/// `pbs:main Mon 02:20–02:30 UTC: backup-a, backup-b`.
pub(super) fn describe(model: &Model, overlap: &Overlap) -> String {
    let jobs: Vec<&str> = overlap
        .jobs
        .iter()
        .map(|&j| model.jobs[j].id.as_str())
        .collect();
    let from = week_time(model, overlap.from);
    let to = week_time(model, overlap.to);
    // "Mon 02:20–02:30" within a day, "Sun 23:50–Mon 00:20" across midnight
    let to = match (from.split_once(' '), to.split_once(' ')) {
        (Some((day_from, _)), Some((day_to, time))) if day_from == day_to => time.to_owned(),
        _ => to,
    };
    format!(
        "{} {from}–{to} UTC: {}",
        model.resources[overlap.resource].name,
        jobs.join(", ")
    )
}

/// The overlaps of a schedule, described (for the page's lists).
pub(super) fn overlap_lines(model: &Model, schedule: &Schedule) -> Vec<String> {
    overlaps(model, schedule)
        .iter()
        .map(|o| describe(model, o))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_column_fits_the_longest_label_and_is_the_same_for_every_schedule() {
        use super::super::tests::{model, TWO_HOSTS};
        let short = model(TWO_HOSTS);
        assert_eq!(
            label_width(&short),
            MIN_LABEL_WIDTH,
            "short ids keep the minimum"
        );
        let long_id = "hikurangi/backup-hikurangi-every-guest";
        let long = model(&TWO_HOSTS.replace("\"job-a\"", &format!("\"{long_id}\"")));
        let label = moved_label(long_id, "02:35", "02:00");
        let width = label_width(&long);
        assert!(
            width >= JOB_LABEL_X + JOB_CHAR_WIDTH * label.len() as f64,
            "{width} px for {label:?}"
        );
        // The week starts right of the labels, in both panels alike.
        let current = Schedule::current(&long);
        let panel = Panel::draw(&long, &current, None, false);
        assert!(panel
            .body
            .contains(&format!("<rect class=\"row\" x=\"{width:.1}\"")));
        assert_eq!(panel.width, width + Scale::new(&long).week_width());
    }

    #[test]
    fn runs_are_cut_where_the_week_wraps() {
        assert_eq!(segments(10, 5, 2016), vec![(10, 15)]);
        assert_eq!(segments(2014, 5, 2016), vec![(2014, 2016), (0, 3)]);
    }

    #[test]
    fn stretches_are_maximal() {
        let hits = [2, 3, 4, 8];
        assert_eq!(
            runs_where(0, 10, |t| hits.contains(&t)),
            vec![(2, 5), (8, 9)]
        );
    }
}
