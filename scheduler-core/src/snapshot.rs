//! The fleet snapshot (PLANNING-MODEL.md): serde types, validation that lists
//! every problem with the JSON path of its field, and the validated,
//! index-based [`Model`] that the planner and the storm simulator work on.
//!
//! Reading goes in two steps, each reporting every problem it finds at once:
//! [`Snapshot::from_json`] checks the shape (unknown fields, types, ranges of
//! single numbers) and [`Snapshot::validate`] checks the meaning (names,
//! times on the slot grid, windows, load lengths) and builds the [`Model`].
//! [`Model::from_json`] does both.
//!
//! Durations are turned into occupied slots exactly on the decimal written in
//! the JSON (`20.1 + 9.9` minutes is 30, never 30.000000000000004): a JSON
//! number becomes the shortest decimal that reads back as the same `f64`,
//! which is the literal the user wrote, and `L` is computed on those digits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only snapshot format version.
pub const VERSION: u32 = 1;

/// Minutes in a day.
const DAY_MINUTES: u32 = 1440;

/// How many names an "unknown name" message lists.
const KNOWN_NAMES_SHOWN: usize = 8;

/// A fleet snapshot, as written in JSON (PLANNING-MODEL.md, "Snapshot").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Format version, always 1.
    pub version: u32,
    /// Minutes per slot; divides 1440.
    #[serde(default = "default_slot_minutes")]
    pub slot_minutes: u32,
    /// Minutes reserved after each run, added to its duration.
    #[serde(default)]
    pub guard_minutes: f64,
    /// Cost of moving one job away from its current start.
    #[serde(default = "default_one")]
    pub stability_weight: f64,
    /// When jobs may run (UTC time of day); absent means the whole day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Shared resources with their capacities.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// The hosts of the fleet.
    pub hosts: Vec<Host>,
    /// The backup jobs.
    pub jobs: Vec<Job>,
}

/// A daily window `[start, end)` of UTC times of day (`HH:MM`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First allowed time of day, inclusive.
    pub start: String,
    /// End of the window, exclusive; before `start` wraps past midnight; equal means all day.
    pub end: String,
}

/// A named shared resource (a datastore, a network link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Its name; `host:` is reserved.
    pub name: String,
    /// How many runs may occupy it at once.
    pub capacity: u32,
}

/// A host: its I/O profile and how many of its own jobs may run at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Its name.
    pub name: String,
    /// IANA time zone (does not enter the score).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// How much its workloads suffer from extra I/O.
    #[serde(default = "default_one")]
    pub sensitivity: f64,
    /// How many of its own jobs may run at once.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Baseline I/O pressure per slot, 288 (daily) or 2016 (weekly) values for 5-minute slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Vec<f64>>,
}

/// A backup job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Unique id.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// UTC weekdays it runs on, 0 = Monday; absent means all seven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<u8>>,
    /// Its start today, `HH:MM` UTC.
    pub current_start: String,
    /// Minutes reserved for one run.
    pub duration_minutes: f64,
    /// Resources it uses besides its host.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Hosts whose workloads a run disturbs, with weights; absent means `{ own host: 1.0 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impacts: Option<BTreeMap<String, f64>>,
    /// Its own window, replacing the fleet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// The start may not change.
    #[serde(default)]
    pub pinned: bool,
}

fn default_slot_minutes() -> u32 {
    5
}
fn default_one() -> f64 {
    1.0
}
fn default_capacity() -> u32 {
    1
}
fn default_timezone() -> String {
    "UTC".to_owned()
}

/// One problem of a snapshot: the JSON path of the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path, e.g. `jobs[3].window.end`.
    pub path: String,
    /// What is wrong and, where there is one, what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The text is not JSON.
    #[error("snapshot is not valid JSON: {message} at line {line}, column {column}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The JSON is not a valid snapshot; every problem found, in document order.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<Problem>),
}

impl SnapshotError {
    /// The problems with their paths (empty for a JSON syntax error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            SnapshotError::Json { .. } => &[],
            SnapshotError::Invalid(problems) => problems,
        }
    }
}

fn list_problems(problems: &[Problem]) -> String {
    let mut text = match problems.len() {
        1 => "the snapshot has 1 problem:".to_owned(),
        n => format!("the snapshot has {n} problems:"),
    };
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

/// Collects problems while walking a JSON document or a snapshot.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn into_result<T>(self, value: T) -> Result<T, SnapshotError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(SnapshotError::Invalid(self.0))
        }
    }
}

// ---------------------------------------------------------------------------
// Step 1: JSON text -> Snapshot (shape, types, single values)
// ---------------------------------------------------------------------------

impl Snapshot {
    /// Reads a snapshot from JSON text, reporting every unknown field and
    /// every value of the wrong type with its path.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let read = read_text(text)?;
        match read.snapshot {
            Some(snapshot) => read.problems.into_result(snapshot),
            None => Err(SnapshotError::Invalid(read.problems.0)),
        }
    }

    /// Writes the snapshot as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings, numbers and maps cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// serde_json's message without its " at line L column C" tail (we print our own).
fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

/// What step 1 read: the snapshot (when the top level is an object), its
/// problems, and whether every array item made it into the snapshot (then
/// step 2's paths still point at the right items).
struct Read {
    snapshot: Option<Snapshot>,
    problems: Problems,
    complete: bool,
}

fn read_text(text: &str) -> Result<Read, SnapshotError> {
    let value: Value = serde_json::from_str(text).map_err(|e| SnapshotError::Json {
        line: e.line(),
        column: e.column(),
        message: json_error_message(&e),
    })?;
    let mut problems = Problems::default();
    let snapshot = read_snapshot(&value, &mut problems);
    let items = |key: &str| value.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let complete = snapshot.as_ref().is_some_and(|s| {
        s.resources.len() == items("resources")
            && s.hosts.len() == items("hosts")
            && s.jobs.len() == items("jobs")
    });
    Ok(Read {
        snapshot,
        problems,
        complete,
    })
}

fn read_snapshot(value: &Value, p: &mut Problems) -> Option<Snapshot> {
    const FIELDS: &[&str] = &[
        "version",
        "slot_minutes",
        "guard_minutes",
        "stability_weight",
        "window",
        "resources",
        "hosts",
        "jobs",
    ];
    let map = object(value, "snapshot", FIELDS, "", p)?;
    let version = match map.get("version") {
        None => {
            p.add("version", "missing, expected 1");
            VERSION
        }
        Some(v) => match v.as_u64() {
            Some(1) => VERSION,
            _ => {
                p.add("version", format!("{v} is not a known version, expected 1"));
                VERSION
            }
        },
    };
    let slot_minutes = opt_u32(map, "slot_minutes", "", p).unwrap_or(5);
    let guard_minutes = opt_non_negative(map, "guard_minutes", "", p).unwrap_or(0.0);
    let stability_weight = opt_non_negative(map, "stability_weight", "", p).unwrap_or(1.0);
    let window = map.get("window").and_then(|v| read_window(v, "window", p));
    let resources = read_array(map, "resources", "", false, p, read_resource);
    let hosts = read_array(map, "hosts", "", true, p, read_host);
    let jobs = read_array(map, "jobs", "", true, p, read_job);
    Some(Snapshot {
        version,
        slot_minutes,
        guard_minutes,
        stability_weight,
        window,
        resources,
        hosts,
        jobs,
    })
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The object at `path`, with every key outside `fields` reported.
fn object<'a>(
    value: &'a Value,
    what: &str,
    fields: &[&str],
    path: &str,
    p: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    let Some(map) = value.as_object() else {
        let at = if path.is_empty() { what } else { path };
        p.add(at, format!("expected an object, got {}", kind_of(value)));
        return None;
    };
    for key in map.keys() {
        if !fields.contains(&key.as_str()) {
            p.add(
                join(path, key),
                format!("unknown field, expected one of: {}", fields.join(", ")),
            );
        }
    }
    Some(map)
}

fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn read_array<T>(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
    required: bool,
    p: &mut Problems,
    read: impl Fn(&Value, &str, &mut Problems) -> Option<T>,
) -> Vec<T> {
    let path = join(prefix, key);
    match map.get(key) {
        None => {
            if required {
                p.add(path, "missing, expected an array");
            }
            Vec::new()
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| read(item, &format!("{path}[{i}]"), p))
            .collect(),
        Some(other) => {
            p.add(path, format!("expected an array, got {}", kind_of(other)));
            Vec::new()
        }
    }
}

fn req_string(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
    p: &mut Problems,
) -> Option<String> {
    let path = join(prefix, key);
    match map.get(key) {
        None => {
            p.add(path, "missing");
            None
        }
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => {
            p.add(
                path,
                format!("expected a non-empty string, got {}", kind_of(other)),
            );
            None
        }
    }
}

/// A non-negative integer that fits u32 (`2.0` counts as 2, like the scorer).
fn as_u32(value: &Value) -> Option<u32> {
    if let Some(n) = value.as_u64() {
        return u32::try_from(n).ok();
    }
    let f = value.as_f64()?;
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= f64::from(u32::MAX) {
        // Checked above: integral and within range, so the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Some(f as u32);
    }
    None
}

