//! Proxmox's reading and writing rules one by one (FORMATS.md (a)), and the
//! edits: each test is a small jobs.cfg and what Proxmox does with it.

use scheduler_core::jobs_cfg::{EditError, JobsCfg, Value};

fn warnings(text: &str) -> Vec<String> {
    JobsCfg::parse(text)
        .proxmox_reading("F")
        .warnings
        .into_iter()
        .map(|w| format!("{}: {}", w.line, w.message))
        .collect()
}

fn rewrite(text: &str) -> String {
    JobsCfg::parse(text)
        .proxmox_rewrite()
        .expect("a Proxmox write succeeds")
}

fn value(text: &str, id: &str, key: &str) -> Option<Value> {
    JobsCfg::parse(text)
        .proxmox_reading("F")
        .section(id)?
        .value(key)
        .cloned()
}

#[test]
fn a_key_of_the_other_job_type_is_unexpected_and_a_key_of_neither_is_unknown() {
    let text = "vzdump: a\n\tschedule 02:00\n\trealm corp\n\tfull 1\n\tmaxfiles 3\n\n\
                realm-sync: r\n\trealm corp\n\tschedule 03:00\n\tscope users\n\trepeat-missed 1\n\tvmid 100\n";
    assert_eq!(
        warnings(text),
        vec![
            "3: file F line 3 (section 'a') - unable to parse value of 'realm': unexpected property 'realm'",
            "4: file F line 4 (section 'a') - unable to parse value of 'full': unexpected property 'full'",
            "5: file F line 5 (section 'a') - unable to parse value of 'maxfiles': unknown property type",
            "11: file F line 11 (section 'r') - unable to parse value of 'repeat-missed': unexpected property 'repeat-missed'",
            "12: file F line 12 (section 'r') - unable to parse value of 'vmid': unexpected property 'vmid'",
        ]
    );
}

#[test]
fn a_rejected_first_value_does_not_block_a_second_one() {
    let text = "vzdump: a\n\tschedule */00\n\tschedule 04:00\n\tschedule 05:00\n";
    assert_eq!(
        warnings(text),
        vec![
            "2: file F line 2 (section 'a') - unable to parse value of 'schedule': invalid format - invalid calendar event '*/00' - unable to parse calendar event at '/00' - Nom(Eof)",
            "4: file F line 4 (section 'a') - unable to parse value of 'schedule': duplicate attribute",
        ]
    );
    assert_eq!(
        value(text, "a", "schedule"),
        Some(Value::Text("04:00".into()))
    );
}

#[test]
fn exclude_path_collects_one_value_per_line() {
    let text =
        "vzdump: a\n\tschedule 1:00\n\texclude-path /a\n\texclude-path\n\texclude-path /b c\n";
    assert_eq!(
        warnings(text),
        vec!["4: file F line 4 (section 'a') - unable to parse value of 'exclude-path': got undefined value"]
    );
    assert_eq!(
        rewrite(text),
        "vzdump: a\n\tschedule 1:00\n\tenabled 1\n\texclude-path /a\n\texclude-path /b c\n\n"
    );
}

#[test]
fn a_zero_line_ends_a_section_and_whitespace_lines_do_not() {
    let text = "vzdump: a\n\tschedule 1:00\n0\n\tstorage local\n\nvzdump: b\n\tschedule 2:00\n \t\n\tstorage local\n";
    assert_eq!(
        warnings(text),
        vec![
            "4: file F line 4 - ignore config line: \tstorage local",
            "8: file F line 8 (section 'b') - ignore config line:",
        ]
    );
    assert_eq!(
        value(text, "b", "storage"),
        Some(Value::Text("local".into()))
    );
    assert_eq!(value(text, "a", "storage"), None);
}

