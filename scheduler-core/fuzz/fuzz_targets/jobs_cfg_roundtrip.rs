//! Fuzzes the jobs.cfg codec: any text round-trips byte for byte, Proxmox's
//! reading and writer never panic and point at real lines, Proxmox's output
//! reads back to itself, and a schedule edit touches only the value it edits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scheduler_core::jobs_cfg::JobsCfg;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = JobsCfg::parse(text);
    assert_eq!(cfg.render(), text);

    let reading = cfg.proxmox_reading("F");
    let lines = text.split('\n').count();
    for warning in &reading.warnings {
        assert!(warning.line >= 1 && warning.line <= lines);
    }

    if let Ok(written) = cfg.proxmox_rewrite() {
        let again = JobsCfg::parse(&written);
        // Proxmox's own output can fail its next read (an encoded comment over
        // 512 bytes, a huge integer printed as 1e+20); otherwise it is stable.
        if again.proxmox_reading("F").warnings.is_empty() {
            assert_eq!(again.proxmox_rewrite().as_deref(), Ok(written.as_str()));
        }
    }

    for job in reading.jobs() {
        let mut edited = cfg.clone();
        if edited.set_schedule(&job.id, "02:35 UTC").is_err() {
            continue;
        }
        let after = edited.render();
        let (old, new) = (text.as_bytes(), after.as_bytes());
        let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        let suffix = old[prefix..]
            .iter()
            .rev()
            .zip(new[prefix..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        // Only the bytes of one value changed: no line was added or removed.
        assert!(!old[prefix..old.len() - suffix].contains(&b'\n'));
        assert!(!new[prefix..new.len() - suffix].contains(&b'\n'));
        let edited_reading = edited.proxmox_reading("F");
        assert_eq!(edited_reading.warnings, reading.warnings);
        let schedule = edited_reading
            .jobs()
            .into_iter()
            .find(|j| j.id == job.id)
            .map(|j| j.schedule);
        assert_eq!(schedule.as_deref(), Some("02:35 UTC"));
    }
});
