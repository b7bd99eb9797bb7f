//! Proxmox's own reading of jobs.cfg: `PVE::SectionConfig::parse_config` as
//! run by `PVE::Job::Registry`, line for line, with the same warnings at the
//! same line numbers, the same skipped sections and left-behind ids, and the
//! same values (defaults and decoding included).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use super::comment;
use super::document::Document;
use super::schema::{self, Kind, SectionType, Usage};
use super::syntax;
use super::value::Value;

/// One warning Proxmox prints while reading the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// 1-based line number, as Proxmox prints it.
    pub line: usize,
    /// The whole warning as Proxmox prints it (`file <name> line <n> ...`), trailing whitespace removed.
    pub message: String,
}

/// A value Proxmox rejected (an entry of its parse result's `errors`); the key is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyError {
    /// 1-based line of the rejected value.
    pub line: usize,
    /// `file <name> line <n>`.
    pub context: String,
    /// The section id.
    pub section: String,
    /// The property key.
    pub key: String,
    /// Proxmox's reason, e.g. `duplicate attribute`.
    pub message: String,
}

/// A property line whose value Proxmox stored: where its key and value bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLine {
    /// 1-based line number.
    pub line: usize,
    /// The key, e.g. `schedule`.
    pub key: &'static str,
    /// Byte range of the key in the file.
    pub key_bytes: Range<usize>,
    /// Byte range of the value in the file; `None` for a key alone (a boolean meaning 1).
    pub value_bytes: Option<Range<usize>>,
}

impl StoredLine {
    /// The value exactly as written in `cfg` (the document this line was read from).
    pub fn raw_value<'a>(&self, cfg: &'a super::JobsCfg) -> Option<&'a str> {
        cfg.as_str().get(self.value_bytes.clone()?)
    }
}

/// A section id as Proxmox keeps it after reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The section id.
    pub id: String,
    /// The type name of its header (`vzdump`, `realm-sync`).
    pub section_type: String,
    /// Proxmox's `order` number (positions skip when an id is defined twice).
    pub order: usize,
    /// 1-based line of the header.
    pub header_line: usize,
    /// 1-based line of the last line Proxmox processed in the section (where it
    /// reports a missing required option).
    pub last_line: usize,
    /// The values Proxmox holds, or `None` when the section was skipped but its
    /// id left behind (a missing required option): invisible to pvescheduler and
    /// fatal to every Proxmox write.
    pub values: Option<BTreeMap<&'static str, Value>>,
    /// Why the section was skipped, in Proxmox's words, when `values` is `None`.
    pub problem: Option<String>,
    /// The required option whose absence made Proxmox skip the section.
    pub missing_option: Option<String>,
    /// The property lines whose values Proxmox stored, in file order.
    pub stored_lines: Vec<StoredLine>,
}

impl Section {
    /// The stored value of `key`, if any.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.as_ref()?.get(key)
    }

    /// The line Proxmox took the (first) value of `key` from.
    pub fn stored_line(&self, key: &str) -> Option<&StoredLine> {
        self.stored_lines.iter().find(|line| line.key == key)
    }
}

/// A job as pvescheduler sees it: the summary `schedctl jobs-cfg show` prints.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    /// The section id.
    pub id: String,
    /// `vzdump` or `realm-sync`.
    #[serde(rename = "type")]
    pub section_type: String,
    /// The calendar event.
    pub schedule: String,
    /// The node the job is bound to, if any.
    pub node: Option<String>,
    /// Whether pvescheduler starts it.
    pub enabled: bool,
    /// 1-based line of its header.
    pub line: usize,
}

/// Everything Proxmox makes of a jobs.cfg when it reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The warnings Proxmox prints, in order.
    pub warnings: Vec<Warning>,
    /// The values Proxmox rejected.
    pub errors: Vec<PropertyError>,
    /// One entry per section id Proxmox keeps, in its `order`.
    pub sections: Vec<Section>,
}

