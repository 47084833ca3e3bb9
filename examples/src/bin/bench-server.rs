//! The fan-out bench and conformance server (`/work/shared/bench-protocol.md`, parts 1 and 2).
//!
//! `PORT=8080 POLICY=conflate QUEUE=1024 HISTORY=1024 FRONTEND=raw cargo run -p sse-examples
//! --release --bin bench-server`. See [`sse_examples::bench_server`].

fn main() -> std::process::ExitCode {
    sse_examples::bench_server::main_from_env()
}
