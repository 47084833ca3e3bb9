#![allow(clippy::unwrap_used)]
//! Review tests: `#[ignore = "bug: …"]` tests fail today and pin a bug; the others pin tricky
//! behaviour that holds.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use sse_core::hub::{Access, Injected, Policy, SubscribeError, SubscribeOptions, TopicConfig};
use sse_core::{Decoder, Event, Hub, Subscription};

/// (event, data, id) of every frame ready now, and whether the stream ended.
fn drain(sub: &mut Subscription) -> (Vec<(String, String, String)>, bool) {
    let mut dec = Decoder::new();
    let mut ended = false;
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        match sub.poll_next_unpin(&mut cx) {
            std::task::Poll::Ready(Some(f)) => dec.feed(f.as_bytes()),
            std::task::Poll::Ready(None) => {
                ended = true;
                break;
            }
            std::task::Poll::Pending => break,
        }
    }
    let mut out = Vec::new();
    while let Some(e) = dec.next_event() {
        out.push((e.event, e.data, e.last_event_id));
    }
    (out, ended)
}

async fn resume(hub: &Hub, topic: &str, id: &str) -> Result<Subscription, SubscribeError> {
    hub.subscribe(SubscribeOptions::topic(topic).last_event_id(Some(id)))
        .await
}

/// [`resume`] on a plain thread.
fn blocking_resume(hub: &Hub, topic: &str, id: &str) -> Result<Subscription, SubscribeError> {
    hub.blocking_subscribe(SubscribeOptions::topic(topic).last_event_id(Some(id)))
}

/// The sequence number of an `INCARNATION:SEQ` id: the part after the last `:`.
fn seq_of(id: &str) -> u64 {
    id.rsplit(':').next().unwrap().parse().unwrap()
}

fn hub_with(policy: Policy, queue: usize, history: usize) -> Hub {
    Hub::builder()
        .topic_config(
            TopicConfig::default()
                .policy(policy)
                .queue(queue)
                .history_len(history),
        )
        .build()
}

// ---------------------------------------------------------------- policies vs. resume

/// Disconnect, QUEUE < HISTORY: a client that was cut off and resumes with its Last-Event-ID
/// (inside the history) is cut off again before it receives anything, forever.
#[tokio::test]
async fn disconnect_resume_inside_history_makes_progress() {
    let hub = hub_with(Policy::Disconnect, 4, 64);
    let t = hub.topic("t").unwrap();
    let mut slow = hub.subscribe("t").await.unwrap();
    for i in 1..=10 {
        t.publish(Event::new().data(i.to_string())).await.unwrap();
    }
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let (evs, ended) = drain(&mut slow);
    assert!(ended && evs.is_empty()); // disconnected, as documented
                                      // The client reconnects with its last id (0): everything is still in the history.
    let mut again = resume(&hub, "t", "0").await.unwrap();
    let (evs, ended) = drain(&mut again);
    assert!(ended);
    assert_eq!(evs.len(), 11, "got {evs:?}"); // today: [] (disconnected again)
    assert_eq!(evs.last().unwrap().0, "completed");
}

/// Drop-oldest, QUEUE < HISTORY: a resume inside the history must replay exactly the events
/// after K (bench part 2), not a gap.
#[tokio::test]
async fn drop_oldest_resume_inside_history_replays_exactly() {
    let hub = hub_with(Policy::DropOldest, 4, 64);
    let t = hub.topic("t").unwrap();
    for i in 1..=10 {
        t.publish(Event::new().data(i.to_string())).await.unwrap();
    }
    let mut s = resume(&hub, "t", &t.event_id(2)).await.unwrap();
    let (evs, _) = drain(&mut s);
    let ids: Vec<String> = evs.iter().map(|e| e.2.clone()).collect();
    let want: Vec<String> = (3..=10).map(|n| t.event_id(n)).collect();
    assert_eq!(ids, want, "got {evs:?}");
}

// ---------------------------------------------------------------- terminal never lost

/// A finished topic evicted (finished_ttl) while a slow subscriber has not yet read the
/// terminal event: its stream ends without it.
#[tokio::test]
async fn terminal_survives_eviction_of_finished_topic() {
    let hub = Hub::builder().finished_ttl(Duration::ZERO).build();
    let t = hub.topic("t").unwrap();
    let mut s = hub.subscribe("t").await.unwrap();
    t.publish(Event::new().data("a")).await.unwrap();
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    hub.evict_expired();
    let (evs, ended) = drain(&mut s);
    assert!(ended);
    assert_eq!(
        evs.last().map(|e| e.0.as_str()),
        Some("completed"),
        "got {evs:?}"
    );
}

