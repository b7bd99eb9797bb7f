//! The simulated API against the shared fixtures, over real HTTPS on loopback.

mod common;

use common::*;
use reqwest::Method;

/// A request: method, path, parameters, expected status.
type Request = (Method, &'static str, Vec<(&'static str, &'static str)>, u16);

/// The request that produced each `api-*.json` fixture (see fixtures/README.md).
fn request_of(fixture: &str) -> Option<Request> {
    let upid_stopped =
        "/nodes/pihanga/tasks/UPID:pihanga:00147A7D:07813CDD:67277E5E:vzdump::root@pam:/status";
    let upid_running =
        "/nodes/pihanga/tasks/UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:/status";
    Some(match fixture {
        "api-cluster-backup.json" => (Method::GET, "/cluster/backup", vec![], 200),
        "api-cluster-backup-backup-pihanga.json" => {
            (Method::GET, "/cluster/backup/backup-pihanga", vec![], 200)
        }
        "api-put-cluster-backup-id-ok.json" => (
            Method::PUT,
            "/cluster/backup/backup-pihanga",
            vec![("schedule", "02:45")],
            200,
        ),
        "api-error-400-no-such-job.json" => {
            (Method::GET, "/cluster/backup/backup-nope", vec![], 400)
        }
        "api-error-400-bad-schedule.json" => (
            Method::PUT,
            "/cluster/backup/backup-pihanga",
            vec![("schedule", "*/00")],
            400,
        ),
        "api-nodes-pihanga-tasks-typefilter-vzdump.json" => (
            Method::GET,
            "/nodes/pihanga/tasks",
            vec![("typefilter", "vzdump")],
            200,
        ),
        "api-nodes-pihanga-tasks-typefilter-vzdump-source-all.json" => (
            Method::GET,
            "/nodes/pihanga/tasks",
            vec![("typefilter", "vzdump"), ("source", "all")],
            200,
        ),
        "api-nodes-pihanga-tasks-upid-status-stopped.json" => {
            (Method::GET, upid_stopped, vec![], 200)
        }
        "api-nodes-pihanga-tasks-upid-status-running.json" => {
            (Method::GET, upid_running, vec![], 200)
        }
        "api-cluster-jobs-schedule-analyze.json" => (
            Method::GET,
            "/cluster/jobs/schedule-analyze",
            vec![
                ("schedule", "02:45"),
                ("starttime", "1730541600"),
                ("iterations", "3"),
            ],
            200,
        ),
        "api-version.json" => (Method::GET, "/version", vec![], 200),
        "api-nodes-pihanga-time.json" => (Method::GET, "/nodes/pihanga/time", vec![], 200),
        _ => return None,
    })
}

#[tokio::test]
async fn every_api_fixture_is_reproduced() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let now = FIXTURE_NOW.to_string();
    let server = tree.serve(&["--speed", "0", "--now", &now]);
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("api-") && n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "fixtures missing: {names:?}");
    for name in &names {
        let (method, path, form, status) = request_of(name)
            .unwrap_or_else(|| panic!("no request known for fixture {name}; add it to request_of"));
        let (got_status, body) = server.call(method, path, &form).await;
        assert_eq!(got_status, status, "{name}: status");
        assert_eq!(body, json_fixture(name), "{name}: body");
    }
    // The no-such-job fixture is also what a PUT gets.
    let (status, body) = server
        .call(
            Method::PUT,
            "/cluster/backup/backup-nope",
            &[("schedule", "02:00")],
        )
        .await;
    assert_eq!(
        (status, body),
        (400, json_fixture("api-error-400-no-such-job.json"))
    );
}

