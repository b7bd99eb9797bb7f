//! The key schema of jobs.cfg: every property of the `vzdump` and `realm-sync`
//! job types with its type, format, enumeration and bounds, and the check
//! Proxmox applies to each value it reads (`SectionConfig::check_value` with
//! `JSONSchema::check_prop`), with Proxmox's own messages.
//!
//! Sources: pve-common `Job/Registry.pm` (common keys), guest-common
//! `VZDump/Common.pm` (vzdump keys, 2025-07), access-control
//! `Auth/Plugin.pm` + `Jobs/RealmSync.pm` (realm-sync keys). The two job types
//! share one property list ("unified mode"), which is why a key of the other
//! type is "unexpected" while a key of neither is an "unknown property type".

use super::property_string::{self, PropertyFormat};
use super::syntax;
use super::value::{perl_integer, Value};

/// A job type Proxmox knows in jobs.cfg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SectionType {
    /// `vzdump: <id>`: a backup job.
    Vzdump,
    /// `realm-sync: <id>`: an LDAP/AD realm synchronisation.
    RealmSync,
}

impl SectionType {
    /// The type for a header's type name, if Proxmox registers it.
    pub(crate) fn from_name(name: &str) -> Option<SectionType> {
        match name {
            "vzdump" => Some(SectionType::Vzdump),
            "realm-sync" => Some(SectionType::RealmSync),
            _ => None,
        }
    }

    /// The type name as written in headers.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SectionType::Vzdump => "vzdump",
            SectionType::RealmSync => "realm-sync",
        }
    }

    /// Whether and how this type uses `property`.
    pub(crate) fn usage(self, property: &Property) -> Usage {
        match self {
            SectionType::Vzdump => property.vzdump,
            SectionType::RealmSync => property.realm_sync,
        }
    }

    /// The properties this type accepts, sorted by name (the order Proxmox writes them in).
    pub(crate) fn options(self) -> impl Iterator<Item = &'static Property> {
        PROPERTIES
            .iter()
            .filter(move |p| self.usage(p) != Usage::No)
    }
}

/// Whether a job type accepts a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usage {
    /// Not an option of the type ("unexpected property").
    No,
    /// May be set.
    Optional,
    /// Must be set, or Proxmox skips the section.
    Required,
}

/// One property of the shared property list.
#[derive(Debug)]
pub(crate) struct Property {
    /// The key as written in jobs.cfg.
    pub(crate) name: &'static str,
    /// What a value must look like.
    pub(crate) kind: Kind,
    /// How `vzdump` jobs use it.
    pub(crate) vzdump: Usage,
    /// How `realm-sync` jobs use it.
    pub(crate) realm_sync: Usage,
}

/// A property's JSON-schema type with its constraints.
#[derive(Debug)]
pub(crate) enum Kind {
    /// Exactly `0` or `1`; a key alone means `1`.
    Boolean,
    /// `^[+-]?\d+$` within optional bounds; written back normalised.
    Integer {
        /// Smallest allowed value.
        min: Option<i64>,
        /// Largest allowed value.
        max: Option<i64>,
    },
    /// A string with optional format, enumeration, length and pattern checks.
    Text {
        /// A named format checked first.
        format: Option<Format>,
        /// The allowed values.
        choices: Option<&'static [&'static str]>,
        /// Longest allowed value in bytes.
        max_length: Option<usize>,
        /// A regular expression the value must match.
        pattern: Option<Pattern>,
    },
    /// An array of strings: one line per element (`exclude-path`).
    List,
    /// A property string (`key=value,...`) decoded into a map.
    Properties(&'static PropertyFormat),
}

/// The named string formats used by jobs.cfg keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `pve-vmid-list`.
    VmidList,
    /// `pve-node`.
    Node,
    /// `pve-storage-id`.
    StorageId,
    /// `email-or-username-list`.
    EmailOrUsernameList,
    /// `pve-calendar-event`.
    CalendarEvent,
    /// `pve-realm`.
    Realm,
    /// `pve-configid`.
    ConfigId,
}

