#![allow(clippy::unwrap_used)]
//! The example over a real socket on 127.0.0.1: a job's stream to its end, a resume with
//! `Last-Event-ID`, the refusals, and the page in headless Chromium (the checks every minimal
//! example shares, in `sse_testkit::minimal`).

use sse_core::Hub;

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = sse_example_axum_minimal::router(Hub::new());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

sse_testkit::minimal_example_tests!(serve, "axum-minimal");
