//! Several in-process hubs (nodes), each with its own `RedisBackplane`, on a real
//! `redis-server` started on a free port in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sse_core::hub::{PublishError, SubscribeError, SubscribeOptions, TopicConfig};
use sse_core::{Event, Hub, SseBody, Subscription};
use sse_redis::{RedisBackplane, RedisConfig};
use sse_testkit::redis::RedisServer;
use sse_testkit::sse::{same_incarnation_seqs, seq_of};

fn config() -> RedisConfig {
    let mut c = RedisConfig::default()
        .max_backoff(Duration::from_millis(200))
        .timeouts(Duration::from_millis(500), Duration::from_secs(2));
    c.read_block = Duration::from_millis(1000);
    c
}

async fn node(redis: &RedisServer, config: RedisConfig) -> (Hub, Arc<RedisBackplane>) {
    node_with(redis, config, TopicConfig::default()).await
}

async fn node_with(
    redis: &RedisServer,
    config: RedisConfig,
    topic: TopicConfig,
) -> (Hub, Arc<RedisBackplane>) {
    let bp = RedisBackplane::connect(&redis.url(), config).await.unwrap();
    let hub = bp
        .hub_builder()
        .lazy_topics(true)
        .topic_config(topic)
        .build();
    (hub, bp)
}

/// One received frame: (event type, data, id).
#[derive(Debug, Clone, PartialEq, Eq)]
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

async fn next(sub: &mut Subscription) -> Option<Got> {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no frame within 10 s")
        .map(|f| parse(f.as_bytes()))
}

/// Reads until the stream ends (bounded).
async fn drain(sub: &mut Subscription) -> Vec<Got> {
    let mut out = Vec::new();
    while let Some(g) = next(sub).await {
        out.push(g);
        assert!(out.len() < 100_000);
    }
    out
}

/// The sequences of the events' ids (`INCARNATION:SEQ`), checking they share one incarnation.
fn ids(got: &[Got]) -> Vec<u64> {
    let ids: Vec<String> = got.iter().map(|g| g.id.clone().unwrap()).collect();
    same_incarnation_seqs(&ids)
}