/// A browser subscribes before the job exists (lazy topic), the worker gets the topic, the
/// browser reconnects: the lazy topic was removed under the worker's handle, so everything the
/// worker publishes (terminal event included) goes to an orphan; the new stream waits forever.
#[tokio::test]
async fn lazy_topic_removed_under_live_publisher() {
    let hub = Hub::builder().lazy_topics(true).build();
    let early = hub.subscribe("job").await.unwrap();
    let job = hub.job("job").unwrap();
    drop(early); // browser reconnects
    job.progress(&serde_json::json!({"p": 50})).await.unwrap();
    job.complete(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let mut s = hub.subscribe("job").await.unwrap();
    let (evs, ended) = drain(&mut s);
    assert!(ended, "stream never ends; got {evs:?}");
    assert_eq!(evs.last().unwrap().0, "completed");
}

/// Idle eviction removes the topic from the registry, but a held `Topic` keeps publishing into
/// the orphan with `Ok(seq)`: the events are unreachable.
#[tokio::test]
async fn publish_after_idle_eviction_is_not_silently_lost() {
    let hub = Hub::builder().idle_ttl(Duration::ZERO).build();
    let t = hub.topic("t").unwrap();
    hub.evict_expired();
    let res = t.publish(Event::new().data("x")).await;
    // Either the publish fails, or it is visible to subscribers.
    if res.is_ok() {
        let mut s = resume(&hub, "t", "0")
            .await
            .expect("topic exists after a successful publish");
        let (evs, _) = drain(&mut s);
        assert_eq!(evs.len(), 1, "got {evs:?}");
    }
}

/// `complete` with an event that fails to encode returns Err, but marks the publisher finished,
/// so its drop does not fail the job: subscribers wait forever.
#[test]
fn job_complete_error_still_finishes_job() {
    let hub = Hub::new();
    let job = hub.job("j").unwrap();
    let topic = job.topic().clone();
    assert!(job
        .complete(Event::new().event("bad\nname"))
        .blocking_wait()
        .is_err());
    assert!(
        topic.is_finished(),
        "job left unfinished after complete() failed"
    );
}

// ---------------------------------------------------------------- ids and cursors

/// Caller-supplied ids that look like numbers (database ids) or like composite cursors are
/// parsed as hub cursors instead of being matched against the history.
#[tokio::test]
async fn numeric_caller_ids_resume() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    for id in ["10", "20", "30"] {
        t.publish(Event::new().id(id).data(id)).await.unwrap();
    }
    let mut s = resume(&hub, "t", "20").await.unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs, [(String::from("message"), "30".into(), "30".into())]);

    let t = hub.topic("u").unwrap();
    for id in ["row=1", "row=2"] {
        t.publish(Event::new().id(id).data(id)).await.unwrap();
    }
    let mut s = resume(&hub, "u", "row=1").await.unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs.len(), 1, "got {evs:?}");
}

/// A fresh multi-topic subscription: the initial snapshot frames of topic `a` already carry a
/// composite id that claims topic `b` is up to date, before `b`'s snapshot was sent. A client
/// cut off between the two loses `b`'s state on resume.
#[tokio::test]
async fn multi_topic_initial_snapshot_ids_resume() {
    let hub = Hub::new();
    let a = hub.topic("a").unwrap();
    let b = hub.topic("b").unwrap();
    a.publish_keyed("k", Event::new().data("a-state"))
        .await
        .unwrap();
    b.publish_keyed("k", Event::new().data("b-state"))
        .await
        .unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topics(["a", "b"]))
        .await
        .unwrap();
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let std::task::Poll::Ready(Some(first)) = s.poll_next_unpin(&mut cx) else {
        panic!("no first frame")
    };
    let mut dec = Decoder::new();
    dec.feed(first.as_bytes());
    let e = dec.next_event().unwrap();
    assert_eq!(e.data, "a-state");
    drop(s); // connection lost after the first frame
    let mut again = hub
        .subscribe(SubscribeOptions::topics(["a", "b"]).last_event_id(Some(e.last_event_id)))
        .await
        .unwrap();
    let (evs, _) = drain(&mut again);
    assert!(
        evs.iter().any(|e| e.1 == "b-state"),
        "b's state lost: {evs:?}"
    );
}