fn opt_u32(map: &Map<String, Value>, key: &str, prefix: &str, p: &mut Problems) -> Option<u32> {
    let value = map.get(key)?;
    let n = as_u32(value);
    if n.is_none() {
        p.add(
            join(prefix, key),
            format!("expected a non-negative integer, got {}", kind_of(value)),
        );
    }
    n
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn opt_non_negative(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
    p: &mut Problems,
) -> Option<f64> {
    let value = map.get(key)?;
    match number(value) {
        Some(f) if f >= 0.0 => Some(f),
        _ => {
            p.add(
                join(prefix, key),
                format!("expected a non-negative number, got {}", kind_of(value)),
            );
            None
        }
    }
}

fn read_window(value: &Value, path: &str, p: &mut Problems) -> Option<Window> {
    let map = object(value, "window", &["start", "end"], path, p)?;
    let start = req_string(map, "start", path, p);
    let end = req_string(map, "end", path, p);
    Some(Window {
        start: start?,
        end: end?,
    })
}

fn read_resource(value: &Value, path: &str, p: &mut Problems) -> Option<Resource> {
    let map = object(value, "resource", &["name", "capacity"], path, p)?;
    let name = req_string(map, "name", path, p);
    let capacity = match map.get("capacity") {
        None => {
            p.add(
                join(path, "capacity"),
                "missing, expected a non-negative integer",
            );
            None
        }
        Some(_) => opt_u32(map, "capacity", path, p),
    };
    Some(Resource {
        name: name?,
        capacity: capacity?,
    })
}

fn read_host(value: &Value, path: &str, p: &mut Problems) -> Option<Host> {
    const FIELDS: &[&str] = &["name", "timezone", "sensitivity", "capacity", "load"];
    let map = object(value, "host", FIELDS, path, p)?;
    let name = req_string(map, "name", path, p);
    let timezone = match map.get("timezone") {
        None => Some(default_timezone()),
        Some(_) => req_string(map, "timezone", path, p),
    };
    let sensitivity = opt_non_negative(map, "sensitivity", path, p).unwrap_or(1.0);
    let capacity = opt_u32(map, "capacity", path, p).unwrap_or(1);
    let load = map
        .get("load")
        .and_then(|v| read_load(v, &join(path, "load"), p));
    Some(Host {
        name: name?,
        timezone: timezone?,
        sensitivity,
        capacity,
        load,
    })
}

fn read_load(value: &Value, path: &str, p: &mut Problems) -> Option<Vec<f64>> {
    let Value::Array(items) = value else {
        p.add(
            path,
            format!("expected an array of numbers, got {}", kind_of(value)),
        );
        return None;
    };
    let mut load = Vec::with_capacity(items.len());
    let mut bad = 0usize;
    for (t, item) in items.iter().enumerate() {
        match number(item) {
            Some(f) if (0.0..=1.0).contains(&f) => load.push(f),
            _ => {
                // One line per bad value would drown the others: show the first few.
                if bad < 3 {
                    p.add(
                        format!("{path}[{t}]"),
                        format!("expected a number in [0, 1], got {}", kind_of(item)),
                    );
                }
                bad += 1;
            }
        }
    }
    if bad > 3 {
        p.add(path, format!("{bad} values outside [0, 1] in all"));
    }
    (bad == 0).then_some(load)
}

fn read_job(value: &Value, path: &str, p: &mut Problems) -> Option<Job> {
    const FIELDS: &[&str] = &[
        "id",
        "host",
        "days",
        "current_start",
        "duration_minutes",
        "resources",
        "impacts",
        "window",
        "pinned",
    ];
    let map = object(value, "job", FIELDS, path, p)?;
    let id = req_string(map, "id", path, p);
    let host = req_string(map, "host", path, p);
    let days = map
        .get("days")
        .and_then(|v| read_days(v, &join(path, "days"), p));
    let current_start = req_string(map, "current_start", path, p);
    let duration_minutes = match map.get("duration_minutes") {
        None => {
            p.add(
                join(path, "duration_minutes"),
                "missing, expected a positive number",
            );
            None
        }
        Some(v) => match number(v) {
            Some(f) if f > 0.0 => Some(f),
            _ => {
                p.add(
                    join(path, "duration_minutes"),
                    format!("expected a positive number, got {}", kind_of(v)),
                );
                None
            }
        },
    };
    let resources = read_names(map.get("resources"), &join(path, "resources"), p);
    let impacts = map
        .get("impacts")
        .and_then(|v| read_impacts(v, &join(path, "impacts"), p));
    let window = map
        .get("window")
        .and_then(|v| read_window(v, &join(path, "window"), p));
    let pinned = match map.get("pinned") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            p.add(
                join(path, "pinned"),
                format!("expected true or false, got {}", kind_of(other)),
            );
            false
        }
    };
    Some(Job {
        id: id?,
        host: host?,
        days,
        current_start: current_start?,
        duration_minutes: duration_minutes?,
        resources: resources?,
        impacts,
        window,
        pinned,
    })
}

