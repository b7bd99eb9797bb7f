//! `schedctl jobs-cfg`: read and edit /etc/pve/jobs.cfg losslessly.
//!
//! `show` prints what Proxmox makes of the file (its jobs, its warnings, whether
//! a Proxmox write would succeed); `set-schedule` changes one schedule value and
//! nothing else, on stdout or atomically in place.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use scheduler_core::jobs_cfg::{Digest, Job, JobsCfg, Warning};
use serde::Serialize;

use crate::exit::{bad_input, refused, CommandError, CommandResult};
use crate::output::{print_json, print_text, Format};

/// The `jobs-cfg` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCfgCommand {
    /// Show the jobs Proxmox sees in a jobs.cfg, its warnings and what a Proxmox write would make of it.
    #[command(
        after_help = "Examples:\n  schedctl jobs-cfg show /etc/pve/jobs.cfg\n  schedctl jobs-cfg show /etc/pve/jobs.cfg --format json"
    )]
    Show(ShowArgs),
    /// Change one job's schedule, byte for byte nothing else.
    #[command(after_help = SET_SCHEDULE_EXAMPLES)]
    SetSchedule(SetScheduleArgs),
}

const SET_SCHEDULE_EXAMPLES: &str = "\
Examples:
  schedctl jobs-cfg set-schedule /etc/pve/jobs.cfg backup-pihanga '03:30 UTC' > jobs.cfg.new
  schedctl jobs-cfg set-schedule /etc/pve/jobs.cfg backup-pihanga '03:30 UTC' \\
      --expect-digest \"$(sha1sum < /etc/pve/jobs.cfg | cut -d' ' -f1)\" --in-place

Only the schedule value changes; comments, spacing and unknown keys stay as they are.
This command does not take Proxmox's cluster lock: with --in-place it reads the file
again just before the rename and refuses (exit 3) if someone changed it meanwhile;
--expect-digest also ties the edit to the file your plan was made from.";

/// Arguments of `jobs-cfg show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The jobs.cfg to read (usually /etc/pve/jobs.cfg).
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Arguments of `jobs-cfg set-schedule`.
#[derive(Debug, Args)]
pub struct SetScheduleArgs {
    /// The jobs.cfg to edit.
    pub file: PathBuf,
    /// The job's id (the `vzdump: <id>` header).
    pub job_id: String,
    /// The new calendar event, e.g. `02:35 UTC`.
    pub event: String,
    /// Refuse unless the file's SHA-1 is this digest (the one your plan was made from).
    #[arg(long, value_name = "SHA1")]
    pub expect_digest: Option<String>,
    /// Replace FILE atomically instead of printing the edited file.
    #[arg(long)]
    pub in_place: bool,
}

/// Runs a `jobs-cfg` subcommand.
pub fn run(command: &JobsCfgCommand) -> CommandResult {
    match command {
        JobsCfgCommand::Show(args) => show(args),
        JobsCfgCommand::SetSchedule(args) => set_schedule(args),
    }
}

/// What `show --format json` prints.
#[derive(Debug, Serialize)]
struct ShowReport<'a> {
    digest: String,
    jobs: Vec<Job>,
    warnings: &'a [Warning],
    proxmox_rewrite: Option<String>,
    proxmox_rewrite_error: Option<&'static str>,
}

fn show(args: &ShowArgs) -> CommandResult {
    let cfg = JobsCfg::parse(&read_jobs_cfg(&args.file)?);
    let reading = cfg.proxmox_reading(&args.file.display().to_string());
    let rewrite = cfg.proxmox_rewrite();
    let report = ShowReport {
        digest: cfg.digest().to_string(),
        jobs: reading.jobs(),
        warnings: &reading.warnings,
        proxmox_rewrite: rewrite.as_ref().ok().cloned(),
        proxmox_rewrite_error: rewrite.as_ref().err().map(|e| e.proxmox_message()),
    };
    match args.format {
        Format::Json => print_json(&report)?,
        Format::Text => print_text(&show_text(&args.file, &report, &rewrite, cfg.as_str()))?,
    }
    Ok(())
}

