//! Pinned identities: an SSH host key or an API certificate other than the
//! pinned one is refused, naming both and what to do; an unreachable host is
//! named with what failed.

use super::fleet::{fingerprint_of, Fleet, Via};
use super::{both, text};

#[test]
fn a_changed_ssh_host_key_is_refused_with_both_keys_named() {
    let fleet = Fleet::start(&[("hikurangi", "02:00", Via::Ssh)]);
    let config = std::fs::read_to_string(&fleet.config).unwrap();
    // Pin some other key: as if the host had been reinstalled, or someone is in the way.
    let other = fleet.dir.path().join("other_key");
    std::process::Command::new("/usr/bin/ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_fp = fingerprint_of(&other.with_extension("pub"));
    let real_fp = config
        .lines()
        .find_map(|l| l.strip_prefix("host-key = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    std::fs::write(&fleet.config, config.replace(&real_fp, &other_fp)).unwrap();

    let status = fleet.schedctl(&["status"]);
    assert_eq!(status.status.code(), Some(1), "{}", both(&status));
    let out = text(&status.stdout);
    assert!(
        out.contains("UNREACHABLE") || out.contains("refusing"),
        "{out}"
    );
    assert!(out.contains(&real_fp), "names the presented key: {out}");
    assert!(out.contains(&other_fp), "names the pinned key: {out}");
    assert!(out.contains("pin the new one"), "says what to do: {out}");
    let plan = fleet.schedctl(&["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", both(&plan));
    assert!(text(&plan.stderr).contains(&real_fp), "{}", both(&plan));
}

#[test]
fn a_wrong_certificate_pin_and_a_dead_host_are_named() {
    let mut fleet = Fleet::start(&[
        ("ruapehu", "02:20", Via::PveApi),
        ("pihanga", "02:45", Via::Ssh),
    ]);
    let config = std::fs::read_to_string(&fleet.config).unwrap();
    let pinned = config
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    let wrong = "00:".repeat(31) + "00";
    std::fs::write(&fleet.config, config.replace(&pinned, &wrong)).unwrap();
    fleet.host_mut("pihanga").kill();

    let status = fleet.schedctl(&["status", "--format", "json"]);
    assert_eq!(status.status.code(), Some(1), "{}", both(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let ruapehu = &json["hosts"][0];
    assert_eq!(ruapehu["reachable"], false);
    let error = ruapehu["error"].as_str().unwrap();
    assert!(error.contains(&pinned) && error.contains(&wrong), "{error}");
    let pihanga = &json["hosts"][1];
    assert_eq!(pihanga["reachable"], false);
    assert!(
        pihanga["error"]
            .as_str()
            .unwrap()
            .contains("pihanga: unreachable"),
        "{pihanga}"
    );
    assert!(
        pihanga["hint"]
            .as_str()
            .unwrap()
            .contains("check that the host is up"),
        "{pihanga}"
    );
}

#[test]
fn a_refused_api_token_is_named_with_what_to_do() {
    let fleet = Fleet::start(&[("ruapehu", "02:20", Via::PveApi)]);
    let config = std::fs::read_to_string(&fleet.config).unwrap();
    let token_file = config
        .lines()
        .find_map(|l| l.strip_prefix("token-file = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    std::fs::write(
        &token_file,
        "root@pam!stagger=00000000-0000-0000-0000-000000000000\n",
    )
    .unwrap();
    let plan = fleet.schedctl(&["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", both(&plan));
    let err = text(&plan.stderr);
    assert!(
        err.contains("ruapehu: refused: authentication failed"),
        "{err}"
    );
    assert!(
        err.contains("root@pam!stagger") && !err.contains("00000000-0000"),
        "names the token id, never the secret: {err}"
    );
}
