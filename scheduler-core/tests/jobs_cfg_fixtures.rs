//! Every jobs.cfg fixture against what Proxmox's own Perl code made of it
//! (`fixtures/expected/<name>.expected.json`): the round trip, the warnings,
//! the rejected values, the ids and their values, the order, the digest and
//! the text (or error) of a Proxmox write.

use std::collections::BTreeMap;
use std::path::PathBuf;

use scheduler_core::jobs_cfg::{JobsCfg, Reading, Value};
use serde_json::Value as Json;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proxmox/fixtures")
}

fn load(name: &str) -> (String, Json) {
    let dir = fixture_dir();
    let text = std::fs::read_to_string(dir.join(format!("{name}.cfg"))).expect("fixture file");
    let expected = std::fs::read_to_string(dir.join(format!("expected/{name}.expected.json")))
        .expect("expected file");
    (
        text,
        serde_json::from_str(&expected).expect("expected JSON"),
    )
}

/// A JSON scalar as text, so that `1` and `"1"` compare equal (Perl's JSON
/// output types depend on how a value was last used, not on its meaning).
fn scalar(json: &Json) -> String {
    match json {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Our values in the shape of Proxmox's parsed section, scalars as text.
fn section_as_json(section_type: &str, values: &BTreeMap<&str, Value>) -> Json {
    let mut object = serde_json::Map::new();
    object.insert("type".into(), Json::String(section_type.into()));
    for (key, value) in values {
        let json = match value {
            Value::Bool(flag) => Json::String(u8::from(*flag).to_string()),
            Value::Integer(text) | Value::Text(text) => Json::String(text.clone()),
            Value::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
            Value::Properties(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                    .collect(),
            ),
        };
        object.insert((*key).to_owned(), json);
    }
    Json::Object(object)
}

/// Expected JSON with every scalar turned into text.
fn scalars_as_text(json: &Json) -> Json {
    match json {
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), scalars_as_text(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(scalars_as_text).collect()),
        Json::Null => Json::Null,
        other => Json::String(scalar(other)),
    }
}

fn check_fixture(name: &str) {
    let (text, expected) = load(name);
    let cfg = JobsCfg::parse(&text);

    assert_eq!(
        cfg.render(),
        text,
        "{name}: round trip must be byte-identical"
    );
    assert_eq!(
        cfg.digest().to_string(),
        scalar(&expected["parsed"]["digest"]),
        "{name}: digest"
    );

    let reading = cfg.proxmox_reading("FILE");
    check_warnings(name, &reading, &expected);
    check_errors(name, &reading, &expected);
    check_ids(name, &reading, &expected);
    check_rewrite(name, &cfg, &expected);
}

fn check_warnings(name: &str, reading: &Reading, expected: &Json) {
    let ours: Vec<&str> = reading
        .warnings
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    let theirs: Vec<&str> = expected["parse_warnings"]
        .as_array()
        .expect("parse_warnings")
        .iter()
        .map(|w| w.as_str().expect("warning text"))
        .collect();
    assert_eq!(ours, theirs, "{name}: warnings");
    for warning in &reading.warnings {
        assert!(
            warning.message.contains(&format!("line {} ", warning.line)),
            "{name}: warning line number {} matches its text {:?}",
            warning.line,
            warning.message
        );
    }
}

fn check_errors(name: &str, reading: &Reading, expected: &Json) {
    let ours: Vec<Json> = reading
        .errors
        .iter()
        .map(|e| {
            serde_json::json!({"context": e.context, "err": e.message, "key": e.key, "section": e.section})
        })
        .collect();
    let theirs = expected["parsed"]["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(ours, theirs, "{name}: parsed.errors");
}

fn check_ids(name: &str, reading: &Reading, expected: &Json) {
    let ids = expected["parsed"]["ids"].as_object().expect("parsed.ids");
    let order = expected["parsed"]["order"]
        .as_object()
        .expect("parsed.order");

    let ours: BTreeMap<String, (u64, Json)> = reading
        .sections
        .iter()
        .map(|s| {
            let values = s
                .values
                .as_ref()
                .map_or(Json::Null, |v| section_as_json(&s.section_type, v));
            (s.id.clone(), (s.order as u64, values))
        })
        .collect();
    let theirs: BTreeMap<String, (u64, Json)> = ids
        .iter()
        .map(|(id, values)| {
            let position = order[id].as_u64().expect("order number");
            (id.clone(), (position, scalars_as_text(values)))
        })
        .collect();
    assert_eq!(ours, theirs, "{name}: parsed.ids and parsed.order");

    // What pvescheduler sees: the non-null ids, in order.
    let mut visible: Vec<(&u64, &String)> = theirs
        .iter()
        .filter(|(_, (_, values))| !values.is_null())
        .map(|(id, (position, _))| (position, id))
        .collect();
    visible.sort();
    let visible: Vec<&str> = visible.into_iter().map(|(_, id)| id.as_str()).collect();
    let jobs: Vec<String> = reading.jobs().into_iter().map(|job| job.id).collect();
    assert_eq!(jobs, visible, "{name}: jobs pvescheduler sees");
}

fn check_rewrite(name: &str, cfg: &JobsCfg, expected: &Json) {
    match cfg.proxmox_rewrite() {
        Ok(text) => {
            assert!(
                expected["rewrite_error"].is_null(),
                "{name}: a write should fail"
            );
            assert_eq!(
                Some(text.as_str()),
                expected["rewrite"].as_str(),
                "{name}: rewrite"
            );
        }
        Err(error) => {
            assert!(
                expected["rewrite"].is_null(),
                "{name}: a write should succeed: {error}"
            );
            assert_eq!(
                Some(error.proxmox_message()),
                expected["rewrite_error"].as_str(),
                "{name}: rewrite_error"
            );
        }
    }
}

macro_rules! fixtures {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_fixture($name);
            }
        )*

        /// Every `jobs-*.cfg` with an expected file in the directory, also ones
        /// added later without a named test, is checked the same way.
        #[test]
        fn every_fixture_in_the_directory_matches_proxmox() {
            let mut present: Vec<String> = std::fs::read_dir(fixture_dir())
                .expect("fixture dir")
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|file| file.starts_with("jobs-") && file.ends_with(".cfg"))
                .map(|file| file.trim_end_matches(".cfg").to_owned())
                .filter(|name| {
                    fixture_dir().join(format!("expected/{name}.expected.json")).exists()
                })
                .collect();
            present.sort_unstable();
            for name in [$($name),*] {
                assert!(present.iter().any(|p| p == name), "fixture {name} is missing");
            }
            for name in &present {
                check_fixture(name);
            }
        }
    };
}

fixtures! {
    cluster_multi_node => "jobs-cluster-multi-node",
    homelab_single => "jobs-homelab-single",
    invalid_bad_schedule => "jobs-invalid-bad-schedule",
    invalid_bad_values => "jobs-invalid-bad-values",
    invalid_crlf => "jobs-invalid-crlf",
    invalid_duplicate_id => "jobs-invalid-duplicate-id",
    invalid_duplicate_key => "jobs-invalid-duplicate-key",
    invalid_missing_schedule => "jobs-invalid-missing-schedule",
    invalid_no_blank_line => "jobs-invalid-no-blank-line",
    invalid_unindented_property => "jobs-invalid-unindented-property",
    invalid_unknown_key => "jobs-invalid-unknown-key",
    invalid_unknown_section_type => "jobs-invalid-unknown-section-type",
    mixed_realm_sync => "jobs-mixed-realm-sync",
    tolerated_quirks => "jobs-tolerated-quirks",
    valid_surprising_schedules => "jobs-valid-surprising-schedules",
}
