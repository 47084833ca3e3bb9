//! Redis losing a topic's data is never silent: a live subscriber gets a `gap`, then every event
//! of the topic's new life that Redis holds, none skipped. On a real `redis-server`: `FLUSHALL`
//! under a live subscriber, a restart without data, and another Redis behind the same address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sse_core::hub::PublishError;
use sse_core::{Event, Hub, Subscription};
use sse_redis::{RedisBackplane, RedisConfig};
use sse_testkit::redis::{have_redis, RedisServer};
use sse_testkit::sse::{incarnation_of, seq_of};

fn config() -> RedisConfig {
    let mut c = RedisConfig::default()
        .max_backoff(Duration::from_millis(200))
        .timeouts(Duration::from_millis(500), Duration::from_secs(2));
    c.read_block = Duration::from_millis(500);
    c
}

async fn node(url: &str) -> (Hub, Arc<RedisBackplane>) {
    let bp = RedisBackplane::connect(url, config()).await.unwrap();
    let hub = bp.hub_builder().lazy_topics(true).build();
    (hub, bp)
}

/// One received frame: event type, data, id.
#[derive(Debug, Clone)]
struct Got {
    event: Option<String>,
    data: String,
    id: Option<String>,
}

fn parse(frame: &[u8]) -> Got {
    let text = std::str::from_utf8(frame).unwrap();
    let mut g = Got {
        event: None,
        data: String::new(),
        id: None,
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            g.event = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            g.data = v.to_owned();
        } else if let Some(v) = line.strip_prefix("id: ") {
            g.id = Some(v.to_owned());
        }
    }
    g
}

async fn next(sub: &mut Subscription) -> Got {
    let f = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no frame within 10 s")
        .expect("the subscription ended");
    parse(f.as_bytes())
}

/// The next `n` frames.
async fn take(sub: &mut Subscription, n: usize) -> Vec<Got> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(sub).await);
    }
    out
}

/// Publishes events `{"n": from}` … `{"n": to}` on `hub`, retrying while the backplane
/// reconnects (at most 10 s); returns the acknowledged sequences.
async fn publish_range(hub: &Hub, topic: &str, from: u32, to: u32) -> Vec<u64> {
    let mut seqs = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    for n in from..=to {
        let seq = loop {
            let ev = Event::new().json_owned(serde_json::json!({ "n": n }));
            match hub.publish(topic, ev).await {
                Ok(seq) => break seq,
                Err(PublishError::Backplane(_)) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("publish {n}: {e}"),
            }
        };
        seqs.push(seq);
    }
    seqs
}