/// The same topic twice in one subscription delivers every event twice.
#[tokio::test]
async fn duplicate_topic_names_do_not_duplicate_events() {
    let hub = Hub::new();
    let t = hub.topic("a").unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topics(["a", "a"]))
        .await
        .unwrap();
    t.publish(Event::new().data("x")).await.unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs.len(), 1, "got {evs:?}");
}

/// A backplane-injected sequence of u64::MAX makes `last_seq + 1` overflow (panic in debug,
/// wrap to 0 in release) on every later subscribe / read.
#[tokio::test]
async fn inject_u64_max_does_not_panic() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    // The exhausted sequence is refused with a typed error instead of overflowing later.
    let err = t
        .inject(Injected {
            seq: u64::MAX,
            incarnation: t.incarnation().unwrap(),
            body: b"data: x\n",
            key: None,
            terminal: false,
        })
        .unwrap_err();
    assert!(matches!(
        err,
        sse_core::hub::PublishError::SequenceExhausted
    ));
    t.inject(Injected {
        seq: u64::MAX - 2,
        incarnation: t.incarnation().unwrap(),
        body: b"data: x\n",
        key: None,
        terminal: false,
    })
    .unwrap();
    assert_eq!(
        t.publish(sse_core::Event::new().data("y")).await.unwrap(),
        u64::MAX - 1
    );
    assert!(t.publish(sse_core::Event::new().data("z")).await.is_err());
    let r = std::panic::AssertUnwindSafe(async {
        let mut s = resume(&hub, "t", "0").await.unwrap();
        drain(&mut s)
    })
    .catch_unwind()
    .await;
    assert!(r.is_ok(), "subscribe/read panicked");
}

/// Concurrent redelivery of the same sequences (e.g. a backplane reader reconnecting while the
/// old one drains): the `seq <= last_seq` check runs outside the topic lock, so a duplicate
/// slips into `append`, which then sees a "skip" and clears the history.
#[test]
fn concurrent_duplicate_inject_keeps_history() {
    for _round in 0..20 {
        concurrent_duplicate_inject_round();
    }
}