fn read_days(value: &Value, path: &str, p: &mut Problems) -> Option<Vec<u8>> {
    let Value::Array(items) = value else {
        p.add(
            path,
            format!(
                "expected an array of weekdays 0 (Monday) .. 6 (Sunday), got {}",
                kind_of(value)
            ),
        );
        return None;
    };
    let mut days = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match as_u32(item).filter(|d| *d <= 6) {
            // Checked: at most 6.
            #[allow(clippy::cast_possible_truncation)]
            Some(d) => days.push(d as u8),
            None => p.add(
                format!("{path}[{i}]"),
                format!(
                    "expected a weekday 0 (Monday) .. 6 (Sunday), got {}",
                    kind_of(item)
                ),
            ),
        }
    }
    (days.len() == items.len()).then_some(days)
}

fn read_names(value: Option<&Value>, path: &str, p: &mut Problems) -> Option<Vec<String>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let Value::Array(items) = value else {
        p.add(
            path,
            format!(
                "expected an array of resource names, got {}",
                kind_of(value)
            ),
        );
        return None;
    };
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => names.push(s.clone()),
            other => p.add(
                format!("{path}[{i}]"),
                format!("expected a resource name, got {}", kind_of(other)),
            ),
        }
    }
    (names.len() == items.len()).then_some(names)
}

fn read_impacts(value: &Value, path: &str, p: &mut Problems) -> Option<BTreeMap<String, f64>> {
    let Value::Object(map) = value else {
        p.add(
            path,
            format!("expected an object host -> weight, got {}", kind_of(value)),
        );
        return None;
    };
    let mut impacts = BTreeMap::new();
    let mut ok = true;
    for (host, weight) in map {
        match number(weight) {
            Some(w) if w >= 0.0 => {
                impacts.insert(host.clone(), w);
            }
            _ => {
                p.add(
                    format!("{path}.{host}"),
                    format!("expected a non-negative weight, got {}", kind_of(weight)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(impacts)
}

// ---------------------------------------------------------------------------
// Step 2: Snapshot -> Model (names, times, windows, lengths)
// ---------------------------------------------------------------------------

/// A validated snapshot, by index: what the planner and the simulator use.
///
/// Resources are numbered explicit ones first (in snapshot order), then one
/// implicit `host:<name>` resource per host (in host order). Jobs and hosts
/// keep their snapshot order.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Minutes per slot.
    pub slot_minutes: u32,
    /// Slots in a day (`1440 / slot_minutes`).
    pub slots_per_day: usize,
    /// Slots in the week (`7 * slots_per_day`).
    pub slots_per_week: usize,
    /// Cost of moving one job.
    pub stability_weight: f64,
    /// Every resource, the implicit host ones last.
    pub resources: Vec<ModelResource>,
    /// Every host.
    pub hosts: Vec<ModelHost>,
    /// Every job.
    pub jobs: Vec<ModelJob>,
}

/// A resource of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelResource {
    /// Its name (`host:<name>` for a host's implicit resource).
    pub name: String,
    /// How many runs may occupy it in one slot.
    pub capacity: u32,
}

/// A host of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelHost {
    /// Its name.
    pub name: String,
    /// Its sensitivity.
    pub sensitivity: f64,
    /// Index of its implicit `host:<name>` resource.
    pub resource: usize,
    /// Load per slot: `slots_per_day` values (daily) or `slots_per_week` (weekly).
    pub load: Vec<f64>,
}

/// A job of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelJob {
    /// Its id.
    pub id: String,
    /// Index of its host.
    pub host: usize,
    /// UTC weekdays it runs on, ascending.
    pub days: Vec<u8>,
    /// Current start, a slot of the day.
    pub current_start: usize,
    /// Occupied slots per run, `ceil((duration + guard) / slot)`.
    pub length: usize,
    /// Resources it occupies, its host's first, each once.
    pub resources: Vec<usize>,
    /// Hosts it disturbs, with weights (host index ascending).
    pub impacts: Vec<(usize, f64)>,
    /// Allowed time-of-day slots of its window (`slots_per_day` flags).
    pub window: Vec<bool>,
    /// Starts whose whole run lies in the window, ascending; a pinned job has only its current start.
    pub allowed_starts: Vec<usize>,
    /// The start may not change.
    pub pinned: bool,
}

/// The numbers of an assignment of starts (PLANNING-MODEL.md, "Objective").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Sum over slots and resources of `max(0, occupancy - capacity)`.
    pub overflow: u64,
    /// The cost: load cost plus `stability_weight * moved`.
    pub cost: f64,
    /// How many jobs start away from their current start.
    pub moved: usize,
}

impl Model {
    /// Reads and validates a snapshot in one go.
    ///
    /// Lists the problems of both steps at once when it can: the meaning is
    /// checked despite shape problems as long as no array item was dropped.
    pub fn from_json(text: &str) -> Result<Model, SnapshotError> {
        let read = read_text(text)?;
        let Some(snapshot) = read.snapshot else {
            return Err(SnapshotError::Invalid(read.problems.0));
        };
        if read.problems.0.is_empty() {
            return snapshot.validate();
        }
        let mut problems = read.problems.0;
        if read.complete {
            if let Err(SnapshotError::Invalid(more)) = snapshot.validate() {
                problems.extend(more);
            }
        }
        Err(SnapshotError::Invalid(problems))
    }