/// The regular-expression patterns used by jobs.cfg keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// realm-sync `remove-vanished`.
    RemoveVanished,
}

const fn text() -> Kind {
    Kind::Text {
        format: None,
        choices: None,
        max_length: None,
        pattern: None,
    }
}

const fn formatted(format: Format) -> Kind {
    Kind::Text {
        format: Some(format),
        choices: None,
        max_length: None,
        pattern: None,
    }
}

const fn choice(choices: &'static [&'static str]) -> Kind {
    Kind::Text {
        format: None,
        choices: Some(choices),
        max_length: None,
        pattern: None,
    }
}

const fn integer(min: Option<i64>, max: Option<i64>) -> Kind {
    Kind::Integer { min, max }
}

const fn vzdump(name: &'static str, kind: Kind) -> Property {
    Property {
        name,
        kind,
        vzdump: Usage::Optional,
        realm_sync: Usage::No,
    }
}

const fn realm_sync(name: &'static str, kind: Kind, usage: Usage) -> Property {
    Property {
        name,
        kind,
        vzdump: Usage::No,
        realm_sync: usage,
    }
}

/// The shared property list, sorted by name (byte order).
pub(crate) static PROPERTIES: &[Property] = &[
    vzdump("all", Kind::Boolean),
    vzdump("bwlimit", integer(Some(0), None)),
    Property {
        name: "comment",
        kind: Kind::Text {
            format: None,
            choices: None,
            max_length: Some(512),
            pattern: None,
        },
        vzdump: Usage::Optional,
        realm_sync: Usage::Optional,
    },
    vzdump("compress", choice(&["0", "1", "gzip", "lzo", "zstd"])),
    vzdump("dumpdir", text()),
    realm_sync("enable-new", Kind::Boolean, Usage::Optional),
    Property {
        name: "enabled",
        kind: Kind::Boolean,
        vzdump: Usage::Optional,
        realm_sync: Usage::Optional,
    },
    vzdump("exclude", formatted(Format::VmidList)),
    vzdump("exclude-path", Kind::List),
    vzdump("fleecing", Kind::Properties(&property_string::FLEECING)),
    // Deprecated realm-sync keys: in the property list, options of no type.
    realm_sync("full", Kind::Boolean, Usage::No),
    Property {
        name: "id",
        kind: Kind::Text {
            format: Some(Format::ConfigId),
            choices: None,
            max_length: Some(64),
            pattern: None,
        },
        vzdump: Usage::No,
        realm_sync: Usage::No,
    },
    vzdump("ionice", integer(Some(0), Some(8))),
    vzdump("lockwait", integer(Some(0), None)),
    vzdump("mailnotification", choice(&["always", "failure"])),
    vzdump("mailto", formatted(Format::EmailOrUsernameList)),
    vzdump("mode", choice(&["snapshot", "suspend", "stop"])),
    vzdump("node", formatted(Format::Node)),
    vzdump(
        "notes-template",
        Kind::Text {
            format: None,
            choices: None,
            max_length: Some(1024),
            pattern: None,
        },
    ),
    vzdump(
        "notification-mode",
        choice(&["auto", "legacy-sendmail", "notification-system"]),
    ),
    vzdump(
        "pbs-change-detection-mode",
        choice(&["legacy", "data", "metadata"]),
    ),
    vzdump(
        "performance",
        Kind::Properties(&property_string::PERFORMANCE),
    ),
    vzdump("pigz", integer(None, None)),
    vzdump("pool", text()),
    vzdump("protected", Kind::Boolean),
    vzdump(
        "prune-backups",
        Kind::Properties(&property_string::PRUNE_BACKUPS),
    ),
    realm_sync("purge", Kind::Boolean, Usage::No),
    vzdump("quiet", Kind::Boolean),
    realm_sync(
        "realm",
        Kind::Text {
            format: Some(Format::Realm),
            choices: None,
            max_length: Some(32),
            pattern: None,
        },
        Usage::Required,
    ),
    vzdump("remove", Kind::Boolean),
    realm_sync(
        "remove-vanished",
        Kind::Text {
            format: None,
            choices: None,
            max_length: None,
            pattern: Some(Pattern::RemoveVanished),
        },
        Usage::Optional,
    ),
    vzdump("repeat-missed", Kind::Boolean),
    Property {
        name: "schedule",
        kind: Kind::Text {
            format: Some(Format::CalendarEvent),
            choices: None,
            max_length: Some(128),
            pattern: None,
        },
        vzdump: Usage::Required,
        realm_sync: Usage::Required,
    },
    realm_sync(
        "scope",
        choice(&["users", "groups", "both"]),
        Usage::Required,
    ),
    vzdump("script", text()),
    vzdump("stdexcludes", Kind::Boolean),
    vzdump("stop", Kind::Boolean),
    vzdump("stopwait", integer(Some(0), None)),
    vzdump("storage", formatted(Format::StorageId)),
    vzdump("tmpdir", text()),
    vzdump("vmid", formatted(Format::VmidList)),
    vzdump("zstd", integer(None, None)),
];

