#![allow(clippy::unwrap_used)]
//! The page in a real headless Chromium: two tabs of one user, a batch submitted with the file
//! picker, per-file progress to the end in both tabs, the ranking, a corrupt PDF failing alone,
//! a refused file, and "Clear progress"; screenshots under `target/screenshots/`.
//!
//! Needs Debian's `chromium` (`CHROMIUM_PATH` overrides `/usr/bin/chromium`) and Node.js. The
//! script's one npm dependency, playwright-core (driving the system's chromium), comes from the
//! examples' shared setup in `examples/browser/` (installed there with `npm ci` when
//! missing). Without chromium or Node the test is skipped visibly (`sse_testkit::tools`), unless `CI` is
//! set: then it fails.

mod common;

use std::path::Path;
use std::time::Duration;

use sse_example_resume_screener::Config;
use sse_testkit::browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_in_headless_chromium() {
    let Some(browser) = browser::prepare("resume-screener browser test").await else {
        return;
    };

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
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/resume_screener.mjs");
    let (ok, out) = browser::run(
        browser
            .node(&script)
            .arg(&server.base)
            .arg(&dir)
            .arg(&browser.screenshots),
        Duration::from_secs(90),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    browser.assert_passed(
        ok,
        &out,
        &[
            "resume_screener.png",
            "resume_screener_progress.png",
            "resume_screener_cleared.png",
        ],
    );
}
