//! Character-creation and media jobs with SSE progress (seeds 001 and 002), on actix-web.
//!
//! ```text
//! cargo run -p sse-example-characters            # http://127.0.0.1:8088
//! ADDR=127.0.0.1:9000 cargo run -p sse-example-characters
//! BACKPLANE=redis://127.0.0.1:6379 ADDR=127.0.0.1:9001 cargo run -p sse-example-characters
//! ```
//!
//! Open the page, sign in, create jobs. From a shell, with the preset demo token:
//!
//! ```text
//! curl -s -H 'Authorization: Bearer alice-token' -H 'Content-Type: application/json' \
//!      -d '{"name":"Aria"}' http://127.0.0.1:8088/api/v1/characters/jobs
//! curl -N -H 'Authorization: Bearer alice-token' http://127.0.0.1:8088/api/v1/sse/jobs/my
//! ```

use sse_example_characters::{serve_with_shutdown, Config};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8088".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    let config = Config {
        tokens: vec![
            ("alice-token".into(), "alice".into()),
            ("bob-token".into(), "bob".into()),
        ],
        ..Config::default()
    };
    println!("characters app on http://{}/", listener.local_addr()?);
    println!(
        "demo tokens: alice-token (alice), bob-token (bob); images in {}",
        config.files_dir.display()
    );
    serve_with_shutdown(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
