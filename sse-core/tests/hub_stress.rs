#![allow(clippy::unwrap_used)]
//! Concurrency, eviction and cleanup of the hub, on real multi-thread and paused-clock runtimes.

use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use sse_core::hub::{Policy, SubscribeOptions, TopicConfig};
use sse_core::{Decoder, Event, Hub, SseBody};

/// The sequence number of an `INCARNATION:SEQ` id: the part after the last `:`.
fn seq_of(id: &str) -> u64 {
    id.rsplit(':').next().unwrap().parse().unwrap()
}

/// Many publishers (threads and tasks) and subscribers: every subscriber sees every event of its
/// topic exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_sees_every_event_once_in_order() {
    const TOPICS: usize = 4;
    const EVENTS: u64 = 2_000;
    const SUBS: usize = 25;
    // Queue and history big enough that no policy kicks in: this is about fan-out.
    let hub = Hub::builder()
        .topic_config(
            TopicConfig::default()
                .queue(EVENTS as usize + 1)
                .history_len(EVENTS as usize + 1),
        )
        .build();
    let mut readers = Vec::new();
    for t in 0..TOPICS {
        let topic = format!("t{t}");
        hub.topic(&topic).unwrap();
        for _ in 0..SUBS {
            let mut sub = hub.subscribe(topic.as_str()).await.unwrap();
            readers.push(tokio::spawn(async move {
                let mut dec = Decoder::new();
                let mut seen = Vec::new();
                while let Some(f) = sub.next().await {
                    dec.feed(f.as_bytes());
                    while let Some(e) = dec.next_event() {
                        seen.push((e.last_event_id, e.data, e.event));
                    }
                }
                seen
            }));
        }
    }
    let mut publishers = Vec::new();
    for t in 0..TOPICS {
        let topic = hub.topic(&format!("t{t}")).unwrap();
        // Half the topics are fed from blocking workers (a plain thread that waits for each
        // ack, and a `spawn_blocking` closure that blocks on the runtime's handle), half from
        // tasks.
        if t % 4 == 0 {
            let (done, finished) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                for i in 1..=EVENTS {
                    topic
                        .publish(Event::new().data(i.to_string()))
                        .blocking_wait()
                        .unwrap();
                }
                topic
                    .finish(Event::new().event("completed").data("end"))
                    .blocking_wait()
                    .unwrap();
                done.send(()).unwrap();
            });
            publishers.push(tokio::spawn(async move { finished.await.unwrap() }));
        } else if t % 4 == 2 {
            publishers.push(tokio::task::spawn_blocking(move || {
                let rt = tokio::runtime::Handle::current();
                for i in 1..=EVENTS {
                    rt.block_on(topic.publish(Event::new().data(i.to_string())))
                        .unwrap();
                }
                rt.block_on(topic.finish(Event::new().event("completed").data("end")))
                    .unwrap();
            }));
        } else {
            publishers.push(tokio::spawn(async move {
                for i in 1..=EVENTS {
                    topic
                        .publish(Event::new().data(i.to_string()))
                        .await
                        .unwrap();
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                topic
                    .finish(Event::new().event("completed").data("end"))
                    .await
                    .unwrap();
            }));
        }
    }
    for p in publishers {
        p.await.unwrap();
    }
    for r in readers {
        let seen = tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.len() as u64, EVENTS + 1);
        let incarnation = seen[0].0.rsplit_once(':').unwrap().0.to_owned();
        for (i, (id, data, _)) in seen.iter().take(EVENTS as usize).enumerate() {
            assert_eq!(seq_of(id), i as u64 + 1);
            assert!(id.starts_with(&format!("{incarnation}:")), "{id}");
            assert_eq!(data, &(i + 1).to_string());
        }
        assert_eq!(seen.last().unwrap().2, "completed");
    }
    assert_eq!(hub.subscriber_count(), 0);
}

