//! The HTTP API of a running agent: the token, the report, applies and
//! rollbacks with every refusal, the body limit, the certificate.

use serde_json::json;

use crate::support::{self, digest, fixture, Agent, Host, Http, TOKEN};

fn pihanga() -> (Host, Agent, Http) {
    let host = Host::new(&fixture("jobs-cluster-multi-node.cfg"));
    let config = host.config("");
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    (host, agent, http)
}

#[test]
fn no_endpoint_but_healthz_answers_without_the_token() {
    let (_host, agent, http) = pihanga();
    let health = http.send("GET", "/healthz", None, None);
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let apply = json!({"digest": "0".repeat(40), "changes": []}).to_string();
    let rollback =
        json!({"to_digest": "0".repeat(40), "expect_digest": "0".repeat(40)}).to_string();
    let routes = [
        ("GET", "/v1/report", None),
        ("GET", "/metrics", None),
        ("PUT", "/v1/schedules", Some(apply.as_str())),
        ("POST", "/v1/rollback", Some(rollback.as_str())),
    ];
    for (method, path, body) in routes {
        for token in [
            None,
            Some("wrong-token"),
            Some("test-token-3f9a1"),
            Some(""),
        ] {
            let answer = http.send(method, path, token, body);
            assert_eq!(
                answer.status, 401,
                "{method} {path} with {token:?}: {}",
                answer.body
            );
            assert!(
                answer.json()["error"].as_str().is_some(),
                "an ErrorBody: {}",
                answer.body
            );
        }
    }
    // A refused token is logged with the peer and the path, never with the token.
    let log = agent.log();
    assert!(log.contains("Refused a request"), "{log}");
    assert!(!log.contains("wrong-token"), "{log}");
    assert_eq!(http.get("/v1/report").status, 200);
}

#[test]
fn the_report_has_this_nodes_jobs_the_digest_and_the_load_profile() {
    let (host, _agent, http) = pihanga();
    let answer = http.get("/v1/report");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let report: scheduler_core::report::HostReport =
        serde_json::from_str(&answer.body).expect("a HostReport");
    assert_eq!(report.host, "pihanga");
    assert_eq!(report.timezone, "Pacific/Auckland");
    assert_eq!(report.jobs_cfg.digest, digest(&host.jobs_cfg()));
    assert_eq!(
        report.jobs_cfg.text.as_deref(),
        Some(host.jobs_cfg().as_str())
    );
    let ids: Vec<&str> = report.jobs.iter().map(|j| j.id.as_str()).collect();
    // Jobs bound to hikurangi and ruapehu are theirs; the one without `node` is reported.
    assert_eq!(
        ids,
        ["backup-pihanga", "backup-k8s-cp", "backup-weekly-offsite"]
    );
    let k8s = &report.jobs[1];
    assert_eq!(k8s.schedule, "mon..fri 23:30 UTC");
    assert_eq!(k8s.storage.as_deref(), Some("pbs-main"));
    assert!(!report.jobs[2].enabled);
    let load = report.load.expect("a load profile");
    assert_eq!(load.values.len(), 2016);
    assert_eq!(load.slot_minutes, 5);
    assert!(report.pressure.is_some());
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((report.clock - clock).abs() < 30);
}

