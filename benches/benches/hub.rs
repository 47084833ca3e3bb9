#![allow(clippy::unwrap_used, missing_docs, unsafe_code)]
//! Fan-out cost of the hub against `tokio::sync::broadcast` with per-subscriber axum encoding.
//!
//! One ~100-byte progress event is published and then read by every subscriber, for 1, 100 and
//! 10,000 subscribers. Throughput is counted in deliveries (subscribers), so criterion's
//! "elem/s" is deliveries per second and its time per iteration divided by the subscriber count
//! is the cost per delivered event.
//!
//! * **sse-core**: `Topic::publish` encodes once; each `Subscription` copies the shared frame
//!   into its response buffer (`poll_fill`, what `SseBody` does per wakeup).
//! * **baseline**: what an axum user typically writes: a `broadcast::Sender<Progress>`, and per
//!   subscriber `recv` + `axum::response::sse::Event::json_data` encoding of its own copy.
//!
//! After the timings, the bench prints the hub's heap bytes per idle subscription, measured with
//! a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::{Context, Poll};

use axum::response::sse::{Event as AxumEvent, KeepAlive};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sse_benches::Progress;
use sse_core::hub::TopicConfig;
use sse_core::{Event, Hub};

struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn fan_out(c: &mut Criterion) {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let p = Progress::typical();
    let mut g = c.benchmark_group("fan_out");
    for subs in [1usize, 100, 10_000] {
        g.throughput(Throughput::Elements(subs as u64));

        let hub = Hub::builder()
            .topic_config(TopicConfig::default().history_len(64))
            .build();
        let topic = hub.topic("job").unwrap();
        // Criterion runs on a plain thread: the blocking forms of the API.
        let mut subscriptions: Vec<_> = (0..subs)
            .map(|_| hub.blocking_subscribe("job").unwrap())
            .collect();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        g.bench_with_input(BenchmarkId::new("sse-core hub", subs), &subs, |b, _| {
            b.iter(|| {
                topic
                    .publish(Event::new().event("progress").json(&p))
                    .blocking_wait()
                    .unwrap();
                for s in &mut subscriptions {
                    let r = s.poll_fill(&mut cx, &mut buf, 64 * 1024);
                    debug_assert!(matches!(r, Poll::Ready(Some(1))));
                    black_box(&buf);
                    buf.clear();
                }
            })
        });
        drop(subscriptions);

        let (tx, _) = tokio::sync::broadcast::channel::<Progress>(64);
        let mut receivers: Vec<_> = (0..subs).map(|_| tx.subscribe()).collect();
        let mut id = 0u64;
        g.bench_with_input(
            BenchmarkId::new("broadcast + axum Event", subs),
            &subs,
            |b, _| {
                b.iter(|| {
                    id += 1;
                    tx.send(p.clone()).unwrap();
                    let id = id.to_string();
                    for r in &mut receivers {
                        let v = r.try_recv().unwrap();
                        let ev = AxumEvent::default()
                            .event("progress")
                            .id(&id)
                            .json_data(&v)
                            .unwrap();
                        // `KeepAlive::event` finalizes the event into its wire bytes: the same
                        // work axum's `Sse` body does per event and subscriber.
                        let _ = black_box(KeepAlive::new().event(ev));
                    }
                })
            },
        );
    }
    g.finish();
}

fn idle_memory(_: &mut Criterion) {
    const N: usize = 10_000;
    let hub = Hub::new();
    hub.topic("job").unwrap();
    // Warm the registry and the topic's slot vector once, so the measurement is per subscription.
    let warm: Vec<_> = (0..N)
        .map(|_| hub.blocking_subscribe("job").unwrap())
        .collect();
    drop(warm);
    let before = ALLOCATED.load(Ordering::Relaxed);
    let subs: Vec<_> = (0..N)
        .map(|_| hub.blocking_subscribe("job").unwrap())
        .collect();
    let after = ALLOCATED.load(Ordering::Relaxed);
    let vec_bytes = (N * std::mem::size_of::<sse_core::Subscription>()) as isize;
    let per_sub = (after - before) as f64 / N as f64;
    println!(
        "hub memory per idle subscription: {per_sub:.0} bytes ({} bytes of it is the Subscription \
         value itself, {:.0} bytes on the heap behind it)",
        std::mem::size_of::<sse_core::Subscription>(),
        (after - before - vec_bytes) as f64 / N as f64
    );
    drop(subs);

    let (tx, _) = tokio::sync::broadcast::channel::<Progress>(1024);
    let before = ALLOCATED.load(Ordering::Relaxed);
    let rx: Vec<_> = (0..N).map(|_| tx.subscribe()).collect();
    let after = ALLOCATED.load(Ordering::Relaxed);
    println!(
        "broadcast memory per idle receiver: {:.0} bytes",
        (after - before) as f64 / N as f64
    );
    drop(rx);
}

/// 100k idle response bodies with heartbeats on: the cost of arming their timers (one poll each,
/// as a server does when a stream goes idle), the heap they hold while idle, and one heartbeat
/// round when the interval elapses (on a paused clock, so the bench does not wait 15 s).
fn idle_heartbeats(_: &mut Criterion) {
    const N: usize = 100_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let hub = Hub::builder()
            .heartbeat(std::time::Duration::from_secs(15))
            .build();
        hub.topic("idle").unwrap();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let before = ALLOCATED.load(Ordering::Relaxed);
        let mut bodies = Vec::with_capacity(N);
        for _ in 0..N {
            bodies.push(sse_core::SseBody::new(hub.subscribe("idle").await.unwrap()));
        }
        // The first poll sends `: ok`; the second finds nothing and arms the heartbeat timer.
        for b in &mut bodies {
            let _ = b.poll_chunk(&mut cx);
        }
        let start = std::time::Instant::now();
        for b in &mut bodies {
            assert!(b.poll_chunk(&mut cx).is_pending());
        }
        let arm = start.elapsed();
        let after = ALLOCATED.load(Ordering::Relaxed);
        tokio::time::advance(std::time::Duration::from_secs(15)).await;
        let start = std::time::Instant::now();
        let mut beats = 0;
        for b in &mut bodies {
            if let Poll::Ready(Some(_)) = b.poll_chunk(&mut cx) {
                beats += 1;
            }
        }
        let round = start.elapsed();
        println!(
            "100k idle bodies: arming heartbeats {:.0} ns/body, idle heap {:.0} bytes/body \
             (subscription + body + timer), one heartbeat round {:.0} ns/body ({beats} sent)",
            arm.as_nanos() as f64 / N as f64,
            (after - before) as f64 / N as f64,
            round.as_nanos() as f64 / N as f64,
        );
    });
}

criterion_group!(benches, fan_out, idle_memory, idle_heartbeats);
criterion_main!(benches);
