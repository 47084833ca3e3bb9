//! `cargo run -p sse-example-hyper-minimal`, then open <http://127.0.0.1:3012/>.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3012".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("hyper-minimal on http://{}/", listener.local_addr()?);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    sse_example_hyper_minimal::serve(listener, sse_core::Hub::new(), ctrl_c).await;
    Ok(())
}
