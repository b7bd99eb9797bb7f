//! Proxmox's task records: the index and active files and the job state
//! files parse, print back byte for byte, and agree with the API's task
//! lists and with the UPIDs inside every API fixture.

use pve_api::tasks::{parse_active, parse_index, parse_job_state};
use pve_api::{JobPhase, TaskStatus, Upid};
use serde_json::Value;

use crate::{fixture, fixture_data, fixture_names};

fn content_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn index_parses_and_prints_back_line_for_line() {
    let text = fixture("tasks-index");
    let records = parse_index(&text).unwrap();
    let lines = content_lines(&text);
    assert_eq!(records.len(), lines.len());
    for (record, line) in records.iter().zip(&lines) {
        assert_eq!(record.index_line().as_deref(), Some(*line));
    }
    let statuses: Vec<&TaskStatus> = records.iter().map(|r| &r.status).collect();
    assert_eq!(statuses[0], &TaskStatus::Error("job errors".into()));
    assert_eq!(statuses[6], &TaskStatus::Warnings(2));
    assert_eq!(records[5].upid.token(), Some("stagger"));
    assert_eq!(records[5].end, Some(0x6725ECFE));
    assert!(matches!(statuses[8], TaskStatus::Error(m) if m.ends_with("exit code 75")));
}

#[test]
fn active_parses_and_prints_back_line_for_line() {
    let text = fixture("tasks-active");
    let records = parse_active(&text).unwrap();
    let lines = content_lines(&text);
    assert_eq!(records.len(), lines.len());
    for (record, line) in records.iter().zip(&lines) {
        assert_eq!(record.active_line(), *line);
        // A running task has no end, a finished one has one.
        assert_eq!(
            record.record.end.is_none(),
            record.record.status == TaskStatus::Running
        );
    }
    assert!(!records[0].saved);
    assert_eq!(records[0].record.status, TaskStatus::Running);
    assert!(records[1..].iter().all(|r| r.saved));
}

#[test]
fn the_crlf_variant_reads_the_same() {
    for name in ["tasks-index", "tasks-active"] {
        let text = fixture(name);
        let crlf = text.replace('\n', "\r\n");
        if name == "tasks-index" {
            assert_eq!(parse_index(&crlf).unwrap(), parse_index(&text).unwrap());
        } else {
            assert_eq!(parse_active(&crlf).unwrap(), parse_active(&text).unwrap());
        }
    }
}

#[test]
fn api_task_lists_agree_with_the_index_and_their_upids() {
    let index = parse_index(&fixture("tasks-index")).unwrap();
    let active = parse_active(&fixture("tasks-active")).unwrap();
    for name in fixture_names("api-nodes-") {
        if !name.contains("-tasks-typefilter-") {
            continue;
        }
        let tasks: Vec<pve_api::TaskSummary> = serde_json::from_value(fixture_data(&name)).unwrap();
        for summary in &tasks {
            let task = &summary.task;
            let upid = &task.upid;
            assert_eq!(upid.node(), task.node);
            assert_eq!(i64::from(upid.pid()), task.pid);
            assert_eq!(upid.pstart() as i64, task.pstart);
            assert_eq!(upid.starttime(), task.starttime);
            assert_eq!(upid.task_type(), task.task_type);
            assert_eq!(upid.id(), task.id);
            assert_eq!(upid.user_without_token(), task.user);
            assert_eq!(upid.token(), task.tokenid.as_deref());
            match index.iter().find(|r| r.upid == *upid) {
                Some(record) => {
                    assert_eq!(record.end, summary.endtime, "{name}: {upid}");
                    assert_eq!(record.status, summary.outcome(), "{name}: {upid}");
                }
                None => {
                    let running = active.iter().find(|r| r.record.upid == *upid);
                    assert!(running.is_some(), "{name}: {upid} in no task record");
                    assert_eq!(summary.outcome(), TaskStatus::Running);
                }
            }
        }
    }
}

fn collect_upids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "upid" => out.push(s.clone()),
                    _ => collect_upids(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_upids(v, out)),
        _ => {}
    }
}

#[test]
fn every_upid_in_the_fixtures_parses_and_prints_back() {
    let mut upids = Vec::new();
    for name in fixture_names("api-")
        .into_iter()
        .chain(fixture_names("state-"))
    {
        let value: Value = serde_json::from_str(&fixture(&name)).unwrap();
        collect_upids(&value, &mut upids);
    }
    for line in content_lines(&fixture("tasks-index"))
        .into_iter()
        .chain(content_lines(&fixture("tasks-active")))
    {
        upids.push(line.split(' ').next().unwrap().to_string());
    }
    assert!(upids.len() > 20, "{}", upids.len());
    for text in upids {
        let upid: Upid = text.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(upid.to_string(), text);
    }
}

#[test]
fn job_state_files_parse_with_their_last_run() {
    let names = fixture_names("state-vzdump-");
    assert!(names.len() >= 4);
    for name in names {
        let text = fixture(&name);
        let raw: Value = serde_json::from_str(&text).unwrap();
        let state = parse_job_state(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let phase = match &state.phase {
            JobPhase::Created { .. } => "created",
            JobPhase::Starting { .. } => "starting",
            JobPhase::Started { .. } => "started",
            JobPhase::Stopped { .. } => "stopped",
        };
        assert_eq!(raw["state"], phase, "{name}");
        if let JobPhase::Stopped { status, .. } = &state.phase {
            assert_eq!(status.to_string(), raw["msg"].as_str().unwrap());
        }
        let config = state.config.as_ref().unwrap();
        assert_eq!(
            config.schedule.as_deref(),
            raw["config"]["schedule"].as_str()
        );
        // Proxmox's "last run": updated, else the task's start, else time.
        let upid_start = raw["upid"]
            .as_str()
            .map(|u| u.parse::<Upid>().unwrap().starttime());
        let expected = raw["updated"]
            .as_i64()
            .or(upid_start)
            .or(raw["time"].as_i64());
        assert_eq!(state.last_run(), expected, "{name}");
    }
}
