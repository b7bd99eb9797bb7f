//! Proxmox VE task ids (UPIDs): `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.
//!
//! The parser follows the regular expression of pve-common's
//! `PVE::Tools::upid_decode` (FORMATS.md (e)), written out by hand: pid and
//! starttime are 8 hex digits, pstart 8 or 9, no field may hold `:`, `/` or
//! white space, the node is a host name, and the id may be empty (a vzdump
//! of several guests). Display writes Proxmox's form (`%08X`, upper case),
//! so a UPID Proxmox wrote prints back byte for byte.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The largest pstart that fits in 9 hex digits.
const PSTART_MAX: u64 = 0xF_FFFF_FFFF;

/// A parsed Proxmox VE task id.
///
/// ```
/// use pve_api::Upid;
/// let text = "UPID:pihanga:0013B137:06E438C5:6725EC68:vzdump:310:root@pam!stagger:";
/// let upid: Upid = text.parse().unwrap();
/// assert_eq!(upid.node(), "pihanga");
/// assert_eq!(upid.starttime(), 1730538600);
/// assert_eq!(upid.token(), Some("stagger"));
/// assert_eq!(upid.to_string(), text);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upid {
    node: String,
    pid: u32,
    pstart: u64,
    starttime: u32,
    task_type: String,
    id: String,
    user: String,
}

impl Upid {
    /// Builds a UPID from its parts, checking each as the parser does.
    /// `starttime` is seconds since the epoch and must fit in 8 hex digits;
    /// `pstart` must fit in 9.
    pub fn new(
        node: &str,
        pid: u32,
        pstart: u64,
        starttime: i64,
        task_type: &str,
        id: &str,
        user: &str,
    ) -> Result<Self> {
        let text = format!("{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{id}:{user}");
        let invalid = |reason: &str| Error::InvalidUpid {
            input: format!("UPID:{text}:"),
            reason: reason.to_string(),
        };
        check_node(node).map_err(|r| invalid(&r))?;
        check_field("type", task_type, false).map_err(|r| invalid(&r))?;
        check_field("id", id, true).map_err(|r| invalid(&r))?;
        check_field("user", user, false).map_err(|r| invalid(&r))?;
        if pstart > PSTART_MAX {
            return Err(invalid("pstart does not fit in 9 hex digits"));
        }
        let starttime = u32::try_from(starttime)
            .map_err(|_| invalid("starttime does not fit in 8 hex digits"))?;
        Ok(Upid {
            node: node.to_string(),
            pid,
            pstart,
            starttime,
            task_type: task_type.to_string(),
            id: id.to_string(),
            user: user.to_string(),
        })
    }

    /// The node that runs the task.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker's start in clock ticks since boot.
    pub fn pstart(&self) -> u64 {
        self.pstart
    }

    /// The task's start, seconds since the epoch.
    pub fn starttime(&self) -> i64 {
        i64::from(self.starttime)
    }

    /// The worker type, e.g. `vzdump`, `qmstart`.
    pub fn task_type(&self) -> &str {
        &self.task_type
    }

    /// The worker id: for vzdump the VMID when exactly one local guest is
    /// backed up, else empty.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The authenticated id that started the task: `user@realm` or
    /// `user@realm!token`.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user without a token part (`root@pam` for `root@pam!stagger`),
    /// as the task list API shows it.
    pub fn user_without_token(&self) -> &str {
        self.user
            .split_once('!')
            .map_or(self.user.as_str(), |(user, _)| user)
    }

    /// The token name, when an API token started the task.
    pub fn token(&self) -> Option<&str> {
        self.user.split_once('!').map(|(_, token)| token)
    }

    /// Path of the task log relative to `/var/log/pve/tasks/`: a directory
    /// named after the last hex digit of the starttime field, then the UPID.
    pub fn log_path(&self) -> String {
        format!("{:X}/{self}", self.starttime % 16)
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UPID:{}:{:08X}:{:08X}:{:08X}:{}:{}:{}:",
            self.node, self.pid, self.pstart, self.starttime, self.task_type, self.id, self.user
        )
    }
}

impl FromStr for Upid {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUpid {
            input: input.to_string(),
            reason,
        };
        let inner = input
            .strip_prefix("UPID:")
            .ok_or_else(|| invalid("does not start with \"UPID:\"".to_string()))?
            .strip_suffix(':')
            .ok_or_else(|| invalid("does not end with ':'".to_string()))?;
        let fields: Vec<&str> = inner.split(':').collect();
        let [node, pid, pstart, starttime, task_type, id, user] = fields[..] else {
            return Err(invalid(format!("has {} fields, expected 7", fields.len())));
        };
        check_node(node).map_err(&invalid)?;
        let pid = hex_field("pid", pid, 8, 8).map_err(&invalid)?;
        let pstart = hex_field("pstart", pstart, 8, 9).map_err(&invalid)?;
        let starttime = hex_field("starttime", starttime, 8, 8).map_err(&invalid)?;
        check_field("type", task_type, false).map_err(&invalid)?;
        check_field("id", id, true).map_err(&invalid)?;
        check_field("user", user, false).map_err(&invalid)?;
        Ok(Upid {
            node: node.to_string(),
            // 8 hex digits always fit in a u32.
            pid: u32::try_from(pid).map_err(|_| invalid("pid out of range".to_string()))?,
            pstart,
            starttime: u32::try_from(starttime)
                .map_err(|_| invalid("starttime out of range".to_string()))?,
            task_type: task_type.to_string(),
            id: id.to_string(),
            user: user.to_string(),
        })
    }
}