/// Index of `comment` in [`PROPERTIES`].
pub(crate) const COMMENT: usize = 2;

/// Index of `enabled` in [`PROPERTIES`].
pub(crate) const ENABLED: usize = 6;

/// The property named `key` in the shared list (`type` is handled by the reader).
#[cfg(test)]
pub(crate) fn property(key: &str) -> Option<&'static Property> {
    property_index(key).map(|i| &PROPERTIES[i])
}

/// Index in [`PROPERTIES`] of the property named `key`.
pub(crate) fn property_index(key: &str) -> Option<usize> {
    // Length and first byte rule out nearly every other name without a `memcmp` call.
    let first = key.as_bytes().first()?;
    PROPERTIES.iter().position(|p| {
        p.name.len() == key.len() && p.name.as_bytes().first() == Some(first) && p.name == key
    })
}

/// Proxmox's `check_value` for one property line of a known section type:
/// the stored value, or the error text Proxmox reports (without the trailing newline).
pub(crate) fn check_value(
    section_type: SectionType,
    property: &Property,
    value: Option<&str>,
) -> Result<Value, String> {
    if section_type.usage(property) == Usage::No {
        return Err(format!("unexpected property '{}'", property.name));
    }
    let value = match (value, &property.kind) {
        (Some(value), _) => value,
        (None, Kind::Boolean) => "1",
        (None, _) => return Err("got undefined value".to_owned()),
    };
    if value.bytes().any(|b| b == b'\n' || b == b'\r') {
        return Err("property contains a line feed".to_owned());
    }
    check_kind(&property.kind, value)
}

/// `check_prop` for a top-level value, and the conversion Proxmox applies after it.
fn check_kind(kind: &Kind, value: &str) -> Result<Value, String> {
    match kind {
        Kind::Boolean => check_boolean(value).map(Value::Bool),
        Kind::Integer { min, max } => {
            check_integer(value, *min, *max)?;
            Ok(Value::Integer(perl_integer(value)))
        }
        Kind::Text {
            format,
            choices,
            max_length,
            pattern,
        } => {
            if let Some(format) = format {
                check_format(*format, value).map_err(|e| format!("invalid format - {e}"))?;
            }
            if let Some(pattern) = pattern {
                if !matches_pattern(*pattern, value) {
                    return Err("value does not match the regex pattern".to_owned());
                }
            }
            if let Some(max) = max_length {
                if value.len() > *max {
                    return Err(format!("value may only be {max} characters long"));
                }
            }
            if let Some(choices) = choices {
                check_choice(value, choices)?;
            }
            Ok(Value::Text(value.to_owned()))
        }
        Kind::List => Ok(Value::List(vec![value.to_owned()])),
        Kind::Properties(format) => property_string::parse(format, value)
            .map(Value::Properties)
            .map_err(|e| format!("invalid format - {e}")),
    }
}

/// JSON-schema boolean: exactly `1` or `0`.
pub(crate) fn check_boolean(value: &str) -> Result<bool, String> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(format!("type check ('boolean') failed - got '{value}'")),
    }
}

