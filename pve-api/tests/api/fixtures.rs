//! Every `api-*.json` fixture decoded into its typed answer without a
//! network, chosen by file name, so new recordings of the same endpoints are
//! checked too: the typed value, written back, carries the same data (up to
//! Proxmox's number/string looseness), and error bodies map to clear errors.

use pve_api::client::{answer_error, Answer};
use pve_api::{BackupJob, Error, NodeTime, ScheduleEvent, TaskState, TaskSummary, Version};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{fixture, fixture_data, fixture_names};

/// Equal, allowing a number where the other side has the same number as a
/// string (Perl's JSON output mixes both).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| loosely_equal(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| loosely_equal(v, w))
        }
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        _ => a == b,
    }
}

fn reproduces<T: DeserializeOwned + Serialize>(name: &str) {
    let data = fixture_data(name);
    let typed: T = serde_json::from_value(data.clone())
        .unwrap_or_else(|e| panic!("{name}: does not decode: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert!(
        loosely_equal(&back, &data),
        "{name}: typed value writes back as\n{back:#}\nnot\n{data:#}"
    );
}

#[test]
fn every_api_fixture_decodes_into_its_typed_answer() {
    let names = fixture_names("api-");
    assert!(names.len() >= 12, "fixtures missing: {names:?}");
    for name in &names {
        let n = name.as_str();
        if n.starts_with("api-error-") {
            continue; // see below
        } else if n == "api-version.json" {
            reproduces::<Version>(n);
        } else if n == "api-cluster-backup.json" {
            reproduces::<Vec<BackupJob>>(n);
        } else if n.starts_with("api-cluster-backup-") {
            reproduces::<BackupJob>(n);
        } else if n.starts_with("api-cluster-jobs-schedule-analyze") {
            reproduces::<Vec<ScheduleEvent>>(n);
        } else if n.starts_with("api-put-") {
            assert_eq!(fixture_data(n), Value::Null, "{n}");
        } else if n.starts_with("api-nodes-") && n.contains("-status-") {
            reproduces::<TaskState>(n);
        } else if n.starts_with("api-nodes-") && n.contains("-tasks") {
            reproduces::<Vec<TaskSummary>>(n);
        } else if n.starts_with("api-nodes-") && n.ends_with("-time.json") {
            reproduces::<NodeTime>(n);
        } else {
            panic!("{n}: no typed answer known for this fixture");
        }
    }
}

#[test]
fn every_error_fixture_maps_to_a_clear_error() {
    let names = fixture_names("api-error-");
    assert!(!names.is_empty());
    for name in names {
        // api-error-<status>-<what>.json
        let status: u16 = name
            .trim_start_matches("api-error-")
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let body = fixture(&name);
        let err = answer_error(&Answer {
            method: "PUT",
            url: "https://pve:8006/api2/json/cluster/backup/x",
            token_id: "stagger@pve!agent",
            status: StatusCode::from_u16(status).unwrap(),
            reason: Some("Parameter verification failed."),
            body: &body,
        });
        let raw: Value = serde_json::from_str(&body).unwrap();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{name}: {text:?}");
        match &err {
            Error::NoSuchJob { id, .. } => {
                assert!(name.contains("no-such-job"), "{name}");
                assert!(text.contains(&format!("{id:?}")));
            }
            Error::Http {
                status: s,
                message,
                errors,
                ..
            } => {
                assert_eq!(*s, status);
                assert_eq!(message, raw["message"].as_str().unwrap().trim_end());
                let raw_errors = raw["errors"].as_object().unwrap();
                assert_eq!(errors.len(), raw_errors.len(), "{name}");
                for (param, msg) in raw_errors {
                    let msg = msg.as_str().unwrap().trim_end();
                    assert_eq!(errors[param], msg);
                    assert!(text.contains(&format!("{param}: {msg}")), "{text}");
                }
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
}
