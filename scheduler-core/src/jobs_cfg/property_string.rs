//! Property strings (`keep-daily=7,keep-last=3`, `1,storage=local-zfs`): the
//! three formats jobs.cfg uses, read as `JSONSchema::parse_property_string`
//! reads them and printed as `print_property_string` prints them.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::schema::{check_boolean, check_integer, check_storage_id};
use super::syntax;

/// A decoded property string: key → value as written.
type PropertyMap = BTreeMap<String, String>;

/// A format's validator: runs on the checked map; may rewrite it or reject it.
type Validator = fn(PropertyMap) -> Result<PropertyMap, String>;

/// A hash-based format: its keys and an optional validator run after the checks.
#[derive(Debug)]
pub(crate) struct PropertyFormat {
    /// The keys, sorted by name.
    keys: &'static [FormatKey],
    /// Runs on the checked map; may rewrite it (prune-backups) or reject it.
    validator: Option<Validator>,
}

/// One key of a property-string format.
#[derive(Debug)]
struct FormatKey {
    name: &'static str,
    kind: KeyKind,
    /// The key a bare value (without `key=`) belongs to.
    default_key: bool,
}

#[derive(Debug)]
enum KeyKind {
    Boolean,
    Integer { min: Option<i64>, max: Option<i64> },
    StorageId,
}

const fn key(name: &'static str, kind: KeyKind) -> FormatKey {
    FormatKey {
        name,
        kind,
        default_key: false,
    }
}

const fn count(name: &'static str) -> FormatKey {
    key(
        name,
        KeyKind::Integer {
            min: Some(0),
            max: None,
        },
    )
}

/// `backup-performance` (vzdump `performance`).
pub(crate) static PERFORMANCE: PropertyFormat = PropertyFormat {
    keys: &[
        key(
            "max-workers",
            KeyKind::Integer {
                min: Some(1),
                max: Some(256),
            },
        ),
        key(
            "pbs-entries-max",
            KeyKind::Integer {
                min: Some(1),
                max: None,
            },
        ),
    ],
    validator: None,
};

/// `backup-fleecing` (vzdump `fleecing`): `enabled` is the default key.
pub(crate) static FLEECING: PropertyFormat = PropertyFormat {
    keys: &[
        FormatKey {
            name: "enabled",
            kind: KeyKind::Boolean,
            default_key: true,
        },
        key("storage", KeyKind::StorageId),
    ],
    validator: None,
};

/// `prune-backups`, with its validator (all-zero means `keep-all=1`).
pub(crate) static PRUNE_BACKUPS: PropertyFormat = PropertyFormat {
    keys: &[
        key("keep-all", KeyKind::Boolean),
        count("keep-daily"),
        count("keep-hourly"),
        count("keep-last"),
        count("keep-monthly"),
        count("keep-weekly"),
        count("keep-yearly"),
    ],
    validator: Some(validate_prune_backups),
};

impl PropertyFormat {
    fn key(&self, name: &str) -> Option<&FormatKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    fn default_key(&self) -> Option<&FormatKey> {
        self.keys.iter().find(|k| k.default_key)
    }
}

/// Parses and checks a property string; the error is the text Proxmox dies with.
pub(crate) fn parse(
    format: &PropertyFormat,
    text: &str,
) -> Result<BTreeMap<String, String>, String> {
    let map = split_parts(format, text)?;
    check_object(format, &map)?;
    match format.validator {
        Some(validate) => validate(map),
        None => Ok(map),
    }
}

/// The `key=value` / bare-value loop of `parse_property_string`.
fn split_parts(format: &PropertyFormat, text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    let mut default_key: Option<&str> = None;
    for part in syntax::split_commas(text) {
        if syntax::trim(part).is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((name, value)) if !name.is_empty() && !value.is_empty() => {
                match map.entry(name.to_owned()) {
                    Entry::Occupied(_) => {
                        return Err(format!(
                            "duplicate key in comma-separated list property: {name}\n"
                        ))
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(boolean_or_raw(format.key(name), value));
                    }
                }
            }
            Some(_) => return Err("missing key in comma-separated list property\n".to_owned()),
            None => {
                if let Some(name) = default_key {
                    return Err(format!(
                        "duplicate key in comma-separated list property: {name}\n"
                    ));
                }
                let Some(key) = format.default_key() else {
                    return Err(
                        "value without key, but schema does not define a default key\n".to_owned(),
                    );
                };
                default_key = Some(key.name);
                if map.get(key.name).is_some_and(|v| perl_true(v)) {
                    return Err(format!(
                        "duplicate key in comma-separated list property: {}\n",
                        key.name
                    ));
                }
                map.insert(key.name.to_owned(), boolean_or_raw(Some(key), part));
            }
        }
    }
    Ok(map)
}

/// Boolean keys accept `1|on|yes|true` and `0|off|no|false` (any case).
fn boolean_or_raw(key: Option<&FormatKey>, value: &str) -> String {
    if let Some(FormatKey {
        kind: KeyKind::Boolean,
        ..
    }) = key
    {
        let any_case = |words: [&str; 4]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
        if any_case(["1", "on", "yes", "true"]) {
            return "1".to_owned();
        }
        if any_case(["0", "off", "no", "false"]) {
            return "0".to_owned();
        }
    }
    value.to_owned()
}

