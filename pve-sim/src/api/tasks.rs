//! `GET /nodes/{node}/tasks`, `.../{upid}/status`, `.../{upid}/log`
//! (pve-manager `PVE/API2/Tasks.pm`) over the node's task records.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::params::Params;
use super::{blocking, data, Shared};
use pve_api::{TaskRecord, TaskStatus, Upid};

use crate::tasks;
use crate::tree::NodeTree;

/// The list handler.
pub async fn list(
    State(state): State<Shared>,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    state.node(&node)?;
    let params = Params::from_form(query.unwrap_or_default().as_bytes());
    let node_tree = state.tree.node(&node);
    let (items, total) = blocking(move || task_list(&node_tree, &params)).await?;
    Ok(Json(json!({ "data": items, "total": total })).into_response())
}

/// The matching tasks (one page) and how many matched.
pub fn task_list(
    node: &NodeTree,
    params: &Params,
) -> Result<(Vec<serde_json::Value>, usize), ApiError> {
    params.only(&[
        "start",
        "limit",
        "userfilter",
        "typefilter",
        "vmid",
        "errors",
        "source",
        "since",
        "until",
        "statusfilter",
    ])?;
    let filter = Filter::from_params(params)?;
    let source = params.get("source").unwrap_or("archive");
    let mut entries: Vec<(TaskRecord, bool)> = Vec::new();
    if source == "active" || source == "all" {
        let active = tasks::read_active(node).map_err(|e| ApiError::internal(&e))?;
        // Tasks the index does not hold yet (`saved 0`): the running ones.
        entries.extend(
            active
                .into_iter()
                .filter(|a| !a.saved)
                .map(|a| (a.record.clone(), a.record.end.is_none())),
        );
    }
    if source == "archive" || source == "all" {
        let archive = tasks::read_archive(node).map_err(|e| ApiError::internal(&e))?;
        entries.extend(archive.into_iter().map(|e| (e, false)));
    }
    if !["archive", "active", "all"].contains(&source) {
        return Err(ApiError::param(
            "source",
            format!(
                "value '{source}' does not have a value in the enumeration 'archive, active, all'"
            ),
        ));
    }
    let matching: Vec<serde_json::Value> = entries
        .iter()
        .filter(|(entry, _)| filter.accepts(entry))
        .map(|(entry, running)| item(entry, *running))
        .collect();
    let total = matching.len();
    let page = matching
        .into_iter()
        .skip(filter.start)
        .take(filter.limit)
        .collect();
    Ok((page, total))
}

fn item(entry: &TaskRecord, running: bool) -> serde_json::Value {
    let mut item = tasks::api_fields(&entry.upid);
    match (entry.end, running) {
        (_, true) | (None, _) => {
            item.insert("status".into(), json!("RUNNING"));
            item.insert("saved".into(), json!("0"));
        }
        (Some(end), false) => {
            item.insert("endtime".into(), json!(end));
            item.insert("status".into(), json!(entry.status.to_string()));
        }
    }
    serde_json::Value::Object(item)
}

/// The list filters of `GET /nodes/{node}/tasks`.
struct Filter {
    start: usize,
    limit: usize,
    userfilter: Option<String>,
    typefilter: Option<String>,
    vmid: Option<String>,
    errors: bool,
    since: Option<i64>,
    until: Option<i64>,
    statusfilter: Option<Vec<String>>,
}

impl Filter {
    fn from_params(params: &Params) -> Result<Filter, ApiError> {
        let number = |key: &str, default: i64| -> Result<i64, ApiError> {
            match params.get(key) {
                None => Ok(default),
                Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::param(key, format!("type check ('integer') failed - got '{text}'"))
                }),
            }
        };
        let optional = |key: &str| -> Result<Option<i64>, ApiError> {
            params.get(key).map(|_| number(key, 0)).transpose()
        };
        let flag = |key: &str| matches!(params.get(key), Some("1" | "true" | "yes" | "on"));
        Ok(Filter {
            start: usize::try_from(number("start", 0)?).unwrap_or(0),
            limit: usize::try_from(number("limit", 50)?).unwrap_or(50),
            userfilter: params.get("userfilter").map(str::to_owned),
            typefilter: params.get("typefilter").map(str::to_owned),
            vmid: params.get("vmid").map(str::to_owned),
            errors: flag("errors"),
            since: optional("since")?,
            until: optional("until")?,
            statusfilter: params.get("statusfilter").map(|list| {
                list.split([',', ';', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_lowercase)
                    .collect()
            }),
        })
    }

    fn accepts(&self, entry: &TaskRecord) -> bool {
        let upid = &entry.upid;
        let class = match (&entry.end, &entry.status) {
            (None, _) | (_, TaskStatus::Running) => "running",
            (_, TaskStatus::Ok) => "ok",
            (_, TaskStatus::Warnings(_)) => "warning",
            (_, TaskStatus::Unknown(_)) => "unknown",
            (_, TaskStatus::Error(_)) => "error",
        };
        self.userfilter
            .as_ref()
            .is_none_or(|u| upid.user().contains(u.as_str()))
            && self
                .typefilter
                .as_ref()
                .is_none_or(|t| upid.task_type() == t)
            && self.vmid.as_ref().is_none_or(|v| upid.id() == v)
            && (!self.errors || matches!(class, "error" | "warning" | "unknown"))
            && self.since.is_none_or(|s| upid.starttime() >= s)
            && self.until.is_none_or(|u| upid.starttime() <= u)
            && self
                .statusfilter
                .as_ref()
                .is_none_or(|list| class == "running" || list.iter().any(|s| s == class))
    }
}

