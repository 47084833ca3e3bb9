//! The PDF OCR app (the PDF OCR and image-to-3D reports): `cargo run -p sse-example-pdf-ocr`.
//!
//! Listens on `127.0.0.1:$PORT` (default 3001; `HOST` changes the address). See
//! the `sse_example_pdf_ocr` crate for the endpoints and the settings read from the environment;
//! `BACKPLANE=redis://HOST:PORT` makes it a node of a cluster sharing that Redis.

use sse_example_pdf_ocr::{self as pdf_ocr, Config, PdfOcr, DEMO_TOKENS};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3001".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    // BACKPLANE=redis://HOST:PORT: a node of a cluster sharing that Redis.
    let app = PdfOcr::from_env(Config::from_env()).await?;
    let addr = listener.local_addr()?;
    println!("pdf-ocr: http://{addr}/  (engine: {})", app.engine().name());
    if std::env::var_os("PDF_OCR_TOKENS").is_none() {
        let tokens: Vec<&str> = DEMO_TOKENS.iter().map(|(t, _)| *t).collect();
        println!("pdf-ocr: demo bearer tokens: {}", tokens.join(", "));
    }
    pdf_ocr::serve_with_shutdown(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("pdf-ocr: shutting down");
    })
    .await
}
