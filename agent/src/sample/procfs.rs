//! Parsers for the three procfs files the agent samples, from `&str`:
//! `/proc/pressure/io` (PSI), `/proc/diskstats` and the `cpu` line of
//! `/proc/stat`. Reading the files is [`super::reader`]'s job.

/// Why a procfs text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {reason}: {text:?}")]
pub struct ParseError {
    /// `pressure/io`, `diskstats` or `stat`.
    pub file: &'static str,
    /// 1-based line.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What was wrong.
    pub reason: String,
}

/// One line of a PSI file (`some ...` or `full ...`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    /// `avg10`, as a ratio in `[0, 1]` (the file states percent).
    pub avg10: f64,
    /// `avg60`, as a ratio.
    pub avg60: f64,
    /// `avg300`, as a ratio.
    pub avg300: f64,
    /// `total`: microseconds stalled since boot.
    pub total_us: u64,
}

/// `/proc/pressure/io`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    /// Some task stalled on I/O.
    pub some: PsiLine,
    /// All non-idle tasks stalled on I/O (absent on old kernels).
    pub full: Option<PsiLine>,
}

/// Parses `/proc/pressure/io`.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for (index, line) in text.lines().enumerate() {
        let error = |reason: &str| ParseError {
            file: "pressure/io",
            line: index + 1,
            text: line.to_owned(),
            reason: reason.to_owned(),
        };
        let mut fields = line.split_whitespace();
        let Some(kind) = fields.next() else {
            continue;
        };
        let mut parsed = PsiLine::default();
        let mut seen = 0;
        for field in fields {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| error("expected key=value fields"))?;
            let percent = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(|v| (v / 100.0).min(1.0))
                    .ok_or_else(|| error("an average is not a percentage"))
            };
            match key {
                "avg10" => parsed.avg10 = percent()?,
                "avg60" => parsed.avg60 = percent()?,
                "avg300" => parsed.avg300 = percent()?,
                "total" => {
                    parsed.total_us = value
                        .parse()
                        .map_err(|_| error("total is not a whole number"))?
                }
                _ => continue,
            }
            seen += 1;
        }
        if seen < 4 {
            return Err(error("expected avg10, avg60, avg300 and total"));
        }
        match kind {
            "some" => some = Some(parsed),
            "full" => full = Some(parsed),
            _ => return Err(error("expected a line starting with `some` or `full`")),
        }
    }
    let some = some.ok_or_else(|| ParseError {
        file: "pressure/io",
        line: 1,
        text: text.lines().next().unwrap_or("").to_owned(),
        reason: "no `some` line".to_owned(),
    })?;
    Ok(Pressure { some, full })
}

/// The I/O time of one block device from `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskTime {
    /// The device name (`sda`, `nvme0n1`).
    pub name: String,
    /// Milliseconds the device was busy with I/O since boot (`io_ticks`, field 10).
    pub io_ms: u64,
}

/// Parses `/proc/diskstats`, keeping whole disks only (see [`is_whole_disk`]).
pub fn parse_diskstats(text: &str) -> Result<Vec<DiskTime>, ParseError> {
    let mut disks = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let error = |reason: &str| ParseError {
            file: "diskstats",
            line: index + 1,
            text: line.to_owned(),
            reason: reason.to_owned(),
        };
        if fields.len() < 14 {
            return Err(error(
                "expected major, minor, name and at least 11 counters",
            ));
        }
        let name = fields[2];
        if !is_whole_disk(name) {
            continue;
        }
        let io_ms = fields[12]
            .parse()
            .map_err(|_| error("io_ticks (field 10) is not a whole number"))?;
        disks.push(DiskTime {
            name: name.to_owned(),
            io_ms,
        });
    }
    Ok(disks)
}

/// Whether a device of `/proc/diskstats` is a whole physical (or virtual)
/// disk: `sd*`, `vd*`, `hd*`, `xvd*` without a partition number, `nvme<n>n<m>`
/// without `p<k>`, `mmcblk<n>` without `p<k>`. Partitions, loop and RAM
/// devices, device-mapper volumes, md arrays and ZFS zvols are left out:
/// their I/O is also counted on the disks below them.
pub fn is_whole_disk(name: &str) -> bool {
    let letters_only =
        |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase());
    for prefix in ["xvd", "sd", "vd", "hd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return letters_only(rest);
        }
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = name.strip_prefix("nvme") {
        return match rest.split_once('n') {
            Some((controller, namespace)) => digits(controller) && digits(namespace),
            None => false,
        };
    }
    if let Some(rest) = name.strip_prefix("mmcblk") {
        return digits(rest);
    }
    false
}

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks (USER_HZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Ticks idle waiting for I/O.
    pub iowait: u64,
    /// Ticks of user, nice, system, idle, iowait, irq, softirq and steal together.
    pub total: u64,
}