/// JSON-schema integer `^[+-]?\d+$` within bounds, with Proxmox's messages.
pub(crate) fn check_integer(value: &str, min: Option<i64>, max: Option<i64>) -> Result<(), String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("type check ('integer') failed - got '{value}'"));
    }
    // Perl compares numerically; the bounds are small, so a float is exact enough.
    let number: f64 = value.parse().unwrap_or(0.0);
    if let Some(max) = max {
        if number > max as f64 {
            return Err(format!("value must have a maximum value of {max}"));
        }
    }
    if let Some(min) = min {
        if number < min as f64 {
            return Err(format!("value must have a minimum value of {min}"));
        }
    }
    Ok(())
}

/// JSON-schema enumeration.
pub(crate) fn check_choice(value: &str, choices: &[&str]) -> Result<(), String> {
    if choices.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "value '{value}' does not have a value in the enumeration '{}'",
            choices.join(", ")
        ))
    }
}

/// A named format; the error is the text the format's validator dies with
/// (with its newline, which shows when Proxmox nests it in a property-string error).
pub(crate) fn check_format(format: Format, value: &str) -> Result<(), String> {
    let ok = match format {
        Format::VmidList => {
            return check_list(value, is_vmid, "value does not look like a valid VM ID\n")
        }
        Format::EmailOrUsernameList => {
            return check_list(
                value,
                is_email_or_username,
                "value does not look like a valid email address or user name\n",
            )
        }
        Format::Node => is_node_name(value),
        Format::StorageId => {
            return check_storage_id(value);
        }
        Format::Realm => is_realm(value),
        Format::ConfigId => is_config_id(value),
        Format::CalendarEvent => return check_calendar_event(value),
    };
    if ok {
        return Ok(());
    }
    Err(match format {
        Format::Node => "value does not look like a valid node name\n".to_owned(),
        Format::Realm => "value does not look like a valid realm\n".to_owned(),
        _ => format!("invalid configuration ID '{value}'\n"),
    })
}

/// `pve-storage-id`, also used inside property strings.
pub(crate) fn check_storage_id(value: &str) -> Result<(), String> {
    if is_storage_id(value) {
        Ok(())
    } else {
        Err(format!(
            "storage ID '{value}' contains illegal characters\n"
        ))
    }
}

/// A `-list` format: every item of `split_list` must pass (an empty list passes).
fn check_list(value: &str, item_ok: fn(&str) -> bool, message: &str) -> Result<(), String> {
    if syntax::split_list(value).all(item_ok) {
        Ok(())
    } else {
        Err(message.to_owned())
    }
}

/// `pve-calendar-event`: PVE trims, rejects an empty event, then asks proxmox-time.
pub(crate) fn check_calendar_event(value: &str) -> Result<(), String> {
    let event = syntax::trim(value);
    let problem = if event.is_empty() {
        "unable to parse calendar event - event is empty".to_owned()
    } else {
        match crate::calendar::CalendarEvent::parse(event) {
            Ok(_) => return Ok(()),
            Err(error) => error.proxmox_message(),
        }
    };
    Err(format!("invalid calendar event '{value}' - {problem}\n"))
}

/// `^[1-9][0-9]{2,8}$`.
fn is_vmid(item: &str) -> bool {
    let bytes = item.as_bytes();
    (3..=9).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(|b| b.is_ascii_digit())
}

/// `^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`.
fn is_node_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `^[a-z][a-z0-9\-\_\.]*[a-z0-9]$`, case-insensitive.
fn is_storage_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `^[A-Za-z][A-Za-z0-9\.\-_]+$`.
fn is_realm(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `^[a-z][a-z0-9_-]+$`, case-insensitive.
fn is_config_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// PVE's `EMAIL_RE` or `EMAIL_USER_RE`, anchored.
fn is_email_or_username(item: &str) -> bool {
    match item.split_once('@') {
        Some((user, domain)) => is_email_user(user) && is_email_domain(domain),
        None => is_email_user(item),
    }
}

/// `[\w\+\-\~]+(\.[\w\+\-\~]+)*` (ASCII `\w`).
fn is_email_user(text: &str) -> bool {
    text.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'~'))
    })
}

