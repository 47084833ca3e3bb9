//! `cargo run -p sse-example-axum-minimal`, then open <http://127.0.0.1:3010/>.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3010".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("axum-minimal on http://{}/", listener.local_addr()?);
    let hub = sse_core::Hub::new();
    // On Ctrl-C, open streams get a final frame and end, then the server stops.
    let shutdown = sse_axum::shutdown_signal(hub.clone(), async {
        let _ = tokio::signal::ctrl_c().await;
    });
    axum::serve(listener, sse_example_axum_minimal::router(hub))
        .with_graceful_shutdown(shutdown)
        .await
}
