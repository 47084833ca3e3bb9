//! Image-to-3D tasks with per-file SSE progress (the image-to-3D report), on hyper.
//!
//! ```text
//! cargo run -p sse-example-image-to-3d --bin image-to-3d      # http://127.0.0.1:8094
//! ADDR=127.0.0.1:9004 cargo run -p sse-example-image-to-3d --bin image-to-3d
//! BACKPLANE=redis://127.0.0.1:6379 cargo run -p sse-example-image-to-3d --bin image-to-3d
//! ```
//!
//! The page's API key is `demo-key`. From a shell:
//!
//! ```text
//! curl -s -H 'Authorization: Bearer demo-key' -F files=@a.png -F files=@b.jpg \
//!      http://127.0.0.1:8094/api/v1/upload/batch                      # → {"task_id": …}
//! curl -N -H 'Authorization: Bearer demo-key' \
//!      http://127.0.0.1:8094/api/v1/status/tasks/TASK_ID/stream
//! curl -s -H 'Authorization: Bearer demo-key' -o model.glb \
//!      http://127.0.0.1:8094/api/v1/download/TASK_ID/f1.glb
//! ```

use sse_example_image_to_3d::{serve_with, Config};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8094".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "image-to-3d app on http://{}/ (API key: demo-key)",
        listener.local_addr()?
    );
    serve_with(listener, Config::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
