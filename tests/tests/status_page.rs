//! The status page and `schedctl plan --format svg|html`: the week's backup
//! timeline, rendered by headless Chromium, shows every host and job, the
//! current schedule beside the pending plan, and red only where runs overlap
//! beyond a shared resource's capacity.
//!
//! The page is the one a real `schedctl serve` serves at `/` to a browser on
//! its own machine (loopback needs no token), on the origin fleet of
//! simulated Proxmox hosts (`e2e::fleet`: pve-sim trees reached through
//! sched-agent and through the Proxmox API) once its first round has made a
//! plan; the files are `schedctl plan`'s on the seed-homelab snapshot.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::e2e::fleet::{Fleet, Via};
use crate::harness::browser::{self, file_url, Image, Rendered};
use crate::harness::daemons::get_text;
use crate::harness::process::{free_port, Daemon};
use crate::harness::{self, run_ok};

const SNAPSHOT: &str = "scheduler-core/tests/fixtures/planner/seed-homelab.json";

/// The timeline's fills (timeline/svg.rs): a run, a run the plan moves, an
/// overlap over capacity.
const RUN: [u8; 3] = [0x2f, 0x6d, 0xb5];
const MOVED: [u8; 3] = [0xd4, 0x76, 0x1c];
const OVERLAP: [u8; 3] = [0xd6, 0x27, 0x28];

/// The legend's red swatch (14 × 10 px) is the only red that is no overlap.
const LEGEND_SWATCH_PIXELS: usize = 14 * 10;

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
fn seed_names() -> Vec<String> {
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

/// A non-empty PNG of more than one colour whose DOM names every one of `names`.
fn assert_shows(rendered: &Rendered, names: &[String], what: &str) -> Image {
    assert!(
        rendered.png.len() > 1000 && rendered.png.starts_with(b"\x89PNG"),
        "{what}: the screenshot is no PNG ({} bytes)",
        rendered.png.len()
    );
    let image = Image::decode(&rendered.png);
    assert!(
        image.distinct_colours() > 1,
        "{what}: the screenshot has a single colour"
    );
    for name in names {
        assert!(
            rendered.dom.contains(&format!(">{name}<"))
                || rendered.dom.contains(&format!(">{name} ")),
            "{what}: the DOM has no text {name:?}"
        );
    }
    image
}

#[test]
fn plan_svg_renders_every_host_and_job_with_overlaps_in_red() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = plan_file(dir.path(), "svg");
    let rendered = browser::render(&file_url(&svg), 2600, 420);
    let image = assert_shows(&rendered, &seed_names(), "plan --format svg");
    let pixels = image.count(&[RUN, MOVED, OVERLAP]);
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
fn plan_html_renders_every_host_and_job_beside_the_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let html = plan_file(dir.path(), "html");
    let rendered = browser::render(&file_url(&html), 2600, 900);
    let image = assert_shows(&rendered, &seed_names(), "plan --format html");
    for heading in ["Current schedule", "Plan", "a plan is pending"] {
        assert!(rendered.dom.contains(heading), "the page lacks {heading:?}");
    }
    assert!(
        !rendered.dom.contains("<script"),
        "the page needs no script"
    );
    let pixels = image.count(&[RUN, MOVED, OVERLAP]);
    assert!(
        pixels.iter().all(|&n| n > 0),
        "runs, moves and overlaps drawn: {pixels:?}"
    );
}

/// Adds manual approval and a `[serve]` table (1 s rounds, plain HTTP on
/// loopback) to the fleet's schedctl.toml; returns the port.
fn configure_serve(fleet: &Fleet) -> u16 {
    let token_file = fleet.dir.path().join("schedctl.token");
    std::fs::write(&token_file, "status-page-token-3e9a\n").expect("token");
    let port = free_port();
    let text = std::fs::read_to_string(&fleet.config).expect("schedctl.toml");
    let text = text.replacen("[policy]\n", "[policy]\napproval = \"manual\"\n", 1);
    let text = format!(
        "{text}\n[serve]\nlisten = \"127.0.0.1:{port}\"\nplain-http = true\ntoken-file = \"{}\"\n\
         state-dir = \"{}\"\ncollect-interval-secs = 1\n",
        token_file.display(),
        fleet.dir.path().join("coordinator-state").display()
    );
    std::fs::write(&fleet.config, text).expect("schedctl.toml");
    port
}

