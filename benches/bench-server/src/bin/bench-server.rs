//! The fan-out bench and conformance server (`PROTOCOL.md` in this crate, parts 1 to 3).
//!
//! `PORT=8080 POLICY=conflate QUEUE=1024 HISTORY=1024 FRONTEND=raw cargo run -p sse-bench-server
//! --release --bin bench-server`; add `BACKPLANE=redis://HOST:PORT` to make it a node of a
//! cluster on that Redis. See [`sse_bench_server`].

fn main() -> std::process::ExitCode {
    sse_bench_server::main_from_env()
}