/// `[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*`.
fn is_email_domain(text: &str) -> bool {
    text.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// A pattern, anchored as Proxmox anchors it: `m/^$pattern$/`. For
/// `remove-vanished` the alternation is not grouped, so the check is
/// "starts with acl, properties or entry, or ends with none".
fn matches_pattern(pattern: Pattern, value: &str) -> bool {
    match pattern {
        Pattern::RemoveVanished => {
            ["acl", "properties", "entry"]
                .iter()
                .any(|word| value.starts_with(word))
                || value.ends_with("none")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(section_type: SectionType, key: &str, value: Option<&str>) -> Result<Value, String> {
        let property = property(key).expect("a known key");
        check_value(section_type, property, value).map_err(|e| syntax::trim_end(&e).to_owned())
    }

    #[test]
    fn named_indices_point_at_their_properties() {
        assert_eq!(PROPERTIES[COMMENT].name, "comment");
        assert_eq!(PROPERTIES[ENABLED].name, "enabled");
        for (index, p) in PROPERTIES.iter().enumerate() {
            assert_eq!(property_index(p.name), Some(index));
        }
        assert_eq!(property_index("type"), None);
        assert_eq!(property_index("zzz"), None);
        assert_eq!(property_index(""), None);
    }

    #[test]
    fn property_list_is_sorted_for_lookup_and_writing() {
        let names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn messages_are_proxmox_messages() {
        let v = SectionType::Vzdump;
        assert_eq!(
            check(v, "bwlimit", Some("-1")),
            Err("value must have a minimum value of 0".into())
        );
        assert_eq!(
            check(v, "enabled", Some("maybe")),
            Err("type check ('boolean') failed - got 'maybe'".into())
        );
        assert_eq!(
            check(v, "ionice", Some("9")),
            Err("value must have a maximum value of 8".into())
        );
        assert_eq!(
            check(v, "mode", Some("fast")),
            Err(
                "value 'fast' does not have a value in the enumeration 'snapshot, suspend, stop'"
                    .into()
            )
        );
        assert_eq!(
            check(v, "node", Some("pve_1")),
            Err("invalid format - value does not look like a valid node name".into())
        );
        assert_eq!(
            check(v, "vmid", Some("web01")),
            Err("invalid format - value does not look like a valid VM ID".into())
        );
        assert_eq!(
            check(v, "storage", Some("x")),
            Err("invalid format - storage ID 'x' contains illegal characters".into())
        );
        assert_eq!(
            check(v, "realm", Some("corp")),
            Err("unexpected property 'realm'".into())
        );
        assert_eq!(check(v, "pool", None), Err("got undefined value".into()));
        assert_eq!(
            check(v, "pool", Some("a\rb")),
            Err("property contains a line feed".into())
        );
        assert_eq!(
            check(SectionType::RealmSync, "repeat-missed", Some("1")),
            Err("unexpected property 'repeat-missed'".into())
        );
    }

    #[test]
    fn accepted_values_are_converted_like_perl() {
        let v = SectionType::Vzdump;
        assert_eq!(check(v, "all", None), Ok(Value::Bool(true)));
        assert_eq!(
            check(v, "ionice", Some("07")),
            Ok(Value::Integer("7".into()))
        );
        assert_eq!(
            check(v, "vmid", Some("100 101;102")),
            Ok(Value::Text("100 101;102".into()))
        );
        assert_eq!(
            check(v, "storage", Some("PBS.main")),
            Ok(Value::Text("PBS.main".into()))
        );
        assert_eq!(
            check(v, "mailto", Some("ops@example.org,root")),
            Ok(Value::Text("ops@example.org,root".into()))
        );
    }

    #[test]
    fn remove_vanished_pattern_is_anchored_like_perl() {
        assert!(matches_pattern(
            Pattern::RemoveVanished,
            "acl;properties;entry"
        ));
        assert!(matches_pattern(Pattern::RemoveVanished, "none"));
        assert!(matches_pattern(Pattern::RemoveVanished, "acl;bogus"));
        assert!(!matches_pattern(Pattern::RemoveVanished, "bogus"));
    }
}
