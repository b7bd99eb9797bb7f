//! Measuring: the load value from real procfs-format files the test keeps
//! growing, the weekly profile persisted across a restart, and state files
//! that are corrupt set aside instead of stopping the agent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scheduler_core::load::slot_of;

use crate::support::{self, Agent, Host, Http};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Sets the flag when dropped, so a failed assertion stops the writer thread
/// and the scope ends with the failure instead of waiting for it forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The profile value of the slot of now or of the one before (a test may straddle a boundary).
fn current_value(http: &Http) -> f64 {
    let report = http.get("/v1/report").json();
    let values = report["load"]["values"].as_array().expect("values").clone();
    let now = unix_now();
    [now, now - 300]
        .iter()
        .map(|t| values[slot_of(*t)].as_f64().expect("number"))
        .fold(0.0, f64::max)
}

#[test]
fn the_profile_fills_from_io_pressure_and_survives_a_restart() {
    let host = Host::new("");
    let config = host.config("sample-interval-secs = 1");
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Some task stalls on I/O half of the time.
        scope.spawn(|| {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let stalled_us = (started.elapsed().as_secs_f64() * 0.5e6) as u64;
                host.write_atomic(
                    "proc/pressure/io",
                    &format!(
                        "some avg10=50.00 avg60=40.00 avg300=10.00 total={stalled_us}\n\
                         full avg10=20.00 avg60=10.00 avg300=5.00 total={}\n",
                        stalled_us / 4
                    ),
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let _stop = StopOnDrop(&stop);
        let mut agent = Agent::start(&config);
        let http = Http::new(&agent, support::fingerprint(&config));
        std::thread::sleep(Duration::from_millis(4500));
        let text = http.metrics_text();
        // One sample sees the writer's last write, which on a loaded machine
        // may be late; the profile's mean over the samples is the exact check.
        let load = support::sample(&text, "stagger_io_load_ratio").expect("load");
        assert!((0.2..=0.8).contains(&load), "{load}");
        assert_eq!(
            support::sample(&text, r#"stagger_io_pressure_some_ratio{window="10s"}"#),
            Some(0.5)
        );
        assert_eq!(
            support::sample(&text, r#"stagger_io_pressure_full_ratio{window="60s"}"#),
            Some(0.1)
        );
        let stalled =
            support::sample(&text, "stagger_io_pressure_some_seconds_total").expect("total");
        assert!(stalled > 1.0, "{stalled}");
        assert!(support::sample(&text, "stagger_load_profile_span_seconds").expect("weeks") > 0.0);
        let value = current_value(&http);
        assert!((0.3..=0.7).contains(&value), "{value}");
        let report = http.get("/v1/report").json();
        assert_eq!(report["pressure"]["some_avg10"], 0.5);
        stop.store(true, Ordering::Relaxed);
        assert!(agent.stop().success());
    });
    assert!(
        host.path("state/load-profile.json").exists(),
        "saved at shutdown"
    );
    // Restarted with an idle disk: what was measured before is still there.
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    let value = current_value(&http);
    assert!(value > 0.2, "{value}");
}

#[test]
fn without_psi_the_busiest_whole_disk_is_the_load() {
    let host = Host::new("");
    std::fs::remove_file(host.path("proc/pressure/io")).expect("no PSI");
    let config = host.config("sample-interval-secs = 1");
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let ms = started.elapsed().as_millis() as u64;
                // vda busy 30 % of the time; its partition and a zvol would double count.
                host.write_atomic(
                    "proc/diskstats",
                    &format!(
                        " 254 0 vda 1 0 0 0 0 0 0 0 0 {} 0 0 0 0 0 0 0\n\
                          254 1 vda1 1 0 0 0 0 0 0 0 0 {} 0 0 0 0 0 0 0\n\
                          230 0 zd0 1 0 0 0 0 0 0 0 0 {} 0 0 0 0 0 0 0\n",
                        ms * 3 / 10,
                        ms * 3 / 10,
                        ms
                    ),
                );
                host.write_atomic(
                    "proc/stat",
                    &format!("cpu  100 0 100 {} {} 0 0 0 0 0\n", ms, ms / 10),
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let _stop = StopOnDrop(&stop);
        let agent = Agent::start(&config);
        let http = Http::new(&agent, support::fingerprint(&config));
        std::thread::sleep(Duration::from_millis(3500));
        let text = http.metrics_text();
        // The profile's mean over the samples: 0.3 for vda alone; counting its
        // partition too would give 0.6, the zvol 1.0. (One sample alone may be
        // off on a loaded machine: it sees the writer's last, perhaps late, write.)
        let value = current_value(&http);
        assert!((0.2..=0.42).contains(&value), "{value}");
        let load = support::sample(&text, "stagger_io_load_ratio").expect("load");
        assert!((0.05..=0.9).contains(&load), "{load}");
        let disk = support::sample(&text, "stagger_disk_io_time_seconds_total").expect("disk time");
        assert!(disk > 0.5, "{disk}");
        assert!(support::sample(&text, "stagger_cpu_iowait_seconds_total").expect("iowait") > 0.0);
        assert!(
            support::sample(&text, "stagger_io_pressure_some_ratio").is_none(),
            "no PSI, no PSI gauges"
        );
    });
}

#[test]
fn corrupt_state_files_are_set_aside_and_the_agent_starts() {
    let host = Host::new("");
    host.write(
        "state/load-profile.json",
        "{\"half_life_weeks\": 4, \"mean\": [1, 2",
    );
    host.write("state/runs.json", "not json at all");
    host.write("state/hook-spool/00000000001-000000000-1.json", "{");
    let config = host.config("sample-interval-secs = 1");
    let agent = Agent::start(&config);
    let http = Http::new(&agent, support::fingerprint(&config));
    assert_eq!(http.get("/v1/report").status, 200);
    support::wait_for(10, "the spool file set aside", || {
        let names: Vec<String> = std::fs::read_dir(host.path("state/hook-spool"))
            .expect("spool")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.iter().any(|n| n.contains(".corrupt-")).then_some(())
    });
    let names: Vec<String> = std::fs::read_dir(host.path("state"))
        .expect("state")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for name in ["load-profile.json.corrupt-", "runs.json.corrupt-"] {
        assert!(
            names.iter().any(|n| n.starts_with(name)),
            "{name} in {names:?}"
        );
    }
    assert!(agent.log().contains("set aside"), "{}", agent.log());
}
