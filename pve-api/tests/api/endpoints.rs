//! Every endpoint against the fake Proxmox: the typed answer carries exactly
//! what the recorded body holds (re-serialised, it gives the body back), and
//! the request has Proxmox's shape.

use pve_api::{Error, JobUpdate, RunState, TaskQuery, TaskSource, TaskStatus, Upid};
use serde_json::Value;

use crate::{decode_form, fixture_data, Env};

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

#[tokio::test]
async fn version() {
    let env = Env::start().await;
    let version = env.client.version().await.unwrap();
    assert_eq!(version.release, "9.1");
    assert_eq!(json(&version), fixture_data("api-version.json"));
    assert_eq!(env.server.requests()[0].target, "/api2/json/version");
}

#[tokio::test]
async fn node_time() {
    let env = Env::start().await;
    let time = env.client.node_time("pihanga").await.unwrap();
    assert_eq!(time.timezone, "Pacific/Auckland");
    assert_eq!(time.utc_offset_secs(), 13 * 3600);
    assert_eq!(json(&time), fixture_data("api-nodes-pihanga-time.json"));
}

#[tokio::test]
async fn backup_jobs() {
    let env = Env::start().await;
    let jobs = env.client.backup_jobs().await.unwrap();
    assert_eq!(json(&jobs), fixture_data("api-cluster-backup.json"));
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "backup-hikurangi",
            "backup-ruapehu",
            "backup-pihanga",
            "backup-k8s-cp",
            "backup-weekly-offsite"
        ]
    );
    let offsite = &jobs[4];
    assert!(!offsite.enabled);
    assert_eq!(offsite.node, None);
    assert_eq!(offsite.schedule.as_deref(), Some("sun 04:00"));
    assert_eq!(offsite.next_run, Some(1730559600));
    assert_eq!(offsite.other["prune-backups"]["keep-weekly"], "5");
    assert_eq!(jobs[1].repeat_missed, Some(true));
    assert_eq!(jobs[1].vmid.as_deref(), Some("200,201,202,215"));
    assert_eq!(jobs[0].all, Some(true));
}

#[tokio::test]
async fn backup_job() {
    let env = Env::start().await;
    let job = env.client.backup_job("backup-pihanga").await.unwrap();
    assert_eq!(job.schedule.as_deref(), Some("02:45"));
    assert_eq!(job.exclude.as_deref(), Some("310,311"));
    assert_eq!(job.next_run, None);
    assert_eq!(
        json(&job),
        fixture_data("api-cluster-backup-backup-pihanga.json")
    );
}

#[tokio::test]
async fn a_missing_job_is_no_such_job() {
    let env = Env::start().await;
    let err = env.client.backup_job("backup-nope").await.unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchJob { id, .. } if id == "backup-nope"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no backup job \"backup-nope\""),
        "{err}"
    );
    let err = env
        .client
        .update_backup_job("backup-nope", &JobUpdate::schedule("03:00"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchJob { .. }), "{err:?}");
}

#[tokio::test]
async fn update_with_null_data_is_success_and_sends_a_form() {
    let env = Env::start().await;
    let mut update = JobUpdate::schedule("mon..fri 23:30 UTC");
    update.enabled = Some(true);
    update.delete = vec!["comment".into()];
    env.client
        .update_backup_job("backup-pihanga", &update)
        .await
        .unwrap();
    let request = &env.server.requests()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path(), "/api2/json/cluster/backup/backup-pihanga");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = decode_form(&request.body);
    assert_eq!(form["schedule"], "mon..fri 23:30 UTC");
    assert_eq!(form["enabled"], "1");
    assert_eq!(form["delete"], "comment");
}