/// Parses the `cpu` line of `/proc/stat`.
pub fn parse_stat(text: &str) -> Result<CpuTimes, ParseError> {
    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.split_whitespace().next() == Some("cpu"))
        .ok_or_else(|| ParseError {
            file: "stat",
            line: 1,
            text: text.lines().next().unwrap_or("").to_owned(),
            reason: "no aggregate `cpu` line".to_owned(),
        })?;
    let values: Result<Vec<u64>, _> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect();
    match values {
        Ok(values) if values.len() >= 5 => Ok(CpuTimes {
            iowait: values[4],
            total: values.iter().sum(),
        }),
        _ => Err(ParseError {
            file: "stat",
            line: index + 1,
            text: line.to_owned(),
            reason: "expected at least user, nice, system, idle and iowait tick counts".into(),
        }),
    }
}

/// Clock ticks per second of `/proc/stat` (USER_HZ): 100 on every Linux
/// architecture Proxmox runs on.
pub const USER_HZ: f64 = 100.0;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn pressure_reads_percent_as_ratios() {
        let text = "some avg10=1.50 avg60=0.64 avg300=100.00 total=19983679\n\
                    full avg10=0.12 avg60=0.10 avg300=0.44 total=11621669\n";
        let pressure = parse_pressure(text).unwrap();
        assert!((pressure.some.avg10 - 0.015).abs() < 1e-12);
        assert_eq!(pressure.some.avg300, 1.0);
        assert_eq!(pressure.some.total_us, 19_983_679);
        assert_eq!(pressure.full.unwrap().total_us, 11_621_669);
        let old_kernel =
            parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert!(old_kernel.full.is_none());
    }

    #[test]
    fn bad_pressure_text_names_its_line() {
        let err = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=x avg60=0 avg300=0 total=0\n")
            .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("percentage"), "{err}");
        assert!(parse_pressure("").is_err());
        assert!(parse_pressure("some avg10=0.00\n").is_err());
    }

    #[test]
    fn diskstats_keeps_whole_disks() {
        let text = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
                    254       0 vda 176188 10345 12777490 307514 23346 69305 29251776 288330 0 38984 603396 10789 35 1096072 7463 1403 88\n\
                    254       1 vda1 1 0 0 0 0 0 0 0 0 500 0\n\
                    259       0 nvme0n1 1 0 0 0 0 0 0 0 0 1234 0\n\
                    259       1 nvme0n1p1 1 0 0 0 0 0 0 0 0 1000 0\n\
                    230       0 zd0 1 0 0 0 0 0 0 0 0 99 0\n\
                    253       0 dm-0 1 0 0 0 0 0 0 0 0 99 0\n";
        let disks = parse_diskstats(text).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vda", "nvme0n1"]);
        assert_eq!(disks[0].io_ms, 38_984);
        assert_eq!(disks[1].io_ms, 1234);
        assert!(parse_diskstats("8 0 sda 1 2\n").is_err());
    }

    #[test]
    fn whole_disk_names() {
        for name in [
            "sda", "sdaa", "vdb", "xvda", "hda", "nvme0n1", "nvme12n3", "mmcblk0",
        ] {
            assert!(is_whole_disk(name), "{name}");
        }
        for name in [
            "sda1",
            "nvme0n1p2",
            "mmcblk0p1",
            "loop0",
            "ram0",
            "dm-3",
            "md0",
            "zd16",
            "zram0",
            "sr0",
            "nvme0",
        ] {
            assert!(!is_whole_disk(name), "{name}");
        }
    }

    #[test]
    fn stat_sums_the_first_eight_fields() {
        let text = "cpu  139349 0 20750 79092 1620 0 145 291 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        let cpu = parse_stat(text).unwrap();
        assert_eq!(cpu.iowait, 1620);
        assert_eq!(cpu.total, 139_349 + 20_750 + 79_092 + 1620 + 145 + 291);
        assert!(parse_stat("cpu0 1 2 3\n").is_err());
        assert!(parse_stat("cpu 1 2 x 4 5\n").is_err());
    }
}
