//! A real Prometheus (Debian's `prometheus`) on a free loopback port that
//! scrapes the daemons of a [`Pair`] every second as the jobs the shipped
//! rules and dashboard expect (`stagger-agent`, `stagger-coordinator`), with
//! the bearer tokens as `credentials_file`s, and evaluates rule files every
//! second. Queries go through `promtool query`, as an admin would type them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::daemons::{get_json, get_text, Pair, Running};
use super::process::{free_port, Daemon};
use super::{run, tool};

/// A running Prometheus.
pub struct Prometheus {
    daemon: Daemon,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

fn scrape_job(name: &str, target: &Running) -> String {
    format!(
        "  - job_name: {name}\n    authorization:\n      type: Bearer\n      credentials_file: {}\n\
         \x20   static_configs:\n      - targets: ['{}']\n",
        target.token_file.display(),
        target.address()
    )
}

impl Prometheus {
    /// Starts Prometheus in `dir` scraping both daemons of `pair`, with
    /// `rule_files` loaded; returns once each target has been scraped three
    /// times (so `rate()` and `increase()` have samples to work on).
    pub fn start(dir: &Path, pair: &Pair, rule_files: &[PathBuf]) -> Prometheus {
        let binary = tool("/usr/bin/prometheus", "prometheus");
        let mut yaml =
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                        rule_files:\n"
                .to_owned();
        for file in rule_files {
            yaml.push_str(&format!("  - {}\n", file.display()));
        }
        yaml.push_str("scrape_configs:\n");
        yaml.push_str(&scrape_job("stagger-agent", &pair.agent));
        yaml.push_str(&scrape_job("stagger-coordinator", &pair.coordinator));
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, yaml).expect("prometheus.yml");
        let port = free_port();
        let mut daemon = Daemon::start(
            "prometheus",
            Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("prometheus-data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            dir,
        );
        let url = format!("http://127.0.0.1:{port}");
        daemon.wait_until(Duration::from_secs(30), || {
            get_text(&url, None, "/-/ready").is_ok()
        });
        let mut prometheus = Prometheus { daemon, url };
        prometheus.wait_for_scrapes(3);
        prometheus
    }

    /// Waits until every target is up and has been scraped `times` times.
    fn wait_for_scrapes(&mut self, times: u32) {
        let url = self.url.clone();
        let enough = format!("count_over_time(up[1m]) >= {times} and up == 1");
        self.daemon.wait_until(Duration::from_secs(30), || {
            promtool_query(&url, &enough).is_ok_and(|r| r.as_array().is_some_and(|a| a.len() == 2))
        });
    }

    /// `promtool query instant <url> <expr> -o json`: the result, or what
    /// promtool said.
    pub fn query(&self, expr: &str) -> Result<Value, String> {
        promtool_query(&self.url, expr)
    }

    /// `promtool query labels <url> <label> --match=<selector>`: the values.
    pub fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let output = run(Command::new(promtool())
            .args(["query", "labels", "-o", "json"])
            .arg(format!("--match={selector}"))
            .arg(&self.url)
            .arg(label));
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!("{text}{}", String::from_utf8_lossy(&output.stderr)));
        }
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    /// Every rule of the loaded groups, as `/api/v1/rules` lists them.
    pub fn rules(&self) -> Vec<Value> {
        let answer = get_json(&self.url, "/api/v1/rules")
            .unwrap_or_else(|e| panic!("{e}\n{}", self.daemon.log()));
        rules_of(&answer)
    }

    /// Waits until every rule has been evaluated `times` more times from now
    /// (each evaluation changes its `lastEvaluation`); returns the rules.
    pub fn wait_for_evaluations(&mut self, times: usize) -> Vec<Value> {
        let stamps = |rules: &[Value]| -> Vec<String> {
            rules
                .iter()
                .map(|rule| rule["lastEvaluation"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        let mut seen = vec![stamps(&self.rules())];
        let mut rules = Vec::new();
        let url = self.url.clone();
        self.daemon.wait_until(Duration::from_secs(30), || {
            rules = rules_of(&get_json(&url, "/api/v1/rules").unwrap_or_default());
            let now = stamps(&rules);
            let previous = seen.last().expect("one set of stamps at least");
            let all_new = now.len() == previous.len()
                && now.iter().zip(previous).all(|(now, then)| now != then);
            if all_new {
                seen.push(now);
            }
            seen.len() > times
        });
        rules
    }
}

/// The rules of an `/api/v1/rules` answer, group after group.
fn rules_of(answer: &Value) -> Vec<Value> {
    answer["data"]["groups"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn promtool() -> PathBuf {
    tool("/usr/bin/promtool", "prometheus")
}

fn promtool_query(url: &str, expr: &str) -> Result<Value, String> {
    let output = run(Command::new(promtool())
        .args(["query", "instant", "-o", "json"])
        .arg(url)
        .arg(expr));
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&output.stderr)));
    }
    serde_json::from_str(&text).map_err(|e| format!("promtool printed no JSON ({e}): {text}"))
}