#[tokio::test]
async fn a_bad_schedule_is_a_parameter_error() {
    let env = Env::start().await;
    let err = env
        .client
        .update_backup_job("backup-pihanga", &JobUpdate::schedule("*/00"))
        .await
        .unwrap_err();
    match &err {
        Error::Http {
            status,
            message,
            errors,
            method,
            ..
        } => {
            assert_eq!((*status, method.as_str()), (400, "PUT"));
            assert_eq!(message, "Parameter verification failed.");
            assert_eq!(
                errors["schedule"],
                "invalid format - invalid calendar event '*/00' - unable to parse calendar event at '/00' - Nom(Eof)"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("schedule: invalid format"),
        "{err}"
    );
}

#[tokio::test]
async fn an_empty_update_is_refused_before_sending() {
    let env = Env::start().await;
    let err = env
        .client
        .update_backup_job("backup-pihanga", &JobUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmptyUpdate { .. }), "{err:?}");
    assert!(env.server.requests().is_empty());
}

#[tokio::test]
async fn node_tasks_archive_and_all() {
    let env = Env::start().await;
    let query = TaskQuery {
        typefilter: Some("vzdump".into()),
        ..TaskQuery::default()
    };
    let archive = env.client.node_tasks("pihanga", &query).await.unwrap();
    let fixture = fixture_data("api-nodes-pihanga-tasks-typefilter-vzdump.json");
    assert_eq!(json(&archive.tasks), fixture);
    assert_eq!(archive.total, Some(5));
    assert_eq!(archive.tasks[1].outcome(), TaskStatus::Warnings(2));
    assert_eq!(
        archive.tasks[4].outcome(),
        TaskStatus::Error("job errors".into())
    );
    assert_eq!(archive.tasks[2].task.tokenid.as_deref(), Some("stagger"));

    let all = env
        .client
        .node_tasks(
            "pihanga",
            &TaskQuery {
                source: Some(TaskSource::All),
                ..query
            },
        )
        .await
        .unwrap();
    assert_eq!(
        json(&all.tasks),
        fixture_data("api-nodes-pihanga-tasks-typefilter-vzdump-source-all.json")
    );
    assert_eq!(all.total, Some(6));
    assert_eq!(all.tasks[0].outcome(), TaskStatus::Running);
    assert_eq!(all.tasks[0].saved, Some(false));
    let requests = env.server.requests();
    assert_eq!(requests[0].query(), "typefilter=vzdump");
    assert_eq!(requests[1].query(), "typefilter=vzdump&source=all");
}

#[tokio::test]
async fn task_status_running_and_stopped() {
    let env = Env::start().await;
    for (name, state, outcome) in [
        (
            "api-nodes-pihanga-tasks-upid-status-running.json",
            RunState::Running,
            TaskStatus::Running,
        ),
        (
            "api-nodes-pihanga-tasks-upid-status-stopped.json",
            RunState::Stopped,
            TaskStatus::Error(
                "command '/usr/local/lib/stagger/vzdump-hook job-start' failed: exit code 75"
                    .into(),
            ),
        ),
    ] {
        let data = fixture_data(name);
        let upid: Upid = data["upid"].as_str().unwrap().parse().unwrap();
        let status = env.client.task_status("pihanga", &upid).await.unwrap();
        assert_eq!(status.status, state);
        assert_eq!(status.outcome(), outcome);
        assert_eq!(json(&status), data, "{name}");
    }
    // The UPID travels as one percent-encoded path segment.
    let target = &env.server.requests()[0].target;
    assert!(
        target.starts_with("/api2/json/nodes/pihanga/tasks/UPID%3Apihanga%3A00156567%3A"),
        "{target}"
    );
    assert!(target.ends_with("%3Aroot%40pam%3A/status"), "{target}");
}

#[tokio::test]
async fn schedule_analyze() {
    let env = Env::start().await;
    let events = env
        .client
        .schedule_analyze("02:45", Some(1730541600), Some(3))
        .await
        .unwrap();
    assert_eq!(
        json(&events),
        fixture_data("api-cluster-jobs-schedule-analyze.json")
    );
    assert_eq!(events[0].utc, "Sat Nov  2 13:45:00 2024");
    assert_eq!(
        env.server.requests()[0].query(),
        "schedule=02%3A45&starttime=1730541600&iterations=3"
    );
}

#[tokio::test]
async fn an_unexpected_body_is_a_decode_error_with_the_body() {
    use crate::server::{Reply, ServerCert, TestServer};
    use std::sync::Arc;
    let cert = ServerCert::self_signed();
    let server = TestServer::start(
        &cert,
        Arc::new(|_: &crate::server::Recorded| Reply::ok(r#"{"data":{"release":9}}"#)),
    )
    .await;
    let client = crate::pinned_client(&server.base_url(), crate::TOKEN, &cert);
    let err = client.version().await.unwrap_err();
    match &err {
        Error::Decode { url, body, .. } => {
            assert!(url.ends_with("/api2/json/version"));
            assert_eq!(body, r#"{"data":{"release":9}}"#);
        }
        other => panic!("unexpected {other:?}"),
    }
}