impl Reading {
    /// The section Proxmox keeps for `id`.
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// The jobs pvescheduler sees: the ids with values, in order.
    pub fn jobs(&self) -> Vec<Job> {
        self.sections
            .iter()
            .filter_map(|section| {
                let values = section.values.as_ref()?;
                Some(Job {
                    id: section.id.clone(),
                    section_type: section.section_type.clone(),
                    schedule: text_of(values, "schedule").unwrap_or_default(),
                    node: text_of(values, "node"),
                    enabled: values
                        .get("enabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                    line: section.header_line,
                })
            })
            .collect()
    }

    /// The first section left behind without values (the one that makes Proxmox writes fail).
    pub fn first_left_behind(&self) -> Option<&Section> {
        self.sections.iter().find(|s| s.values.is_none())
    }
}

fn text_of(values: &BTreeMap<&'static str, Value>, key: &str) -> Option<String> {
    values.get(key).and_then(Value::as_text).map(str::to_owned)
}

/// Reads `document` as Proxmox does; `file_name` only appears in messages.
pub(crate) fn read(document: &Document, file_name: &str) -> Reading {
    let mut reader = Reader {
        document,
        file_name,
        next: 0,
        warnings: Vec::new(),
        errors: Vec::new(),
        sections: Vec::new(),
        index: HashMap::new(),
        next_order: 1,
        scratch_lines: Vec::new(),
        scratch_values: Values::default(),
        calendar_checks: Vec::new(),
    };
    reader.read_all();
    Reading {
        warnings: reader.warnings,
        errors: reader.errors,
        sections: reader.sections.into_iter().flatten().collect(),
    }
}

/// How many distinct calendar-event values one reading remembers the check of.
const CALENDAR_CHECKS_KEPT: usize = 32;

struct Reader<'a> {
    document: &'a Document,
    file_name: &'a str,
    /// Index of the next line to read.
    next: usize,
    warnings: Vec<Warning>,
    errors: Vec<PropertyError>,
    /// Sections in the order they were recorded; `None` where a later section replaced one.
    sections: Vec<Option<Section>>,
    /// Section id → position in `sections`.
    index: HashMap<String, usize>,
    next_order: usize,
    /// Reused buffer for the stored lines of the section being read.
    scratch_lines: Vec<StoredLine>,
    /// Reused buffer for the values of the section being read.
    scratch_values: Values,
    /// `check_value` results of the first [`CALENDAR_CHECKS_KEPT`] distinct
    /// calendar-event values: a file repeats a handful of schedules, and
    /// parsing one is the costly check (a short list beats hashing here).
    calendar_checks: Vec<(SectionType, &'a str, Result<Value, String>)>,
}

/// A section being read.
struct Builder<'a> {
    section_type: SectionType,
    id: &'a str,
    header_line: usize,
    last_line: usize,
    values: Values,
    stored_lines: Vec<StoredLine>,
    /// A `type` line naming the section's own type was stored.
    has_type_line: bool,
}

impl<'a> Reader<'a> {
    /// The next line that is not a comment, with its 0-based index.
    fn next_line(&mut self) -> Option<(usize, &'a str)> {
        let document: &'a Document = self.document;
        while self.next < document.line_count() {
            let index = self.next;
            self.next += 1;
            let line = document.line(index);
            if !syntax::is_comment(line) {
                return Some((index, line));
            }
        }
        None
    }

    fn read_all(&mut self) {
        while self.next < self.document.line_count() {
            let Some((index, line)) = self.next_line() else {
                continue;
            };
            if syntax::is_false(line) {
                continue;
            }
            match syntax::parse_header(line) {
                Some((kind, id)) => self.read_section(index, &line[kind], &line[id]),
                None => self.warn(
                    index + 1,
                    format!(
                        "file {} line {} - ignore config line: {line}",
                        self.file_name,
                        index + 1
                    ),
                ),
            }
        }
    }

