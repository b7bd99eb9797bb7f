//! Public-API tests of pve-api: a real HTTPS server on 127.0.0.1 that
//! answers with Proxmox's recorded bodies and status codes, plus the task
//! record fixtures. One test binary, one module per topic.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod auth_tls;
mod endpoints;
mod fixtures;
mod records;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use pve_api::{Client, Config, Trust};
use serde_json::Value;

use server::{Recorded, Reply, ServerCert, TestServer};

/// The token the fake Proxmox accepts.
pub const TOKEN: &str = "stagger@pve!agent=5f1d2c3b-0a9e-4d8c-b7a6-112233445566";

/// A token the fake Proxmox knows but that lacks every privilege.
pub const AUDITLESS_TOKEN: &str = "stagger@pve!noaudit=7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_dir().join(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The `data` member of a fixture body.
pub fn fixture_data(name: &str) -> Value {
    let body: Value = serde_json::from_str(&fixture(name)).unwrap();
    body["data"].clone()
}

/// Names of the fixture files that start with `prefix`, sorted.
pub fn fixture_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// A fake Proxmox node `pihanga` serving the recorded bodies.
pub fn proxmox(req: &Recorded) -> Reply {
    let auth = req.header("authorization");
    if auth == Some(format!("PVEAPIToken={AUDITLESS_TOKEN}").as_str()) {
        // A valid token without Sys.Audit on the node.
        return Reply::error(
            403,
            "Permission check failed (/nodes/pihanga, Sys.Audit)",
            r#"{"data":null}"#,
        );
    }
    if auth != Some(format!("PVEAPIToken={TOKEN}").as_str()) {
        return Reply::error(401, "invalid token value!", "");
    }
    let Some(path) = req.path().strip_prefix("/api2/json/") else {
        return Reply::error(501, "Not Implemented", "");
    };
    let segments: Vec<String> = path
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8().unwrap().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = decode_form(req.query());
    let body = decode_form(&req.body);
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["version"]) => Reply::ok(fixture("api-version.json")),
        ("GET", ["nodes", "pihanga", "time"]) => Reply::ok(fixture("api-nodes-pihanga-time.json")),
        ("GET", ["cluster", "backup"]) => Reply::ok(fixture("api-cluster-backup.json")),
        ("GET", ["cluster", "backup", "backup-pihanga"]) => {
            Reply::ok(fixture("api-cluster-backup-backup-pihanga.json"))
        }
        ("PUT", ["cluster", "backup", "backup-pihanga"]) => {
            if body.get("schedule").map(String::as_str) == Some("*/00") {
                parameter_error("api-error-400-bad-schedule.json")
            } else if body.is_empty() {
                Reply::error(400, "no options specified", r#"{"data":null}"#)
            } else {
                Reply::ok(fixture("api-put-cluster-backup-id-ok.json"))
            }
        }
        ("GET" | "PUT", ["cluster", "backup", "backup-nope"]) => {
            parameter_error("api-error-400-no-such-job.json")
        }
        ("GET", ["nodes", "pihanga", "tasks"]) => {
            match (
                query.get("typefilter").map(String::as_str),
                query.get("source").map(String::as_str),
            ) {
                (Some("vzdump"), Some("all")) => Reply::ok(fixture(
                    "api-nodes-pihanga-tasks-typefilter-vzdump-source-all.json",
                )),
                (Some("vzdump"), None | Some("archive")) => {
                    Reply::ok(fixture("api-nodes-pihanga-tasks-typefilter-vzdump.json"))
                }
                _ => Reply::ok(r#"{"data":[],"total":0}"#),
            }
        }
        ("GET", ["nodes", "pihanga", "tasks", upid, "status"]) => {
            for name in fixture_names("api-nodes-pihanga-tasks-upid-status-") {
                if fixture_data(&name)["upid"] == *upid {
                    return Reply::ok(fixture(&name));
                }
            }
            Reply::error(
                500,
                "unable to open file",
                r#"{"data":null,"message":"unable to open file - No such file or directory\n"}"#,
            )
        }
        ("GET", ["cluster", "jobs", "schedule-analyze"]) => {
            let wanted = [
                ("iterations", "3"),
                ("schedule", "02:45"),
                ("starttime", "1730541600"),
            ];
            let asked: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if asked == wanted {
                Reply::ok(fixture("api-cluster-jobs-schedule-analyze.json"))
            } else {
                Reply::error(
                    501,
                    "not recorded",
                    r#"{"data":null,"message":"not recorded\n"}"#,
                )
            }
        }
        _ => Reply::error(501, "Method not implemented", r#"{"data":null}"#),
    }
}

fn parameter_error(name: &str) -> Reply {
    Reply::error(400, "Parameter verification failed.", fixture(name))
}

/// `a=b&c=d` → map, percent- and plus-decoded.
pub fn decode_form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// A fake Proxmox on a fresh self-signed certificate and a client pinned to
/// it.
pub struct Env {
    pub server: TestServer,
    pub cert: ServerCert,
    pub client: Client,
}

impl Env {
    pub async fn start() -> Self {
        let cert = ServerCert::self_signed();
        let server = TestServer::start(&cert, Arc::new(proxmox)).await;
        let client = pinned_client(&server.base_url(), TOKEN, &cert);
        Env {
            server,
            cert,
            client,
        }
    }
}

pub fn pinned_client(base_url: &str, token: &str, cert: &ServerCert) -> Client {
    Client::new(Config {
        base_url: base_url.to_string(),
        token: token.parse().unwrap(),
        trust: Trust::Fingerprint(cert.fingerprint()),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}
