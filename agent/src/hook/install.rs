//! `sched-agent hook install|uninstall`: the vzdump hook in `/etc/vzdump.conf`.
//!
//! vzdump calls `script:` as `<script> <phase> [mode vmid]` with an empty
//! environment, and fails every backup of the node when the script is
//! missing or not executable (FORMATS.md (d)). So:
//!
//! - **install** writes the wrapper (`hook-script`: a `#!/bin/sh` that execs
//!   this binary's `hook` subcommand with absolute paths) atomically with
//!   mode 0755 *first*, and only then adds `script: <wrapper>` to
//!   vzdump.conf;
//! - **uninstall** removes the `script:` line *first*, and only then the
//!   wrapper;
//! - every other line and comment of vzdump.conf stays byte for byte;
//! - a `script:` of another tool is refused without `--force` (and with it,
//!   that one line's value is replaced);
//! - uninstall refuses while a job in jobs.cfg names the wrapper in its own
//!   `script` key, since those backups would then fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A refusal that `--force` overrides (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The marker line that says a wrapper is ours.
const MARKER: &str = "# vzdump hook of Stagger, written by `sched-agent hook install`.";

/// A `key: value` line of vzdump.conf, as Proxmox reads it
/// (`^(\S+?):\s*(.*\S)\s*$`, `#` lines are comments).
pub fn conf_line(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with('#') || line.starts_with(char::is_whitespace) {
        return None;
    }
    let (key, value) = line.split_once(':')?;
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key, value.trim()))
}

/// What an edit of vzdump.conf does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfEdit {
    /// The file is already as wanted.
    Unchanged,
    /// The new text.
    Changed(String),
}

/// vzdump.conf with `script: <wrapper>` (appended, or replacing another
/// tool's value when `force`).
pub fn with_script(text: &str, wrapper: &str, force: bool) -> Result<ConfEdit> {
    let mut out = String::with_capacity(text.len() + wrapper.len() + 10);
    let mut found = false;
    for line in text.split_inclusive('\n') {
        match conf_line(line.trim_end_matches('\n')) {
            Some(("script", value)) if value == wrapper => {
                found = true;
                out.push_str(line);
            }
            Some(("script", value)) if !force => {
                return Err(Refused(format!(
                    "vzdump.conf already runs another hook script, `{value}`; Stagger's hook \
                     would replace it. Chain the two by hand, or run `sched-agent hook install \
                     --force` to replace it"
                ))
                .into())
            }
            Some(("script", _)) => {
                found = true;
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                out.push_str(&format!("script: {wrapper}{newline}"));
            }
            _ => out.push_str(line),
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("script: {wrapper}\n"));
    }
    Ok(if out == text {
        ConfEdit::Unchanged
    } else {
        ConfEdit::Changed(out)
    })
}

/// vzdump.conf without the `script:` lines that name `wrapper`.
pub fn without_script(text: &str, wrapper: &str) -> ConfEdit {
    let out: String = text
        .split_inclusive('\n')
        .filter(|line| conf_line(line.trim_end_matches('\n')) != Some(("script", wrapper)))
        .collect();
    if out == text {
        ConfEdit::Unchanged
    } else {
        ConfEdit::Changed(out)
    }
}