    /// The week slots one job occupies when it starts at `start`, over all its
    /// days: `L` consecutive slots per day, wrapping from Sunday into Monday.
    pub fn run_slots(&self, job: usize, start: usize) -> impl Iterator<Item = usize> + '_ {
        let j = &self.jobs[job];
        let (spd, week, length) = (self.slots_per_day, self.slots_per_week, j.length);
        j.days.iter().flat_map(move |&d| {
            let first = usize::from(d) * spd + start;
            (0..length).map(move |k| (first + k) % week)
        })
    }

    /// Host `host`'s baseline load in week slot `t`.
    pub fn host_load(&self, host: usize, t: usize) -> f64 {
        let load = &self.hosts[host].load;
        load[t % load.len()]
    }

    /// The load cost of one job at `start` (without the stability term).
    pub fn load_cost(&self, job: usize, start: usize) -> f64 {
        let j = &self.jobs[job];
        let mut cost = 0.0;
        for &(h, weight) in &j.impacts {
            let factor = weight * self.hosts[h].sensitivity;
            if factor == 0.0 {
                continue;
            }
            let sum: f64 = self
                .run_slots(job, start)
                .map(|t| self.host_load(h, t))
                .sum();
            cost += factor * sum;
        }
        cost
    }

    /// The whole cost of one job at `start`: load cost plus the stability
    /// weight when `start` is not its current start.
    pub fn start_cost(&self, job: usize, start: usize) -> f64 {
        let moved = start != self.jobs[job].current_start;
        self.load_cost(job, start) + if moved { self.stability_weight } else { 0.0 }
    }

    /// Overflow, cost and moved count of `starts` (one start per job, in job order).
    pub fn score(&self, starts: &[usize]) -> Score {
        let mut occupancy = vec![0u32; self.resources.len() * self.slots_per_week];
        let mut cost = 0.0;
        let mut moved = 0;
        for (job, &start) in starts.iter().enumerate() {
            cost += self.start_cost(job, start);
            moved += usize::from(start != self.jobs[job].current_start);
            for t in self.run_slots(job, start) {
                for &r in &self.jobs[job].resources {
                    occupancy[r * self.slots_per_week + t] += 1;
                }
            }
        }
        let overflow = occupancy
            .chunks(self.slots_per_week)
            .zip(&self.resources)
            .map(|(slots, r)| {
                slots
                    .iter()
                    .map(|&n| u64::from(n.saturating_sub(r.capacity)))
                    .sum::<u64>()
            })
            .sum();
        Score {
            overflow,
            cost,
            moved,
        }
    }

    /// `HH:MM` of a slot of the day.
    pub fn format_start(&self, start: usize) -> String {
        let minutes = start * self.slot_minutes as usize;
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

impl Snapshot {
    /// Checks the meaning of every field and builds the index-based model;
    /// lists every problem with its path.
    pub fn validate(&self) -> Result<Model, SnapshotError> {
        let mut p = Problems::default();
        if self.version != VERSION {
            p.add(
                "version",
                format!("{} is not a known version, expected 1", self.version),
            );
        }
        let slot = self.slot_minutes;
        if slot == 0 || !DAY_MINUTES.is_multiple_of(slot) {
            p.add(
                "slot_minutes",
                format!("{slot} does not divide a day (1440 minutes): use e.g. 5, 10, 15 or 30"),
            );
            return Err(SnapshotError::Invalid(p.0));
        }
        let spd = (DAY_MINUTES / slot) as usize;
        let grid = Grid { slot, spd };
        check_non_negative(self.guard_minutes, "guard_minutes", &mut p);
        check_non_negative(self.stability_weight, "stability_weight", &mut p);
        let fleet_window = match &self.window {
            Some(w) => grid.window(w, "window", &mut p),
            None => Some(vec![true; spd]),
        };
        let resources = self.model_resources(&mut p);
        let hosts = self.model_hosts(&grid, resources.len(), &mut p);
        let mut all_resources = resources;
        all_resources.extend(self.hosts.iter().map(|h| ModelResource {
            name: format!("host:{}", h.name),
            capacity: h.capacity,
        }));
        let names = Names::new(&all_resources, &hosts);
        let mut jobs = Vec::with_capacity(self.jobs.len());
        let mut ids = BTreeSet::new();
        for (i, job) in self.jobs.iter().enumerate() {
            let path = format!("jobs[{i}]");
            if !ids.insert(job.id.as_str()) {
                p.add(
                    format!("{path}.id"),
                    format!("duplicate job id '{}'", job.id),
                );
            }
            let ctx = JobContext {
                grid: &grid,
                guard: self.guard_minutes,
                fleet_window: fleet_window.as_deref(),
                names: &names,
                hosts: &hosts,
            };
            if let Some(model_job) = ctx.job(job, &path, &mut p) {
                jobs.push(model_job);
            }
        }
        let model = Model {
            slot_minutes: slot,
            slots_per_day: spd,
            slots_per_week: 7 * spd,
            stability_weight: self.stability_weight,
            resources: all_resources,
            hosts,
            jobs,
        };
        p.into_result(model)
    }

    fn model_resources(&self, p: &mut Problems) -> Vec<ModelResource> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(self.resources.len());
        for (i, r) in self.resources.iter().enumerate() {
            let path = format!("resources[{i}].name");
            if r.name.is_empty() {
                p.add(path, "expected a non-empty name");
            } else if r.name.starts_with("host:") {
                p.add(
                    path,
                    format!(
                        "'{}': the prefix host: is reserved for the hosts' own resources, set hosts[].capacity instead",
                        r.name
                    ),
                );
            } else if !seen.insert(r.name.as_str()) {
                p.add(path, format!("duplicate resource '{}'", r.name));
            }
            // Keep every entry so indices stay aligned; a bad one fails validation anyway.
            out.push(ModelResource {
                name: r.name.clone(),
                capacity: r.capacity,
            });
        }
        out
    }

    fn model_hosts(&self, grid: &Grid, first_resource: usize, p: &mut Problems) -> Vec<ModelHost> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(self.hosts.len());
        for (i, h) in self.hosts.iter().enumerate() {
            let path = format!("hosts[{i}]");
            if h.name.is_empty() {
                p.add(format!("{path}.name"), "expected a non-empty name");
            } else if !seen.insert(h.name.as_str()) {
                p.add(
                    format!("{path}.name"),
                    format!("duplicate host '{}'", h.name),
                );
            }
            if h.timezone.parse::<chrono_tz::Tz>().is_err() {
                p.add(
                    format!("{path}.timezone"),
                    format!(
                        "unknown time zone '{}', use an IANA name such as Europe/Berlin or UTC",
                        h.timezone
                    ),
                );
            }
            check_non_negative(h.sensitivity, &format!("{path}.sensitivity"), p);
            let load = match &h.load {
                None => vec![0.0; grid.spd],
                Some(load) => {
                    if load.len() != grid.spd && load.len() != 7 * grid.spd {
                        p.add(
                            format!("{path}.load"),
                            format!(
                                "{} values, expected {} (a daily profile) or {} (a weekly one)",
                                load.len(),
                                grid.spd,
                                7 * grid.spd
                            ),
                        );
                    }
                    if let Some(t) = load.iter().position(|v| !(0.0..=1.0).contains(v)) {
                        p.add(
                            format!("{path}.load[{t}]"),
                            format!("{} is outside [0, 1]", load[t]),
                        );
                    }
                    load.clone()
                }
            };
            out.push(ModelHost {
                name: h.name.clone(),
                sensitivity: h.sensitivity,
                resource: first_resource + i,
                load,
            });
        }
        out
    }
}

