//! Every example app on one port: `cargo run -p sse-example-demo --release`.
//!
//! Listens on `127.0.0.1:$PORT` (default 3000; `HOST` changes the address). The index page at
//! `/` links the apps and lists which paths go where (see `sse_example_demo`).
//! `BACKPLANE=redis://HOST:PORT` is passed through: every app publishes and subscribes through
//! that Redis.

use sse_example_demo::{self as demo, DemoConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    println!("demo: http://{}/", listener.local_addr()?);
    println!("demo: PDF OCR at /pdf/ (token demo-token), characters at /characters/ (sign in, or chars-alice-token), video at /video/");
    println!("demo: resumes at /resumes/ (alice-token), image to 3D at /3d/ (API key demo-key)");
    demo::run(listener, DemoConfig::from_env(), async {
        let _ = tokio::signal::ctrl_c().await;
        println!("demo: shutting down");
    })
    .await
}
