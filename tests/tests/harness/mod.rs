//! What the tests share: where the repository, the built binaries and the
//! system tools are, and running a command with its output kept for the
//! failure message.

pub mod browser;
pub mod daemons;
pub mod process;
pub mod prometheus;
pub mod promql;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace this test package belongs to).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies inside the workspace root")
        .to_path_buf()
}

/// A file or folder of the repository, which must exist.
pub fn repo_file(relative: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(
        path.exists(),
        "{} is missing from the repository",
        path.display()
    );
    path
}

/// `target/<profile>/`, where cargo puts the workspace's binaries: this test
/// executable is `target/<profile>/deps/main-<hash>`.
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

/// Runs a command to its end and keeps its output.
pub fn run(command: &mut Command) -> Output {
    command
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
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
