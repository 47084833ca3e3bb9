//! The resume screener (the resume-screener report): `cargo run -p sse-example-resume-screener`.
//!
//! Listens on `127.0.0.1:$PORT` (default 3004; `HOST` changes the address). Demo tokens:
//! `alice-token`, `bob-token`. `RESUME_SCREENER_WORKERS` sets the worker pool's size and
//! `RESUME_SCREENER_FILE_DELAY_MS` an extra pause per file (to watch the progress in a demo).
//! `BACKPLANE=redis://HOST:PORT` makes it a node of a cluster sharing that Redis.

use sse_example_resume_screener::{serve_with_shutdown, Config, ResumeScreener, DEMO_TOKENS};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3004".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    // BACKPLANE=redis://HOST:PORT: a node of a cluster sharing that Redis.
    let app = ResumeScreener::from_env(Config::from_env()).await?;
    let addr = listener.local_addr()?;
    println!("resume-screener: http://{addr}/");
    let tokens: Vec<&str> = DEMO_TOKENS.iter().map(|(t, _)| *t).collect();
    println!("resume-screener: demo bearer tokens: {}", tokens.join(", "));
    serve_with_shutdown(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("resume-screener: shutting down");
    })
    .await
}