/// The incarnation Redis stores with the newest entry of `topic` (field `i`).
async fn stored_incarnation(redis: &RedisServer, topic: &str) -> String {
    let client = redis::Client::open(redis.url()).unwrap();
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

/// The sequence of one event's id.
fn seq(g: &Got) -> u64 {
    seq_of(g.id.as_deref().expect("an id"))
}

async fn publish_n(hub: &Hub, topic: &str, n: usize) -> Vec<u64> {
    let t = hub.topic(topic).unwrap();
    // All handed over at once (pipelined), acknowledged in order.
    let acks: Vec<_> = (0..n)
        .map(|_| {
            t.publish_with(None, |seq| {
                Event::new().json_owned(serde_json::json!({ "seq": seq }))
            })
        })
        .collect();
    let mut seqs = Vec::with_capacity(n);
    for a in acks {
        seqs.push(a.await.unwrap());
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_a_reaches_b_and_c_once_in_order_and_finish_ends_everywhere() {
    let redis = RedisServer::start("sse-redis-test");
    let (a, bp_a) = node(&redis, config()).await;
    let (b, bp_b) = node(&redis, config()).await;
    let (c, bp_c) = node(&redis, config()).await;
    let (_d, bp_d) = node(&redis, config()).await;

    let mut subs = Vec::new();
    for hub in [&b, &b, &c] {
        subs.push(hub.subscribe("job").await.unwrap());
    }
    let seqs = publish_n(&a, "job", 200).await;
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    let fin = a
        .finish("job", Event::new().event("completed").data("done"))
        .await
        .unwrap();
    assert_eq!(fin, 201);

    let mut terminal_id = String::new();
    for sub in &mut subs {
        let got = drain(sub).await;
        let last = got.last().unwrap().id.clone().unwrap();
        assert!(
            terminal_id.is_empty() || terminal_id == last,
            "one id on every node"
        );
        terminal_id = last;
        assert_eq!(ids(&got), (1..=201).collect::<Vec<u64>>());
        for g in &got[..200] {
            // The id the backplane assigned is also in the payload.
            // The payload holds the bare sequence, the id `INCARNATION:SEQ`.
            assert_eq!(g.data, format!("{{\"seq\":{}}}", seq(g)));
        }
        assert_eq!(got[200].event.as_deref(), Some("completed"));
    }
    // Each node read each event once, whatever its number of subscribers; nodes without
    // subscribers read nothing.
    assert_eq!(bp_b.stats().events_read, 201);
    assert_eq!(bp_c.stats().events_read, 201);
    assert_eq!(bp_a.stats().events_read, 0);
    assert_eq!(bp_d.stats().reads, 0);
    assert_eq!(bp_a.stats().published, 201);

    // 409 on every node, 204 for a client that saw the end, final state for a new one.
    for hub in [&a, &b, &c] {
        let r = hub.publish("job", Event::new().data("late")).await;
        assert!(matches!(r, Err(PublishError::Finished)), "{r:?}");
    }
    for hub in [&a, &c] {
        let r = hub
            .subscribe(SubscribeOptions::topic("job").last_event_id(Some(&terminal_id)))
            .await;
        assert!(matches!(r, Err(SubscribeError::Finished)), "{r:?}");
    }
    let (e, _bp_e) = node(&redis, config()).await;
    let mut fresh = e.subscribe("job").await.unwrap();
    let got = drain(&mut fresh).await;
    assert_eq!(
        got.last().unwrap().id.as_deref(),
        Some(terminal_id.as_str())
    );
    assert_eq!(seq(got.last().unwrap()), 201);
    assert_eq!(got.last().unwrap().event.as_deref(), Some("completed"));
    // A node that never saw the topic finishes it in Redis or says it is finished / unknown.
    let r = e.finish("job", Event::new().event("failed")).await;
    assert!(matches!(r, Err(PublishError::Finished)), "{r:?}");
    let r = e
        .finish("never-published", Event::new().event("failed"))
        .await;
    assert!(matches!(r, Err(PublishError::NotFound)), "{r:?}");

    // The finished topic's keys expire with the finished TTL.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for k in ["sse:{job}:seq", "sse:{job}:fin", "sse:{job}:log"] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 300_000, "{k}: {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_another_node_with_last_event_id() {
    let redis = RedisServer::start("sse-redis-test");
    let (a, _bp_a) = node(&redis, config()).await;
    let (b, _bp_b) = node(&redis, config()).await;
    let (c, _bp_c) = node(&redis, config()).await;

    let mut sub = b.subscribe("doc").await.unwrap();
    publish_n(&a, "doc", 30).await;
    let mut last = String::new();
    for want in 1..=20u64 {
        let g = next(&mut sub).await.unwrap();
        assert_eq!(seq(&g), want);
        last = g.id.unwrap();
    }
    drop(sub); // the client's connection to B breaks after id 20
    let inc = last.rsplit_once(':').unwrap().0.to_owned();
    let id = |seq: u64| format!("{inc}:{seq}");
    assert_eq!(last, id(20));

    // It reconnects to C (which never saw the topic) with its Last-Event-ID.
    let mut resumed = c
        .subscribe(SubscribeOptions::topic("doc").last_event_id(Some(&last)))
        .await
        .unwrap();
    for want in 21..=30u64 {
        assert_eq!(next(&mut resumed).await.unwrap().id, Some(id(want)));
    }
    publish_n(&a, "doc", 5).await;
    for want in 31..=35u64 {
        assert_eq!(next(&mut resumed).await.unwrap().id, Some(id(want)));
    }
    // An id that another node sent but this node has not applied yet: C catches up first.
    let (d, _bp_d) = node(&redis, config()).await;
    let mut from_d = d
        .subscribe(SubscribeOptions::topic("doc").last_event_id(Some(id(34))))
        .await
        .unwrap();
    assert_eq!(next(&mut from_d).await.unwrap().id, Some(id(35)));

    // Multi-topic cursors work across nodes too.
    let mut multi = b
        .subscribe(SubscribeOptions::topics(["x", "y"]))
        .await
        .unwrap();
    a.publish("x", Event::new().data("x1")).await.unwrap();
    a.publish("y", Event::new().data("y1")).await.unwrap();
    let mut last = None;
    for _ in 0..2 {
        last = next(&mut multi).await.unwrap().id;
    }
    drop(multi);
    a.publish("x", Event::new().data("x2")).await.unwrap();
    let mut moved = c
        .subscribe(SubscribeOptions::topics(["x", "y"]).last_event_id(last))
        .await
        .unwrap();
    let g = next(&mut moved).await.unwrap();
    assert_eq!(g.data, "x2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_older_than_the_redis_history_gets_a_gap() {
    let redis = RedisServer::start("sse-redis-test");
    let cfg = config().max_len(Some(20));
    let (a, _bp_a) = node(&redis, cfg.clone()).await;
    let (c, _bp_c) = node(&redis, cfg).await;
    publish_n(&a, "busy", 400).await;
    // The ids clients hold: the topic's incarnation, as stored with every entry in Redis (C
    // has never seen the topic), and a sequence.
    let inc = stored_incarnation(&redis, "busy").await;
    let id = |seq: u64| format!("{inc}:{seq}");
    let mut sub = c
        .subscribe(SubscribeOptions::topic("busy").last_event_id(Some(id(3))))
        .await
        .unwrap();
    let gap = next(&mut sub).await.unwrap();
    assert_eq!(gap.event.as_deref(), Some("gap"));
    let data: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(data["after"], 3);
    assert_eq!(data["resumed_at"], 401);
    publish_n(&a, "busy", 1).await;
    assert_eq!(next(&mut sub).await.unwrap().id, Some(id(401)));
    // Within the (trimmed, approximate) history, a resume replays exactly.
    let mut near = c
        .subscribe(SubscribeOptions::topic("busy").last_event_id(Some(id(390))))
        .await
        .unwrap();
    for want in 391..=401u64 {
        assert_eq!(next(&mut near).await.unwrap().id, Some(id(want)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_publishing_at_once_share_one_sequence() {
    let redis = RedisServer::start("sse-redis-test");
    let (a, _bp_a) = node(&redis, config()).await;
    let (b, _bp_b) = node(&redis, config()).await;
    let (c, _bp_c) = node(&redis, config()).await;
    let mut sub = c.subscribe("shared").await.unwrap();
    let per_node = 500;
    let ta = tokio::spawn({
        let a = a.clone();
        async move {
            let mut all = Vec::new();
            for _ in 0..10 {
                all.extend(publish_n(&a, "shared", per_node / 10).await);
            }
            all
        }
    });
    let tb = tokio::spawn({
        let b = b.clone();
        async move {
            let mut all = Vec::new();
            for _ in 0..10 {
                all.extend(publish_n(&b, "shared", per_node / 10).await);
            }
            all
        }
    });
    let (sa, sb) = (ta.await.unwrap(), tb.await.unwrap());
    // Each publisher's events are stored in its call order.
    assert!(sa.windows(2).all(|w| w[0] < w[1]));
    assert!(sb.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<u64> = sa.into_iter().chain(sb).collect();
    all.sort_unstable();
    let total = 2 * per_node as u64;
    assert_eq!(
        all,
        (1..=total).collect::<Vec<u64>>(),
        "no duplicate, no hole"
    );
    let mut got = Vec::new();
    for _ in 0..total {
        got.push(next(&mut sub).await.unwrap());
    }
    assert_eq!(ids(&got), (1..=total).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_then_restart_on_the_same_dir() {
    let mut redis = RedisServer::start("sse-redis-test");
    let (a, _bp_a) = node(&redis, config()).await;
    let (b, bp_b) = node(&redis, config()).await;
    let sub = b.subscribe("live").await.unwrap();
    let mut body = SseBody::new(sub).heartbeat(Some(Duration::from_millis(100)));
    let mut received: Vec<Got> = Vec::new();
    let mut heartbeats = 0;

    publish_n(&a, "live", 10).await;
    // Read 1..=10 (heartbeats may come between).
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.len() < 10 && Instant::now() < deadline {
        let c = tokio::time::timeout(Duration::from_secs(5), chunk(&mut body))
            .await
            .unwrap()
            .unwrap();
        collect(&c, &mut received, &mut heartbeats);
    }
    assert_eq!(ids(&received), (1..=10).collect::<Vec<u64>>());

    // `SHUTDOWN`: Redis writes its append-only file and exits.
    let _ = redis.stop(false);
    // Publishing fails with a typed error (503), never an ack for an event not stored.
    for _ in 0..5 {
        let r = a.publish("live", Event::new().data("lost?")).await;
        match &r {
            Err(e @ PublishError::Backplane(_)) => {
                assert_eq!(sse_core::http::publish_status(e).as_u16(), 503);
            }
            other => panic!("expected a backplane error, got {other:?}"),
        }
    }
    // The open stream stays open: heartbeats go on, no end.
    let hb_before = heartbeats;
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        let c = tokio::time::timeout(Duration::from_secs(2), chunk(&mut body))
            .await
            .unwrap();
        let c = c.expect("the stream ended while Redis was down");
        collect(&c, &mut received, &mut heartbeats);
    }
    assert!(heartbeats > hb_before, "no heartbeat while Redis was down");
    assert_eq!(received.len(), 10);

    redis.spawn();
    // Publishes succeed again once the connection is back, continuing the sequence.
    let until = Instant::now() + Duration::from_secs(10);
    let first = loop {
        match a.publish("live", Event::new().data("after")).await {
            Ok(seq) => break seq,
            Err(PublishError::Backplane(_)) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(first, 11, "the sequence survives the restart");
    publish_n(&a, "live", 9).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.len() < 20 && Instant::now() < deadline {
        let c = tokio::time::timeout(Duration::from_secs(5), chunk(&mut body))
            .await
            .unwrap()
            .unwrap();
        collect(&c, &mut received, &mut heartbeats);
    }
    assert_eq!(
        ids(&received),
        (1..=20).collect::<Vec<u64>>(),
        "no duplicate, nothing lost"
    );
    assert!(bp_b.stats().connects >= 2, "the reader reconnected");
}

async fn chunk(body: &mut SseBody<Subscription>) -> Option<bytes::Bytes> {
    std::future::poll_fn(|cx| body.poll_chunk(cx)).await
}

/// Splits a body chunk into events and heartbeat comments.
fn collect(chunk: &[u8], received: &mut Vec<Got>, heartbeats: &mut usize) {
    let text = std::str::from_utf8(chunk).unwrap();
    for frame in text.split("\n\n").filter(|f| !f.is_empty()) {
        if frame.starts_with(':') {
            *heartbeats += 1;
        } else {
            received.push(parse(frame.as_bytes()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_wait_blocks_off_runtime_and_jobs_finish_through_redis() {
    let redis = RedisServer::start("sse-redis-test");
    let (a, _bp_a) = node(&redis, config()).await;
    let (b, _bp_b) = node(&redis, config()).await;
    let mut sub = b.subscribe("ocr").await.unwrap();

    // On a runtime thread, waiting for the ack by blocking is refused with a typed error (the
    // event is handed over all the same: it is event 1).
    let err = a
        .topic("ocr")
        .unwrap()
        .publish(Event::new().data("x"))
        .blocking_wait()
        .unwrap_err();
    assert!(matches!(&err, PublishError::WouldBlock), "{err:?}");

    // A plain worker thread (an OCR loop) publishes synchronously; it blocks for the ack.
    let job = a.job("ocr").unwrap();
    let worker = std::thread::spawn(move || {
        let mut seqs = Vec::new();
        for page in 1..=3 {
            seqs.push(
                job.progress(&serde_json::json!({ "page": page }))
                    .blocking_wait()
                    .unwrap(),
            );
        }
        drop(job); // ends without completing: failed through the backplane
        seqs
    });
    let seqs = tokio::task::spawn_blocking(move || worker.join().unwrap())
        .await
        .unwrap();
    assert_eq!(seqs, vec![2, 3, 4]);
    let got = drain(&mut sub).await;
    assert_eq!(ids(&got), vec![1, 2, 3, 4, 5]);
    assert_eq!(got[0].data, "x");
    assert_eq!(got[4].event.as_deref(), Some("failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_bounds_and_ttls_in_redis() {
    let redis = RedisServer::start("sse-redis-test");
    let cfg = config()
        .max_age(Some(Duration::from_millis(50)))
        .idle_ttl(Some(Duration::from_secs(60)));
    let (a, bp) = node(&redis, cfg).await;
    publish_n(&a, "aging", 16).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    // The age bound is applied every 16 publishes: the 17th trims the 16 older ones.
    publish_n(&a, "aging", 1).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: i64 = redis::cmd("XLEN")
        .arg("sse:{aging}:log")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 1, "events older than max_age are trimmed on publish");
    for k in ["sse:{aging}:seq", "sse:{aging}:log"] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{k}: {ttl}");
    }
    // Deleting the topic's keys: the next publish starts it again at 1.
    bp.delete_topic("aging").await.unwrap();
    let t = a.topic("fresh-after-delete").unwrap();
    assert_eq!(t.publish(Event::new().data("x")).await.unwrap(), 1);
    assert_eq!(publish_n(&a, "aging", 1).await, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pipeline_of_several_topics_with_a_finish_and_a_refused_write() {
    let redis = RedisServer::start("sse-redis-test");
    let (a, _bp_a) = node(&redis, config().pool_size(1)).await;
    let (b, _bp_b) = node(&redis, config()).await;
    let mut sub = b.subscribe("batch-x").await.unwrap();
    let (x, y) = (a.topic("batch-x").unwrap(), a.topic("batch-y").unwrap());
    // Handed over together (one connection, so most likely one pipeline): x and y interleaved,
    // x finished in the middle, then more publishes to both.
    let mut acks_x = Vec::new();
    let mut acks_y = Vec::new();
    for i in 0..20 {
        acks_x.push(x.publish(Event::new().data(format!("x{i}"))));
        acks_y.push(y.publish(Event::new().data(format!("y{i}"))));
    }
    let fin = x.finish(Event::new().event("done").data("x"));
    let after_x: Vec<_> = (0..5)
        .map(|_| x.publish(Event::new().data("late")))
        .collect();
    for i in 20..25 {
        acks_y.push(y.publish(Event::new().data(format!("y{i}"))));
    }
    let mut sx = Vec::new();
    for ack in acks_x {
        sx.push(ack.await.unwrap());
    }
    let mut sy = Vec::new();
    for ack in acks_y {
        sy.push(ack.await.unwrap());
    }
    assert_eq!(sx, (1..=20).collect::<Vec<u64>>());
    assert_eq!(sy, (1..=25).collect::<Vec<u64>>());
    assert_eq!(fin.await.unwrap(), 21);
    for ack in after_x {
        assert!(matches!(ack.await, Err(PublishError::Finished)));
    }
    let got = drain(&mut sub).await;
    assert_eq!(ids(&got), (1..=21).collect::<Vec<u64>>());
    assert_eq!(got[20].event.as_deref(), Some("done"));

    // A counter behind its stream (set by hand): the writes Redis refuses fail one by one with a
    // backplane error, and the publishes after them in the same call are stored.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET")
        .arg("sse:{batch-y}:seq")
        .arg(22)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let acks: Vec<_> = (0..6)
        .map(|_| y.publish(Event::new().data("again")))
        .collect();
    let mut results = Vec::new();
    for ack in acks {
        results.push(ack.await);
    }
    for r in &results[..3] {
        match r {
            Err(PublishError::Backplane(e)) => {
                assert!(e.to_string().contains("refused"), "{e}");
            }
            r => panic!("{r:?}"),
        }
    }
    let stored: Vec<u64> = results[3..].iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(stored, vec![26, 27, 28]);
}
