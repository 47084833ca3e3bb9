//! Encode and decode throughput of sse-core against axum's encoder and eventsource-stream's
//! decoder.
//!
//! Run with `cargo bench -p sse-benches --bench codec`.
#![allow(clippy::unwrap_used)]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use axum::response::sse::{Event as AxumEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures_util::stream::{self, Stream};
use sse_benches::{chunked, typical_stream, Progress};
use sse_core::{DecodeStream, Decoder, Event};

/// Size of the decoded stream.
const STREAM_LEN: usize = 10 << 20;
/// Chunk size of the decoded stream, as a socket read would deliver it.
const CHUNK: usize = 4 << 10;

/// Polls a stream that never returns `Pending` (all streams here are built on
/// `stream::iter`) to its end, without an executor.
fn drain<S: Stream + Unpin>(mut s: S, mut each: impl FnMut(S::Item)) {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match Pin::new(&mut s).poll_next(&mut cx) {
            Poll::Ready(Some(item)) => each(item),
            Poll::Ready(None) => return,
            Poll::Pending => panic!("stream::iter-based streams are always ready"),
        }
    }
}

fn axum_event(p: &Progress) -> AxumEvent {
    AxumEvent::default()
        .event("progress")
        .id("12345")
        .json_data(p)
        .unwrap()
}

/// An axum SSE response body whose stream builds a fresh event every time it is polled.
fn axum_body() -> axum::body::BodyDataStream {
    let p = Progress::typical();
    let events = stream::repeat_with(move || Ok::<_, Infallible>(axum_event(&p)));
    Sse::new(events)
        .into_response()
        .into_body()
        .into_data_stream()
}

/// Pulls the next frame out of an axum body stream.
fn next_frame(body: &mut axum::body::BodyDataStream) -> Bytes {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(body).poll_next(&mut cx) {
        Poll::Ready(Some(Ok(bytes))) => bytes,
        _ => panic!("the body stream is endless and always ready"),
    }
}

fn decode_all(bytes: &[u8]) -> Vec<sse_core::DecodedEvent> {
    let mut d = Decoder::new();
    d.feed(bytes);
    d.finish();
    std::iter::from_fn(|| d.next_event()).collect()
}

fn encode(c: &mut Criterion) {
    let p = Progress::typical();

    // Both encoders produce the same event (fields in another order, same length).
    let ours = Event::new()
        .event("progress")
        .id("12345")
        .json(&p)
        .encode()
        .unwrap();
    let theirs = next_frame(&mut axum_body());
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(decode_all(ours.as_bytes()), decode_all(&theirs));
    println!(
        "encode: a {}-byte event with {}-byte JSON data",
        ours.len(),
        serde_json::to_string(&p).unwrap().len()
    );

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sse-core", |b| {
        b.iter(|| {
            Event::new()
                .event("progress")
                .id("12345")
                .json(black_box(&p))
                .encode()
                .unwrap()
        })
    });
    // axum's `Event::finalize` (appending the blank line and freezing the buffer into `Bytes`)
    // is private. The smallest public path that runs it is `KeepAlive::event`, which finalizes
    // the event it is given and stores the bytes; the only extra work is building the
    // `KeepAlive` itself (a `Duration` and a static `Bytes`, no allocation). The bytes cannot be
    // read back through this path, so they are checked above through the real response body.
    g.bench_function("axum (KeepAlive::event)", |b| {
        b.iter(|| KeepAlive::new().event(axum_event(black_box(&p))))
    });
    // The path axum itself uses to put an event on the wire: an `Sse` response body polled for
    // its next frame. Adds axum's body plumbing (a boxed body, a stream poll) to the above.
    g.bench_function("axum (Sse body frame)", |b| {
        let mut body = axum_body();
        b.iter(|| next_frame(&mut body))
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let (bytes, want_events) = typical_stream(STREAM_LEN);
    let len = bytes.len();
    let chunks = chunked(bytes, CHUNK);
    println!(
        "decode: {} bytes in {} chunks of {CHUNK} bytes, {want_events} events",
        len,
        chunks.len()
    );

    let ours = |chunks: &[Bytes]| {
        let mut d = Decoder::new();
        let mut n = 0usize;
        for chunk in chunks {
            d.feed(chunk);
            while let Some(e) = d.next_event() {
                black_box(&e);
                n += 1;
            }
        }
        d.finish();
        n + std::iter::from_fn(|| d.next_event()).count()
    };
    let ours_stream = |chunks: &[Bytes]| {
        let mut n = 0usize;
        let s = stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
        drain(DecodeStream::new(s), |e| {
            black_box(e.unwrap());
            n += 1;
        });
        n
    };
    let theirs = |chunks: &[Bytes]| {
        let mut n = 0usize;
        let s = stream::iter(chunks.iter().cloned().map(Ok::<_, Infallible>));
        drain(s.eventsource(), |e| {
            black_box(e.unwrap());
            n += 1;
        });
        n
    };
    // All three decode the same number of events.
    assert_eq!(ours(&chunks), want_events);
    assert_eq!(ours_stream(&chunks), want_events);
    assert_eq!(theirs(&chunks), want_events);

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(20);
    g.bench_function("sse-core (Decoder::feed)", |b| b.iter(|| ours(&chunks)));
    g.bench_function("sse-core (DecodeStream)", |b| {
        b.iter(|| ours_stream(&chunks))
    });
    g.bench_function("eventsource-stream", |b| b.iter(|| theirs(&chunks)));
    g.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
