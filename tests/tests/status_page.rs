//! The status page and `schedctl plan --format svg|html`: the week's backup
//! timeline, rendered by headless Chromium, shows every host and job, the
//! overlaps of the origin story's schedule in red and the plan's moves.
//!
//! Until `schedctl serve` exists, the page comes from `schedctl plan
//! --format html` on the seed-homelab snapshot and is loaded from a file;
//! `harness::browser::render` takes any URL, the served page included.

use std::path::Path;
use std::process::Command;

use crate::harness::browser::{self, file_url, Rendered};
use crate::harness::{self, run_ok};

const SNAPSHOT: &str = "scheduler-core/tests/fixtures/planner/seed-homelab.json";

/// The timeline's fills (timeline/svg.rs): a run, a run the plan moves, an
/// overlap over capacity.
const RUN: [u8; 3] = [0x2f, 0x6d, 0xb5];
const MOVED: [u8; 3] = [0xd4, 0x76, 0x1c];
const OVERLAP: [u8; 3] = [0xd6, 0x27, 0x28];

/// `schedctl plan --format <format>` on the seed snapshot, written to `dir`.
fn plan_file(dir: &Path, format: &str) -> std::path::PathBuf {
    let output = run_ok(
        Command::new(harness::binary("schedctl", "schedctl"))
            .args([
                "plan",
                "--time-limit",
                "2",
                "--format",
                format,
                "--snapshot",
            ])
            .arg(harness::repo_file(SNAPSHOT)),
    );
    let path = dir.join(format!("timeline.{format}"));
    std::fs::write(&path, output).expect("write the timeline");
    path
}

/// Host names and job ids of the seed snapshot.
fn names() -> Vec<String> {
    let text = std::fs::read_to_string(harness::repo_file(SNAPSHOT)).expect("snapshot");
    let snapshot: serde_json::Value = serde_json::from_str(&text).expect("snapshot JSON");
    let mut names = Vec::new();
    for (list, key) in [("hosts", "name"), ("jobs", "id")] {
        for item in snapshot[list].as_array().expect("a list") {
            names.push(item[key].as_str().expect("a name").to_owned());
        }
    }
    assert_eq!(names.len(), 6, "three hosts, three jobs: {names:?}");
    names
}

fn assert_shows_the_fleet(rendered: &Rendered, what: &str) {
    assert!(
        rendered.png.len() > 1000 && rendered.png.starts_with(b"\x89PNG"),
        "{what}: the screenshot is no PNG ({} bytes)",
        rendered.png.len()
    );
    let colours = browser::distinct_colours(&rendered.png);
    assert!(colours > 1, "{what}: the screenshot has a single colour");
    for name in names() {
        assert!(
            rendered.dom.contains(&format!(">{name}<"))
                || rendered.dom.contains(&format!(">{name} ")),
            "{what}: the DOM has no text {name:?}"
        );
    }
}

#[test]
fn plan_svg_renders_every_host_and_job_with_overlaps_in_red() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = plan_file(dir.path(), "svg");
    let rendered = browser::render(&file_url(&svg), 2600, 420);
    assert_shows_the_fleet(&rendered, "plan --format svg");
    let pixels = browser::pixels_of(&rendered.png, &[RUN, MOVED, OVERLAP]);
    assert!(pixels[0] > 0, "no backup run is drawn");
    assert!(pixels[1] > 0, "the plan's moved runs are not drawn");
    assert!(
        pixels[2] > 0,
        "the origin's schedule overlaps on pbs:main every night, but nothing is red"
    );
    assert!(
        rendered.dom.contains("No overlaps"),
        "the plan for the seed fleet has no overlap and says so"
    );
}

#[test]
fn status_page_renders_every_host_and_job_beside_the_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let html = plan_file(dir.path(), "html");
    let rendered = browser::render(&file_url(&html), 2600, 900);
    assert_shows_the_fleet(&rendered, "the status page");
    for heading in ["Current schedule", "Plan", "a plan is pending"] {
        assert!(rendered.dom.contains(heading), "the page lacks {heading:?}");
    }
    assert!(
        !rendered.dom.contains("<script"),
        "the page needs no script"
    );
    let pixels = browser::pixels_of(&rendered.png, &[RUN, MOVED, OVERLAP]);
    assert!(
        pixels.iter().all(|&n| n > 0),
        "runs, moves and overlaps drawn: {pixels:?}"
    );
}