#[tokio::test]
async fn a_put_renormalises_jobs_cfg_exactly_like_proxmox_writes() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures().join("expected")).expect("expected dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .replace(".expected.json", ".cfg");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let cfg = scheduler_core_jobs(&name);
        let Some(job) = cfg else { continue };
        let tree = SimTree::init(&name, &[]);
        let before = tree.jobs_cfg();
        let server = tree.serve(&["--speed", "0"]);
        let (status, body) = server
            .call(
                Method::PUT,
                &format!("/cluster/backup/{}", job.0),
                &[("schedule", &job.1)],
            )
            .await;
        match expected["rewrite"].as_str() {
            // A hand-made job selecting both `vmid` and `all`/`exclude`/`pool`, or
            // no guests at all, parses, but verify_vzdump_parameters refuses every
            // API update of it.
            Some(_) if job.2 => {
                assert_eq!(status, 400, "{name}: {body}");
                assert!(
                    body["errors"].as_object().is_some_and(|e| !e.is_empty()),
                    "{name}: {body}"
                );
                assert_eq!(tree.jobs_cfg(), before, "{name}: file untouched");
            }
            Some(rewrite) => {
                assert_eq!(
                    (status, &body),
                    (200, &json_fixture("api-put-cluster-backup-id-ok.json")),
                    "{name}"
                );
                assert_eq!(tree.jobs_cfg(), rewrite, "{name}: jobs.cfg after the PUT");
            }
            None => {
                assert_eq!(status, 500, "{name}: a file Proxmox cannot write back");
                assert_eq!(body["message"], expected["rewrite_error"], "{name}");
                assert_eq!(tree.jobs_cfg(), before, "{name}: file untouched");
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures had a visible job");
}

/// The first backup job Proxmox sees in fixture `name`: id, schedule as
/// stored, and whether `verify_vzdump_parameters` refuses its guest selection.
fn scheduler_core_jobs(name: &str) -> Option<(String, String, bool)> {
    let text = fixture(name);
    let job = scheduler_core::jobs_cfg::JobsCfg::parse(&text)
        .vzdump_jobs()
        .into_iter()
        .next()?;
    let set = |key: &str| match job.options.get(key) {
        Some(scheduler_core::jobs_cfg::Value::Bool(flag)) => *flag,
        Some(_) => true,
        None => false,
    };
    let conflict = (set("vmid") && (set("all") || set("exclude") || set("pool")))
        || !(set("vmid") || set("all") || set("stop") || set("pool"));
    Some((job.id.clone(), job.schedule.clone(), conflict))
}

#[tokio::test]
async fn a_changed_schedule_changes_only_its_line_and_a_bad_one_changes_nothing() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let before = tree.jobs_cfg();
    let server = tree.serve(&["--speed", "0"]);
    let (status, body) = server
        .call(
            Method::PUT,
            "/cluster/backup/backup-ruapehu",
            &[("schedule", "*/00")],
        )
        .await;
    assert_eq!(
        (status, body),
        (400, json_fixture("api-error-400-bad-schedule.json"))
    );
    assert_eq!(tree.jobs_cfg(), before);
    let (status, _) = server
        .call(
            Method::PUT,
            "/cluster/backup/backup-ruapehu",
            &[("schedule", "03:35 UTC"), ("delete", "performance")],
        )
        .await;
    assert_eq!(status, 200);
    let expected = before
        .replace("\tschedule 02:20\n", "\tschedule 03:35 UTC\n")
        .replace("\tperformance max-workers=4\n", "");
    assert_eq!(tree.jobs_cfg(), expected);
    let (_, job) = server
        .call(Method::GET, "/cluster/backup/backup-ruapehu", &[])
        .await;
    assert_eq!(job["data"]["schedule"], "03:35 UTC");
    assert!(job["data"].get("performance").is_none());

    // Comments are percent-encoded on disk and written first; booleans as 0/1.
    let (status, _) = server
        .call(
            Method::PUT,
            "/cluster/backup/backup-ruapehu",
            &[("comment", "Ruapehu: über 100%"), ("enabled", "0")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(tree.jobs_cfg().contains(
        "vzdump: backup-ruapehu\n\tcomment Ruapehu%3A %C3%BCber 100%25\n\tschedule 03:35 UTC\n\tenabled 0\n"
    ));
    let (_, job) = server
        .call(Method::GET, "/cluster/backup/backup-ruapehu", &[])
        .await;
    assert_eq!(job["data"]["comment"], "Ruapehu: über 100%");
    assert_eq!(job["data"]["enabled"], 0);

    // Setting vmid on an `all` job drops all/exclude (update_job's rule).
    let (status, _) = server
        .call(
            Method::PUT,
            "/cluster/backup/backup-pihanga",
            &[("vmid", "300")],
        )
        .await;
    assert_eq!(status, 200);
    let (_, job) = server
        .call(Method::GET, "/cluster/backup/backup-pihanga", &[])
        .await;
    assert_eq!(job["data"]["vmid"], "300");
    assert!(job["data"].get("all").is_none() && job["data"].get("exclude").is_none());

    // An API token may not set the hook script; unknown paths are 501.
    let (status, body) = server
        .call(
            Method::PUT,
            "/cluster/backup/backup-pihanga",
            &[("script", "/bin/true")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"]["script"], "Only root may set this option.");
    let (status, body) = server.call(Method::GET, "/cluster/nothing", &[]).await;
    assert_eq!(status, 501);
    assert_eq!(
        body["message"],
        "Method 'GET /cluster/nothing' not implemented\n"
    );
}

#[tokio::test]
async fn concurrent_puts_serialise_under_the_cluster_lock() {
    let tree = SimTree::init("jobs-homelab-single.cfg", &[]);
    let jobs: String = (0..20)
        .map(|i| {
            format!(
                "vzdump: job-{i:02}\n\tschedule 01:00\n\tall 1\n\tenabled 1\n\tstorage local\n\n"
            )
        })
        .collect();
    tree.set_jobs_cfg(&jobs);
    let server = std::sync::Arc::new(tree.serve(&["--speed", "0"]));
    let mut handles = Vec::new();
    for i in 0..20 {
        let server = server.clone();
        handles.push(tokio::spawn(async move {
            let schedule = format!("02:{i:02}");
            server
                .call(
                    Method::PUT,
                    &format!("/cluster/backup/job-{i:02}"),
                    &[("schedule", &schedule)],
                )
                .await
        }));
    }
    for handle in handles {
        let (status, body) = handle.await.expect("task");
        assert_eq!(status, 200, "{body}");
    }
    let expected: String = (0..20)
        .map(|i| format!("vzdump: job-{i:02}\n\tschedule 02:{i:02}\n\tall 1\n\tenabled 1\n\tstorage local\n\n"))
        .collect();
    assert_eq!(tree.jobs_cfg(), expected, "every update landed");
    let locks: Vec<_> = std::fs::read_dir(tree.root().join("etc/pve/priv/lock"))
        .expect("lock dir")
        .collect();
    assert!(locks.is_empty(), "the lock is released");
}

#[tokio::test]
async fn tokens_are_checked_like_proxmox() {
    let tree = SimTree::init("jobs-homelab-single.cfg", &[]);
    let server = tree.serve(&["--speed", "0"]);
    let client = server.http(&server.fingerprint);
    let started = std::time::Instant::now();
    let refused = client
        .get(server.endpoint("/version"))
        .header(
            "Authorization",
            "PVEAPIToken=root@pam!stagger=not-the-secret",
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status().as_u16(), 401);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "401 answers are delayed"
    );
    assert_eq!(
        refused.text().await.expect("body"),
        "",
        "Proxmox's 401 has no body"
    );
    let anonymous = client
        .get(server.endpoint("/version"))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status().as_u16(), 401);
    // The space form and URL escapes are accepted, as pve-http-server does.
    let escaped = format!("PVEAPIToken {}", server.token.replace('!', "%21"));
    let accepted = client
        .get(server.endpoint("/version"))
        .header("Authorization", escaped)
        .send()
        .await
        .expect("answered");
    assert_eq!(accepted.status().as_u16(), 200);

    let good = server.api(&server.token);
    assert_eq!(good.version().await.expect("version").release, "9.1");
    let bad = server.api(&format!("root@pam!stagger={}", "0".repeat(36)));
    let error = bad.version().await.expect_err("refused");
    assert!(
        error.to_string().contains("401") || error.to_string().to_lowercase().contains("token"),
        "{error}"
    );
}

#[tokio::test]
async fn the_pinned_certificate_is_accepted_and_another_refused() {
    let tree = SimTree::init("jobs-homelab-single.cfg", &[]);
    let other = SimTree::init("jobs-homelab-single.cfg", &[]);
    let server = tree.serve(&["--speed", "0"]);
    let other_server = other.serve(&["--speed", "0"]);
    assert_ne!(server.fingerprint, other_server.fingerprint);
    let pinned = server.api(&server.token);
    let jobs = pinned
        .backup_jobs()
        .await
        .expect("pinned certificate accepted");
    assert_eq!(jobs.len(), 1);
    let wrong_pin = server.http(&other_server.fingerprint);
    let refused = wrong_pin
        .get(server.endpoint("/version"))
        .header("Authorization", server.auth())
        .send()
        .await;
    assert!(refused.is_err(), "a different certificate must be refused");
}

#[tokio::test]
async fn pve_api_reads_the_typed_answers() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let now = FIXTURE_NOW.to_string();
    let server = tree.serve(&["--speed", "0", "--now", &now]);
    let api = server.api(&server.token);
    let time = api.node_time("pihanga").await.expect("time");
    assert_eq!(time.utc_offset_secs(), 13 * 3600);
    let job = api.backup_job("backup-pihanga").await.expect("job");
    assert_eq!(job.id, "backup-pihanga");
    api.update_backup_job("backup-pihanga", &pve_api::JobUpdate::schedule("03:05"))
        .await
        .expect("update");
    assert!(tree.jobs_cfg().contains("\tschedule 03:05\n"));
    let missing = api
        .backup_job("backup-nope")
        .await
        .expect_err("no such job");
    assert!(missing.to_string().contains("backup-nope"), "{missing}");
    let bad = api
        .update_backup_job("backup-pihanga", &pve_api::JobUpdate::schedule("*/00"))
        .await
        .expect_err("bad schedule");
    assert!(bad.to_string().contains("schedule"), "{bad}");
    let tasks = api
        .node_tasks(
            "pihanga",
            &pve_api::TaskQuery {
                typefilter: Some("vzdump".into()),
                ..Default::default()
            },
        )
        .await
        .expect("tasks");
    assert_eq!(tasks.total, Some(5));
}

/// The status line of a raw HTTP/1.1 request over TLS (reqwest hides custom reason phrases).
async fn status_line(server: &Server, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let trust = pve_api::Trust::Fingerprint(server.fingerprint.parse().expect("fingerprint"));
    let tls = pve_api::tls::client_config(&trust).expect("tls config");
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls.config));
    let address = server.url.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = connector.connect(name, tcp).await.expect("handshake");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn reason_phrases_carry_proxmox_messages() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let server = tree.serve(&["--speed", "0"]);
    let auth = server.auth();
    let bad_schedule = format!(
        "PUT /api2/json/cluster/backup/backup-pihanga HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\nConnection: close\r\n\r\nschedule=*%2F00"
    );
    assert_eq!(
        status_line(&server, &bad_schedule).await,
        "HTTP/1.1 400 Parameter verification failed."
    );
    let bad_token = "GET /api2/json/version HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: PVEAPIToken=root@pam!stagger=wrong\r\nConnection: close\r\n\r\n";
    assert_eq!(
        status_line(&server, bad_token).await,
        "HTTP/1.1 401 authentication failure"
    );
    let no_token =
        "GET /api2/json/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(
        status_line(&server, no_token).await,
        "HTTP/1.1 401 No ticket"
    );
}