#[test]
fn the_missing_option_is_reported_at_the_last_line_read_and_blocks_writes() {
    // The comment after the last property does not move the line; the id stays behind.
    let text = "realm-sync: r\n\tscope both\n\tcomment x\n# note\n\nvzdump: b\n\tschedule 2:00\n";
    assert_eq!(
        warnings(text),
        vec!["3: file F line 3 (skip section 'r'): missing value for required option 'realm'"]
    );
    let cfg = JobsCfg::parse(text);
    let reading = cfg.proxmox_reading("F");
    assert_eq!(reading.section("r").map(|s| s.values.is_none()), Some(true));
    let error = cfg.proxmox_rewrite().expect_err("the write fails");
    assert_eq!(error.proxmox_message(), "unknown section type ''\n");
    assert!(error
        .to_string()
        .contains("add a valid 'realm' line to section 'r' (lines 1-3)"));
}

#[test]
fn a_later_section_replaces_an_earlier_id_even_of_another_type_and_order_skips() {
    let text = "vzdump: x\n\tschedule 1:00\n\nvzdump: y\n\tschedule 2:00\n\n\
                realm-sync: x\n\trealm corp\n\tschedule 3:00\n\tscope users\n";
    let reading = JobsCfg::parse(text).proxmox_reading("F");
    let order: Vec<(String, usize, String)> = reading
        .sections
        .iter()
        .map(|s| (s.id.clone(), s.order, s.section_type.clone()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("y".to_owned(), 2, "vzdump".to_owned()),
            ("x".to_owned(), 3, "realm-sync".to_owned()),
        ]
    );
    assert!(rewrite(text).starts_with("vzdump: y\n"));
}

#[test]
fn a_skipped_duplicate_replaces_a_good_section_but_an_unsupported_one_does_not() {
    let skipped = "vzdump: x\n\tschedule 1:00\n\nvzdump: x\n\tstorage local\n";
    let reading = JobsCfg::parse(skipped).proxmox_reading("F");
    assert!(reading.section("x").is_some_and(|s| s.values.is_none()));
    let unsupported = "vzdump: x\n\tschedule 1:00\n\nstagger: x\n\tschedule 2:00\n";
    assert_eq!(
        value(unsupported, "x", "schedule"),
        Some(Value::Text("1:00".into()))
    );
}

#[test]
fn headers_follow_the_greedy_perl_regex() {
    let text = "vzdump:abc:4\n\tschedule 1:00\n\nvzdump: abc:4\n\tschedule 2:00\n\n0: z\n\tschedule 1:00\n";
    assert_eq!(
        warnings(text),
        vec![
            "1: file F line 1 (skip section '4'): unsupported type 'vzdump:abc'",
            "7: file F line 7 (skip section 'z'): missing type - internal error",
        ]
    );
    assert_eq!(
        value(text, "abc:4", "schedule"),
        Some(Value::Text("2:00".into()))
    );
}

#[test]
fn a_type_line_naming_the_section_type_is_accepted_and_others_are_not() {
    let text = "vzdump: a\n\ttype vzdump\n\tschedule 1:00\n\ttype vzdump\n\ttype realm-sync\n";
    assert_eq!(
        warnings(text),
        vec![
            "4: file F line 4 (section 'a') - unable to parse value of 'type': duplicate attribute",
            "5: file F line 5 (section 'a') - unable to parse value of 'type': duplicate attribute",
        ]
    );
    let text = "vzdump: a\n\tschedule 1:00\n\ttype realm-sync\n\tid a\n";
    assert_eq!(
        warnings(text),
        vec![
            "3: file F line 3 (section 'a') - unable to parse value of 'type': unexpected property 'type'",
            "4: file F line 4 (section 'a') - unable to parse value of 'id': unexpected property 'id'",
        ]
    );
}

#[test]
fn booleans_must_be_0_or_1_and_a_rejected_enabled_means_enabled() {
    let text = "vzdump: a\n\tschedule 1:00\n\tenabled false\n\tall\n\tquiet true\n";
    assert_eq!(
        warnings(text),
        vec![
            "3: file F line 3 (section 'a') - unable to parse value of 'enabled': type check ('boolean') failed - got 'false'",
            "5: file F line 5 (section 'a') - unable to parse value of 'quiet': type check ('boolean') failed - got 'true'",
        ]
    );
    assert_eq!(
        rewrite(text),
        "vzdump: a\n\tschedule 1:00\n\tall 1\n\tenabled 1\n\n"
    );
}

