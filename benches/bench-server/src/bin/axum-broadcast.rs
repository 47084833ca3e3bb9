//! The baseline for the fan-out bench: axum 0.8's `Sse` over `tokio::sync::broadcast`
//! (part 1 of the bench protocol), on a current-thread runtime.
//!
//! `PORT=8081 cargo run -p sse-bench-server --release --bin axum-broadcast`. See
//! [`sse_bench_server::axum_broadcast`].

fn main() -> std::process::ExitCode {
    sse_bench_server::main_with("axum-broadcast", sse_bench_server::axum_broadcast::serve)
}