fn check_non_negative(value: f64, path: &str, p: &mut Problems) {
    if !(value.is_finite() && value >= 0.0) {
        p.add(path, format!("expected a non-negative number, got {value}"));
    }
}

/// The slot grid: parses times and windows.
struct Grid {
    slot: u32,
    spd: usize,
}

impl Grid {
    /// A time of day `HH:MM` on the grid, as a slot of the day.
    fn time(&self, text: &str, path: &str, p: &mut Problems) -> Option<usize> {
        let Some(minutes) = parse_hhmm(text) else {
            let message = if text == "24:00" {
                "24:00 is not a time of day, use 00:00".to_owned()
            } else {
                format!("'{text}' is not a time of day, expected HH:MM from 00:00 to 23:59")
            };
            p.add(path, message);
            return None;
        };
        if minutes % self.slot != 0 {
            p.add(
                path,
                format!("{text} is not on the {}-minute slot grid", self.slot),
            );
            return None;
        }
        Some((minutes / self.slot) as usize)
    }

    /// The allowed time-of-day slots of a window.
    fn window(&self, w: &Window, path: &str, p: &mut Problems) -> Option<Vec<bool>> {
        let start = self.time(&w.start, &format!("{path}.start"), p);
        let end = self.time(&w.end, &format!("{path}.end"), p);
        let (a, b) = (start?, end?);
        let mut allowed = vec![false; self.spd];
        if a == b {
            allowed.fill(true);
        } else if a < b {
            allowed[a..b].fill(true);
        } else {
            allowed[a..].fill(true);
            allowed[..b].fill(true);
        }
        Some(allowed)
    }
}

/// Minutes after midnight of a strict `HH:MM` (two digits each, 00:00–23:59).
fn parse_hhmm(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return None;
    }
    let h = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let m = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Name lookups for jobs.