/// The `(incarnation, seq)` of each event, and its payload number.
fn parts(got: &[Got]) -> Vec<(String, u64, u64)> {
    got.iter()
        .map(|g| {
            assert_eq!(g.event, None, "a plain event expected: {g:?}");
            let id = g.id.as_deref().expect("an id");
            let v: serde_json::Value = serde_json::from_str(&g.data).unwrap();
            (
                incarnation_of(id).expect("INCARNATION:SEQ").to_owned(),
                seq_of(id),
                v["n"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Reads events 1..=n of one life; returns its incarnation.
async fn read_life(sub: &mut Subscription, first_n: u32, n: usize) -> String {
    let got = parts(&take(sub, n).await);
    let inc = got[0].0.clone();
    for (i, (gi, seq, payload)) in got.iter().enumerate() {
        assert_eq!(gi, &inc, "one incarnation");
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(*payload, u64::from(first_n) + i as u64);
    }
    inc
}

/// Asserts a `gap` (a new life: the old position means nothing there, so `after` is null),
/// then events `1..=count` of a new life with payloads `first_n..`; returns the new
/// incarnation.
async fn gap_then_new_life(
    sub: &mut Subscription,
    old: &str,
    first_n: u32,
    count: usize,
) -> String {
    let gap = next(sub).await;
    assert_eq!(gap.event.as_deref(), Some("gap"), "{gap:?}");
    let data: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert!(data["after"].is_null(), "{data}");
    assert_eq!(data["topic"], "live", "{data}");
    assert_eq!(data["resumed_at"], 1, "the new life from its start: {data}");
    let inc = read_life(sub, first_n, count).await;
    assert_ne!(inc, old, "a new incarnation");
    inc
}

async fn flushall(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
}

/// Nothing more arrives for `wait` (heartbeats aside: a bare subscription has none).
async fn nothing_more(sub: &mut Subscription, wait: Duration) {
    if let Ok(f) = tokio::time::timeout(wait, sub.next()).await {
        panic!("unexpected frame: {:?}", f.map(|f| parse(f.as_bytes())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushall_under_a_live_subscriber_gives_a_gap_then_every_event_of_the_new_life() {
    if !have_redis("the data-loss tests") {
        return;
    }
    let redis = RedisServer::start("sse-redis-loss");
    let (a, _bp_a) = node(&redis.url()).await;
    let (b, bp_b) = node(&redis.url()).await;
    let mut sub = b.subscribe("live").await.unwrap();
    publish_range(&a, "live", 1, 50).await;
    let old = read_life(&mut sub, 1, 50).await;

    flushall(&redis.url()).await;
    // More events than the subscriber had read: Redis numbers them 1..=100 again.
    let seqs = publish_range(&a, "live", 51, 150).await;
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
    let new = gap_then_new_life(&mut sub, &old, 51, 100).await;

    // The new life goes on as usual.
    publish_range(&a, "live", 151, 152).await;
    let got = parts(&take(&mut sub, 2).await);
    assert_eq!(got, [(new.clone(), 101, 151), (new, 102, 152)]);
    nothing_more(&mut sub, Duration::from_millis(300)).await;
    assert!(bp_b.stats().topics_lost >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushall_then_fewer_events_than_were_read_still_reaches_the_subscriber() {
    if !have_redis("the data-loss tests") {
        return;
    }
    let redis = RedisServer::start("sse-redis-loss");
    let (a, _bp_a) = node(&redis.url()).await;
    let (b, bp_b) = node(&redis.url()).await;
    let mut sub = b.subscribe("live").await.unwrap();
    publish_range(&a, "live", 1, 50).await;
    let old = read_life(&mut sub, 1, 50).await;

    flushall(&redis.url()).await;
    // 20 < 50: a read after sequence 50 would never return them.
    let seqs = publish_range(&a, "live", 51, 70).await;
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    let new = gap_then_new_life(&mut sub, &old, 51, 20).await;
    publish_range(&a, "live", 71, 71).await;
    assert_eq!(parts(&take(&mut sub, 1).await), [(new, 21, 71)]);
    nothing_more(&mut sub, Duration::from_millis(300)).await;
    assert_eq!(bp_b.stats().topics_lost, 1, "one loss, noticed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_its_data_gives_a_gap_then_every_event_of_the_new_life() {
    if !have_redis("the data-loss tests") {
        return;
    }
    // No append-only file and no snapshots: a restart comes back empty.
    let mut redis = RedisServer::start_with("sse-redis-loss", false);
    let (a, _bp_a) = node(&redis.url()).await;
    let (b, bp_b) = node(&redis.url()).await;
    let mut sub = b.subscribe("live").await.unwrap();
    publish_range(&a, "live", 1, 30).await;
    let old = read_life(&mut sub, 1, 30).await;

    assert!(redis.stop(false));
    redis.spawn();
    let seqs = publish_range(&a, "live", 31, 40).await;
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    let new = gap_then_new_life(&mut sub, &old, 31, 10).await;
    publish_range(&a, "live", 41, 41).await;
    assert_eq!(parts(&take(&mut sub, 1).await), [(new, 11, 41)]);
    nothing_more(&mut sub, Duration::from_millis(300)).await;
    assert!(bp_b.stats().connects >= 2, "the reader reconnected");
    assert!(bp_b.stats().topics_lost >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_redis_behind_the_same_address_gives_a_gap_then_what_it_holds() {
    if !have_redis("the data-loss tests") {
        return;
    }
    let mut first = RedisServer::start_with("sse-redis-loss", false);
    let (a, _bp_a) = node(&first.url()).await;
    let (b, _bp_b) = node(&first.url()).await;
    let mut sub = b.subscribe("live").await.unwrap();
    publish_range(&a, "live", 1, 30).await;
    let old = read_life(&mut sub, 1, 30).await;

    // Another Redis, where the topic has another life of 12 events, saved to its directory.
    let mut other = RedisServer::start_with("sse-redis-loss", false);
    {
        let (c, _bp_c) = node(&other.url()).await;
        publish_range(&c, "live", 1001, 1012).await;
    }
    assert!(other.stop(true));
    // The first one stops, and comes back on the same address with the other's data.
    assert!(first.stop(false));
    std::fs::copy(other.dir().join("dump.rdb"), first.dir().join("dump.rdb")).unwrap();
    first.spawn();

    let new = gap_then_new_life(&mut sub, &old, 1001, 12).await;
    // Publishes continue that life.
    let seqs = publish_range(&a, "live", 1013, 1013).await;
    assert_eq!(seqs, [13]);
    assert_eq!(parts(&take(&mut sub, 1).await), [(new, 13, 1013)]);
    nothing_more(&mut sub, Duration::from_millis(300)).await;
}

/// The incarnation Redis stores with the newest entry of `topic` (field `i`).
async fn stored_incarnation(url: &str, topic: &str) -> String {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let top: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(format!("sse:{{{topic}}}:log"))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_, fields) = top.first().expect("an entry");
    fields
        .iter()
        .find(|(k, _)| k == "i")
        .map(|(_, v)| v.clone())
        .expect("an incarnation field")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_held_the_old_life_serves_a_resume_in_the_new_one_exactly() {
    if !have_redis("the data-loss tests") {
        return;
    }
    let redis = RedisServer::start("sse-redis-loss");
    let (a, _bp_a) = node(&redis.url()).await;
    let (b, _bp_b) = node(&redis.url()).await;
    {
        let mut sub = b.subscribe("live").await.unwrap();
        publish_range(&a, "live", 1, 50).await;
        read_life(&mut sub, 1, 50).await;
    }
    // B keeps its copy (1..=50 of the old life) but no longer reads the topic.
    assert_eq!(b.get_topic("live").map(|t| t.last_seq()), Some(50));
    flushall(&redis.url()).await;
    publish_range(&a, "live", 51, 150).await;
    let new = stored_incarnation(&redis.url(), "live").await;
    // A client of another node read the new life up to 10 and reconnects to B.
    let mut sub = b
        .subscribe(
            sse_core::hub::SubscribeOptions::topic("live").last_event_id(Some(format!("{new}:10"))),
        )
        .await
        .unwrap();
    let got = parts(&take(&mut sub, 90).await);
    let want: Vec<(String, u64, u64)> = (11..=100u64).map(|s| (new.clone(), s, s + 50)).collect();
    assert_eq!(got, want);
    nothing_more(&mut sub, Duration::from_millis(300)).await;
}
