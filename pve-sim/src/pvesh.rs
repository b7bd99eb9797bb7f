//! `pve-sim pvesh`: the `pvesh get|set|create|delete` calls Stagger's SSH transport makes,
//! run locally as root on the same tree with the same handler code as the
//! HTTPS API (no token; root-only keys such as `script` allowed).
//!
//! Output as the real pvesh: `--output-format json` prints the data compact
//! on one line, `json-pretty` indented; `text` (default) prints scalars as
//! they are and structures as indented JSON (the real tool draws tables).
//! A null result prints nothing. Errors go to stderr as
//! `<status> <message>` plus `key: message` lines, with exit code 255.

use crate::api::backup::{self, Caller};
use crate::api::error::ApiError;
use crate::api::params::Params;
use crate::api::{schedule, tasks as task_api, version};
use crate::tree::{SimConfig, Tree};

/// A parsed pvesh command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `get` or `set` (also `put`, same as set).
    pub method: String,
    /// The API path (`/cluster/backup/backup-a`).
    pub path: String,
    /// `--key value` options in order.
    pub params: Params,
    /// `json`, `json-pretty` or `text`.
    pub output_format: String,
}

/// Parses `<get|set> <path> [--key value ...]`.
pub fn parse_call(args: &[String]) -> Result<Call, String> {
    let [method, path, rest @ ..] = args else {
        return Err(
            "usage: pvesh <get|set> <api_path> [OPTIONS] [--output-format json|json-pretty|text]"
                .to_owned(),
        );
    };
    let mut params = Vec::new();
    let mut output_format = "text".to_owned();
    let mut i = 0;
    while i < rest.len() {
        let Some(key) = rest[i]
            .strip_prefix("--")
            .or_else(|| rest[i].strip_prefix('-'))
        else {
            return Err(format!("unexpected argument '{}'", rest[i]));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => {
                i += 1;
                let value = rest
                    .get(i)
                    .ok_or_else(|| format!("option '--{key}' needs a value"))?;
                (key.to_owned(), value.clone())
            }
        };
        if key == "output-format" {
            output_format = value;
        } else {
            params.push((key, value));
        }
        i += 1;
    }
    if !["json", "json-pretty", "text"].contains(&output_format.as_str()) {
        return Err(format!(
            "value '{output_format}' does not have a value in the enumeration 'text, json, json-pretty'"
        ));
    }
    Ok(Call {
        method: method.clone(),
        path: format!("/{}", path.trim_matches('/')),
        params: Params(params),
        output_format,
    })
}

/// Runs `call` on the tree as node `node` at `now`; the data, or the API error.
pub fn execute(
    tree: &Tree,
    config: &SimConfig,
    node: &str,
    now: i64,
    call: &Call,
) -> Result<serde_json::Value, ApiError> {
    let tz = config
        .node(node)
        .ok_or_else(|| {
            ApiError::fail(
                500,
                format!("no such node '{node}' in the simulated cluster\n"),
            )
        })?
        .tz();
    let parts: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let no_handler = || {
        ApiError::fail(
            501,
            format!("no '{}' handler for '{}'\n", call.method, call.path),
        )
    };
    match (call.method.as_str(), parts.as_slice()) {
        ("get", ["cluster", "backup"]) => call
            .params
            .only(&[])
            .and_then(|()| backup::list(tree, now, tz)),
        ("get", ["cluster", "backup", id]) => {
            call.params.only(&[]).and_then(|()| backup::get(tree, id))
        }
        ("set" | "put", ["cluster", "backup", id]) => {
            backup::update(tree, id, &call.params, &Caller::Root).map(|()| serde_json::Value::Null)
        }
        ("create" | "post", ["cluster", "backup"]) => {
            backup::create(tree, &call.params, &Caller::Root).map(|()| serde_json::Value::Null)
        }
        ("delete", ["cluster", "backup", id]) => {
            backup::delete(tree, config, id).map(|()| serde_json::Value::Null)
        }
        ("get", ["cluster", "jobs", "schedule-analyze"]) => schedule::events(&call.params, now, tz),
        ("get", ["version"]) => {
            let v = &config.version;
            Ok(
                serde_json::json!({ "version": v.version, "release": v.release, "repoid": v.repoid }),
            )
        }
        ("get", ["nodes", name, "time"]) => {
            let node = config.node(name).ok_or_else(no_handler)?;
            Ok(serde_json::json!({
                "timezone": node.timezone, "time": now, "localtime": version::local_time(now, node.tz())
            }))
        }
        ("get", ["nodes", name, "tasks"]) if config.node(name).is_some() => {
            task_api::task_list(&tree.node(name), &call.params)
                .map(|(items, _)| serde_json::json!(items))
        }
        ("get", ["nodes", name, "tasks", upid, "status"]) if config.node(name).is_some() => {
            task_api::task_status(&tree.node(name), name, upid)
        }
        _ => Err(no_handler()),
    }
}

/// The text pvesh prints for `data`.
pub fn render(data: &serde_json::Value, output_format: &str) -> String {
    match (output_format, data) {
        (_, serde_json::Value::Null) => String::new(),
        ("json", _) => format!("{data}\n"),
        (_, serde_json::Value::String(s)) => format!("{s}\n"),
        (_, serde_json::Value::Number(n)) => format!("{n}\n"),
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(data).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_parse_like_pvesh() {
        let args: Vec<String> = [
            "set",
            "/cluster/backup/backup-a",
            "--schedule",
            "02:30",
            "--output-format=json",
        ]
        .map(String::from)
        .to_vec();
        let call = parse_call(&args).expect("parsed");
        assert_eq!(call.method, "set");
        assert_eq!(call.params.get("schedule"), Some("02:30"));
        assert_eq!(call.output_format, "json");
        assert!(parse_call(&["get".to_owned()]).is_err());
    }

    #[test]
    fn json_output_is_one_line() {
        let data = serde_json::json!([{ "id": "a" }]);
        assert_eq!(render(&data, "json"), "[{\"id\":\"a\"}]\n");
        assert_eq!(render(&serde_json::Value::Null, "json"), "");
    }
}
