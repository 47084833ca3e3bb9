//! Publish throughput through Redis and cross-node fan-out against one node in memory.
//!
//! Starts its own `redis-server` (Debian's package) on a free port in a temporary directory:
//!
//! ```text
//! cargo run --release -p sse-redis --example bench [EVENTS] [SUBSCRIBERS]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sse_core::hub::TopicConfig;
use sse_core::{Event, Hub};
use sse_redis::{RedisBackplane, RedisConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let subscribers: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let dir = std::env::temp_dir().join(format!("sse-redis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("redis://127.0.0.1:{port}/");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&url, events, subscribers));
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn topic_config() -> TopicConfig {
    TopicConfig::default().queue(1 << 20).history_len(1 << 20)
}

async fn node(url: &str) -> (Hub, Arc<RedisBackplane>) {
    let cfg = RedisConfig::default().max_len(Some(1 << 20));
    let bp = RedisBackplane::connect(url, cfg).await.unwrap();
    let hub = bp
        .hub_builder()
        .lazy_topics(true)
        .topic_config(topic_config())
        .build();
    (hub, bp)
}

fn payload(epoch: Instant) -> Event<'static> {
    let ts = epoch.elapsed().as_nanos();
    Event::new().data(format!("{{\"ts\":{ts},\"pad\":\"{}\"}}", "x".repeat(64)))
}

async fn run(url: &str, events: usize, subscribers: usize) {
    println!("events {events}, subscribers {subscribers}");

    // 1. Publishing through Redis from one node, pipelined.
    let (a, _bp_a) = node(url).await;
    let t = a.topic("throughput").unwrap();
    let epoch = Instant::now();
    let n = events * 10;
    let start = Instant::now();
    for chunk in 0..n / 10_000 {
        let acks: Vec<_> = (0..10_000).map(|_| t.publish(payload(epoch))).collect();
        for ack in acks {
            ack.await.unwrap();
        }
        let _ = chunk;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "publish through redis (pipelined, 1 node, 1 topic): {:.0} events/s",
        (n / 10_000 * 10_000) as f64 / secs
    );

    // 2. Fan-out: in memory on one node, then across nodes (publish on A, subscribers on B, C).
    let mem = Hub::builder()
        .lazy_topics(true)
        .topic_config(topic_config())
        .build();
    let r = fanout(&mem, &[&mem], events, subscribers, None).await;
    println!("in memory, 1 node:  {r}");
    let (b, _bp_b) = node(url).await;
    let (c, _bp_c) = node(url).await;
    let r = fanout(&a, &[&b, &c], events, subscribers, None).await;
    println!("redis, A -> B + C:  {r}");

    // 3. Latency at light load: one event per millisecond.
    let light = 500;
    let r = fanout(
        &mem,
        &[&mem],
        light,
        subscribers,
        Some(Duration::from_millis(1)),
    )
    .await;
    println!("light load, in memory: {r}");
    let r = fanout(
        &a,
        &[&b, &c],
        light,
        subscribers,
        Some(Duration::from_millis(1)),
    )
    .await;
    println!("light load, redis:     {r}");
}

struct Report {
    delivered_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    lost: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} delivered events/s, latency p50 {:.0} us, p99 {:.0} us, lost {}",
            self.delivered_per_s, self.p50_us, self.p99_us, self.lost
        )
    }
}

async fn fanout(
    publisher: &Hub,
    readers: &[&Hub],
    events: usize,
    subscribers: usize,
    pace: Option<Duration>,
) -> Report {
    static ROUND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let topic = format!(
        "fanout-{}",
        ROUND.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        let hub = readers[i % readers.len()];
        let mut sub = hub.subscribe(topic.as_str()).await.unwrap();
        let sample = i < 50;
        tasks.push(tokio::spawn(async move {
            let mut got = 0usize;
            let mut lat = Vec::new();
            while got < events {
                let f = match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
                    Ok(Some(f)) => f,
                    _ => break,
                };
                got += 1;
                if sample {
                    let now = epoch.elapsed().as_nanos();
                    let text = f.as_bytes();
                    if let Some(i) = memchr_ts(text) {
                        let digits: &[u8] = &text[i..];
                        let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(0);
                        if let Ok(ts) = std::str::from_utf8(&digits[..end]).unwrap().parse::<u128>()
                        {
                            lat.push(now.saturating_sub(ts) as u64);
                        }
                    }
                }
            }
            (got, lat, Instant::now())
        }));
    }
    let t = publisher.topic(&topic).unwrap();
    let start = Instant::now();
    match pace {
        None => {
            let acks: Vec<_> = (0..events).map(|_| t.publish(payload(epoch))).collect();
            for ack in acks {
                ack.await.unwrap();
            }
        }
        Some(p) => {
            for _ in 0..events {
                t.publish(payload(epoch)).await.unwrap();
                tokio::time::sleep(p).await;
            }
        }
    }
    let mut total = 0;
    let mut lat = Vec::new();
    let mut last = start;
    for task in tasks {
        let (got, l, end) = task.await.unwrap();
        total += got;
        lat.extend(l);
        last = last.max(end);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Report {
        delivered_per_s: total as f64 / (last - start).as_secs_f64(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        lost: events * subscribers - total,
    }
}

fn memchr_ts(text: &[u8]) -> Option<usize> {
    let needle = b"\"ts\":";
    text.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + needle.len())
}