impl serde::Serialize for Upid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Upid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?`
fn check_node(node: &str) -> Result<(), String> {
    let ok = !node.is_empty()
        && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !node.starts_with('-')
        && !node.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("node {node:?} is not a host name"))
    }
}

/// `[^:\s/]+` (or `*` when `may_be_empty`).
fn check_field(name: &str, value: &str, may_be_empty: bool) -> Result<(), String> {
    if value.is_empty() && !may_be_empty {
        return Err(format!("{name} is empty"));
    }
    match value
        .chars()
        .find(|&c| c == ':' || c == '/' || c.is_whitespace())
    {
        Some(c) => Err(format!("{name} {value:?} contains {c:?}")),
        None => Ok(()),
    }
}

fn hex_field(name: &str, value: &str, min: usize, max: usize) -> Result<u64, String> {
    if value.len() < min || value.len() > max || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        let digits = if min == max {
            format!("{min}")
        } else {
            format!("{min} or {max}")
        };
        return Err(format!("{name} {value:?} is not {digits} hex digits"));
    }
    u64::from_str_radix(value, 16).map_err(|e| format!("{name} {value:?}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_field() {
        let upid: Upid = "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:"
            .parse()
            .unwrap();
        assert_eq!(upid.node(), "pihanga");
        assert_eq!(upid.pid(), 1402215);
        assert_eq!(upid.pstart(), 138060137);
        assert_eq!(upid.starttime(), 1730763001);
        assert_eq!(upid.task_type(), "vzdump");
        assert_eq!(upid.id(), "");
        assert_eq!(upid.user(), "root@pam");
        assert_eq!(upid.token(), None);
        assert_eq!(upid.log_path(), format!("9/{upid}"));
    }

    #[test]
    fn accepts_nine_digit_pstart_and_lower_case_hex() {
        let upid: Upid = "UPID:n1:0000abcd:1ABCDEF01:672958f9:qmstart:100:alice@pve:"
            .parse()
            .unwrap();
        assert_eq!(upid.pstart(), 0x1ABCDEF01);
        assert_eq!(upid.pid(), 0xabcd);
        assert_eq!(
            upid.to_string(),
            "UPID:n1:0000ABCD:1ABCDEF01:672958F9:qmstart:100:alice@pve:"
        );
    }

    #[test]
    fn token_user_splits() {
        let upid: Upid = "UPID:pihanga:0013B137:06E438C5:6725EC68:vzdump:310:root@pam!stagger:"
            .parse()
            .unwrap();
        assert_eq!(upid.user(), "root@pam!stagger");
        assert_eq!(upid.user_without_token(), "root@pam");
        assert_eq!(upid.token(), Some("stagger"));
    }

    #[test]
    fn rejects_what_proxmox_rejects() {
        for bad in [
            "",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam",
            "upid:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:",
            "UPID:-pihanga:00156567:083AA169:672958F9:vzdump::root@pam:",
            "UPID:pi_hanga:00156567:083AA169:672958F9:vzdump::root@pam:",
            "UPID:pihanga:0156567:083AA169:672958F9:vzdump::root@pam:",
            "UPID:pihanga:00156567:83AA169:672958F9:vzdump::root@pam:",
            "UPID:pihanga:00156567:0083AA1690:672958F9:vzdump::root@pam:",
            "UPID:pihanga:00156567:083AA169:672958F:vzdump::root@pam:",
            "UPID:pihanga:00156567:083AA169:672958FG:vzdump::root@pam:",
            "UPID:pihanga:00156567:083AA169:672958F9::100:root@pam:",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump:1 0:root@pam:",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump:a/b:root@pam:",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump:::",
            "UPID:pihanga:00156567:083AA169:672958F9:vzdump::root@pam:extra:",
            "UPID:pbs:00156567:083AA169:00000001:672958F9:garbage_collection:store:root@pam:",
        ] {
            let err = bad.parse::<Upid>().unwrap_err();
            assert!(matches!(err, Error::InvalidUpid { .. }), "{bad}");
        }
    }

    #[test]
    fn new_checks_like_the_parser() {
        assert!(Upid::new("n1", 1, 2, 3, "vzdump", "", "root@pam").is_ok());
        assert!(Upid::new("n1", 1, 2, -1, "vzdump", "", "root@pam").is_err());
        assert!(Upid::new("n1", 1, 2, 1 << 32, "vzdump", "", "root@pam").is_err());
        assert!(Upid::new("n1", 1, PSTART_MAX + 1, 3, "vzdump", "", "root@pam").is_err());
        assert!(Upid::new("n_1", 1, 2, 3, "vzdump", "", "root@pam").is_err());
        assert!(Upid::new("n1", 1, 2, 3, "vz:dump", "", "root@pam").is_err());
        assert!(Upid::new("n1", 1, 2, 3, "vzdump", "", "").is_err());
    }

    fn upid_strategy() -> impl Strategy<Value = Upid> {
        (
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
            any::<u32>(),
            0..=PSTART_MAX,
            any::<u32>(),
            "[a-z_]{1,12}",
            "[0-9a-z.]{0,6}",
            "[a-z]{1,8}@[a-z]{1,6}(![a-z0-9_-]{1,8})?",
        )
            .prop_map(|(node, pid, pstart, starttime, task_type, id, user)| {
                Upid::new(
                    &node,
                    pid,
                    pstart,
                    i64::from(starttime),
                    &task_type,
                    &id,
                    &user,
                )
                .unwrap()
            })
    }

    proptest! {
        #[test]
        fn display_then_parse_gives_the_same_upid(upid in upid_strategy()) {
            let text = upid.to_string();
            let back: Upid = text.parse().unwrap();
            prop_assert_eq!(&back, &upid);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn parsing_any_text_never_panics(text in "UPID:[ -~]{0,60}") {
            let _ = text.parse::<Upid>();
        }
    }
}
