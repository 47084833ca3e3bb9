//! One rule for tests that need a system tool (ffmpeg, tesseract, pdftoppm, chromium, node,
//! redis-server):
//!
//! - **In CI** ([`in_ci`]: `CI` is set to anything but empty, `false` or `0`) a missing tool
//!   fails the test, with the Debian command that installs it.
//! - **Elsewhere** the test is skipped, visibly: a `SKIPPED <test>: <why>` banner written
//!   straight to stderr, which the test harness does not capture, so it shows in `cargo test`'s
//!   output (the test itself then passes: name it so the reader knows what it covers).
//!
//! ```no_run
//! use sse_testkit::tools::{require, Tool};
//! # fn the_test() {
//! if !require("my_test_name", &[Tool::Ffmpeg, Tool::Ffprobe]) {
//!     return; // skipped (never in CI)
//! }
//! # }
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Whether the tests run in CI: `CI` set to anything but empty, `false` or `0`. The one place
/// that decides it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A system tool some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `ffmpeg` (video transcoding).
    Ffmpeg,
    /// `ffprobe` (video probing; Debian ships it with ffmpeg).
    Ffprobe,
    /// `tesseract` (OCR).
    Tesseract,
    /// `pdftoppm` (PDF rendering, from poppler).
    Pdftoppm,
    /// Chromium (page tests); `CHROMIUM_PATH` overrides where it is looked for.
    Chromium,
    /// Node.js (runs the page tests' scripts).
    Node,
    /// `npm` (installs the page tests' playwright-core).
    Npm,
    /// `redis-server` (the backplane's tests start their own).
    RedisServer,
}

impl Tool {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
            Tool::Tesseract => "tesseract",
            Tool::Pdftoppm => "pdftoppm",
            Tool::Chromium => "chromium",
            Tool::Node => "node",
            Tool::Npm => "npm",
            Tool::RedisServer => "redis-server",
        }
    }

    /// The Debian package that installs it.
    pub fn debian_package(self) -> &'static str {
        match self {
            Tool::Ffmpeg | Tool::Ffprobe => "ffmpeg",
            Tool::Tesseract => "tesseract-ocr",
            Tool::Pdftoppm => "poppler-utils",
            Tool::Chromium => "chromium",
            Tool::Node => "nodejs",
            Tool::Npm => "npm",
            Tool::RedisServer => "redis-server",
        }
    }

    /// Where it is: for Chromium `CHROMIUM_PATH` if set, else Debian's `/usr/bin/chromium`,
    /// else `chromium` or `chromium-browser` on the `PATH`; for the others, the `PATH`.
    pub fn find(self) -> Option<PathBuf> {
        if self == Tool::Chromium {
            if let Some(p) = std::env::var_os("CHROMIUM_PATH") {
                let p = PathBuf::from(p);
                return p.is_file().then_some(p);
            }
            let debian = PathBuf::from("/usr/bin/chromium");
            if debian.is_file() {
                return Some(debian);
            }
            return on_path("chromium").or_else(|| on_path("chromium-browser"));
        }
        on_path(self.program())
    }

    /// Whether it is installed and runs (`<tool> --version` succeeds; `-version` for ffmpeg
    /// and ffprobe, `-v` for pdftoppm).
    pub fn works(self) -> bool {
        let Some(path) = self.find() else {
            return false;
        };
        let flag = match self {
            Tool::Ffmpeg | Tool::Ffprobe => "-version",
            Tool::Pdftoppm => "-v",
            _ => "--version",
        };
        Command::new(path)
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The first file called `name` in a directory on the `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The `apt-get install` command for `tools`' packages (each once).
pub fn install_command(tools: &[Tool]) -> String {
    let mut packages: Vec<&str> = Vec::new();
    for t in tools {
        if !packages.contains(&t.debian_package()) {
            packages.push(t.debian_package());
        }
    }
    format!("apt-get install {}", packages.join(" "))
}

/// Whether every one of `tools` works here. When one does not: in CI, panics (failing
/// `test`) with the install command; elsewhere calls [`skip`] and returns false.
pub fn require(test: &str, tools: &[Tool]) -> bool {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.works()).collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|t| t.program()).collect();
    skip(
        test,
        &format!(
            "{} not installed (Debian: {})",
            names.join(", "),
            install_command(&missing)
        ),
    );
    false
}

/// For a test that checks the app's fallback when `tools` are missing (rather than skipping):
/// whether they all work here. When one does not: in CI, panics with the install command (CI
/// must test the real thing); elsewhere writes a visible `FALLBACK` banner naming what `test`
/// checks instead, and returns false.
pub fn available_or_fallback(test: &str, tools: &[Tool], fallback: &str) -> bool {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.works()).collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|t| t.program()).collect();
    let install = install_command(&missing);
    assert!(
        !in_ci(),
        "{test}: {} not installed, and CI is set: CI must install it (Debian: {install})",
        names.join(", ")
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! FALLBACK {test}: {} not installed (Debian: {install}); checking {fallback} instead\n",
        names.join(", ")
    );
    false
}

/// Skips `test` for `why`: in CI, panics instead (a skipped test in CI is a failure);
/// elsewhere writes a `SKIPPED` banner straight to the process's stderr, which the test
/// harness does not capture, so it shows in `cargo test`'s output next to the test's `ok`.
pub fn skip(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test} cannot run: {why}. CI is set, so it fails instead of skipping; CI must install it."
    );
    let bar = "!".repeat(80);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\n!!! SKIPPED {test}: {why}\n!!! (it fails instead of skipping when CI=true)\n{bar}\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_command_names_each_debian_package_once() {
        assert_eq!(
            install_command(&[Tool::Ffmpeg, Tool::Ffprobe, Tool::Tesseract, Tool::Pdftoppm]),
            "apt-get install ffmpeg tesseract-ocr poppler-utils"
        );
        assert_eq!(
            install_command(&[Tool::RedisServer]),
            "apt-get install redis-server"
        );
    }

    #[test]
    fn a_program_that_is_on_no_path_is_not_found() {
        assert_eq!(on_path("surely-not-a-program-sse-testkit"), None);
        assert!(on_path("sh").is_some(), "sh is on every PATH this runs on");
    }

    #[test]
    fn every_installed_tool_passes_its_version_check() {
        // A tool that is installed must pass its version check (a wrong flag would make every
        // test that needs it skip, or fail in CI, for no reason).
        let all = [
            Tool::Ffmpeg,
            Tool::Ffprobe,
            Tool::Tesseract,
            Tool::Pdftoppm,
            Tool::Chromium,
            Tool::Node,
            Tool::Npm,
            Tool::RedisServer,
        ];
        for tool in all {
            if tool.find().is_some() {
                assert!(
                    tool.works(),
                    "{} is installed but does not run",
                    tool.program()
                );
            }
        }
    }

    #[test]
    fn requiring_nothing_always_passes() {
        assert!(require("requiring_nothing_always_passes", &[]));
    }
}
