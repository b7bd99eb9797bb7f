//! jobs.cfg codec throughput on a 1 MiB file (pmxcfs's limit per file):
//! the lossless parse, Proxmox's full reading (schema and calendar checks),
//! and an edit. Run: `cargo bench -p scheduler-core --bench jobs_cfg`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scheduler_core::jobs_cfg::JobsCfg;

/// A realistic jobs.cfg of at least `size` bytes: GUI-made sections, hand-edited ones, comments.
fn generated_file(size: usize) -> String {
    let schedules = [
        "02:00",
        "mon..fri 21:30",
        "*/15",
        "sat 03:15 UTC",
        "0/6:00",
        "sun 04:00",
    ];
    let mut text = String::with_capacity(size + 1024);
    let mut i = 0;
    while text.len() < size {
        let schedule = schedules[i % schedules.len()];
        if i % 5 == 4 {
            text.push_str(&format!(
                "# hand-edited\nvzdump:backup-hand-{i}\n    schedule   {schedule}  \n  all\n\tvmid 100 101;102\n\n"
            ));
        } else {
            text.push_str(&format!(
                "vzdump: backup-{i:08x}-2b7d\n\tcomment Node {i}%3A nightly to PBS\n\tschedule {schedule}\n\
                 \tall 1\n\tenabled 1\n\tfleecing 0\n\tmode snapshot\n\tnode node{}\n\
                 \tnotes-template {{{{guestname}}}}\n\tnotification-mode notification-system\n\
                 \tprune-backups keep-daily=7,keep-last=3,keep-monthly=6,keep-weekly=4\n\
                 \trepeat-missed 0\n\tstorage pbs-main\n\n",
                i % 16
            ));
        }
        i += 1;
    }
    text
}

fn jobs_cfg(c: &mut Criterion) {
    let text = generated_file(1 << 20);
    let mut group = c.benchmark_group("jobs_cfg_1MiB");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));

    group.bench_function("parse", |b| b.iter(|| JobsCfg::parse(black_box(&text))));

    let cfg = JobsCfg::parse(&text);
    group.bench_function("proxmox_reading", |b| {
        b.iter(|| black_box(&cfg).proxmox_reading("/etc/pve/jobs.cfg"))
    });
    group.bench_function("parse_read_rewrite", |b| {
        b.iter(|| JobsCfg::parse(black_box(&text)).proxmox_rewrite())
    });
    group.bench_function("set_schedule", |b| {
        b.iter(|| {
            let mut cfg = JobsCfg::parse(black_box(&text));
            cfg.set_schedule("backup-00000000-2b7d", "02:35 UTC")
        })
    });
    group.finish();
}

criterion_group!(benches, jobs_cfg);
criterion_main!(benches);
