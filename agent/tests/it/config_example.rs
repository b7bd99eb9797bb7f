//! `config.example.toml`'s agent part parses and documents every key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sched_agent::config::{ApiConfig, Backend, Config, CoordinatorConfig};

const AGENT_MARKER: &str = "# ===== agent.toml =====";
const SCHEDCTL_MARKER: &str = "# ===== schedctl.toml =====";

fn agent_part() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.example.toml");
    let text = std::fs::read_to_string(&path).expect("config.example.toml at the repository root");
    // The part runs from its marker line to the next marker line.
    let part: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != AGENT_MARKER)
        .take_while(|line| *line != SCHEDCTL_MARKER)
        .collect();
    assert!(
        !part.is_empty(),
        "no line {AGENT_MARKER:?} in {}",
        path.display()
    );
    part.join("\n")
}

/// Every key path of a TOML table (`coordinator.url`).
fn keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) => keys(inner, &format!("{path}."), out),
            _ => {
                out.insert(path);
            }
        }
    }
}

#[test]
fn the_agent_part_parses() {
    let config = Config::parse(&agent_part(), Path::new("config.example.toml"))
        .expect("the example is valid");
    assert_eq!(config.listen, "0.0.0.0:8150");
    assert_eq!(config.sample_interval_secs, 10);
    assert_eq!(
        config.coordinator.expect("coordinator").lease_wait_max_secs,
        1800
    );
}

#[test]
fn the_agent_part_sets_every_key() {
    // Every field spelled out: a new setting fails to compile here until it
    // is added to this list — and then this test wants it in the example.
    let every = Config {
        node: Some("n".into()),
        timezone: Some("UTC".into()),
        listen: "l".into(),
        plain_http: false,
        token_file: PathBuf::from("t"),
        proc_root: PathBuf::from("p"),
        pve_root: PathBuf::from("p"),
        task_dir: PathBuf::from("t"),
        job_state_dir: PathBuf::from("j"),
        vzdump_conf: PathBuf::from("v"),
        state_dir: PathBuf::from("s"),
        sample_interval_secs: 1,
        backups_keep: 1,
        runs_keep: 1,
        load_half_life_weeks: 1.0,
        lock_timeout_secs: 1,
        hook_script: PathBuf::from("/h"),
        tls_names: vec!["x".into()],
        backend: Backend::File,
        api: Some(ApiConfig {
            url: "u".into(),
            token_file: PathBuf::from("t"),
            fingerprint: "f".into(),
        }),
        coordinator: Some(CoordinatorConfig {
            url: "u".into(),
            token_file: PathBuf::from("t"),
            fingerprint: Some("f".into()),
            lease_wait_max_secs: 1,
        }),
    };
    let mut expected = BTreeSet::new();
    keys(
        &toml::Table::try_from(every).expect("serialises"),
        "",
        &mut expected,
    );
    let mut documented = BTreeSet::new();
    keys(
        &agent_part().parse::<toml::Table>().expect("TOML"),
        "",
        &mut documented,
    );
    let missing: Vec<_> = expected.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "config.example.toml's agent part lacks {missing:?}"
    );
    assert_eq!(documented, expected);
}