#[tokio::test]
async fn jobs_are_created_at_the_end_and_deleted_with_their_state() {
    let tree = SimTree::init("jobs-cluster-multi-node.cfg", &[]);
    let before = tree.jobs_cfg();
    let server = tree.serve(&["--speed", "0"]);
    let form = [
        ("id", "backup-new"),
        ("schedule", "sat 05:00"),
        ("vmid", "400"),
        ("storage", "pbs-main"),
        ("mode", "snapshot"),
    ];
    let (status, body) = server.call(Method::POST, "/cluster/backup", &form).await;
    assert_eq!(
        (status, body),
        (200, json_fixture("api-put-cluster-backup-id-ok.json"))
    );
    let created = "vzdump: backup-new\n\tschedule sat 05:00\n\tenabled 1\n\tmode snapshot\n\tstorage pbs-main\n\tvmid 400\n\n";
    assert_eq!(tree.jobs_cfg(), format!("{before}{created}"));

    let (status, body) = server.call(Method::POST, "/cluster/backup", &form).await;
    assert_eq!(status, 500);
    assert_eq!(body["message"], "Job 'backup-new' already exists\n");
    let (status, body) = server
        .call(
            Method::POST,
            "/cluster/backup",
            &[("id", "9bad"), ("vmid", "400")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["id"],
        "invalid format - invalid configuration ID '9bad'\n"
    );
    assert_eq!(
        body["errors"]["schedule"],
        "property is missing and it is not optional"
    );

    let state = tree
        .root()
        .join("nodes/pihanga/var/lib/pve-manager/jobs/vzdump-backup-new.json");
    assert!(state.exists(), "init copied a state file for backup-new");
    let (status, _) = server
        .call(Method::DELETE, "/cluster/backup/backup-new", &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(tree.jobs_cfg(), before);
    assert!(!state.exists(), "the job's state goes with it");
    let (status, body) = server
        .call(Method::DELETE, "/cluster/backup/backup-new", &[])
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            serde_json::json!({
                "data": null, "errors": { "id": "No such job 'backup-new'" }, "message": "Parameter verification failed.\n"
            })
        )
    );
}
