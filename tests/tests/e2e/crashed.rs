//! schedctl itself killed mid-rollout: the apply stays recorded as started,
//! with the host it wrote and the one it was writing; `status` and `history`
//! report it, `apply` refuses to start another until it is resolved, and
//! `rollback` resolves it (the host written is restored, the one being
//! written is found untouched).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::fleet::{Fleet, Via};
use super::{both, order_line, text};

#[test]
fn an_apply_killed_mid_rollout_is_found_reported_and_rolled_back() {
    let fleet = Fleet::start(&[
        ("hikurangi", "02:00", Via::Ssh),
        ("ruapehu", "02:20", Via::Ssh),
        ("pihanga", "02:45", Via::Ssh),
    ]);
    let before = fleet.all_jobs_cfg();
    let plan = fleet.schedctl(&["plan", "--time-limit", "3"]);
    assert_eq!(plan.status.code(), Some(0), "{}", both(&plan));

    let mut child = fleet
        .schedctl_command(&["apply", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("schedctl apply starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut order = Vec::new();
    // Read the order; while the first host is being written, the second stops answering.
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "schedctl stopped early:\n{seen}"
        );
        seen.push_str(&line);
        order.extend(order_line(&line));
        if line.starts_with("[1/") && line.contains("writing") {
            fleet.host(&order[1]).freeze(true);
        }
        if line.starts_with("[2/") && line.contains("writing") {
            break;
        }
    }
    // schedctl dies while it waits for the second host.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    fleet.host(&order[1]).freeze(false);
    assert_ne!(
        fleet.host(&order[0]).jobs_cfg(),
        before.iter().find(|(h, _)| *h == order[0]).unwrap().1
    );

    let status = fleet.schedctl(&["status", "--risk-nights", "0"]);
    assert!(
        text(&status.stdout).contains("did not finish"),
        "{}",
        both(&status)
    );
    let history = fleet.schedctl(&["history"]);
    let history_text = text(&history.stdout);
    assert!(history_text.contains("DID NOT FINISH"), "{history_text}");
    assert!(
        history_text.contains(&format!("1. {} (ssh): written", order[0])),
        "{history_text}"
    );
    assert!(
        history_text.contains(&format!("2. {} (ssh): writing", order[1])),
        "{history_text}"
    );

    let again = fleet.schedctl(&["apply", "--yes"]);
    assert_eq!(again.status.code(), Some(3), "{}", both(&again));
    assert!(
        text(&again.stderr).contains("did not finish"),
        "{}",
        both(&again)
    );

    let rollback = fleet.schedctl(&["rollback", "--yes"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", both(&rollback));
    let out = text(&rollback.stdout);
    assert!(out.contains(&format!("{}: restored", order[0])), "{out}");
    assert!(out.contains(&format!("{}: not written", order[1])), "{out}");
    assert_eq!(fleet.all_jobs_cfg(), before, "{out}");
    let history = fleet.schedctl(&["history", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        json["unfinished"].as_array().map(Vec::len),
        Some(0),
        "{json}"
    );
}