#[test]
fn an_apply_changes_only_schedule_bytes_and_answers_the_new_digest() {
    let (host, _agent, http) = pihanga();
    let before = host.jobs_cfg();
    let answer = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&before), "changes": [
            {"job": "backup-pihanga", "schedule": "3:10 UTC"},
            {"job": "backup-weekly-offsite", "schedule": "sun 04:00"},
        ]}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let after = host.jobs_cfg();
    assert_eq!(
        after,
        before.replace("\tschedule 02:45\n", "\tschedule 3:10 UTC\n")
    );
    let body = answer.json();
    assert_eq!(body["digest"], digest(&after));
    assert_eq!(body["previous_digest"], digest(&before));
    assert_eq!(
        body["changed"],
        json!([{"job": "backup-pihanga", "schedule": "3:10 UTC"}])
    );
    // The old file is kept, and the change is in the audit log.
    let kept: Vec<_> = std::fs::read_dir(host.path("state/backups"))
        .expect("backups")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read_to_string(&kept[0]).expect("copy"), before);
    let audit = host.read("state/audit.log");
    let line: serde_json::Value =
        serde_json::from_str(audit.lines().next().expect("a line")).expect("JSON");
    assert_eq!(line["job"], "backup-pihanga");
    assert_eq!(
        (line["old"].as_str(), line["new"].as_str()),
        (Some("02:45"), Some("3:10 UTC"))
    );
    assert_eq!(line["digest_before"], digest(&before));
    assert_eq!(line["digest_after"], digest(&after));
    assert_eq!(line["backend"], "file");
    assert!(
        line["who"].as_str().expect("who").contains("127.0.0.1"),
        "{line}"
    );

    // The same schedules again: nothing to write, the digest stays.
    let again = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&after), "changes": [{"job": "backup-pihanga", "schedule": "3:10 UTC"}]}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["digest"], digest(&after));
    assert_eq!(again.json()["changed"], json!([]));
    assert_eq!(host.read("state/audit.log").lines().count(), 1);
}