/// The DOM of one timeline panel: the current schedule first, the plan second.
fn panels(dom: &str) -> Vec<&str> {
    dom.split("<section class=\"panel\">").skip(1).collect()
}

#[test]
fn the_served_status_page_shows_every_host_and_job_with_the_plan_beside_the_schedule() {
    let hosts = [
        ("hikurangi", "02:00", Via::Agent),
        ("ruapehu", "02:20", Via::PveApi),
        ("pihanga", "02:45", Via::Agent),
    ];
    let fleet = Fleet::start(&hosts);
    let port = configure_serve(&fleet);
    let mut serve = Daemon::start(
        "schedctl-serve",
        fleet
            .schedctl_command(&["serve"])
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET"),
        fleet.dir.path(),
    );
    let url = format!("http://127.0.0.1:{port}/");
    // The first round collects the three hosts and stores a plan for approval.
    serve.wait_until(Duration::from_secs(90), || {
        get_text(&url, None, "/").is_ok_and(|page| page.contains("a plan is pending"))
    });

    // A browser on the coordinator's machine, without a token.
    let width = 2600;
    let rendered = browser::render(&url, width, 1100);
    let mut names: Vec<String> = Vec::new();
    for (host, _, _) in hosts {
        names.push(host.to_owned());
        // The fleet's job ids: the Proxmox id qualified by its host.
        names.push(format!("{host}/backup-{host}"));
    }
    let image = assert_shows(&rendered, &names, "the served status page");
    assert!(
        !rendered.dom.contains("<script"),
        "the page needs no script"
    );
    let log = serve.log();
    assert!(
        !log.contains("Refused a request"),
        "a page view from loopback was logged as refused:\n{log}"
    );

    // The schedule in force and the pending plan, each with its timeline and jobs.
    let panels = panels(&rendered.dom);
    assert_eq!(
        panels.len(),
        2,
        "two panels side by side:\n{}",
        rendered.dom
    );
    let (current, plan) = (panels[0], panels[1]);
    assert!(current.contains("Current schedule"), "{current}");
    assert!(plan.contains("waiting for `schedctl apply`"), "{plan}");
    for panel in [current, plan] {
        assert!(panel.contains("<svg"), "a panel without its timeline");
        for name in &names {
            assert!(panel.contains(name.as_str()), "{name} missing from a panel");
        }
    }
    // Three 50-minute runs 20 minutes apart on one datastore of capacity 1:
    // the schedule overlaps, the plan does not, and the page says so.
    assert!(
        current.contains("<ul class=\"overlaps\">") && current.contains("pbs-main"),
        "the origin's overlaps are not listed:\n{current}"
    );
    assert!(
        plan.contains("No overlaps on shared resources."),
        "the plan overlaps:\n{plan}"
    );
    assert!(
        plan.contains("class=\"moved\""),
        "the plan moves no job:\n{plan}"
    );

    // Red only where the runs overlap: over the schedule's timeline (beyond
    // the legend's swatch), nowhere over the plan's on the right half.
    let half = width as usize / 2;
    let left = image.count_in(0..half, &[RUN, MOVED, OVERLAP]);
    let right = image.count_in(half..image.width, &[RUN, MOVED, OVERLAP]);
    assert!(
        left[0] > 0 && right[0] > 0,
        "runs drawn: {left:?} {right:?}"
    );
    assert!(
        right[1] > 0,
        "the plan's moved runs are not drawn: {right:?}"
    );
    assert!(
        left[2] > LEGEND_SWATCH_PIXELS,
        "the schedule's overlaps are not red: {left:?}"
    );
    assert_eq!(right[2], 0, "red over the plan, which has no overlap");
}
