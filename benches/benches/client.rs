//! Client decode throughput over a real loopback connection: sse-client against
//! reqwest-eventsource, both on reqwest, reading the same pre-encoded event stream from the same
//! server in the same run.
//!
//! The server (its own thread and runtime, so it runs on the other core) answers every request
//! with `200`, `Content-Type: text/event-stream` and the same ~8 MiB body of typical events
//! (see [`sse_benches::typical_stream`]), written in 64 KiB slices (`/bulk`: a backlog, or a
//! fast stream, where the client reads large chunks) or in 256-byte slices, about two events
//! per write (`/small`). Each iteration opens one connection and reads every event, touching
//! its type, id and data.
//!
//! After the criterion benches it measures both clients again on both paths, alternating, and
//! prints their events/s and the ratio.
//!
//! reqwest-eventsource's decoder (eventsource-stream) copies the rest of its buffer after every
//! line, so its cost grows with the square of the chunk size: the `/bulk` ratio mostly measures
//! that, the `/small` one the per-event cost.
//!
//! Run with `cargo bench -p sse-benches --bench client`. Without `--bench` in its arguments (as
//! under `cargo test --benches`) it reads one small stream with each client and checks the
//! counts.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures_util::StreamExt;
use reqwest_eventsource::{Event as EsEvent, EventSource as EsSource};
use sse_benches::typical_stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Size of the streamed body.
const BODY_LEN: usize = 8 << 20;
/// Size of the body in the quick check without `--bench`.
const QUICK_BODY_LEN: usize = 256 << 10;
/// The server writes the body of `/bulk` in slices of this size…
const BULK_WRITE: usize = 64 << 10;
/// …and that of `/small` in slices of this size.
const SMALL_WRITE: usize = 256;
/// Rounds of the alternating measurement behind the printed ratio.
const RATIO_ROUNDS: usize = 15;
/// The most connections the server accepts (its accept loop is bounded).
const MAX_CONNECTIONS: usize = 100_000;

/// Starts the server on its own thread; returns its address.
fn start_server(body: Bytes) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            for _ in 0..MAX_CONNECTIONS {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(socket, body.clone()));
            }
        });
    });
    addr
}

/// Reads the request head, then writes the response. A client that stops reading early ends
/// the write with an error, which is fine.
async fn serve(mut socket: TcpStream, body: Bytes) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let write = if head.starts_with(b"GET /small ") {
        SMALL_WRITE
    } else {
        BULK_WRITE
    };
    let response_head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    if socket.write_all(response_head.as_bytes()).await.is_err() {
        return;
    }
    for slice in body.chunks(write) {
        if socket.write_all(slice).await.is_err() {
            return;
        }
    }
}

/// Reads `events` events with sse-client; returns a checksum of what it touched.
async fn read_sse_client(client: &sse_client::Client, url: &str, events: usize) -> usize {
    let mut source = client.get(url).max_retries(0).open().unwrap();
    let mut sum = 0;
    for _ in 0..events {
        let event = source.next_event().await.unwrap().unwrap();
        sum += event.event_type().len() + event.id().len() + event.data().len();
    }
    sum
}

/// Reads `events` events with reqwest-eventsource; returns a checksum of what it touched.
async fn read_reqwest_eventsource(client: &reqwest::Client, url: &str, events: usize) -> usize {
    let mut source = EsSource::new(client.get(url)).unwrap();
    let mut sum = 0;
    let mut read = 0;
    while read < events {
        match source.next().await.unwrap().unwrap() {
            EsEvent::Open => {}
            EsEvent::Message(m) => {
                sum += m.event.len() + m.id.len() + m.data.len();
                read += 1;
            }
        }
    }
    source.close();
    sum
}

/// Measures both clients on `url`, alternating round by round; prints events/s and the ratio.
fn print_ratio(
    runtime: &tokio::runtime::Runtime,
    ours: &sse_client::Client,
    theirs: &reqwest::Client,
    url: &str,
    events: usize,
    what: &str,
) {
    let mut ours_secs = Vec::new();
    let mut theirs_secs = Vec::new();
    for _ in 0..RATIO_ROUNDS {
        let started = Instant::now();
        black_box(runtime.block_on(read_sse_client(ours, url, events)));
        ours_secs.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        black_box(runtime.block_on(read_reqwest_eventsource(theirs, url, events)));
        theirs_secs.push(started.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ours_rate = events as f64 / median(&mut ours_secs);
    let theirs_rate = events as f64 / median(&mut theirs_secs);
    println!("client decode over loopback, {what} (median of {RATIO_ROUNDS} alternating rounds):");
    println!("  sse-client           {:>7.3} M events/s", ours_rate / 1e6);
    println!(
        "  reqwest-eventsource  {:>7.3} M events/s",
        theirs_rate / 1e6
    );
    println!("  ratio                {:>7.2}x", ours_rate / theirs_rate);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (body, events) = typical_stream(if full { BODY_LEN } else { QUICK_BODY_LEN });
    let body_len = body.len();
    let addr = start_server(Bytes::from(body));
    let bulk = format!("http://{addr}/bulk");
    let small = format!("http://{addr}/small");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ours = sse_client::Client::builder()
        .proxy_from_env(false)
        .build()
        .unwrap();
    let theirs = reqwest::Client::builder().no_proxy().build().unwrap();

    // Both clients see the same events.
    for url in [&bulk, &small] {
        let a = runtime.block_on(read_sse_client(&ours, url, events));
        let b = runtime.block_on(read_reqwest_eventsource(&theirs, url, events));
        assert_eq!(a, b, "both clients read the same events from {url}");
    }
    if !full {
        println!("client: {events} events read by both clients (quick check; run with --bench)");
        return;
    }

    let mut criterion = Criterion::default().configure_from_args();
    for (name, url) in [("bulk_64KiB_writes", &bulk), ("small_256B_writes", &small)] {
        let mut group = criterion.benchmark_group(format!("client_decode_loopback/{name}"));
        group.throughput(Throughput::Elements(events as u64));
        group.sample_size(10);
        group.bench_function("sse_client", |bench| {
            bench
                .to_async(&runtime)
                .iter(|| async { black_box(read_sse_client(&ours, url, events).await) });
        });
        group.bench_function("reqwest_eventsource", |bench| {
            bench
                .to_async(&runtime)
                .iter(|| async { black_box(read_reqwest_eventsource(&theirs, url, events).await) });
        });
        group.finish();
    }
    criterion.final_summary();

    let mib = body_len as f64 / f64::from(1 << 20);
    let what = format!("{events} events, {mib:.1} MiB per connection");
    print_ratio(
        &runtime,
        &ours,
        &theirs,
        &bulk,
        events,
        &format!("64 KiB writes, {what}"),
    );
    print_ratio(
        &runtime,
        &ours,
        &theirs,
        &small,
        events,
        &format!("256 B writes, {what}"),
    );
}
