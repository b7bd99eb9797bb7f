//! What every module needs: run the binary, read its output, find fixtures.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built `schedctl` with `args` and waits for it.
pub fn schedctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedctl"))
        .args(args)
        .output()
        .expect("schedctl runs")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A path under scheduler-core's test fixtures (shared with the library's tests).
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scheduler-core/tests/fixtures")
        .join(path)
}