/// The status handler.
pub async fn status(
    State(state): State<Shared>,
    Path((node, upid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.node(&node)?;
    let node_tree = state.tree.node(&node);
    let value = blocking(move || task_status(&node_tree, &node, &upid)).await?;
    Ok(data(value))
}

/// `status` running|stopped, `exitstatus` when stopped, plus the UPID fields.
pub fn task_status(
    node_tree: &NodeTree,
    node: &str,
    text: &str,
) -> Result<serde_json::Value, ApiError> {
    let upid = checked_upid(node, text)?;
    let active = tasks::read_active(node_tree).map_err(|e| ApiError::internal(&e))?;
    let archive = tasks::read_archive(node_tree).map_err(|e| ApiError::internal(&e))?;
    let mut item = tasks::api_fields(&upid);
    let known = active
        .iter()
        .map(|a| &a.record)
        .chain(archive.iter())
        .find(|e| e.upid == upid);
    match known {
        Some(record) if record.end.is_none() => {
            item.insert("status".into(), json!("running"));
        }
        Some(record) => {
            item.insert("status".into(), json!("stopped"));
            item.insert("exitstatus".into(), json!(record.status.to_string()));
        }
        None => {
            let log = node_tree.task_log(text);
            let last = std::fs::read_to_string(&log)
                .ok()
                .and_then(|t| t.lines().last().map(str::to_owned));
            let Some(last) = last else {
                return Err(ApiError::fail(500, format!("no such task '{text}'\n")));
            };
            item.insert("status".into(), json!("stopped"));
            item.insert("exitstatus".into(), json!(exit_status(&last)));
        }
    }
    Ok(serde_json::Value::Object(item))
}

/// `upid_read_status` of a task log's last line.
fn exit_status(last_line: &str) -> String {
    if last_line == "TASK OK" {
        "OK".to_owned()
    } else if let Some(rest) = last_line.strip_prefix("TASK WARNINGS: ") {
        format!("WARNINGS: {rest}")
    } else if let Some(rest) = last_line.strip_prefix("TASK ERROR: ") {
        rest.to_owned()
    } else {
        "unexpected status".to_owned()
    }
}

fn checked_upid(node: &str, text: &str) -> Result<Upid, ApiError> {
    let upid: Upid = text
        .parse()
        .map_err(|_| ApiError::param("upid", "unable to parse worker upid"))?;
    if upid.node() != node {
        return Err(ApiError::fail(
            500,
            format!("task '{text}' is not on node '{node}'\n"),
        ));
    }
    Ok(upid)
}

/// The log handler: `[{n, t}]` lines from `start` (0), at most `limit` (50).
pub async fn log(
    State(state): State<Shared>,
    Path((node, upid)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    state.node(&node)?;
    checked_upid(&node, &upid)?;
    let params = Params::from_form(query.unwrap_or_default().as_bytes());
    let start: usize = params
        .get("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit: usize = params
        .get("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let path = state.tree.node(&node).task_log(&upid);
    let text = blocking(move || {
        std::fs::read_to_string(&path).map_err(|e| {
            ApiError::fail(
                500,
                format!("unable to open file '{}' - {e}\n", path.display()),
            )
        })
    })
    .await?;
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    let page: Vec<_> = lines
        .iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, t)| json!({ "n": i + 1, "t": t }))
        .collect();
    Ok(Json(json!({ "data": page, "total": total })).into_response())
}
