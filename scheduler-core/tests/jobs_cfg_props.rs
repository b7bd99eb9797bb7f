//! Properties of the codec on generated files: the round trip is exact for any
//! text, Proxmox's reading never fails, its canonical output is a fixed point,
//! and `set_schedule` changes exactly the one schedule line it edits.

use proptest::prelude::*;
use scheduler_core::jobs_cfg::{Digest, JobsCfg};

const KEYS: &[&str] = &[
    "schedule",
    "enabled",
    "all",
    "vmid",
    "node",
    "storage",
    "comment",
    "mode",
    "compress",
    "ionice",
    "bwlimit",
    "exclude-path",
    "prune-backups",
    "fleecing",
    "performance",
    "realm",
    "scope",
    "remove-vanished",
    "repeat-missed",
    "notes-template",
    "stagger-lease",
    "type",
];

const VALUES: &[&str] = &[
    "02:00",
    "mon..fri 21:30",
    "*/00",
    "2:60",
    "1",
    "0",
    "yes",
    "07",
    "-1",
    "9",
    "100,101",
    "web01",
    "local",
    "pbs-main",
    "x",
    "snapshot",
    "fast",
    "zstd",
    "keep-daily=7,keep-last=3",
    "keep-all=0",
    "1,storage=local-zfs",
    "1,storage=",
    "max-workers=4",
    "corp",
    "both",
    "acl;entry",
    "a%3Ab %C3%BC",
    "{{guestname}}  -  x",
    "vzdump",
    "",
];

const EVENTS: &[&str] = &[
    "02:00",
    "mon..fri 21:30",
    "*/15",
    "sat 03:15 UTC",
    "hourly",
    "daily",
    "25:00",
    "fri..mon 01:00",
    "0/5:00",
    "23:59 UTC",
];

fn space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", " ", "\t", "  ", " \t ", "\r"])
}

fn indent() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\t", " ", "    ", "\t "])
}

fn id() -> impl Strategy<Value = String> {
    "[a-z0-9:-]{1,10}"
}

/// Lines of the kinds a hand-edited jobs.cfg holds, and some it should not.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec!["vzdump", "realm-sync", "stagger", "vzdump:x"]),
            space(),
            id(),
            space()
        )
            .prop_map(|(kind, sep, id, trail)| format!("{kind}:{sep}{id}{trail}")),
        (
            indent(),
            prop::sample::select(KEYS.to_vec()),
            indent(),
            prop::sample::select(VALUES.to_vec()),
            space()
        )
            .prop_map(|(ind, key, sep, value, trail)| format!("{ind}{key}{sep}{value}{trail}")),
        (space(), "[ -~]{0,20}").prop_map(|(ind, text)| format!("{ind}#{text}")),
        prop::sample::select(vec!["", "", "0", "   ", "\r"]).prop_map(str::to_owned),
        "[ -~\t\r]{0,30}",
    ]
}

fn file() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..40), any::<bool>()).prop_map(|(lines, newline)| {
        let mut text = lines.join("\n");
        if newline {
            text.push('\n');
        }
        text
    })
}

/// A file Proxmox can write back: jobs with schedules, in various spellings.
fn valid_file() -> impl Strategy<Value = (String, usize)> {
    let section = (
        indent(),
        indent(),
        prop::sample::select(EVENTS.to_vec()),
        space(),
        prop::collection::vec(
            prop::sample::select(vec![
                "\tstorage local",
                "  vmid 100 101",
                "# a comment",
                "\tschedule 04:00",
                "\tstagger-lease 3600",
                "\tall",
            ]),
            0..4,
        ),
    );
    prop::collection::vec(section, 1..8).prop_flat_map(|sections| {
        let count = sections.len();
        let text: String = sections
            .into_iter()
            .enumerate()
            .map(|(i, (ind, sep, event, trail, extra))| {
                let mut section = format!("vzdump: job{i}\n{ind}schedule{sep}{event}{trail}\n");
                for line in extra {
                    section.push_str(line);
                    section.push('\n');
                }
                section.push('\n');
                section
            })
            .collect();
        (Just(text), 0..count)
    })
}

proptest! {
    #[test]
    fn round_trip_is_byte_identical_for_generated_files(text in file()) {
        let cfg = JobsCfg::parse(&text);
        prop_assert_eq!(cfg.render(), text.clone());
        prop_assert_eq!(cfg.digest(), Digest::of(text.as_bytes()));
    }

    #[test]
    fn round_trip_is_byte_identical_for_any_text(text in "\\PC*[\r\n]*") {
        prop_assert_eq!(JobsCfg::parse(&text).render(), text);
    }

    #[test]
    fn warnings_point_at_lines_of_the_file(text in file()) {
        let reading = JobsCfg::parse(&text).proxmox_reading("F");
        let lines = text.split('\n').count();
        for warning in &reading.warnings {
            prop_assert!(warning.line >= 1 && warning.line <= lines);
            let prefix = format!("file F line {} ", warning.line);
            prop_assert!(warning.message.starts_with(&prefix));
        }
    }

    #[test]
    fn proxmox_output_is_a_fixed_point(text in file()) {
        if let Ok(written) = JobsCfg::parse(&text).proxmox_rewrite() {
            let again = JobsCfg::parse(&written);
            prop_assert!(again.proxmox_reading("F").warnings.is_empty());
            prop_assert_eq!(again.proxmox_rewrite(), Ok(written));
        }
    }

    #[test]
    fn set_schedule_changes_one_line_only(
        (text, job) in valid_file(),
        event in prop::sample::select(EVENTS.to_vec()),
    ) {
        let mut cfg = JobsCfg::parse(&text);
        let id = format!("job{job}");
        let before = cfg.proxmox_reading("F");
        cfg.set_schedule(&id, event).expect("a valid edit");
        let after_text = cfg.render();

        let old: Vec<&str> = text.split('\n').collect();
        let new: Vec<&str> = after_text.split('\n').collect();
        prop_assert_eq!(old.len(), new.len());
        let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
        prop_assert!(changed.len() <= 1);
        let schedule_line = before.section(&id).and_then(|s| s.stored_line("schedule")).map(|l| l.line);
        for index in &changed {
            prop_assert_eq!(Some(index + 1), schedule_line);
        }

        let after = cfg.proxmox_reading("F");
        prop_assert_eq!(&after.warnings, &before.warnings);
        let job = after.jobs().into_iter().find(|j| j.id == id).expect("job still there");
        prop_assert_eq!(job.schedule, event);
    }
}