/// Subscribing while events are published: a resume from any point stitches replay and live
/// under one cursor, with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_races_publishes_without_gap_or_duplicate() {
    let hub = Hub::builder()
        .topic_config(TopicConfig::default().queue(100_000).history_len(100_000))
        .build();
    let topic = hub.topic("race").unwrap();
    let t2 = topic.clone();
    let publisher = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Handle::current();
        for i in 1..=20_000u64 {
            rt.block_on(t2.publish(Event::new().data(i.to_string())))
                .unwrap();
        }
        rt.block_on(t2.finish(Event::new().event("completed").data("x")))
            .unwrap();
    });
    let mut checks = Vec::new();
    for k in 0..20 {
        tokio::time::sleep(Duration::from_micros(200)).await;
        // Only ids the hub has issued: an id from the future is answered with a gap.
        let from = ((k * 500) as u64).min(topic.last_seq());
        let sub = hub
            .subscribe(SubscribeOptions::topic("race").last_event_id(Some(topic.event_id(from))))
            .await;
        let Ok(mut sub) = sub else { continue };
        let ids = topic.clone();
        checks.push(tokio::spawn(async move {
            let mut dec = Decoder::new();
            let mut expect = from + 1;
            while let Some(f) = sub.next().await {
                dec.feed(f.as_bytes());
                while let Some(e) = dec.next_event() {
                    assert_eq!(e.last_event_id, ids.event_id(expect));
                    expect += 1;
                }
            }
            expect
        }));
    }
    publisher.await.unwrap();
    for c in checks {
        assert_eq!(c.await.unwrap(), 20_002);
    }
}