/// The wrapper script that runs `binary --config config hook "$@"`.
pub fn wrapper_text(binary: &Path, config: &Path) -> String {
    let binary = shell_quote(&binary.display().to_string());
    let config = shell_quote(&config.display().to_string());
    format!(
        "#!/bin/sh\n{MARKER}\n\
         # vzdump runs it with an empty environment (no PATH): absolute paths only.\n\
         # If the agent's binary is gone, let the backup go rather than fail it.\n\
         [ -x {binary} ] || exit 0\n\
         exec {binary} --config {config} hook \"$@\"\n"
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Where install and uninstall act.
#[derive(Debug, Clone)]
pub struct Target {
    /// vzdump.conf.
    pub vzdump_conf: PathBuf,
    /// The wrapper's path.
    pub wrapper: PathBuf,
    /// jobs.cfg, checked for jobs that name the wrapper themselves.
    pub jobs_cfg: PathBuf,
}

/// Installs the hook; returns what was done, for the admin.
pub fn install(target: &Target, binary: &Path, config: &Path, force: bool) -> Result<String> {
    let wrapper = wrapper_str(target)?;
    let (text, mode) = read_conf(&target.vzdump_conf)?;
    // Check before writing anything: a refusal leaves both files alone.
    let edit = with_script(&text, wrapper, force)
        .with_context(|| format!("in {}", target.vzdump_conf.display()))?;
    if let Some(dir) = target.wrapper.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    stagger_service::files::write_atomic(
        &target.wrapper,
        wrapper_text(binary, config).as_bytes(),
        0o755,
    )?;
    match edit {
        ConfEdit::Unchanged => Ok(format!(
            "The hook was already configured in {}; {} was rewritten.",
            target.vzdump_conf.display(),
            target.wrapper.display()
        )),
        ConfEdit::Changed(new) => {
            stagger_service::files::write_atomic(&target.vzdump_conf, new.as_bytes(), mode)?;
            Ok(format!(
                "Installed {} and set `script: {wrapper}` in {}.",
                target.wrapper.display(),
                target.vzdump_conf.display()
            ))
        }
    }
}

/// Uninstalls the hook; returns what was done.
pub fn uninstall(target: &Target, force: bool) -> Result<String> {
    let wrapper = wrapper_str(target)?;
    let users = jobs_naming(&target.jobs_cfg, wrapper);
    if !users.is_empty() && !force {
        return Err(Refused(format!(
            "jobs {} in {} name {wrapper} in their own `script` key; their backups would fail \
             without it. Remove those keys first, or run `sched-agent hook uninstall --force`",
            users.join(", "),
            target.jobs_cfg.display()
        ))
        .into());
    }
    let (text, mode) = read_conf(&target.vzdump_conf)?;
    let mut done = Vec::new();
    if let ConfEdit::Changed(new) = without_script(&text, wrapper) {
        stagger_service::files::write_atomic(&target.vzdump_conf, new.as_bytes(), mode)?;
        done.push(format!(
            "removed `script: {wrapper}` from {}",
            target.vzdump_conf.display()
        ));
    }
    match std::fs::read_to_string(&target.wrapper) {
        Ok(script) if script.contains(MARKER) => {
            std::fs::remove_file(&target.wrapper)
                .with_context(|| format!("cannot remove {}", target.wrapper.display()))?;
            done.push(format!("removed {}", target.wrapper.display()));
        }
        Ok(_) => done.push(format!(
            "left {} alone: it was not written by `sched-agent hook install`",
            target.wrapper.display()
        )),
        Err(_) => {}
    }
    Ok(if done.is_empty() {
        "The hook was not installed; nothing to do.".to_owned()
    } else {
        let mut text = done.join("; ");
        text[..1].make_ascii_uppercase();
        text + "."
    })
}

fn wrapper_str(target: &Target) -> Result<&str> {
    let wrapper = target
        .wrapper
        .to_str()
        .with_context(|| format!("{} is not UTF-8", target.wrapper.display()))?;
    if !target.wrapper.is_absolute() || wrapper.contains(char::is_whitespace) {
        bail!("the hook path {wrapper:?} must be absolute and without spaces (vzdump.conf holds it as one word)");
    }
    Ok(wrapper)
}

fn read_conf(path: &Path) -> Result<(String, u32)> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644);
            let text = String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!("{} is not UTF-8 text; not editing it", path.display())
            })?;
            Ok((text, mode))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), 0o644)),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The jobs whose own `script` key names `wrapper`.
fn jobs_naming(jobs_cfg: &Path, wrapper: &str) -> Vec<String> {
    let text = std::fs::read_to_string(jobs_cfg).unwrap_or_default();
    scheduler_core::jobs_cfg::JobsCfg::parse(&text)
        .vzdump_jobs()
        .into_iter()
        .filter(|job| {
            job.options
                .get("script")
                .and_then(|v| v.as_text())
                .is_some_and(|s| s.trim() == wrapper)
        })
        .map(|job| job.id)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const CONF: &str = "# /etc/vzdump.conf\n#script: /old/commented\n\nlockwait: 60\n  odd indented line\nstorage: pbs-main";

    #[test]
    fn install_appends_and_keeps_every_other_byte() {
        let ConfEdit::Changed(new) =
            with_script(CONF, "/usr/local/lib/stagger/vzdump-hook", false).unwrap()
        else {
            panic!("changed");
        };
        assert_eq!(
            new,
            format!("{CONF}\nscript: /usr/local/lib/stagger/vzdump-hook\n")
        );
        assert_eq!(
            with_script(&new, "/usr/local/lib/stagger/vzdump-hook", false).unwrap(),
            ConfEdit::Unchanged
        );
        let ConfEdit::Changed(back) = without_script(&new, "/usr/local/lib/stagger/vzdump-hook")
        else {
            panic!("changed");
        };
        assert_eq!(back, format!("{CONF}\n"));
    }

    #[test]
    fn another_tools_script_needs_force() {
        let conf = "lockwait: 60\nscript: /opt/other/hook\r\nstorage: local\n";
        let err = with_script(conf, "/x/hook", false).unwrap_err();
        assert!(err.to_string().contains("/opt/other/hook"), "{err}");
        let ConfEdit::Changed(new) = with_script(conf, "/x/hook", true).unwrap() else {
            panic!("changed");
        };
        assert_eq!(new, "lockwait: 60\nscript: /x/hook\nstorage: local\n");
        assert_eq!(
            without_script(conf, "/x/hook"),
            ConfEdit::Unchanged,
            "not ours: kept"
        );
    }

    #[test]
    fn the_wrapper_quotes_its_paths() {
        let text = wrapper_text(
            Path::new("/opt/it's/sched-agent"),
            Path::new("/etc/stagger/agent.toml"),
        );
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(
            text.contains(
                r"exec '/opt/it'\''s/sched-agent' --config '/etc/stagger/agent.toml' hook "
            ),
            "{text}"
        );
        assert!(text.ends_with("hook \"$@\"\n"));
    }

    #[test]
    fn conf_lines_read_like_proxmox() {
        assert_eq!(conf_line("script: /a/b "), Some(("script", "/a/b")));
        assert_eq!(conf_line("script:/a/b"), Some(("script", "/a/b")));
        assert_eq!(conf_line("# script: /a"), None);
        assert_eq!(conf_line(" script: /a"), None);
        assert_eq!(conf_line("no colon"), None);
    }
}
