//! The demo's processes and directory: every daemon it starts is kept here
//! and stopped when the demo ends, also on Ctrl-C or SIGTERM, and then the
//! directory is removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// Set once a signal asked the demo to stop: the main flow stops at its next
/// step, and its errors are then the signal's doing and are not reported.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set once the directory is removed.
static CLEANED: AtomicBool = AtomicBool::new(false);

/// How long the signal watcher leaves the main flow to stop and clean up.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// An error when a signal asked the demo to stop.
pub fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// The daemons and the directory of one demo run.
pub struct Demo {
    dir: Mutex<Option<tempfile::TempDir>>,
    path: PathBuf,
    children: Mutex<Vec<(String, Child)>>,
}

impl Demo {
    /// A new empty directory under the system's temporary directory.
    pub fn new() -> Result<Arc<Demo>> {
        let dir = tempfile::Builder::new()
            .prefix("stagger-demo-")
            .tempdir()
            .context("cannot create the demo's temporary directory")?;
        let path = dir.path().to_path_buf();
        Ok(Arc::new(Demo {
            dir: Mutex::new(Some(dir)),
            path,
            children: Mutex::new(Vec::new()),
        }))
    }

    /// The directory everything lives in.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Where the output of daemon `name` goes.
    pub fn log(&self, name: &str) -> PathBuf {
        self.path.join("logs").join(format!("{name}.log"))
    }

    /// Starts a daemon, its stdout and stderr in its log file.
    pub fn spawn(&self, name: &str, command: &mut Command) -> Result<()> {
        let log = self.log(name);
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_owned(), child));
        Ok(())
    }

    /// Waits until daemon `name`'s log has a line starting with `prefix`;
    /// returns the rest of that line.
    pub fn wait_for_line(&self, name: &str, prefix: &str, limit: Duration) -> Result<String> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            if let Some(rest) = text.lines().find_map(|l| l.strip_prefix(prefix)) {
                return Ok(rest.trim().to_owned());
            }
            self.check_alive(name, &text)?;
            interrupted()?;
            if started.elapsed() > limit {
                bail!("{name} did not say `{prefix}` within {limit:?}; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `ready` holds, failing when daemon `name` exits first.
    pub fn wait_until(
        &self,
        name: &str,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let started = Instant::now();
        while !ready() {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            self.check_alive(name, &text)?;
            interrupted()?;
            if started.elapsed() > limit {
                bail!("{name} was not ready within {limit:?}; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn check_alive(&self, name: &str, log: &str) -> Result<()> {
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, child)) = children.iter_mut().find(|(n, _)| n == name) {
            if let Some(status) = child.try_wait()? {
                bail!("{name} stopped ({status}); its log:\n{log}");
            }
        }
        Ok(())
    }

    /// Stops every daemon.
    fn stop_daemons(&self) {
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, child) in children.iter_mut() {
            let _ = child.kill();
        }
        for (_, child) in children.iter_mut() {
            let _ = child.wait();
        }
        children.clear();
    }

    /// Stops every daemon and removes the directory.
    pub fn clean_up(&self) {
        self.stop_daemons();
        if let Some(dir) = self
            .dir
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let path = dir.path().to_path_buf();
            if let Err(error) = dir.close() {
                eprintln!(
                    "schedctl demo: could not remove {}: {error}",
                    path.display()
                );
            }
        }
        CLEANED.store(true, Ordering::SeqCst);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// On Ctrl-C or SIGTERM: stop the daemons at once; the main flow then stops
/// at its next step, removes the directory and exits 130 (or, should it not
/// within [`STOP_LIMIT`], this watcher does).
pub fn clean_up_on_signal(demo: &Arc<Demo>) -> Result<()> {
    let demo = Arc::clone(demo);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the signal watcher")?;
    // Registered here, before any daemon starts, so that no signal is missed.
    let mut term = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    })?;
    let mut interrupt = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    })?;
    std::thread::Builder::new()
        .name("demo-signals".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            });
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!(
                "\nschedctl demo: stopped; stopping the daemons and removing {}",
                demo.dir().display()
            );
            demo.stop_daemons();
            let started = Instant::now();
            while !CLEANED.load(Ordering::SeqCst) && started.elapsed() < STOP_LIMIT {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !CLEANED.load(Ordering::SeqCst) {
                demo.clean_up();
            }
            std::process::exit(130);
        })
        .context("cannot start the signal watcher")?;
    Ok(())
}