struct Names<'a> {
    resources: BTreeMap<&'a str, usize>,
    hosts: BTreeMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    fn new(resources: &'a [ModelResource], hosts: &'a [ModelHost]) -> Self {
        let mut r = BTreeMap::new();
        for (i, res) in resources.iter().enumerate() {
            r.entry(res.name.as_str()).or_insert(i);
        }
        let mut h = BTreeMap::new();
        for (i, host) in hosts.iter().enumerate() {
            h.entry(host.name.as_str()).or_insert(i);
        }
        Names {
            resources: r,
            hosts: h,
        }
    }

    fn known(map: &BTreeMap<&str, usize>) -> String {
        let mut names: Vec<&str> = map.keys().copied().take(KNOWN_NAMES_SHOWN).collect();
        if map.len() > KNOWN_NAMES_SHOWN {
            names.push("...");
        }
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    fn host(&self, name: &str, path: &str, p: &mut Problems) -> Option<usize> {
        let found = self.hosts.get(name).copied();
        if found.is_none() {
            p.add(
                path,
                format!(
                    "unknown host '{name}' (known: {})",
                    Self::known(&self.hosts)
                ),
            );
        }
        found
    }

    fn resource(&self, name: &str, path: &str, p: &mut Problems) -> Option<usize> {
        let found = self.resources.get(name).copied();
        if found.is_none() {
            let explicit: BTreeMap<&str, usize> = self
                .resources
                .iter()
                .filter(|(n, _)| !n.starts_with("host:"))
                .map(|(n, i)| (*n, *i))
                .collect();
            p.add(
                path,
                format!(
                    "unknown resource '{name}' (known: {})",
                    Self::known(&explicit)
                ),
            );
        }
        found
    }
}

/// What validating one job needs from the rest of the snapshot.
struct JobContext<'a> {
    grid: &'a Grid,
    guard: f64,
    fleet_window: Option<&'a [bool]>,
    names: &'a Names<'a>,
    hosts: &'a [ModelHost],
}

impl JobContext<'_> {
    fn job(&self, job: &Job, path: &str, p: &mut Problems) -> Option<ModelJob> {
        let errors_before = p.0.len();
        let host = self.names.host(&job.host, &format!("{path}.host"), p);
        let days = self.days(job.days.as_deref(), &format!("{path}.days"), p);
        let current_start = self
            .grid
            .time(&job.current_start, &format!("{path}.current_start"), p);
        let length = self.length(job.duration_minutes, &format!("{path}.duration_minutes"), p);
        let mut resources: Vec<usize> = host.map(|h| self.hosts[h].resource).into_iter().collect();
        for (k, name) in job.resources.iter().enumerate() {
            if let Some(r) = self
                .names
                .resource(name, &format!("{path}.resources[{k}]"), p)
            {
                if !resources.contains(&r) {
                    resources.push(r);
                }
            }
        }
        let impacts = self.impacts(job, host, &format!("{path}.impacts"), p);
        let window = match &job.window {
            Some(w) => self.grid.window(w, &format!("{path}.window"), p),
            None => self.fleet_window.map(<[bool]>::to_vec),
        };
        if p.0.len() > errors_before {
            return None;
        }
        let (host, days, current_start, length, impacts, window) =
            (host?, days?, current_start?, length?, impacts?, window?);
        let fits = allowed_starts(&window, length);
        if fits.is_empty() {
            p.add(
                path,
                format!(
                    "the job occupies {length} slots ({} minutes with the guard) and cannot fit its window at all: widen the window or shorten the job",
                    length * self.grid.slot as usize
                ),
            );
            return None;
        }
        let allowed = if job.pinned {
            if fits.binary_search(&current_start).is_err() {
                p.add(
                    format!("{path}.current_start"),
                    format!(
                        "the job is pinned at {} but its run of {length} slots does not lie inside its window: unpin it or move its window",
                        job.current_start
                    ),
                );
                return None;
            }
            vec![current_start]
        } else {
            fits
        };
        Some(ModelJob {
            id: job.id.clone(),
            host,
            days,
            current_start,
            length,
            resources,
            impacts,
            window,
            allowed_starts: allowed,
            pinned: job.pinned,
        })
    }

    fn days(&self, days: Option<&[u8]>, path: &str, p: &mut Problems) -> Option<Vec<u8>> {
        let Some(days) = days else {
            return Some((0..7).collect());
        };
        let mut sorted = days.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != days.len() {
            p.add(path, format!("{days:?} lists a weekday twice, expected distinct weekdays 0 (Monday) .. 6 (Sunday)"));
            return None;
        }
        if let Some(d) = sorted.iter().find(|d| **d > 6) {
            p.add(
                path,
                format!("{d} is not a weekday, expected 0 (Monday) .. 6 (Sunday)"),
            );
            return None;
        }
        Some(sorted)
    }

    /// `L = ceil((duration + guard) / slot)`, exactly on the decimals.
    fn length(&self, duration: f64, path: &str, p: &mut Problems) -> Option<usize> {
        if !(duration.is_finite() && duration > 0.0) {
            p.add(
                path,
                format!("expected a positive number of minutes, got {duration}"),
            );
            return None;
        }
        if !(self.guard.is_finite() && self.guard >= 0.0) {
            return None; // reported at guard_minutes
        }
        let week = 7 * u64::from(DAY_MINUTES);
        if duration + self.guard > week as f64 {
            p.add(
                path,
                format!("{duration} minutes plus the guard is longer than a week"),
            );
            return None;
        }
        let slots = occupied_slots(duration, self.guard, u64::from(self.grid.slot));
        Some(slots as usize)
    }

    fn impacts(
        &self,
        job: &Job,
        host: Option<usize>,
        path: &str,
        p: &mut Problems,
    ) -> Option<Vec<(usize, f64)>> {
        let Some(impacts) = &job.impacts else {
            return host.map(|h| vec![(h, 1.0)]);
        };
        let mut out = Vec::with_capacity(impacts.len());
        for (name, &weight) in impacts {
            let at = format!("{path}.{name}");
            let h = self.names.host(name, &at, p);
            if !(weight.is_finite() && weight >= 0.0) {
                p.add(at, format!("expected a non-negative weight, got {weight}"));
                continue;
            }
            if let Some(h) = h {
                out.push((h, weight));
            }
        }
        out.sort_by_key(|&(h, _)| h);
        Some(out)
    }
}

