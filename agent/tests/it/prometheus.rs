//! A real Prometheus (Debian's `prometheus`, started here on a free loopback
//! port with a temp config and data dir) scrapes the agent over HTTPS with
//! the agent's certificate as `ca_file` and the bearer token from a
//! `credentials_file`; and `promtool check metrics` lints the exposition.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use crate::support::{self, fixture, Agent, Host, Http};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

struct Prometheus {
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn start_prometheus(host: &Host, agent: &Agent) -> (Prometheus, String) {
    assert!(
        std::path::Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: install the Debian package `prometheus` (scripts/test does)"
    );
    let data = tempfile::tempdir().expect("data dir");
    let config = data.path().join("prometheus.yml");
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: stagger-agent\n    scheme: https\n    tls_config:\n      ca_file: {}\n\
         \x20   authorization:\n      type: Bearer\n      credentials_file: {}\n\
         \x20   static_configs:\n      - targets: ['{}']\n",
        host.path("state/tls/cert.pem").display(),
        host.path("etc/stagger/agent.token").display(),
        agent.addr
    );
    std::fs::write(&config, yaml).expect("prometheus.yml");
    let port = free_port();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (
        Prometheus { child, _data: data },
        format!("http://127.0.0.1:{port}"),
    )
}

#[test]
fn a_real_prometheus_scrapes_the_agent_over_https() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let config = host.config("sample-interval-secs = 1");
    let agent = Agent::start(&config);
    let (_prometheus, url) = start_prometheus(&host, &agent);
    let api = Http::with_trust(
        &url,
        pve_api::Trust::Fingerprint(support::fingerprint(&config)),
    );
    let target = support::wait_for(60, "the target to be up", || {
        let answer = api
            .try_send("GET", "/api/v1/targets", None, None, &[])
            .ok()?;
        if answer.status != 200 {
            return None;
        }
        let body = answer.json();
        let target = body["data"]["activeTargets"].get(0)?.clone();
        (target["health"] == "up").then_some(target)
    });
    assert_eq!(target["lastError"], "", "{target}");
    assert_eq!(target["labels"]["job"], "stagger-agent");

    let query = |expr: &str| {
        support::wait_for(30, &format!("a result for {expr}"), || {
            let answer = api.send("GET", &format!("/api/v1/query?query={expr}"), None, None);
            let body = answer.json();
            let result = body["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        })
    };
    let build = query("stagger_build_info");
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build[0]["value"][1], "1");
    let running = query("stagger_backup_running");
    let mut jobs: Vec<&str> = running
        .iter()
        .filter_map(|s| s["metric"]["job_id"].as_str())
        .collect();
    jobs.sort_unstable();
    assert_eq!(
        jobs,
        ["backup-k8s-cp", "backup-pihanga", "backup-weekly-offsite"]
    );
    for series in &running {
        assert_eq!(series["metric"]["host"], "pihanga");
        assert_eq!(
            series["metric"]["job"], "stagger-agent",
            "no clash with the scrape job"
        );
        assert!(series["metric"].get("exported_job").is_none(), "{series}");
    }
    query("stagger_io_pressure_some_seconds_total");
    query("stagger_hook_fail_open_total");
}

#[test]
fn promtool_finds_nothing_to_lint_in_the_classic_exposition() {
    assert!(
        std::path::Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: install the Debian package `prometheus` (scripts/test does)"
    );
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    // One finished run in the history, so the histogram and the runs counter count it.
    host.write(
        "var/lib/pve-manager/jobs/vzdump-backup-pihanga.json",
        &fixture("state-vzdump-backup-pihanga-stopped.json"),
    );
    host.write("var/log/pve/tasks/index", &fixture("tasks-index"));
    let config = host.config("sample-interval-secs = 1");
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    let text = support::wait_for(10, "the finished run in the metrics", || {
        let answer = http.send_with(
            "GET",
            "/metrics",
            Some(support::TOKEN),
            None,
            &[("Accept", "text/plain")],
        );
        answer
            .body
            .contains(
                r#"stagger_backup_duration_seconds_count{host="pihanga",job_id="backup-pihanga"} 1"#,
            )
            .then_some(answer)
    });
    assert!(
        text.content_type.starts_with("text/plain"),
        "{}",
        text.content_type
    );
    assert!(text.body.contains(r#"stagger_backup_runs_total{host="pihanga",job_id="backup-pihanga",result="warning"} 1"#), "{}", text.body);
    let mut lint = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    lint.stdin
        .take()
        .expect("stdin")
        .write_all(text.body.as_bytes())
        .expect("feed promtool");
    let output = lint.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{}",
        text.body
    );

    // Prometheus' own Accept header gets OpenMetrics.
    let open = http.send_with(
        "GET",
        "/metrics",
        Some(support::TOKEN),
        None,
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    );
    assert!(
        open.content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        open.content_type
    );
    assert!(open.body.ends_with("# EOF\n"));
}

/// The runs counters of a job start at 0 before its first run ends (an alert
/// on `increase()` needs a first sample), and after a restart the last run's
/// duration is back from the saved history while the run is not counted twice.
#[test]
fn runs_counters_start_at_zero_and_the_last_duration_survives_a_restart() {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let config = host.config("sample-interval-secs = 1");
    let mut agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    let metrics = |http: &Http| http.get("/metrics").body;
    let runs = |result: &str| {
        format!(r#"stagger_backup_runs_total{{job_id="backup-pihanga",result="{result}"}}"#)
    };
    let last = r#"stagger_backup_last_duration_seconds{job_id="backup-pihanga"}"#;
    let text = support::wait_for(10, "the job's series", || {
        let text = metrics(&http);
        support::sample(&text, &runs("ok"))
            .is_some()
            .then_some(text)
    });
    for result in ["ok", "warning", "error", "aborted", "unknown"] {
        assert_eq!(support::sample(&text, &runs(result)), Some(0.0), "{text}");
    }
    assert_eq!(support::sample(&text, last), None, "no run, no duration");

    // The run of the fixture ends: 0x6726372F - 0x67262CDD seconds, warnings.
    host.write(
        "var/lib/pve-manager/jobs/vzdump-backup-pihanga.json",
        &fixture("state-vzdump-backup-pihanga-stopped.json"),
    );
    host.write("var/log/pve/tasks/index", &fixture("tasks-index"));
    let text = support::wait_for(10, "the finished run in the metrics", || {
        let text = metrics(&http);
        (support::sample(&text, &runs("warning")) == Some(1.0)).then_some(text)
    });
    assert_eq!(support::sample(&text, last), Some(2642.0), "{text}");

    assert!(agent.stop().success(), "{}", agent.log());
    drop(agent);
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    let text = support::wait_for(10, "the last duration after the restart", || {
        let text = metrics(&http);
        support::sample(&text, last).is_some().then_some(text)
    });
    assert_eq!(support::sample(&text, last), Some(2642.0), "{text}");
    assert_eq!(
        support::sample(&text, &runs("warning")),
        Some(0.0),
        "the saved run counted again:\n{text}"
    );
}
