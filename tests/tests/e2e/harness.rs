//! What the end-to-end tests share: the built binaries, free ports, daemons
//! that are stopped when dropped, and commands whose output a failure shows.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/`, where cargo puts the workspace's binaries (this test
/// executable is `target/<profile>/deps/main-<hash>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lies in target/<profile>/deps/")
        .to_path_buf()
}

/// A binary of the workspace, built next to this test executable.
pub fn binary(name: &str, package: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p {package}` (scripts/test builds every binary first)",
        path.display()
    );
    path
}

/// A system tool at its Debian path.
pub fn tool(path: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{} is missing: `apt-get install {package}` (scripts/test installs it)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (bound, then released for the daemon to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// Runs a command to its end and keeps its output.
pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout and stderr of a finished command, for failure messages.
pub fn both(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// A started process with its output in a file; killed when dropped.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdout and stderr written to `dir/<name>.log`.
    pub fn start(name: &str, command: &mut Command, dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("daemon log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Daemon {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits until `ready` holds, at most `limit`; fails with the log when the
    /// process exits first or the time runs out.
    pub fn wait_until(&mut self, limit: Duration, mut ready: impl FnMut(&str) -> bool) {
        let started = Instant::now();
        loop {
            if ready(&self.log()) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().expect("poll the daemon") {
                    panic!(
                        "{} exited ({status}) before it was ready:\n{}",
                        self.name,
                        self.log()
                    );
                }
            }
            assert!(
                started.elapsed() < limit,
                "{} was not ready within {limit:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until something accepts connections on 127.0.0.1:`port`.
    pub fn wait_for_port(&mut self, port: u16) {
        self.wait_until(Duration::from_secs(20), |_| {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Kills the process now (a host that dies).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