/// The readable form of `show`: a table of jobs, the warnings, the write verdict.
fn show_text(
    path: &Path,
    report: &ShowReport<'_>,
    rewrite: &Result<String, scheduler_core::jobs_cfg::RewriteError>,
    original: &str,
) -> String {
    let mut out = format!("{}  digest {}\n\n", path.display(), report.digest);
    let header = ["ID", "TYPE", "SCHEDULE", "NODE", "ENABLED", "LINE"].map(str::to_owned);
    let rows: Vec<[String; 6]> = report
        .jobs
        .iter()
        .map(|job| {
            [
                job.id.clone(),
                job.section_type.clone(),
                job.schedule.clone(),
                job.node.clone().unwrap_or_else(|| "(all nodes)".to_owned()),
                if job.enabled { "yes" } else { "no" }.to_owned(),
                job.line.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no jobs\n");
    } else {
        out.push_str(&table(&header, &rows));
    }
    out.push('\n');
    if report.warnings.is_empty() {
        out.push_str("Proxmox reads the file without warnings.\n");
    } else {
        out.push_str(&format!("Proxmox warnings ({}):\n", report.warnings.len()));
        let prefix = format!("file {} ", path.display());
        for warning in report.warnings {
            // The row already names the line; drop Proxmox's "file F line N " lead.
            let message = warning
                .message
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_prefix(&format!("line {} ", warning.line)))
                .unwrap_or(&warning.message);
            out.push_str(&format!("  line {}: {}\n", warning.line, message));
        }
    }
    match rewrite {
        Ok(text) if text == original => {
            out.push_str("A Proxmox write would succeed and leave the file as it is.\n")
        }
        Ok(_) => out.push_str(
            "A Proxmox write would succeed but normalise the file \
             (comments, unknown keys, rejected values and hand formatting are lost).\n",
        ),
        Err(error) => out.push_str(&format!("A Proxmox write would FAIL: {error}\n")),
    }
    out
}

/// Left-aligned columns separated by two spaces.
fn table(header: &[String; 6], rows: &[[String; 6]]) -> String {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

fn set_schedule(args: &SetScheduleArgs) -> CommandResult {
    let path = &args.file;
    let original = read_jobs_cfg(path)?;
    let mut cfg = JobsCfg::parse(&original);
    let before = cfg.digest();
    if let Some(expected) = &args.expect_digest {
        check_digest(path, before, expected)?;
    }
    cfg.set_schedule(&args.job_id, &args.event)
        .map_err(|error| {
            bad_input(anyhow::Error::new(error).context(format!(
                "{}: cannot set the schedule of job '{}'; the file was not changed",
                path.display(),
                args.job_id
            )))
        })?;
    if !args.in_place {
        print_text(cfg.as_str())?;
        return Ok(());
    }
    replace_file(path, before, cfg.as_str())?;
    print_text(&format!(
        "{}: schedule of '{}' set; digest {} -> {}\n",
        path.display(),
        args.job_id,
        before,
        cfg.digest()
    ))?;
    Ok(())
}

/// Refuses a malformed or stale `--expect-digest`.
fn check_digest(path: &Path, actual: Digest, expected: &str) -> CommandResult {
    let expected: Digest = expected
        .parse()
        .map_err(|e| bad_input(anyhow::Error::new(e).context("bad --expect-digest")))?;
    if actual != expected {
        return Err(bad_input(anyhow!(
            "{}: the file's digest is {actual}, not the expected {expected}: it changed since \
             your plan was made; read it again (schedctl jobs-cfg show) and plan again; \
             the file was not changed",
            path.display()
        )));
    }
    Ok(())
}

/// The file as text; a missing file or non-UTF-8 content is bad input.
fn read_jobs_cfg(path: &Path) -> Result<String, CommandError> {
    let bytes = fs::read(path).map_err(|error| {
        let kind = error.kind();
        let error = anyhow::Error::new(error).context(format!("cannot read {}", path.display()));
        if kind == ErrorKind::NotFound {
            bad_input(error)
        } else {
            CommandError::from(error)
        }
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let line = error.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        bad_input(anyhow!(
            "{} line {line}: not valid UTF-8 (byte {offset}); jobs.cfg is UTF-8 text, \
             fix or re-encode that line",
            path.display()
        ))
    })
}

/// Replaces `path` with `text` atomically, as Proxmox's `file_set_contents`
/// does plus the syncs: `<file>.tmp.<pid>` in the same directory with the
/// file's permissions, fsync, a last digest check, rename, fsync of the directory. On any failure the temp file is removed and the
/// original is left as it was.
fn replace_file(path: &Path, expected: Digest, text: &str) -> CommandResult {
    // Through a symlink, replace the file it points to, not the link.
    let path =
        &fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| bad_input(anyhow!("{}: not a file name", path.display())))?;
    let temp = directory.join(format!(
        "{}.tmp.{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_temp(path, &temp, text).and_then(|()| {
        // The file must still be the one we edited (another writer may have won meanwhile).
        let current = Digest::of(
            &fs::read(path).with_context(|| format!("cannot re-read {}", path.display()))?,
        );
        if current != expected {
            return Err(refused(anyhow!(
                "{}: the file changed while it was being edited (digest {current}, expected \
                 {expected}); nothing was written, run the command again",
                path.display()
            )));
        }
        fs::rename(&temp, path)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))?;
        File::open(&directory)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot sync directory {}", directory.display()))?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_temp(original: &Path, temp: &Path, text: &str) -> CommandResult {
    let permissions = fs::metadata(original)
        .with_context(|| format!("cannot read the permissions of {}", original.display()))?
        .permissions();
    let mut file = match OpenOptions::new().write(true).create_new(true).open(temp) {
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            // A leftover of an earlier process with our pid: it is ours to replace.
            fs::remove_file(temp)
                .with_context(|| format!("cannot remove stale {}", temp.display()))?;
            OpenOptions::new().write(true).create_new(true).open(temp)
        }
        other => other,
    }
    .with_context(|| format!("cannot create {}", temp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.set_permissions(permissions))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temp.display()))?;
    Ok(())
}
