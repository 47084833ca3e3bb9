//! Character-creation and media jobs with SSE progress (the character-jobs and resume-screener reports), on actix-web.
//!
//! ```text
//! cargo run -p sse-example-characters            # http://127.0.0.1:8088
//! ADDR=127.0.0.1:9000 cargo run -p sse-example-characters
//! BACKPLANE=redis://127.0.0.1:6379 ADDR=127.0.0.1:9001 cargo run -p sse-example-characters
//! ```
//!
//! The page's sign-in is an insecure demo login (any name, no password), off unless
//! `CHARACTERS_INSECURE_DEMO_LOGIN=1` is set:
//!
//! ```text
//! CHARACTERS_INSECURE_DEMO_LOGIN=1 cargo run -p sse-example-characters
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
        ..Config::from_env()
    };
    println!("characters app on http://{}/", listener.local_addr()?);
    println!(
        "demo tokens: alice-token (alice), bob-token (bob); images in {}",
        config.files_dir.display()
    );
    if config.insecure_demo_login {
        println!(
            "{}=1: the demo login is ON, anyone can sign in as anyone",
            sse_example_characters::INSECURE_DEMO_LOGIN_ENV
        );
    } else {
        println!(
            "the demo login is off (set {}=1 to turn it on); use the preset tokens",
            sse_example_characters::INSECURE_DEMO_LOGIN_ENV
        );
    }
    serve_with_shutdown(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