/// Perl truthiness of a stored value.
fn perl_true(value: &str) -> bool {
    !(value.is_empty() || value == "0")
}

/// `check_object` without additional properties: every error, one line per key.
fn check_object(format: &PropertyFormat, map: &BTreeMap<String, String>) -> Result<(), String> {
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in map {
        let error = match format.key(name) {
            Some(key) => check_key(key, value).err(),
            None => Some(
                "property is not defined in schema and the schema does not allow additional properties"
                    .to_owned(),
            ),
        };
        if let Some(error) = error {
            errors.insert(name, error);
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let mut message = "format error\n".to_owned();
    for (name, error) in errors {
        message.push_str(&format!("{name}: {error}\n"));
    }
    Err(message)
}

fn check_key(key: &FormatKey, value: &str) -> Result<(), String> {
    match key.kind {
        KeyKind::Boolean => check_boolean(value).map(|_| ()),
        KeyKind::Integer { min, max } => check_integer(value, min, max),
        KeyKind::StorageId => check_storage_id(value).map_err(|e| format!("invalid format - {e}")),
    }
}

/// pve-common's `validate_prune_backups`: without any positive keep option the
/// result is `keep-all=1`; `keep-all` together with a positive option is an error.
fn validate_prune_backups(
    mut map: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let keep_all = map.remove("keep-all");
    let any_positive = map
        .values()
        .any(|v| v.parse::<f64>().is_ok_and(|n| n > 0.0));
    if !any_positive {
        return Ok(BTreeMap::from([("keep-all".to_owned(), "1".to_owned())]));
    }
    if keep_all.is_some_and(|v| perl_true(&v)) {
        return Err("keep-all cannot be set together with other options.\n".to_owned());
    }
    Ok(map)
}

/// `print_property_string`: the default key's bare value first, then the
/// other keys sorted by name (none of these formats has required keys).
pub(crate) fn print(format: &PropertyFormat, map: &BTreeMap<String, String>) -> String {
    let default = format.default_key().map(|k| k.name);
    let first = default.and_then(|name| map.get(name).cloned());
    let rest = map
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != default)
        .map(|(name, value)| format!("{name}={value}"));
    first.into_iter().chain(rest).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(format: &PropertyFormat, text: &str) -> Result<String, String> {
        parse(format, text)
            .map(|map| print(format, &map))
            .map_err(|e| syntax::trim_end(&e).to_owned())
    }

    #[test]
    fn prune_backups_is_normalised() {
        assert_eq!(
            parsed(&PRUNE_BACKUPS, "keep-weekly=4,keep-daily=07"),
            Ok("keep-daily=07,keep-weekly=4".into())
        );
        assert_eq!(
            parsed(&PRUNE_BACKUPS, "keep-daily=0"),
            Ok("keep-all=1".into())
        );
        assert_eq!(parsed(&PRUNE_BACKUPS, ""), Ok("keep-all=1".into()));
        assert_eq!(
            parsed(&PRUNE_BACKUPS, "keep-all=0,keep-last=2"),
            Ok("keep-last=2".into())
        );
        assert_eq!(
            parsed(&PRUNE_BACKUPS, "keep-all=1,keep-last=2"),
            Err("keep-all cannot be set together with other options.".into())
        );
    }

    #[test]
    fn errors_are_proxmox_errors() {
        assert_eq!(
            parsed(&PRUNE_BACKUPS, "keep-forever=1"),
            Err("format error\nkeep-forever: property is not defined in schema and the schema does not allow additional properties".into())
        );
        assert_eq!(
            parsed(&FLEECING, "1,storage="),
            Err("missing key in comma-separated list property".into())
        );
        assert_eq!(
            parsed(&PRUNE_BACKUPS, "7"),
            Err("value without key, but schema does not define a default key".into())
        );
        assert_eq!(
            parsed(&PERFORMANCE, "max-workers=0"),
            Err("format error\nmax-workers: value must have a minimum value of 1".into())
        );
        assert_eq!(
            parsed(&FLEECING, "1,storage=x"),
            Err("format error\nstorage: invalid format - storage ID 'x' contains illegal characters".into())
        );
        assert_eq!(
            parsed(&PERFORMANCE, "max-workers=2,max-workers=3"),
            Err("duplicate key in comma-separated list property: max-workers".into())
        );
    }

    #[test]
    fn fleecing_prints_default_key_first() {
        assert_eq!(
            parsed(&FLEECING, "storage=local-zfs,enabled=yes"),
            Ok("1,storage=local-zfs".into())
        );
        assert_eq!(parsed(&FLEECING, "0"), Ok("0".into()));
        assert_eq!(parsed(&FLEECING, "enabled=0,1"), Ok("1".into()));
        assert!(parsed(&FLEECING, "enabled=1,0").is_err());
    }
}