#[test]
fn refusals_have_their_status_and_change_nothing() {
    let (host, _agent, http) = pihanga();
    let before = host.jobs_cfg();
    let d = digest(&before);
    let change = |job: &str, schedule: &str| json!({"digest": d, "changes": [{"job": job, "schedule": schedule}]});
    let injections = [
        "02:00\n\tnode ruapehu",
        "02:00\n\nvzdump: evil\n\tschedule 02:00\n\tall 1",
        "02:00\r\n",
        "02:00\u{0}",
        "\nvzdump: x",
        "02:00\u{7f}",
    ];
    for value in injections {
        let answer = http.put("/v1/schedules", &change("backup-pihanga", value));
        assert_eq!(answer.status, 422, "{value:?}: {}", answer.body);
        assert!(
            answer.json()["error"]
                .as_str()
                .expect("error")
                .contains("control character"),
            "{}",
            answer.body
        );
    }
    let cases = [
        (
            change("backup-ruapehu", "03:00"),
            422,
            "runs on node 'ruapehu'",
        ),
        (
            change("backup-nope", "03:00"),
            422,
            "no backup job 'backup-nope'",
        ),
        (change("backup-pihanga", "25:99"), 422, "invalid schedule"),
        (
            change("backup-pihanga", "02:00 Europe/Vienna"),
            422,
            "invalid schedule",
        ),
        (
            json!({"digest": "abc", "changes": []}),
            400,
            "invalid digest",
        ),
        (json!({"digest": d}), 400, "changes"),
        (
            json!({"digest": "a".repeat(40), "changes": [{"job": "backup-pihanga", "schedule": "03:00"}]}),
            409,
            "digest",
        ),
    ];
    for (body, status, text) in cases {
        let answer = http.put("/v1/schedules", &body);
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert!(answer.body.contains(text), "{body}: {}", answer.body);
    }
    let stale = http.put(
        "/v1/schedules",
        &json!({"digest": "a".repeat(40), "changes": [{"job": "backup-pihanga", "schedule": "03:00"}]}),
    );
    assert_eq!(stale.json()["current_digest"], d);

    let malformed = http.send("PUT", "/v1/schedules", Some(TOKEN), Some("{\"digest\": "));
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert!(
        malformed.json()["error"]
            .as_str()
            .expect("error")
            .contains("not valid"),
        "{}",
        malformed.body
    );
    let huge = format!(
        "{{\"digest\":\"{}\",\"changes\":[],\"pad\":\"{}\"}}",
        d,
        "x".repeat(70 * 1024)
    );
    assert_eq!(
        http.send("PUT", "/v1/schedules", Some(TOKEN), Some(&huge))
            .status,
        413
    );
    assert_eq!(host.jobs_cfg(), before);
    assert!(!host.path("state/audit.log").exists());

    let metrics = http
        .send_with(
            "GET",
            "/metrics",
            Some(TOKEN),
            None,
            &[("Accept", "text/plain")],
        )
        .body;
    assert_eq!(
        support::sample(
            &metrics,
            r#"stagger_schedule_applies_total{result="stale"}"#
        ),
        Some(2.0)
    );
    assert!(
        support::sample(
            &metrics,
            r#"stagger_schedule_applies_total{result="refused"}"#
        ) >= Some(10.0)
    );
    assert_eq!(
        support::sample(&metrics, r#"stagger_schedule_applies_total{result="ok"}"#),
        Some(0.0)
    );
}

#[test]
fn a_rollback_puts_back_a_kept_copy() {
    let (host, _agent, http) = pihanga();
    let original = host.jobs_cfg();
    let applied = http.put(
        "/v1/schedules",
        &json!({"digest": digest(&original), "changes": [{"job": "backup-k8s-cp", "schedule": "mon..fri 22:00 UTC"}]}),
    );
    assert_eq!(applied.status, 200, "{}", applied.body);
    let new_digest = applied.json()["digest"]
        .as_str()
        .expect("digest")
        .to_owned();

    let unknown = http.post(
        "/v1/rollback",
        &json!({"to_digest": "b".repeat(40), "expect_digest": new_digest}),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let stale = http.post(
        "/v1/rollback",
        &json!({"to_digest": digest(&original), "expect_digest": digest(&original)}),
    );
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.json()["current_digest"], new_digest);
    let bad = http.post(
        "/v1/rollback",
        &json!({"to_digest": "x", "expect_digest": new_digest}),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);

    let back = http.post(
        "/v1/rollback",
        &json!({"to_digest": digest(&original), "expect_digest": new_digest}),
    );
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(host.jobs_cfg(), original);
    assert_eq!(back.json()["digest"], digest(&original));
    assert_eq!(
        back.json()["changed"],
        json!([{"job": "backup-k8s-cp", "schedule": "mon..fri 23:30 UTC"}])
    );
    let audit = host.read("state/audit.log");
    assert!(
        audit
            .lines()
            .last()
            .expect("line")
            .contains(r#""action":"rollback""#),
        "{audit}"
    );
}

#[test]
fn the_certificate_is_stable_across_restarts_and_valid_for_127_0_0_1() {
    let host = Host::new(&fixture("jobs-homelab-single.cfg"));
    let config = host.config("");
    let mut first = Agent::start(&config);
    let pinned = support::fingerprint(&config);
    let seen = Http::new(&first, pinned)
        .send("GET", "/healthz", None, None)
        .seen;
    assert_eq!(
        seen,
        Some(pinned),
        "the served certificate is the one `fingerprint` prints"
    );
    assert!(first.stop().success(), "a clean stop on SIGTERM");
    let second = Agent::start(&config);
    assert_eq!(support::fingerprint(&config), pinned);
    let http = Http::new(&second, pinned);
    assert_eq!(http.send("GET", "/healthz", None, None).seen, Some(pinned));
    // Validated as a CA for 127.0.0.1 (what Prometheus' ca_file does).
    let pem = host.read("state/tls/cert.pem");
    let by_ca = Http::with_trust(&second.url(), pve_api::Trust::CaPem(pem));
    assert_eq!(by_ca.send("GET", "/healthz", None, None).status, 200);
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(host.path("state/tls/key.pem"))
            .expect("key")
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
}

#[test]
fn plain_http_on_loopback_when_configured() {
    let host = Host::new("");
    let agent = Agent::start(&host.config("plain-http = true"));
    assert!(!agent.https);
    let unused_pin = "00:".repeat(31) + "00";
    let http = Http::with_trust(
        &agent.url(),
        pve_api::Trust::Fingerprint(unused_pin.parse().expect("pin")),
    );
    assert_eq!(http.send("GET", "/healthz", None, None).status, 200);
    assert_eq!(http.send("GET", "/v1/report", None, None).status, 401);
    let report = http.get("/v1/report");
    assert_eq!(report.status, 200);
    assert_eq!(report.json()["jobs"], json!([]));
}