#[test]
fn integers_are_checked_and_normalised_but_not_inside_property_strings() {
    let text = "vzdump: a\n\tschedule 1:00\n\tionice 07\n\tbwlimit +100\n\tpigz 1.5\n\tzstd -0\n\
                \tprune-backups keep-daily=07,keep-all=0\n\tperformance max-workers=0\n";
    assert_eq!(
        warnings(text),
        vec![
            "5: file F line 5 (section 'a') - unable to parse value of 'pigz': type check ('integer') failed - got '1.5'",
            "8: file F line 8 (section 'a') - unable to parse value of 'performance': invalid format - format error\nmax-workers: value must have a minimum value of 1",
        ]
    );
    assert_eq!(
        rewrite(text),
        "vzdump: a\n\tschedule 1:00\n\tbwlimit 100\n\tenabled 1\n\tionice 7\n\tprune-backups keep-daily=07\n\tzstd 0\n\n"
    );
}

#[test]
fn property_strings_are_reprinted_default_key_first_and_all_zero_prune_means_keep_all() {
    let text = "vzdump: a\n\tschedule 1:00\n\tfleecing storage=local-zfs,enabled=yes\n\
                \tprune-backups keep-last=0,keep-daily=0\n\tperformance pbs-entries-max=9,max-workers=4\n";
    assert_eq!(warnings(text), Vec::<String>::new());
    assert_eq!(
        rewrite(text),
        "vzdump: a\n\tschedule 1:00\n\tenabled 1\n\tfleecing 1,storage=local-zfs\n\
         \tperformance max-workers=4,pbs-entries-max=9\n\tprune-backups keep-all=1\n\n"
    );
}

#[test]
fn property_string_errors_are_proxmox_errors() {
    let text = "vzdump: a\n\tschedule 1:00\n\tfleecing 1,storage=\n\tprune-backups keep-all=1,keep-last=2\n\
                \tfleecing 1,storage=x\n";
    assert_eq!(
        warnings(text),
        vec![
            "3: file F line 3 (section 'a') - unable to parse value of 'fleecing': invalid format - missing key in comma-separated list property",
            "4: file F line 4 (section 'a') - unable to parse value of 'prune-backups': invalid format - keep-all cannot be set together with other options.",
            "5: file F line 5 (section 'a') - unable to parse value of 'fleecing': invalid format - format error\nstorage: invalid format - storage ID 'x' contains illegal characters",
        ]
    );
}

#[test]
fn formats_enumerations_and_lengths_are_checked() {
    let long_notes = "n".repeat(1025);
    let text = format!(
        "vzdump: a\n\tschedule 1:00\n\tstorage 9local\n\tmailto a@b,not an@email@x\n\tcompress xz\n\
         \tnotes-template {long_notes}\n\tpbs-change-detection-mode data\n\tvmid 99\n\texclude 100,,101\n\n\
         realm-sync: r\n\trealm c\n\trealm corp\n\tschedule 1:00\n\tscope all\n\tscope both\n\tremove-vanished gone\n"
    );
    assert_eq!(
        warnings(&text),
        vec![
            "3: file F line 3 (section 'a') - unable to parse value of 'storage': invalid format - storage ID '9local' contains illegal characters",
            "4: file F line 4 (section 'a') - unable to parse value of 'mailto': invalid format - value does not look like a valid email address or user name",
            "5: file F line 5 (section 'a') - unable to parse value of 'compress': value 'xz' does not have a value in the enumeration '0, 1, gzip, lzo, zstd'",
            "6: file F line 6 (section 'a') - unable to parse value of 'notes-template': value may only be 1024 characters long",
            "8: file F line 8 (section 'a') - unable to parse value of 'vmid': invalid format - value does not look like a valid VM ID",
            "12: file F line 12 (section 'r') - unable to parse value of 'realm': invalid format - value does not look like a valid realm",
            "15: file F line 15 (section 'r') - unable to parse value of 'scope': value 'all' does not have a value in the enumeration 'users, groups, both'",
            "17: file F line 17 (section 'r') - unable to parse value of 'remove-vanished': value does not match the regex pattern",
        ]
    );
}

