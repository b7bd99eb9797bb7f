//! The status page at `/`: the ops timeline (`crate::timeline::render_page`)
//! of what the latest round saw, with the coordinator's own warnings above
//! it (hosts that did not answer, applies that never finished).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::rounds::View;
use crate::timeline::{self, Schedule};

/// The page for `view` at `now`.
pub fn render(view: &View, now: DateTime<Utc>) -> String {
    let timeline = match timeline_page(view, now) {
        Ok(page) => page,
        Err(reason) => format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Stagger: backup timeline</title>\n</head>\n<body>\n<h1>Stagger: backup timeline</h1>\n<p>{}</p>\n</body>\n</html>\n",
            escape(&reason)
        ),
    };
    let notes = notes(view);
    if notes.is_empty() {
        return timeline;
    }
    match timeline.find("<body>") {
        Some(at) => {
            let end = at + "<body>".len();
            format!("{}\n{notes}{}", &timeline[..end], &timeline[end..])
        }
        None => timeline + &notes,
    }
}

/// The timeline of the plan waiting for approval (beside the schedule it
/// was made from), else of the fleet as collected.
fn timeline_page(view: &View, now: DateTime<Utc>) -> Result<String, String> {
    if let Some((id, snapshot, plan)) = &view.pending {
        let model = snapshot
            .validate()
            .map_err(|e| format!("the stored plan {id} has an invalid snapshot: {e}"))?;
        let current = Schedule::current(&model);
        let pending = Schedule::from_plan(
            &model,
            plan,
            &format!("Plan {id} (waiting for `schedctl apply`)"),
        )
        .map_err(|e| e.to_string())?;
        return Ok(timeline::render_page(&timeline::Page {
            model: &model,
            current: &current,
            pending: Some(&pending),
            now,
        }));
    }
    let Some(snapshot) = &view.current else {
        return Err(
            "No collection has finished yet: the page fills in after the first round.".to_owned(),
        );
    };
    let model = snapshot
        .validate()
        .map_err(|e| format!("the collected snapshot is not valid: {e}"))?;
    let current = Schedule::current(&model);
    Ok(timeline::render_page(&timeline::Page {
        model: &model,
        current: &current,
        pending: None,
        now,
    }))
}

fn notes(view: &View) -> String {
    let mut out = String::new();
    if view.unfinished.is_empty() && view.unreachable.is_empty() && view.last_action.is_none() {
        return out;
    }
    out.push_str("<div class=\"coordinator\">\n");
    for line in &view.unfinished {
        let _ = writeln!(
            out,
            "<p class=\"unfinished\"><b>Unfinished apply:</b> {}</p>",
            escape(line)
        );
    }
    for (host, error) in &view.unreachable {
        let _ = writeln!(
            out,
            "<p class=\"unreachable\"><b>{}</b> did not answer the latest collection: {}</p>",
            escape(host),
            escape(error)
        );
    }
    if let Some(action) = &view.last_action {
        let _ = writeln!(out, "<p class=\"action\">Latest: {}</p>", escape(action));
    }
    out.push_str("</div>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheduler_core::snapshot::Snapshot;

    const SEED: &str =
        include_str!("../../../scheduler-core/tests/fixtures/planner/seed-homelab.json");

    #[test]
    fn before_the_first_round_the_page_says_so() {
        let page = render(&View::default(), Utc::now());
        assert!(page.contains("No collection has finished yet"), "{page}");
    }

    #[test]
    fn the_page_shows_every_host_and_the_coordinators_warnings_escaped() {
        let view = View {
            collected_at: Some(0),
            current: Some(Snapshot::from_json(SEED).expect("seed")),
            unfinished: vec!["apply 3 of plan 2 did not finish: pihanga writing".to_owned()],
            unreachable: vec![("ruapehu".to_owned(), "refused <connection>".to_owned())],
            ..View::default()
        };
        let page = render(&view, Utc::now());
        for name in ["hikurangi", "ruapehu", "pihanga", "backup-pihanga"] {
            assert!(page.contains(name), "{name} missing");
        }
        assert!(
            page.contains("Unfinished apply:</b> apply 3 of plan 2"),
            "{page}"
        );
        assert!(page.contains("refused &lt;connection&gt;"), "{page}");
        assert!(
            page.find("Unfinished apply").expect("note") < page.find("<svg").expect("timeline")
        );
    }
}
