#![allow(clippy::unwrap_used)]
//! The example over a real socket on 127.0.0.1: a job's stream to its end, a resume with
//! `Last-Event-ID`, the refusals, and the page in headless Chromium (the checks every minimal
//! example shares, in `sse_testkit::minimal`).

use sse_core::Hub;

async fn serve() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = sse_example_actix_minimal::serve(listener, Hub::new()).unwrap();
    tokio::spawn(server);
    base
}

sse_testkit::minimal_example_tests!(serve, "actix-minimal");