#[test]
fn comments_are_decoded_and_written_encoded_first() {
    let text = "vzdump: a\n\tstorage local\n\tschedule 1:00\n\tcomment Pihanga: über 100%25\n";
    assert_eq!(
        value(text, "a", "comment"),
        Some(Value::Text("Pihanga: über 100%".into()))
    );
    assert_eq!(
        rewrite(text),
        "vzdump: a\n\tcomment Pihanga%3A %C3%BCber 100%25\n\tschedule 1:00\n\tenabled 1\n\tstorage local\n\n"
    );
    // A comment of "0" is not written; a stored comment over 512 bytes is dropped.
    assert_eq!(
        rewrite("vzdump: a\n\tschedule 1:00\n\tcomment %30\n"),
        "vzdump: a\n\tschedule 1:00\n\tenabled 1\n\n"
    );
    let long = format!(
        "vzdump: a\n\tschedule 1:00\n\tcomment {}\n",
        "%3A".repeat(171)
    );
    assert_eq!(
        warnings(&long),
        vec!["3: file F line 3 (section 'a') - unable to parse value of 'comment': value may only be 512 characters long"]
    );
}

#[test]
fn an_empty_or_sectionless_file_rewrites_to_nothing() {
    assert_eq!(rewrite(""), "");
    assert_eq!(rewrite("# only a comment\n\n"), "");
}

#[test]
fn values_with_a_carriage_return_inside_are_rejected() {
    let text = "vzdump: a\n\tschedule 1:00\n\tpool a\rb\n";
    assert_eq!(
        warnings(text),
        vec!["3: file F line 3 (section 'a') - unable to parse value of 'pool': property contains a line feed"]
    );
}

#[test]
fn vzdump_jobs_are_typed() {
    let text = "vzdump: a\n\tschedule mon..fri 23:30 UTC\n\tnode pihanga\n\tstorage pbs\n\tenabled 0\n\
                \tcomment x%3A y\n\tvmid 310,311\n\nrealm-sync: r\n\trealm corp\n\tschedule 1:00\n\tscope users\n";
    let jobs = JobsCfg::parse(text).vzdump_jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.id, "a");
    assert_eq!(job.schedule, "mon..fri 23:30 UTC");
    assert_eq!(job.node.as_deref(), Some("pihanga"));
    assert_eq!(job.storage.as_deref(), Some("pbs"));
    assert_eq!(job.comment.as_deref(), Some("x: y"));
    assert!(!job.enabled);
    assert_eq!(job.line, 1);
    assert_eq!(
        job.options.get("vmid"),
        Some(&Value::Text("310,311".into()))
    );
}

const QUIRKY: &str = "# hand made\nvzdump:    a   \n    schedule   mon..fri 21:30   \n  # inside\n\tall\n\
                      \tschedule 05:00\n\nvzdump: b\n\tschedule sat 03:00\n  enabled\n\nvzdump: c\n\tschedule hourly";

#[test]
fn set_schedule_changes_only_the_value_proxmox_uses() {
    let mut cfg = JobsCfg::parse(QUIRKY);
    cfg.set_schedule("a", "  02:35 UTC ").expect("edit");
    assert_eq!(
        cfg.render(),
        QUIRKY.replace("mon..fri 21:30", "02:35 UTC"),
        "only the first (used) schedule value changes; spacing and the duplicate stay"
    );
    cfg.set_schedule("c", "*/15")
        .expect("edit at end of file without newline");
    assert!(cfg.render().ends_with("\tschedule */15"));
    assert_eq!(cfg.vzdump_jobs()[2].schedule, "*/15");
}