#[tokio::test(start_paused = true)]
async fn finished_and_idle_topics_are_evicted_after_their_ttl() {
    let hub = Hub::builder()
        .finished_ttl(Duration::from_secs(60))
        .idle_ttl(Duration::from_secs(600))
        .build();
    let done = hub.topic("done").unwrap();
    done.publish(Event::new().data("x")).await.unwrap();
    done.finish(Event::new().event("completed").data("y"))
        .await
        .unwrap();
    let idle = hub.topic("idle").unwrap();
    idle.publish(Event::new().data("x")).await.unwrap();
    assert_eq!(hub.topic_count(), 2);
    tokio::time::advance(Duration::from_secs(59)).await;
    hub.evict_expired();
    assert_eq!(hub.topic_count(), 2);
    tokio::time::advance(Duration::from_secs(2)).await;
    hub.evict_expired();
    assert!(hub.get_topic("done").is_none());
    assert!(hub.get_topic("idle").is_some());
    // Evicted, but a late client still gets the final state and the stream ends.
    let mut late = hub.subscribe("done").await.unwrap();
    let mut frames = Vec::new();
    while let Some(f) = late.next().await {
        frames.push(String::from_utf8(f.as_bytes().to_vec()).unwrap());
    }
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].starts_with("event: completed\ndata: y\nid: "),
        "{frames:?}"
    );
    assert!(frames[0].ends_with(":2\n\n"), "{frames:?}");
    tokio::time::advance(Duration::from_secs(600)).await;
    hub.evict_expired();
    // A publisher still holds the idle topic: it stays, so its next publish is not lost.
    assert!(hub.get_topic("idle").is_some());
    drop(idle);
    hub.evict_expired();
    assert_eq!(hub.topic_count(), 0);
    assert_eq!(hub.metrics().history_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn history_is_bounded_by_age_and_global_budget() {
    let hub = Hub::builder()
        .topic_config(TopicConfig::default().history_age(Duration::from_secs(10)))
        .memory_budget(10_000)
        .build();
    let t = hub.topic("a").unwrap();
    for _ in 0..100 {
        t.publish(Event::new().data("x".repeat(100))).await.unwrap();
    }
    assert!(hub.metrics().history_bytes <= 10_000);
    let u = hub.topic("b").unwrap();
    for _ in 0..100 {
        u.publish(Event::new().data("y".repeat(100))).await.unwrap();
    }
    hub.evict_expired();
    assert!(hub.metrics().history_bytes <= 10_000);
    tokio::time::advance(Duration::from_secs(11)).await;
    hub.evict_expired();
    // Only the newest event of each topic stays once everything is older than the age bound.
    assert!(hub.metrics().history_bytes < 400);
}

#[tokio::test]
async fn hundred_thousand_subscribe_drop_cycles_leave_nothing() {
    let hub = Hub::builder().lazy_topics(true).build();
    for i in 0..100_000u32 {
        let topic = format!("t{}", i % 1000);
        let a = hub.subscribe(topic.as_str()).await.unwrap();
        let b = hub
            .subscribe(SubscribeOptions::topics([topic.clone(), "shared".into()]).user("u"))
            .await
            .unwrap();
        drop(a);
        drop(b);
    }
    assert_eq!(hub.subscriber_count(), 0);
    assert_eq!(hub.topic_count(), 0);
    let m = hub.metrics();
    assert!(m.subscribers_per_topic.is_empty());
}

/// A stalled subscriber under each policy: the publisher never waits, a subscriber that keeps
/// up gets everything exactly once, the hub's memory stays bounded, and the stalled one still
/// ends with the terminal event (directly, or by resuming after a disconnect).
#[tokio::test]
async fn stalled_subscriber_never_slows_publisher_or_others() {
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    for policy in [Policy::Conflate, Policy::DropOldest, Policy::Disconnect] {
        let hub = Hub::builder()
            .topic_config(
                TopicConfig::default()
                    .policy(policy)
                    .queue(64)
                    .history_len(256),
            )
            .build();
        let t = hub.topic("t").unwrap();
        let mut stalled = hub.subscribe("t").await.unwrap();
        let mut fast = hub.subscribe("t").await.unwrap();
        let mut fast_dec = Decoder::new();
        let mut fast_seen = 0u64;
        let mut peak_history = 0;
        for round in 0..5_000u64 {
            for i in 0..10 {
                let n = round * 10 + i;
                t.publish_keyed(
                    "progress",
                    Event::new().event("progress").data(n.to_string()),
                )
                .await
                .unwrap();
            }
            peak_history = peak_history.max(hub.metrics().history_bytes);
            while let std::task::Poll::Ready(Some(f)) = fast.poll_next_unpin(&mut cx) {
                fast_dec.feed(f.as_bytes());
            }
            while let Some(e) = fast_dec.next_event() {
                fast_seen += 1;
                assert_eq!(e.last_event_id, t.event_id(fast_seen), "{policy:?}");
            }
        }
        t.finish(Event::new().event("completed").data("done"))
            .await
            .unwrap();
        assert_eq!(fast_seen, 50_000, "{policy:?}");
        // 256 events of about 40 bytes, plus the incarnation (up to 6 characters and ':') in
        // each id.
        assert!(peak_history <= 256 * (40 + 7), "{policy:?}: {peak_history}");

        // The stalled subscriber wakes up at last: a bounded catch-up, then the terminal event.
        let mut dec = Decoder::new();
        let mut frames = 0;
        while let std::task::Poll::Ready(Some(f)) = stalled.poll_next_unpin(&mut cx) {
            frames += 1;
            dec.feed(f.as_bytes());
        }
        assert!(stalled.is_ended(), "{policy:?}");
        assert!(frames <= 256 + 4, "{policy:?}: {frames}");
        let mut events = Vec::new();
        while let Some(e) = dec.next_event() {
            events.push(e);
        }
        if policy == Policy::Disconnect {
            assert!(events.is_empty());
            let mut again = hub
                .subscribe(SubscribeOptions::topic("t").last_event_id(Some("0")))
                .await
                .unwrap();
            while let std::task::Poll::Ready(Some(f)) = again.poll_next_unpin(&mut cx) {
                dec.feed(f.as_bytes());
            }
            while let Some(e) = dec.next_event() {
                events.push(e);
            }
        }
        assert_eq!(events[0].event, "gap", "{policy:?}");
        assert_eq!(events.last().unwrap().event, "completed", "{policy:?}");
        // Never a stale progress after a newer one.
        let ps: Vec<u64> = events
            .iter()
            .filter(|e| e.event == "progress")
            .map(|e| e.data.parse().unwrap())
            .collect();
        assert!(ps.windows(2).all(|w| w[0] < w[1]), "{policy:?}");
        assert_eq!(ps.last(), Some(&49_999), "{policy:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn heartbeats_after_idle_interval_reset_by_events() {
    let hub = Hub::builder().heartbeat(Duration::from_secs(15)).build();
    let t = hub.topic("t").unwrap();
    let mut body = SseBody::new(hub.subscribe("t").await.unwrap());
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b": ok\n\n");
    tokio::time::advance(Duration::from_secs(10)).await;
    t.publish(Event::new().data("x")).await.unwrap();
    let ev = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(
        &ev[..],
        format!("data: x\nid: {}\n\n", t.event_id(1)).as_bytes()
    );
    // 10 s after the event: not yet.
    let next = tokio::time::timeout(Duration::from_secs(10), body.frame()).await;
    assert!(next.is_err());
    // 15 s after the event: a heartbeat.
    let hb = tokio::time::timeout(Duration::from_secs(6), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&hb[..], b":\n\n");
}
