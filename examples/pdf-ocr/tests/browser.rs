#![allow(clippy::unwrap_used)]
//! The PDF OCR page in a real headless Chromium: upload, progress bar to 100 %, completion text,
//! re-attaching after a dropped stream, a refused token; screenshots under
//! `target/screenshots/`.
//!
//! Needs Debian's `chromium` (`CHROMIUM_PATH` overrides `/usr/bin/chromium`) and Node.js; the
//! script's one npm dependency (playwright-core, driving the system's chromium) is installed
//! with `npm ci` from `examples/browser/package-lock.json` when missing. Without chromium or Node
//! the test is skipped visibly (`sse_testkit::tools`), unless `CI` is set: then it fails.

use std::path::Path;
use std::time::Duration;

use sse_example_pdf_ocr::{self as pdf_ocr, Config, PdfOcr};
use sse_examples_support::pdf::SamplePdf;
use sse_testkit::browser;

const PAGES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_page_in_headless_chromium() {
    let Some(browser) = browser::prepare("browser_pdf_ocr").await else {
        return;
    };

    // The app, slowed down a little per page so that the dropped stream is dropped mid-job.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = PdfOcr::new(Config {
        page_delay: Duration::from_millis(150),
        ..Config::default()
    });
    tokio::spawn(pdf_ocr::serve_with_shutdown(
        listener,
        app,
        std::future::pending(),
    ));

    let texts: Vec<String> = (1..=PAGES)
        .map(|n| format!("Browser test page {n}\nThe quick brown fox jumps over the lazy dog."))
        .collect();
    let pdf_path = std::env::temp_dir().join(format!("pdf-ocr-browser-{}.pdf", std::process::id()));
    std::fs::write(&pdf_path, SamplePdf::new().build(&texts).unwrap()).unwrap();

    let (ok, out) = browser::run(
        browser
            .node(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/pdf_ocr.mjs"))
            .arg(&base)
            .arg(&pdf_path)
            .arg(PAGES.to_string())
            .arg(&browser.screenshots),
        Duration::from_secs(120),
    )
    .await;
    let _ = std::fs::remove_file(&pdf_path);
    browser.assert_passed(ok, &out, &["pdf_ocr.png", "pdf_ocr_resumed.png"]);
}
