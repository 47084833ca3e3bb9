#![allow(clippy::unwrap_used)]
//! The page in a real headless Chromium: two tabs of one user, a batch submitted with the file
//! picker, per-file progress to the end in both tabs, the ranking, a corrupt PDF failing alone,
//! a refused file, and "Clear progress"; screenshots under `target/screenshots/`.
//!
//! Needs Debian's `chromium` (`CHROMIUM_PATH` overrides `/usr/bin/chromium`) and Node.js. The
//! script's one npm dependency, playwright-core (driving the system's chromium), comes from the
//! examples' shared setup in `examples/tests/browser/` (installed there with `npm ci` when
//! missing). Without chromium or Node the test is skipped with a loud message, unless `CI` is
//! set: then it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sse_example_resume_screener::Config;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips (loudly) on a developer machine; fails in CI.
fn missing(what: &str) {
    assert!(
        !in_ci(),
        "browser test cannot run in CI: {what}. CI must install it (apt-get install chromium nodejs npm)."
    );
    eprintln!();
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! SKIPPED resume-screener browser test: {what}");
    eprintln!("!!! (the test fails instead of skipping when CI=true)");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!();
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM_PATH") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return Some(debian);
    }
    on_path("chromium").or_else(|| on_path("chromium-browser"))
}

/// `<target>/screenshots`, from this test binary's path (`<target>/<profile>/deps/<bin>`).
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("screenshots")
}

async fn run(cmd: &mut tokio::process::Command, limit: Duration) -> (bool, String) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        missing("chromium is not installed (Debian: apt-get install chromium)");
        return;
    };
    if on_path("node").is_none() {
        missing("node is not installed");
        return;
    }
    let playwright_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if !playwright_dir.join("node_modules/playwright-core").is_dir() {
        if !playwright_dir.join("package-lock.json").is_file() {
            missing(&format!(
                "the shared playwright setup is missing ({})",
                playwright_dir.display()
            ));
            return;
        }
        let (ok, out) = run(
            tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&playwright_dir),
            Duration::from_secs(300),
        )
        .await;
        if !ok {
            missing(&format!(
                "`npm ci` in {} failed:\n{out}",
                playwright_dir.display()
            ));
            return;
        }
    }

    // Slowed down a little per file, so that the progress can be watched mid-batch.
    let server = common::start(Config {
        workers: 2,
        file_delay: Duration::from_millis(300),
        ..Config::default()
    })
    .await;

    let dir = std::env::temp_dir().join(format!("resume-screener-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut corrupt = b"%PDF-1.7\n".to_vec();
    corrupt.extend((0u8..=255).cycle().take(1500));
    let files: [(&str, Vec<u8>); 5] = [
        (
            "strong.pdf",
            common::make_pdf(&[
                "Jane Doe - Senior Rust engineer\nTokio and axum services, Server-Sent Events\nPostgreSQL, Kubernetes",
            ]),
        ),
        (
            "medium.txt",
            b"John Roe - Backend engineer. Go and some Rust; PostgreSQL.".to_vec(),
        ),
        (
            "unrelated.pdf",
            common::make_pdf(&["Pat Baker - Pastry chef\nSourdough and croissants"]),
        ),
        ("corrupt.pdf", corrupt),
        ("photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/resume_screener.mjs");
    let (ok, out) = run(
        tokio::process::Command::new("node")
            .arg(&script)
            .arg(&server.base)
            .arg(&dir)
            .arg(&shots)
            .env("CHROMIUM_PATH", &chromium)
            .env("PLAYWRIGHT_DIR", &playwright_dir),
        Duration::from_secs(90),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{out}");
    assert!(ok, "the browser checks failed:\n{out}");
    for name in [
        "resume_screener.png",
        "resume_screener_progress.png",
        "resume_screener_cleared.png",
    ] {
        let shot = shots.join(name);
        let len = std::fs::metadata(&shot).map_or(0, |m| m.len());
        assert!(len > 1000, "no screenshot at {}", shot.display());
    }
}
