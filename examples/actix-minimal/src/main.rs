//! `cargo run -p sse-example-actix-minimal`, then open <http://127.0.0.1:3011/>.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3011".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    println!("actix-minimal on http://{}/", listener.local_addr()?);
    sse_example_actix_minimal::serve(listener, sse_core::Hub::new())?.await
}
