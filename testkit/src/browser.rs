//! The headless-Chromium runner: the examples' browser scripts (`.mjs`, driving the system's
//! chromium with playwright-core) run under Node.js. Missing tools follow [`crate::tools`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::tools::{self, Tool};

pub use crate::tools::{in_ci, on_path};

/// Skips `test` for `what` by the test kit's one rule ([`tools::skip`]): visibly on a
/// developer machine, as a failure in CI.
pub fn missing(test: &str, what: &str) {
    tools::skip(test, what);
}

/// Chromium, as [`Tool::Chromium`] finds it (`CHROMIUM_PATH`, `/usr/bin/chromium`, the `PATH`).
pub fn chromium() -> Option<PathBuf> {
    Tool::Chromium.find()
}

/// The examples' shared browser setup, `examples/browser/` (its `package-lock.json` pins
/// playwright-core); each app keeps its own scripts in its `tests/browser/`.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/browser")
}

/// `<target>/screenshots`, from the test binary's path (`<target>/<profile>/deps/<bin>`).
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("screenshots")
}

/// Runs `cmd` (stdin closed, killed when dropped) for at most `limit`: whether it succeeded, and
/// its stdout then stderr (or why it did not run to the end).
pub async fn run(cmd: &mut tokio::process::Command, limit: Duration) -> (bool, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start: {e}")),
    };
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Ok(Err(e)) => (false, format!("failed: {e}")),
        Err(_) => (false, format!("timed out after {limit:?}")),
    }
}

/// What a browser test needs, found by [`prepare`].
#[derive(Debug, Clone)]
pub struct Browser {
    /// The chromium executable.
    pub chromium: PathBuf,
    /// The shared setup ([`scripts_dir`]), with playwright-core in its `node_modules`.
    pub playwright_dir: PathBuf,
    /// Where the scripts write their screenshots ([`screenshot_dir`]).
    pub screenshots: PathBuf,
}

/// Finds chromium and node and installs playwright-core with `npm ci` in [`scripts_dir`] when it
/// is missing; `None` (after [`missing`], which fails in CI) when any of it is not there.
pub async fn prepare(test: &str) -> Option<Browser> {
    if !tools::require(test, &[Tool::Chromium, Tool::Node]) {
        return None;
    }
    let chromium = chromium()?;
    let playwright_dir = scripts_dir();
    if !playwright_dir.join("node_modules/playwright-core").is_dir() {
        if !playwright_dir.join("package-lock.json").is_file() {
            missing(
                test,
                &format!(
                    "the shared playwright setup is missing ({})",
                    playwright_dir.display()
                ),
            );
            return None;
        }
        if !tools::require(test, &[Tool::Npm]) {
            return None;
        }
        let (ok, out) = run(
            tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&playwright_dir),
            Duration::from_secs(300),
        )
        .await;
        if !ok {
            missing(
                test,
                &format!("`npm ci` in {} failed:\n{out}", playwright_dir.display()),
            );
            return None;
        }
    }
    Some(Browser {
        chromium,
        playwright_dir,
        screenshots: screenshot_dir(),
    })
}

impl Browser {
    /// `node <script>` with `CHROMIUM_PATH` and `PLAYWRIGHT_DIR` set; add the script's arguments
    /// and pass it to [`run`].
    pub fn node(&self, script: impl AsRef<Path>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(script.as_ref())
            .env("CHROMIUM_PATH", &self.chromium)
            .env("PLAYWRIGHT_DIR", &self.playwright_dir);
        cmd
    }

    /// Prints the script's output (from [`run`]) and asserts that it succeeded and that each
    /// of `screenshots` was written (more than 1000 bytes) to [`Browser::screenshots`].
    pub fn assert_passed(&self, ok: bool, out: &str, screenshots: &[&str]) {
        println!("{out}");
        assert!(ok, "the browser checks failed:\n{out}");
        for name in screenshots {
            let shot = self.screenshots.join(name);
            let len = std::fs::metadata(&shot).map_or(0, |m| m.len());
            assert!(len > 1000, "no screenshot at {}", shot.display());
        }
    }
}