    /// Reads a section from its header up to the first empty (or `0`) line.
    fn read_section(&mut self, header_index: usize, type_name: &str, id: &'a str) {
        let header_line = header_index + 1;
        let section_type = if type_name == "0" {
            self.skip_warning(header_line, id, "missing type - internal error".to_owned());
            None
        } else {
            let known = SectionType::from_name(type_name);
            if known.is_none() {
                self.skip_warning(header_line, id, format!("unsupported type '{type_name}'"));
            }
            known
        };
        let mut builder = section_type.map(|section_type| Builder {
            section_type,
            id,
            header_line,
            last_line: header_line,
            values: std::mem::take(&mut self.scratch_values),
            stored_lines: std::mem::take(&mut self.scratch_lines),
            has_type_line: false,
        });
        while let Some((index, line)) = self.next_line() {
            if syntax::is_false(line) {
                break;
            }
            let Some(builder) = builder.as_mut() else {
                continue;
            };
            builder.last_line = index + 1;
            match syntax::parse_property(line) {
                Some((key, value)) => self.read_property(builder, index, key, value),
                None => self.warn(
                    index + 1,
                    format!(
                        "file {} line {} (section '{}') - ignore config line: {line}",
                        self.file_name,
                        index + 1,
                        builder.id
                    ),
                ),
            }
        }
        if let Some(builder) = builder {
            self.finish_section(builder, type_name);
        }
    }

    /// One property line: check it against the schema, store it or report why not.
    fn read_property(
        &mut self,
        builder: &mut Builder<'a>,
        index: usize,
        key: Range<usize>,
        value: Option<Range<usize>>,
    ) {
        let document: &'a Document = self.document;
        let line = document.line(index);
        let key_text = &line[key.clone()];
        let value_text = value.clone().map(|range| &line[range]);
        let property = schema::property_index(key_text);
        let checked = match (property, value_text) {
            (Some(property), Some(value)) if is_calendar_event(property) => {
                Some(self.check_calendar_value(builder.section_type, property, value))
            }
            _ => None,
        };
        match store_property(builder, key_text, property, value_text, checked) {
            Ok(key_name) => {
                let start = document.line_start(index);
                builder.stored_lines.push(StoredLine {
                    line: index + 1,
                    key: key_name,
                    key_bytes: start + key.start..start + key.end,
                    value_bytes: value.map(|range| start + range.start..start + range.end),
                });
            }
            Err(message) => {
                let message = syntax::trim_end(&message).to_owned();
                let context = format!("file {} line {}", self.file_name, index + 1);
                self.warn(
                    index + 1,
                    format!(
                        "{context} (section '{}') - unable to parse value of '{key_text}': {message}",
                        builder.id
                    ),
                );
                self.errors.push(PropertyError {
                    line: index + 1,
                    context,
                    section: builder.id.to_owned(),
                    key: key_text.to_owned(),
                    message,
                });
            }
        }
    }

    /// `check_value` of a calendar-event property, once per distinct value and type.
    fn check_calendar_value(
        &mut self,
        section_type: SectionType,
        index: usize,
        value: &'a str,
    ) -> Result<Value, String> {
        let seen = self
            .calendar_checks
            .iter()
            .find(|(kind, seen, _)| *kind == section_type && *seen == value);
        if let Some((_, _, checked)) = seen {
            return checked.clone();
        }
        let checked = schema::check_value(section_type, &schema::PROPERTIES[index], Some(value));
        if self.calendar_checks.len() < CALENDAR_CHECKS_KEPT {
            self.calendar_checks
                .push((section_type, value, checked.clone()));
        }
        checked
    }

    /// `check_config` with `create`: required options, then Registry's defaults and decoding.
    fn finish_section(&mut self, mut builder: Builder<'a>, type_name: &str) {
        let missing_option = schema::PROPERTIES
            .iter()
            .enumerate()
            .find(|(index, p)| {
                builder.section_type.usage(p) == Usage::Required && !builder.values.contains(*index)
            })
            .map(|(_, p)| p.name.to_owned());
        let missing = missing_option
            .as_ref()
            .map(|name| format!("missing value for required option '{name}'"));
        if let Some(problem) = &missing {
            self.skip_warning(builder.last_line, builder.id, problem.clone());
        }
        let values = match missing {
            Some(_) => None,
            None => Some(with_registry_defaults(&mut builder.values)),
        };
        builder.values.entries.clear();
        self.scratch_values = builder.values;
        let stored_lines: Vec<StoredLine> = builder.stored_lines.drain(..).collect();
        self.scratch_lines = builder.stored_lines;
        let section = Section {
            id: builder.id.to_owned(),
            section_type: type_name.to_owned(),
            order: self.next_order,
            header_line: builder.header_line,
            last_line: builder.last_line,
            values,
            problem: missing,
            missing_option,
            stored_lines,
        };
        self.next_order += 1;
        self.record(builder.id, section);
    }