#[test]
fn set_schedule_refuses_bad_input_and_changes_nothing() {
    let mut cfg = JobsCfg::parse(QUIRKY);
    let before = cfg.clone();
    assert!(matches!(
        cfg.set_schedule("a", "02:00\n\nvzdump: evil"),
        Err(EditError::ControlCharacter {
            character: '\n',
            position: 5,
            ..
        })
    ));
    assert!(matches!(
        cfg.set_schedule("a", "02:00\t"),
        Err(EditError::ControlCharacter { .. })
    ));
    match cfg.set_schedule("a", "2:60") {
        Err(EditError::InvalidEvent { reason, .. }) => assert_eq!(
            reason,
            "invalid calendar event '2:60' - unable to parse calendar event at '2:60' - Context(\"date or time specification\")"
        ),
        other => panic!("expected an invalid event, got {other:?}"),
    }
    assert!(matches!(
        cfg.set_schedule("a", "   "),
        Err(EditError::InvalidEvent { .. })
    ));
    let long = format!("{} 02:00", "mon,".repeat(40).trim_end_matches(','));
    assert!(matches!(
        cfg.set_schedule("a", &long),
        Err(EditError::InvalidEvent { .. })
    ));
    match cfg.set_schedule("zzz", "02:00") {
        Err(EditError::UnknownJob { known, .. }) => assert_eq!(known, vec!["a", "b", "c"]),
        other => panic!("expected an unknown job, got {other:?}"),
    }
    assert_eq!(cfg, before);
}

#[test]
fn edits_are_refused_on_a_file_proxmox_cannot_write_back() {
    let text = "vzdump: broken\n\tstorage local\n\nvzdump: ok\n\tschedule 1:00\n";
    let mut cfg = JobsCfg::parse(text);
    assert!(matches!(
        cfg.set_schedule("ok", "02:00"),
        Err(EditError::Unwritable(_))
    ));
    assert!(matches!(
        cfg.set_enabled("ok", false),
        Err(EditError::Unwritable(_))
    ));
    assert_eq!(cfg.render(), text);
}

#[test]
fn set_enabled_edits_in_place_completes_a_bare_key_or_adds_a_line() {
    let mut cfg = JobsCfg::parse(QUIRKY);
    cfg.set_enabled("a", true)
        .expect("already enabled: no change");
    assert_eq!(cfg.render(), QUIRKY);
    cfg.set_enabled("b", false).expect("bare key");
    cfg.set_enabled("a", false).expect("no enabled line");
    cfg.set_enabled("c", false).expect("at end of file");
    let expected = QUIRKY
        .replace("  enabled\n", "  enabled 0\n")
        .replace("\tschedule 05:00\n", "\tschedule 05:00\n    enabled 0\n")
        .replace("\tschedule hourly", "\tschedule hourly\n\tenabled 0");
    assert_eq!(cfg.render(), expected);
    assert!(cfg.vzdump_jobs().iter().all(|job| !job.enabled));
    assert!(cfg
        .proxmox_reading("F")
        .warnings
        .iter()
        .all(|w| w.message.contains("duplicate")));
    cfg.set_enabled("b", true).expect("in place");
    assert!(cfg.render().contains("  enabled 1\n"));
}

#[test]
fn stored_lines_give_the_raw_text_of_each_value() {
    let text = "vzdump: a\n\tschedule 1:00\n\tvmid 100 101;102\n\tionice 07\n\tall\n";
    let cfg = JobsCfg::parse(text);
    let reading = cfg.proxmox_reading("F");
    let section = reading.section("a").expect("section a");
    let raw = |key: &str| section.stored_line(key).and_then(|l| l.raw_value(&cfg));
    assert_eq!(raw("vmid"), Some("100 101;102"));
    assert_eq!(raw("ionice"), Some("07"));
    assert_eq!(section.value("ionice"), Some(&Value::Integer("7".into())));
    assert_eq!(raw("all"), None);
    assert_eq!(section.stored_line("ionice").map(|l| l.line), Some(4));
}
