#![allow(clippy::unwrap_used)]
//! The page in a real headless Chromium: pick images (and one text file), upload, per-file
//! progress to the end, the non-image failing alone, each `.glb` parsed by the page with the
//! expected counts, a download, a dropped stream resumed with a fresh token, a wrong API key;
//! screenshots under `target/screenshots/`.
//!
//! Needs Debian's `chromium` (`CHROMIUM_PATH` overrides `/usr/bin/chromium`) and Node.js. The
//! script (`tests/browser/`) loads its one npm dependency, playwright-core (driving the system's
//! chromium), from the examples' shared setup in `examples/browser/`, installed there with
//! `npm ci` when missing. Without chromium or Node the test is skipped visibly
//! (`sse_testkit::tools`), unless `CI` is set: then it fails.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sse_example_image_to_3d::mesh::{grid_size, DEFAULT_MAX_GRID};
use sse_example_image_to_3d::{serve_with, Config};
use sse_testkit::browser;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_in_headless_chromium() {
    let Some(browser) = browser::prepare("image-to-3d browser test").await else {
        return;
    };

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

    let (ok, out) = browser::run(
        browser
            .node(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/image_to_3d.mjs"))
            .arg(&base)
            .arg(&browser.screenshots)
            .arg(serde_json::Value::Object(expected).to_string())
            .args(&paths),
        Duration::from_secs(120),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    browser.assert_passed(ok, &out, &["image_to_3d.png", "image_to_3d_resumed.png"]);
}
