//! A host lost mid-rollout (its sshd or Proxmox API killed after the
//! confirmation): the hosts already written are rolled back, and the output
//! says what state every host is in.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use super::rollout::{origin_fleet, plan};
use super::text;

#[test]
fn a_host_killed_mid_rollout_rolls_back_the_hosts_already_written() {
    let mut fleet = origin_fleet();
    let before = fleet.all_jobs_cfg();
    let (plan_id, changes) = plan(&fleet);
    assert!(changes.len() >= 2, "{changes:?}");

    let mut command = fleet.schedctl_command(&["apply", &plan_id.to_string()]);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schedctl apply starts");
    // The rollout order comes first: "  1. host (transport)" lines.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut order = Vec::new();
    let mut seen = String::new();
    while order.len() < changes.len() {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "schedctl stopped early:\n{seen}"
        );
        seen.push_str(&line);
        let trimmed = line.trim_start();
        if let Some((number, rest)) = trimmed.split_once(". ") {
            if number.chars().all(|c| c.is_ascii_digit()) {
                order.push(rest.split_whitespace().next().unwrap().to_owned());
            }
        }
    }
    // It asks on stderr once every host answered with the plan's digest.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut prompt = Vec::new();
    while !String::from_utf8_lossy(&prompt).contains("[y/N]") {
        let mut byte = [0u8; 1];
        assert_eq!(
            std::io::Read::read(&mut stderr, &mut byte).unwrap(),
            1,
            "no prompt"
        );
        prompt.push(byte[0]);
    }
    // The second host dies; the admin says yes.
    let victim = order[1].clone();
    fleet.host_mut(&victim).kill();
    writeln!(child.stdin.take().unwrap(), "y").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut errors).unwrap();
    let status = child.wait().unwrap();
    let all = format!("{seen}{rest}\n--- stderr\n{errors}");
    assert_eq!(status.code(), Some(1), "{all}");

    let first = &order[0];
    assert!(rest.contains(&format!("{first}: rolled back")), "{all}");
    assert!(
        rest.contains(&format!("2. {victim}")) && rest.contains("not written, its write failed"),
        "{all}"
    );
    assert!(errors.contains("unreachable"), "{all}");
    for (host, bytes) in &before {
        if host != &victim {
            assert_eq!(
                &fleet.host(host).jobs_cfg(),
                bytes,
                "{host} is back as it was:\n{all}"
            );
        }
    }
    assert_eq!(
        &fleet.host(&victim).jobs_cfg(),
        &before.iter().find(|(h, _)| h == &victim).unwrap().1
    );

    let history = fleet.schedctl(&["history"]);
    let history = text(&history.stdout);
    assert!(history.contains("rolled_back"), "{history}");
}
