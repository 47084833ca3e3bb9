#![allow(clippy::unwrap_used)]
//! The page in a real headless Chromium: pick images (and one text file), upload, per-file
//! progress to the end, the non-image failing alone, each `.glb` parsed by the page with the
//! expected counts, a download, a dropped stream resumed with a fresh token, a wrong API key;
//! screenshots under `target/screenshots/`.
//!
//! Needs Debian's `chromium` (`CHROMIUM_PATH` overrides `/usr/bin/chromium`) and Node.js. The
//! script lives with the other examples' browser scripts in `examples/tests/browser/`, whose one
//! npm dependency (playwright-core, driving the system's chromium) is installed with `npm ci`
//! when missing. Without chromium or Node the test is skipped with a loud message, unless `CI`
//! is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sse_example_image_to_3d::mesh::{grid_size, DEFAULT_MAX_GRID};
use sse_example_image_to_3d::{serve_with, Config};

mod common;

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
    eprintln!("!!! SKIPPED image-to-3d browser test: {what}");
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
    let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if !script_dir.join("node_modules/playwright-core").is_dir() {
        let (ok, out) = run(
            tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&script_dir),
            Duration::from_secs(300),
        )
        .await;
        if !ok {
            missing(&format!(
                "`npm ci` in {} failed:\n{out}",
                script_dir.display()
            ));
            return;
        }
    }

    // The app on a loopback port, slowed a little per stage so that the dropped stream drops
    // mid-task; the page's default API key is `demo-key`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        step_delay: Duration::from_millis(60),
        ..Config::default()
    };
    tokio::spawn(serve_with(listener, config, std::future::pending()));

    // The files: two PNGs, a JPEG and a text file that must fail alone.
    let dir = std::env::temp_dir().join(format!("image-to-3d-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut expected = serde_json::Map::new();
    let mut paths = Vec::new();
    for (name, bytes, size) in [
        ("ridge.png", common::png(96, 64), Some((96, 64))),
        ("notes.txt", b"not an image".to_vec(), None),
        ("wide.jpg", common::jpeg(320, 120), Some((320, 120))),
        ("tall.png", common::png(50, 200), Some((50, 200))),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
        let e = match size {
            Some((w, h)) => {
                let (gw, gh) = grid_size(w, h, DEFAULT_MAX_GRID);
                json!({ "status": "completed", "vertices": gw * gh, "triangles": 2 * (gw - 1) * (gh - 1) })
            }
            None => json!({ "status": "failed" }),
        };
        expected.insert(name.to_owned(), e);
    }
    let shots = screenshot_dir();

    let (ok, out) = run(
        tokio::process::Command::new("node")
            .arg(script_dir.join("image_to_3d.mjs"))
            .arg(&base)
            .arg(&shots)
            .arg(serde_json::Value::Object(expected).to_string())
            .args(&paths)
            .env("CHROMIUM_PATH", &chromium),
        Duration::from_secs(120),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{out}");
    assert!(ok, "the browser checks failed:\n{out}");
    for name in ["image_to_3d.png", "image_to_3d_resumed.png"] {
        let shot = shots.join(name);
        let len = std::fs::metadata(&shot).map_or(0, |m| m.len());
        assert!(len > 1000, "no screenshot at {}", shot.display());
    }
}