    /// Stores a section under its id; a later section with the same id replaces the earlier one.
    fn record(&mut self, id: &'a str, section: Section) {
        let position = self.sections.len();
        if let Some(old) = self.index.insert(id.to_owned(), position) {
            self.sections[old] = None;
        }
        self.sections.push(Some(section));
    }

    fn skip_warning(&mut self, line: usize, id: &str, problem: String) {
        self.warn(
            line,
            format!(
                "file {} line {line} (skip section '{id}'): {problem}",
                self.file_name
            ),
        );
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(Warning {
            line,
            message: syntax::trim_end(&message).to_owned(),
        });
    }
}

/// The parse loop's rules for one property: unknown key, array push, duplicate,
/// value check. Returns the stored key's name.
///
/// `index` is the key's position in [`schema::PROPERTIES`]; `checked` is the
/// value check's result when the caller already has it.
fn store_property(
    builder: &mut Builder<'_>,
    key: &str,
    index: Option<usize>,
    value: Option<&str>,
    checked: Option<Result<Value, String>>,
) -> Result<&'static str, String> {
    if key == "type" {
        // In the property list with type `string`: never an array, and its own
        // type name is accepted as is (check_value returns early for it).
        if builder.has_type_line {
            return Err("duplicate attribute".to_owned());
        }
        if value != Some(builder.section_type.name()) {
            return Err("unexpected property 'type'".to_owned());
        }
        builder.has_type_line = true;
        return Ok("type");
    }
    let index = index.ok_or_else(|| "unknown property type".to_owned())?;
    let property = &schema::PROPERTIES[index];
    let name = property.name;
    if matches!(property.kind, Kind::List) {
        let checked = schema::check_value(builder.section_type, property, value)?;
        match (checked, builder.values.get_mut(index)) {
            (Value::List(new), Some(Value::List(items))) => items.extend(new),
            (checked, _) => builder.values.insert(index, checked),
        }
        return Ok(name);
    }
    if builder.values.contains(index) {
        return Err("duplicate attribute".to_owned());
    }
    let checked = match checked {
        Some(checked) => checked?,
        None => schema::check_value(builder.section_type, property, value)?,
    };
    builder.values.insert(index, checked);
    Ok(name)
}

/// The values of the section being read, keyed by their index in
/// [`schema::PROPERTIES`] (a handful per section: a linear scan beats a map).
#[derive(Default)]
struct Values {
    entries: Vec<(usize, Value)>,
}

impl Values {
    fn contains(&self, index: usize) -> bool {
        self.entries.iter().any(|(i, _)| *i == index)
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, value)| value)
    }

    /// Sets the value at `index`, replacing an earlier one.
    fn insert(&mut self, index: usize, value: Value) {
        match self.get_mut(index) {
            Some(stored) => *stored = value,
            None => self.entries.push((index, value)),
        }
    }

    /// The map Proxmox holds: keys in name order (the order of `PROPERTIES`).
    fn take_map(&mut self) -> BTreeMap<&'static str, Value> {
        self.entries.sort_unstable_by_key(|(index, _)| *index);
        self.entries
            .drain(..)
            .map(|(index, value)| (schema::PROPERTIES[index].name, value))
            .collect()
    }
}

/// Registry's `parse_config`: `enabled` defaults to 1 and `comment` is percent-decoded.
fn with_registry_defaults(values: &mut Values) -> BTreeMap<&'static str, Value> {
    let enabled = schema::ENABLED;
    if !values.contains(enabled) {
        values.insert(enabled, Value::Bool(true));
    }
    if let Some(Value::Text(stored)) = values.get_mut(schema::COMMENT) {
        if stored.contains('%') {
            *stored = comment::decode(stored);
        }
    }
    values.take_map()
}

/// Whether the property at `index` holds a calendar event (`schedule`).
fn is_calendar_event(index: usize) -> bool {
    matches!(
        schema::PROPERTIES[index].kind,
        Kind::Text {
            format: Some(schema::Format::CalendarEvent),
            ..
        }
    )
}
