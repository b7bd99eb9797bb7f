//! Reading the counters under `proc-root`, and the load value of the interval
//! between two readings.
//!
//! **The load value** of an interval is, in `[0, 1]`:
//!
//! 1. the fraction of the interval in which some task stalled on I/O: the
//!    growth of `/proc/pressure/io`'s `some total` (µs) over the interval's
//!    length — what a VM's guest feels when the host's disks are busy;
//! 2. where PSI is missing (kernels without `CONFIG_PSI` or booted with
//!    `psi=0`): the busy fraction of the busiest whole disk, from the growth
//!    of `io_ticks` in `/proc/diskstats`;
//! 3. else the share of CPU time spent waiting for I/O, from `/proc/stat`.
//!
//! Each file is optional: a missing or unreadable file is simply not used,
//! and [`Source::None`] says when none could be.

use std::path::{Path, PathBuf};

use super::procfs::{self, CpuTimes, DiskTime, Pressure};

/// One reading of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// `pressure/io`, when readable.
    pub pressure: Option<Pressure>,
    /// Whole disks of `diskstats`, when readable.
    pub disks: Option<Vec<DiskTime>>,
    /// The `cpu` line of `stat`, when readable.
    pub cpu: Option<CpuTimes>,
}

impl Reading {
    /// Sum of the whole disks' I/O time, milliseconds.
    pub fn disk_io_ms(&self) -> Option<u64> {
        self.disks
            .as_ref()
            .filter(|disks| !disks.is_empty())
            .map(|disks| disks.iter().map(|d| d.io_ms).sum())
    }
}

/// Where a load value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `pressure/io` `some total`.
    Pressure,
    /// `diskstats` `io_ticks` of the busiest whole disk.
    Disks,
    /// `stat` iowait share.
    Iowait,
    /// No file gave two readings to compare.
    None,
}

/// The load value between two readings `secs` seconds apart (see the module doc).
pub fn load_between(before: &Reading, after: &Reading, secs: f64) -> (Option<f64>, Source) {
    if !(secs.is_finite() && secs > 0.0) {
        return (None, Source::None);
    }
    if let (Some(a), Some(b)) = (&before.pressure, &after.pressure) {
        if let Some(stalled_us) = b.some.total_us.checked_sub(a.some.total_us) {
            return (
                Some(clamp(stalled_us as f64 / 1e6 / secs)),
                Source::Pressure,
            );
        }
    }
    if let (Some(a), Some(b)) = (&before.disks, &after.disks) {
        let busiest = b
            .iter()
            .filter_map(|disk| {
                let old = a.iter().find(|d| d.name == disk.name)?;
                disk.io_ms.checked_sub(old.io_ms)
            })
            .max();
        if let Some(busy_ms) = busiest {
            return (Some(clamp(busy_ms as f64 / 1000.0 / secs)), Source::Disks);
        }
    }
    if let (Some(a), Some(b)) = (&before.cpu, &after.cpu) {
        if let (Some(wait), Some(total)) =
            (b.iowait.checked_sub(a.iowait), b.total.checked_sub(a.total))
        {
            if total > 0 {
                return (Some(clamp(wait as f64 / total as f64)), Source::Iowait);
            }
        }
    }
    (None, Source::None)
}

fn clamp(value: f64) -> f64 {
    value.clamp(0.0, 1.0)
}

/// Reads the three files under a `proc-root`.
#[derive(Debug, Clone)]
pub struct ProcReader {
    pressure: PathBuf,
    diskstats: PathBuf,
    stat: PathBuf,
}

impl ProcReader {
    /// A reader of `<root>/pressure/io`, `<root>/diskstats` and `<root>/stat`.
    pub fn new(root: &Path) -> ProcReader {
        ProcReader {
            pressure: root.join("pressure/io"),
            diskstats: root.join("diskstats"),
            stat: root.join("stat"),
        }
    }