fn concurrent_duplicate_inject_round() {
    let hub = hub_with(Policy::Conflate, 4096, 4096);
    let t = hub.topic("t").unwrap();
    let incarnation = t.incarnation().unwrap();
    let n = 3000u64;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let t = t.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                for seq in 1..=n {
                    barrier.wait(); // both deliver the same seq at the same moment
                    let body = format!("data: {seq}\n");
                    t.inject(Injected {
                        seq,
                        incarnation,
                        body: body.as_bytes(),
                        key: None,
                        terminal: false,
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(t.last_seq(), n);
    assert_eq!(hub.metrics().published, n, "a duplicate was appended");
    let mut s = blocking_resume(&hub, "t", "0").unwrap();
    let (evs, _) = drain_all(&mut s);
    assert_eq!(evs.len() as u64, n, "first: {:?}", evs.first());
}

fn drain_all(sub: &mut Subscription) -> (Vec<(String, String, String)>, bool) {
    let mut all = Vec::new();
    loop {
        let (evs, ended) = drain(sub);
        if evs.is_empty() || ended {
            all.extend(evs);
            return (all, ended);
        }
        all.extend(evs);
    }
}

// ---------------------------------------------------------------- counts and leaks

/// A subscribe refused by the access hook (or the user limit) after it lazily created the
/// topic leaves the empty topic behind: random names fill the registry up to max_topics.
#[tokio::test]
async fn refused_lazy_subscribe_leaves_no_topic() {
    let hub = Hub::builder()
        .lazy_topics(true)
        .max_subscriptions_per_user(1)
        .authorize(|r| {
            if r.topic.starts_with("secret") {
                Access::Hidden
            } else {
                Access::Allow
            }
        })
        .build();
    for i in 0..100 {
        assert_eq!(
            hub.subscribe(format!("secret-{i}")).await.unwrap_err(),
            SubscribeError::NotFound
        );
    }
    let _one = hub
        .subscribe(SubscribeOptions::topic("x").user("u"))
        .await
        .unwrap();
    assert_eq!(
        hub.subscribe(SubscribeOptions::topic("y").user("u"))
            .await
            .unwrap_err(),
        SubscribeError::UserLimit { limit: 1 }
    );
    assert_eq!(hub.topic_count(), 1, "leaked lazily created topics");
}

// ---------------------------------------------------------------- behaviour that holds

#[tokio::test]
async fn empty_topic_list_is_refused() {
    let hub = Hub::new();
    let err = hub
        .subscribe(SubscribeOptions::topics(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert_eq!(err, SubscribeError::NoTopics);
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test]
async fn u64_max_cursors_do_not_panic() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    t.publish(Event::new().data("a")).await.unwrap();
    let max = u64::MAX.to_string();
    let mut s = resume(&hub, "t", &max).await.unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs[0].0, "gap");
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let mut s = resume(&hub, "t", &max).await.unwrap();
    let (evs, ended) = drain(&mut s);
    assert!(ended, "{evs:?}");
    assert_eq!(evs.last().unwrap().0, "completed", "{evs:?}");
    let composite = format!("t={max},u={max}");
    hub.topic("u").unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topics(["t", "u"]).last_event_id(Some(composite)))
        .await
        .unwrap();
    let _ = drain(&mut s);
}

#[tokio::test]
async fn counts_balance_after_refusals_and_finished() {
    let hub = Hub::builder()
        .topic_config(TopicConfig::default().max_subscribers(1))
        .max_subscriptions_per_user(2)
        .build();
    let a = hub.topic("a").unwrap();
    hub.topic("b").unwrap();
    let s1 = hub
        .subscribe(SubscribeOptions::topic("a").user("u"))
        .await
        .unwrap();
    // TopicFull on the second topic after the first took a slot and a user count.
    assert_eq!(
        hub.subscribe(SubscribeOptions::topics(["b", "a"]).user("u"))
            .await
            .unwrap_err(),
        SubscribeError::TopicFull { limit: 1 }
    );
    assert_eq!(hub.subscriber_count(), 1);
    assert_eq!(hub.get_topic("b").unwrap().subscriber_count(), 0);
    let s2 = hub
        .subscribe(SubscribeOptions::topic("b").user("u"))
        .await
        .unwrap();
    drop((s1, s2));
    a.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    assert_eq!(
        resume(&hub, "a", &a.event_id(1)).await.unwrap_err(),
        SubscribeError::Finished
    );
    assert_eq!(hub.subscriber_count(), 0);
    assert_eq!(a.subscriber_count(), 0);
    // The user count went back to 0: two more fit.
    let _x = hub
        .subscribe(SubscribeOptions::topic("a").user("u"))
        .await
        .unwrap();
    let _y = hub
        .subscribe(SubscribeOptions::topic("b").user("u"))
        .await
        .unwrap();
}

/// Resume racing a publisher thread: exactly the events after K, no gap, no duplicate.
#[test]
fn resume_races_publisher_without_gap_or_duplicate() {
    let hub = hub_with(Policy::Conflate, 100_000, 100_000);
    let t = hub.topic("t").unwrap();
    for i in 0..100 {
        t.publish(Event::new().data(i.to_string()))
            .blocking_wait()
            .unwrap();
    }
    let p = {
        let t = t.clone();
        std::thread::spawn(move || {
            for i in 0..20_000 {
                t.publish(Event::new().data(i.to_string()))
                    .blocking_wait()
                    .unwrap();
            }
            t.finish(Event::new().event("completed").data("done"))
                .blocking_wait()
                .unwrap();
        })
    };
    let mut s = blocking_resume(&hub, "t", &t.event_id(50)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ids: Vec<u64> = rt.block_on(async {
        let mut ids = Vec::new();
        while let Some(f) = s.next().await {
            let mut d = Decoder::new();
            d.feed(f.as_bytes());
            while let Some(e) = d.next_event() {
                assert!(e
                    .last_event_id
                    .starts_with(&format!("{}:", t.incarnation().unwrap())));
                ids.push(seq_of(&e.last_event_id));
            }
        }
        ids
    });
    p.join().unwrap();
    let want: Vec<u64> = (51..=20_101).collect();
    let first_bad = ids.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        ids == want,
        "len {} vs {}, first mismatch at {first_bad:?}, tail {:?}",
        ids.len(),
        want.len(),
        &ids[ids.len().saturating_sub(3)..]
    );
}

/// A waiting multi-topic subscriber is woken by a publish on any of its topics, and a
/// shutdown racing a waiting subscriber ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_topic_wakeup_and_shutdown() {
    let hub = Hub::new();
    let a = hub.topic("a").unwrap();
    let b = hub.topic("b").unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topics(["a", "b"]))
        .await
        .unwrap();
    let h = tokio::spawn(async move {
        let mut n = 0;
        while let Some(_f) = s.next().await {
            n += 1;
        }
        n
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.publish(Event::new().data("1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.publish(Event::new().data("2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(hub.shutdown(Duration::from_secs(2)).await);
    let n = tokio::time::timeout(Duration::from_secs(2), h)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 3); // two events and the shutdown frame
}