/// Starts `s` whose `length` slots `(s + k) mod spd` all lie in `window`.
fn allowed_starts(window: &[bool], length: usize) -> Vec<usize> {
    let spd = window.len();
    (0..spd)
        .filter(|&s| (0..length).all(|k| window[(s + k) % spd]))
        .collect()
}

/// `ceil((a + b) / slot)` computed on the shortest decimals of `a` and `b`
/// (the literals of the JSON), never on their binary sum.
///
/// Both are finite, non-negative and at most a week of minutes (checked by the caller).
fn occupied_slots(a: f64, b: f64, slot: u64) -> u64 {
    let (ia, fa) = split_decimal(a);
    let (ib, fb) = split_decimal(b);
    // Add the fraction digits; a carry out of the first digit is a whole minute.
    let width = fa.len().max(fb.len());
    let digit = |f: &[u8], i: usize| f.get(i).copied().unwrap_or(0);
    let mut carry = 0u8;
    let mut any_fraction = false;
    for i in (0..width).rev() {
        let d = digit(&fa, i) + digit(&fb, i) + carry;
        any_fraction |= !d.is_multiple_of(10);
        carry = d / 10;
    }
    let whole = ia + ib + u64::from(carry);
    let slots = whole / slot;
    if whole % slot != 0 || any_fraction {
        slots + 1
    } else {
        slots
    }
}

/// The integer part and the fraction digits of the shortest decimal of `x`.
fn split_decimal(x: f64) -> (u64, Vec<u8>) {
    // Rust's Display prints the shortest decimal that reads back as `x`,
    // without an exponent: the literal that was written in the JSON.
    let text = format!("{x}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int = int.parse::<u64>().unwrap_or(0);
    let mut digits: Vec<u8> = frac.bytes().map(|c| c - b'0').collect();
    while digits.last() == Some(&0) {
        digits.pop();
    }
    (int, digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupied_slots_uses_the_written_decimals() {
        assert_eq!(occupied_slots(20.1, 9.9, 5), 6);
        assert_eq!(occupied_slots(20.1, 9.91, 5), 7);
        assert_eq!(occupied_slots(25.0, 10.0, 5), 7);
        assert_eq!(occupied_slots(0.1, 0.2, 5), 1);
        assert_eq!(occupied_slots(4.9, 0.1, 5), 1);
        assert_eq!(occupied_slots(4.9, 0.2, 5), 2);
        assert_eq!(occupied_slots(1e-7, 0.0, 5), 1);
        assert_eq!(occupied_slots(30.000000000000004, 0.0, 5), 7);
    }

    #[test]
    fn hhmm_is_strict() {
        assert_eq!(parse_hhmm("00:00"), Some(0));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("2:00"), None);
        assert_eq!(parse_hhmm("02:60"), None);
        assert_eq!(parse_hhmm("+2:00"), None);
    }

    #[test]
    fn wrapped_window_allows_starts_across_midnight() {
        let mut window = vec![false; 288];
        window[276..].fill(true); // 23:00..24:00
        window[..12].fill(true); // 00:00..01:00
        let starts = allowed_starts(&window, 12);
        assert_eq!(starts.first(), Some(&0));
        assert!(starts.contains(&276));
        assert!(!starts.contains(&1));
        assert_eq!(starts.len(), 13);
    }
}
