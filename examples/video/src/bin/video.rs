//! Video transcoding with SSE progress (the video-transcoding report), on hyper. Needs ffmpeg and ffprobe on
//! `PATH` (`apt-get install ffmpeg`); without them every job fails with an `error` event that
//! says so.
//!
//! ```text
//! cargo run -p sse-example-video                 # http://127.0.0.1:8089
//! ADDR=127.0.0.1:9001 cargo run -p sse-example-video
//! BACKPLANE=redis://127.0.0.1:6379 ADDR=127.0.0.1:9002 cargo run -p sse-example-video
//! ```
//!
//! From a shell:
//!
//! ```text
//! curl -s -X POST 'http://127.0.0.1:8089/jobs?generate=1'
//! curl -N http://127.0.0.1:8089/jobs/JOB_ID/stream
//! curl -s -H 'Content-Type: video/mp4' --data-binary @clip.mp4 http://127.0.0.1:8089/jobs
//! ```

use sse_example_video::{serve_with_shutdown, Config};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8089".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    let config = Config::default();
    println!("video app on http://{}/", listener.local_addr()?);
    println!("files in {}", config.data_dir.display());
    serve_with_shutdown(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