    /// Reads what is there; a file that is missing or does not parse is left
    /// out, and its problem is returned for the caller to log.
    pub fn read(&self) -> (Reading, Vec<String>) {
        let mut problems = Vec::new();
        let mut read = |path: &Path| match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                problems.push(format!("cannot read {}: {e}", path.display()));
                None
            }
        };
        let texts = [
            read(&self.pressure),
            read(&self.diskstats),
            read(&self.stat),
        ];
        let [pressure, diskstats, stat] = texts;
        let reading = Reading {
            pressure: pressure
                .and_then(|t| parsed(&mut problems, &self.pressure, procfs::parse_pressure(&t))),
            disks: diskstats
                .and_then(|t| parsed(&mut problems, &self.diskstats, procfs::parse_diskstats(&t))),
            cpu: stat.and_then(|t| parsed(&mut problems, &self.stat, procfs::parse_stat(&t))),
        };
        (reading, problems)
    }
}

/// The parsed value, or `None` with the problem noted.
fn parsed<T>(
    problems: &mut Vec<String>,
    path: &Path,
    result: Result<T, procfs::ParseError>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::procfs::PsiLine;
    use super::*;

    fn psi(total_us: u64) -> Option<Pressure> {
        Some(Pressure {
            some: PsiLine {
                total_us,
                ..PsiLine::default()
            },
            full: None,
        })
    }

    fn disks(ms: &[(&str, u64)]) -> Option<Vec<DiskTime>> {
        Some(
            ms.iter()
                .map(|(name, io_ms)| DiskTime {
                    name: (*name).to_owned(),
                    io_ms: *io_ms,
                })
                .collect(),
        )
    }

    #[test]
    fn pressure_comes_first() {
        let before = Reading {
            pressure: psi(1_000_000),
            disks: disks(&[("sda", 0)]),
            cpu: None,
        };
        let after = Reading {
            pressure: psi(3_500_000),
            disks: disks(&[("sda", 10_000)]),
            cpu: None,
        };
        let (value, source) = load_between(&before, &after, 10.0);
        assert_eq!(source, Source::Pressure);
        assert!((value.unwrap() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn without_pressure_the_busiest_disk_counts() {
        let before = Reading {
            pressure: None,
            disks: disks(&[("sda", 100), ("sdb", 0)]),
            cpu: Some(CpuTimes {
                iowait: 0,
                total: 0,
            }),
        };
        let after = Reading {
            pressure: None,
            disks: disks(&[("sda", 2_100), ("sdb", 30_000)]),
            cpu: Some(CpuTimes {
                iowait: 5,
                total: 100,
            }),
        };
        let (value, source) = load_between(&before, &after, 10.0);
        assert_eq!(source, Source::Disks);
        assert_eq!(value, Some(1.0), "sdb busier than the interval: clamped");
    }

    #[test]
    fn iowait_is_the_last_resort() {
        let before = Reading {
            cpu: Some(CpuTimes {
                iowait: 10,
                total: 1000,
            }),
            ..Reading::default()
        };
        let after = Reading {
            cpu: Some(CpuTimes {
                iowait: 30,
                total: 1200,
            }),
            ..Reading::default()
        };
        assert_eq!(
            load_between(&before, &after, 2.0),
            (Some(0.1), Source::Iowait)
        );
        assert_eq!(load_between(&before, &after, 0.0), (None, Source::None));
        assert_eq!(
            load_between(&Reading::default(), &after, 2.0),
            (None, Source::None)
        );
    }

    #[test]
    fn a_counter_going_back_is_not_a_load() {
        let before = Reading {
            pressure: psi(5_000_000),
            ..Reading::default()
        };
        let after = Reading {
            pressure: psi(1_000),
            ..Reading::default()
        };
        assert_eq!(load_between(&before, &after, 10.0), (None, Source::None));
    }

    #[test]
    fn missing_files_are_skipped_and_bad_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pressure")).unwrap();
        std::fs::write(
            dir.path().join("pressure/io"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("stat"), "intr 1 2 3\n").unwrap();
        let (reading, problems) = ProcReader::new(dir.path()).read();
        assert_eq!(reading.pressure.unwrap().some.total_us, 42);
        assert!(reading.disks.is_none());
        assert!(reading.cpu.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("stat"), "{problems:?}");
    }
}
