#![allow(clippy::unwrap_used)]
//! Restart-safe ids (`INCARNATION:SEQ`), tombstones of evicted finished topics, `from_now`,
//! per-connection prefix frames, and the one publishing API (`PublishAck`).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use sse_core::hub::{PublishError, SubscribeError, SubscribeOptions};
use sse_core::{DecodedEvent, Decoder, Event, Hub, SseBody, Subscription};

/// Every event that is ready now (without waiting), decoded, and whether the stream ended.
fn drain(sub: &mut Subscription) -> (Vec<DecodedEvent>, bool) {
    let mut dec = Decoder::new();
    let mut ended = false;
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        match sub.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(f)) => dec.feed(f.as_bytes()),
            Poll::Ready(None) => {
                ended = true;
                break;
            }
            Poll::Pending => break,
        }
    }
    let mut out = Vec::new();
    while let Some(e) = dec.next_event() {
        out.push(e);
    }
    (out, ended)
}

/// The sequence number of an `INCARNATION:SEQ` id: the part after the last `:`.
fn seq_of(id: &str) -> u64 {
    id.rsplit(':').next().unwrap().parse().unwrap()
}

/// The incarnation part of an id (before the last `:`).
fn incarnation_of(id: &str) -> &str {
    id.rsplit_once(':').unwrap().0
}

fn resume(topic: &str, id: impl Into<String>) -> SubscribeOptions {
    SubscribeOptions::topic(topic).last_event_id(Some(id.into()))
}

fn gap_json(e: &DecodedEvent) -> serde_json::Value {
    assert_eq!(e.event, "gap", "not a gap: {e:?}");
    serde_json::from_str(&e.data).unwrap()
}

// ---------------------------------------------------------------- ids across restarts

#[tokio::test]
async fn ids_are_incarnation_colon_sequence() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let mut sub = hub.subscribe("t").await.unwrap();
    let seq = t.publish(Event::new().data("x")).await.unwrap();
    let inc = t.incarnation().unwrap().to_string();
    assert!(!inc.is_empty() && inc.len() <= 6, "{inc}");
    assert!(inc
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    assert_eq!(t.event_id(seq), format!("{inc}:1"));
    let (evs, _) = drain(&mut sub);
    assert_eq!(evs[0].last_event_id, format!("{inc}:1"));
}

#[tokio::test]
async fn an_id_from_before_a_restart_gets_a_gap_then_the_snapshot_never_newer_events_silently() {
    // Hub A: the server before the restart. The client saw event 50.
    let a = Hub::new();
    let ta = a.topic("job").unwrap();
    for i in 1..=50u64 {
        if i % 10 == 0 {
            ta.publish_keyed("status", Event::new().event("status").data(format!("a{i}")))
                .await
                .unwrap();
        } else {
            ta.publish(Event::new().data(format!("a{i}")))
                .await
                .unwrap();
        }
    }
    let old_id = ta.event_id(50);
    assert_eq!(seq_of(&old_id), 50);
    drop((ta, a));

    // Hub B: the restarted server, whose topic of the same name has 100 events.
    let b = Hub::new();
    let tb = b.topic("job").unwrap();
    for i in 1..=100u64 {
        if i % 10 == 0 {
            tb.publish_keyed("status", Event::new().event("status").data(format!("b{i}")))
                .await
                .unwrap();
        } else {
            tb.publish(Event::new().data(format!("b{i}")))
                .await
                .unwrap();
        }
    }
    assert_ne!(incarnation_of(&old_id), incarnation_of(&tb.event_id(1)));

    let mut sub = b.subscribe(resume("job", old_id.clone())).await.unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(!ended);
    // First the gap: the client's position means nothing in this life of the topic.
    let gap = gap_json(&evs[0]);
    assert_eq!(gap["topic"], "job");
    assert_eq!(gap["after"], serde_json::Value::Null);
    assert_eq!(gap["resumed_at"], 101);
    // Then the snapshot (the latest event per key), and nothing else: never 51..=100 as if
    // they followed the client's 50.
    let rest: Vec<(&str, &str, &str)> = evs[1..]
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    let status_id = tb.event_id(100);
    assert_eq!(rest, [("status", "b100", status_id.as_str())]);
    // Live events continue in the new incarnation.
    tb.publish(Event::new().data("b101")).await.unwrap();
    let (evs, _) = drain(&mut sub);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data, "b101");
    assert_eq!(evs[0].last_event_id, tb.event_id(101));
}

#[tokio::test]
async fn an_id_from_before_a_restart_gets_a_gap_even_when_the_new_topic_is_shorter() {
    let a = Hub::new();
    let ta = a.topic("t").unwrap();
    for i in 1..=50 {
        ta.publish(Event::new().data(i.to_string())).await.unwrap();
    }
    let old_id = ta.event_id(50);
    let b = Hub::new();
    let tb = b.topic("t").unwrap();
    for i in 1..=10 {
        tb.publish(Event::new().data(i.to_string())).await.unwrap();
    }
    let mut sub = b.subscribe(resume("t", old_id)).await.unwrap();
    let (evs, _) = drain(&mut sub);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(gap_json(&evs[0])["after"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_bare_number_last_event_id_resumes_in_the_current_incarnation() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    for i in 1..=10 {
        t.publish(Event::new().data(i.to_string())).await.unwrap();
    }
    let mut sub = hub.subscribe(resume("t", "7")).await.unwrap();
    let (evs, _) = drain(&mut sub);
    let ids: Vec<&str> = evs.iter().map(|e| e.last_event_id.as_str()).collect();
    let want: Vec<String> = (8..=10).map(|n| t.event_id(n)).collect();
    assert_eq!(ids, want);
    assert!(evs.iter().all(|e| e.event == "message"), "no gap: {evs:?}");
    // A bare number of the terminal event: seen everything.
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    assert_eq!(
        hub.subscribe(resume("t", "11")).await.unwrap_err(),
        SubscribeError::Finished
    );
}

#[tokio::test]
async fn a_composite_id_from_before_a_restart_gets_a_gap_for_each_topic() {
    let a = Hub::new();
    let (a1, a2) = (a.topic("x").unwrap(), a.topic("y").unwrap());
    let mut sub = a
        .subscribe(SubscribeOptions::topics(["x", "y"]))
        .await
        .unwrap();
    a1.publish(Event::new().data("x1")).await.unwrap();
    a2.publish(Event::new().data("y1")).await.unwrap();
    let (evs, _) = drain(&mut sub);
    let old_id = evs.last().unwrap().last_event_id.clone();
    let want = format!(
        "x={}:1,y={}:1",
        a1.incarnation().unwrap(),
        a2.incarnation().unwrap()
    );
    assert_eq!(old_id, want);

    let b = Hub::new();
    let (b1, b2) = (b.topic("x").unwrap(), b.topic("y").unwrap());
    for i in 1..=3 {
        b1.publish(Event::new().data(format!("x{i}")))
            .await
            .unwrap();
        b2.publish(Event::new().data(format!("y{i}")))
            .await
            .unwrap();
    }
    let mut sub = b
        .subscribe(SubscribeOptions::topics(["x", "y"]).last_event_id(Some(old_id)))
        .await
        .unwrap();
    let (evs, _) = drain(&mut sub);
    let mut gapped: Vec<String> = evs
        .iter()
        .filter(|e| e.event == "gap")
        .map(|e| gap_json(e)["topic"].as_str().unwrap().to_owned())
        .collect();
    gapped.sort();
    assert_eq!(gapped, ["x", "y"], "{evs:?}");
    assert!(
        evs.iter().all(|e| e.event == "gap"),
        "no old position is taken for a new one: {evs:?}"
    );
}

// ---------------------------------------------------------------- eviction and tombstones

#[tokio::test(start_paused = true)]
async fn a_finished_topic_evicted_and_created_again_answers_the_old_terminal_id_with_a_gap() {
    let hub = Hub::builder().finished_ttl(Duration::from_secs(60)).build();
    let first = hub.topic("job").unwrap();
    for i in 1..=3 {
        first
            .publish(Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    let term = first
        .finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let terminal_id = first.event_id(term);
    drop(first);
    tokio::time::advance(Duration::from_secs(61)).await;
    hub.evict_expired();
    assert!(hub.get_topic("job").is_none(), "evicted");

    // Created again (a job id reused): a new life of the topic, numbered from 1.
    let second = hub.topic("job").unwrap();
    for i in 1..=10 {
        second
            .publish(Event::new().data(format!("new{i}")))
            .await
            .unwrap();
    }
    assert_ne!(
        incarnation_of(&terminal_id),
        incarnation_of(&second.event_id(1))
    );

    // Not 204 (the new job is not finished), and not a resume after 4 (that would skip
    // new1..new4 silently): a gap, then the new life's state.
    let mut sub = hub.subscribe(resume("job", terminal_id)).await.unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(!ended);
    let gap = gap_json(&evs[0]);
    assert_eq!(gap["after"], serde_json::Value::Null);
    assert_eq!(gap["resumed_at"], 11);
    assert_eq!(evs.len(), 1, "no snapshot keys, so only the gap: {evs:?}");
    second.publish(Event::new().data("new11")).await.unwrap();
    let (evs, _) = drain(&mut sub);
    assert_eq!(evs[0].last_event_id, second.event_id(11));
}

#[tokio::test(start_paused = true)]
async fn an_evicted_finished_topic_still_answers_late_clients() {
    let hub = Hub::builder().finished_ttl(Duration::from_secs(60)).build();
    let job = hub.job("job").unwrap();
    let topic = job.topic().clone();
    job.event_keyed("status", Event::new().event("status").data("running"))
        .await
        .unwrap();
    job.progress(&50).await.unwrap();
    job.event(Event::new().data("log line")).await.unwrap();
    job.progress(&100).await.unwrap();
    let term = job
        .complete(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let id = |seq| topic.event_id(seq);
    let terminal_id = id(term);
    tokio::time::advance(Duration::from_secs(61)).await;
    hub.evict_expired();
    assert!(hub.get_topic("job").is_none());
    assert_eq!(hub.topic_count(), 0);

    // A fresh client: the final snapshot, the terminal event, and the stream ends.
    let mut fresh = hub.subscribe("job").await.unwrap();
    let (evs, ended) = drain(&mut fresh);
    assert!(ended);
    let got: Vec<(&str, &str, &str)> = evs
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    let (i1, i4, i5) = (id(1), id(4), id(5));
    assert_eq!(
        got,
        [
            ("status", "running", i1.as_str()),
            ("progress", "100", i4.as_str()),
            ("completed", "done", i5.as_str()),
        ]
    );
    // A client that saw the terminal event: 204.
    assert_eq!(
        hub.subscribe(resume("job", terminal_id.clone()))
            .await
            .unwrap_err(),
        SubscribeError::Finished
    );
    // A client that stopped earlier: told it missed events, then the final state.
    let mut behind = hub.subscribe(resume("job", id(2))).await.unwrap();
    let (evs, ended) = drain(&mut behind);
    assert!(ended);
    assert_eq!(gap_json(&evs[0])["after"], 2);
    assert_eq!(evs.last().unwrap().event, "completed");
    // An id of another life of the topic: a gap without a position, then the final state.
    let mut foreign = hub.subscribe(resume("job", "zzzzzz:3")).await.unwrap();
    let (evs, ended) = drain(&mut foreign);
    assert!(ended);
    assert_eq!(gap_json(&evs[0])["after"], serde_json::Value::Null);
    assert_eq!(evs.last().unwrap().event, "completed");
    // The tombstone is not a topic.
    assert_eq!(hub.topic_count(), 0);
    drop((fresh, behind, foreign));
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn tombstones_are_bounded_by_max_tombstones() {
    let hub = Hub::builder()
        .finished_ttl(Duration::from_secs(1))
        .max_tombstones(2)
        .build();
    for name in ["a", "b", "c"] {
        let t = hub.topic(name).unwrap();
        t.finish(Event::new().event("completed").data("done"))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        hub.evict_expired();
    }
    assert_eq!(hub.topic_count(), 0);
    // The oldest is forgotten: 404 like any unknown topic.
    assert_eq!(
        hub.subscribe("a").await.unwrap_err(),
        SubscribeError::NotFound
    );
    for name in ["b", "c"] {
        let mut s = hub.subscribe(name).await.unwrap();
        let (evs, ended) = drain(&mut s);
        assert!(ended);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event, "completed");
    }
}

// ---------------------------------------------------------------- from_now

#[tokio::test]
async fn from_now_skips_the_snapshot_and_the_replay_and_sends_live_events_only() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    t.publish_keyed("status", Event::new().event("status").data("queued"))
        .await
        .unwrap();
    for i in 1..=5 {
        t.publish(Event::new().data(format!("old{i}")))
            .await
            .unwrap();
    }
    let mut sub = hub
        .subscribe(SubscribeOptions::topic("t").from_now())
        .await
        .unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(evs.is_empty() && !ended, "{evs:?}");
    t.publish(Event::new().data("live1")).await.unwrap();
    t.publish_keyed("status", Event::new().event("status").data("running"))
        .await
        .unwrap();
    let (evs, _) = drain(&mut sub);
    let got: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(got, [("message", "live1"), ("status", "running")]);
    assert_eq!(evs[0].last_event_id, t.event_id(7));
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(ended);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event, "completed");
}

#[tokio::test]
async fn from_now_on_a_finished_topic_still_delivers_the_terminal_event_and_ends() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    t.publish_keyed("progress", Event::new().event("progress").data("100"))
        .await
        .unwrap();
    let term = t
        .finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let mut sub = hub
        .subscribe(SubscribeOptions::topic("t").from_now())
        .await
        .unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(ended);
    assert_eq!(evs.len(), 1, "terminal only, no snapshot: {evs:?}");
    assert_eq!(evs[0].event, "completed");
    assert_eq!(evs[0].last_event_id, t.event_id(term));
}

#[tokio::test(start_paused = true)]
async fn from_now_on_an_evicted_finished_topic_delivers_the_terminal_event_and_ends() {
    let hub = Hub::builder().finished_ttl(Duration::from_secs(1)).build();
    let t = hub.topic("t").unwrap();
    t.publish_keyed("progress", Event::new().event("progress").data("100"))
        .await
        .unwrap();
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    drop(t);
    tokio::time::advance(Duration::from_secs(2)).await;
    hub.evict_expired();
    assert!(hub.get_topic("t").is_none());
    let mut sub = hub
        .subscribe(SubscribeOptions::topic("t").from_now())
        .await
        .unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(ended);
    let names: Vec<&str> = evs.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["completed"]);
}

#[tokio::test]
async fn a_last_event_id_takes_precedence_over_from_now() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    for i in 1..=5 {
        t.publish(Event::new().data(i.to_string())).await.unwrap();
    }
    let mut sub = hub
        .subscribe(
            SubscribeOptions::topic("t")
                .from_now()
                .last_event_id(Some(t.event_id(3))),
        )
        .await
        .unwrap();
    let (evs, _) = drain(&mut sub);
    let data: Vec<&str> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["4", "5"]);
}

// ---------------------------------------------------------------- prefix frames

#[tokio::test]
async fn prefix_frames_come_right_after_the_first_frame() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    t.publish_keyed("status", Event::new().event("status").data("queued"))
        .await
        .unwrap();
    let initial = Event::new()
        .event("initial_status")
        .data("from the app")
        .encode()
        .unwrap();
    let second = Event::new().comment("hello").encode().unwrap();
    let body = SseBody::new(hub.subscribe("t").await.unwrap())
        .prefix([initial])
        .prefix([second]);
    t.finish(Event::new().event("completed")).await.unwrap();
    let bytes = BodyExt::collect(body).await.unwrap().to_bytes();
    let want = format!(
        ": ok\n\nevent: initial_status\ndata: from the app\n\n: hello\n\n\
         event: status\ndata: queued\nid: {}\n\nevent: completed\nid: {}\n\n",
        t.event_id(1),
        t.event_id(2)
    );
    assert_eq!(String::from_utf8_lossy(&bytes), want);
}

#[tokio::test]
async fn prefix_frames_come_first_without_a_first_frame() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let hello = Event::new().event("hello").encode().unwrap();
    let body = SseBody::new(hub.subscribe("t").await.unwrap())
        .first_frame(None)
        .prefix([hello]);
    t.finish(Event::new().event("completed")).await.unwrap();
    let bytes = BodyExt::collect(body).await.unwrap().to_bytes();
    let want = format!(
        "event: hello\n\nevent: completed\nid: {}\n\n",
        t.event_id(1)
    );
    assert_eq!(String::from_utf8_lossy(&bytes), want);
}

// ---------------------------------------------------------------- PublishAck

#[test]
fn blocking_wait_works_on_a_plain_thread() {
    let hub = Hub::new();
    let job = hub.job("ocr").unwrap();
    let topic = job.topic().clone();
    let seqs = std::thread::spawn(move || {
        let mut seqs = Vec::new();
        for page in 1..=3 {
            seqs.push(job.progress(&page).blocking_wait().unwrap());
        }
        seqs.push(
            job.complete(Event::new().event("completed").data("done"))
                .blocking_wait()
                .unwrap(),
        );
        seqs
    })
    .join()
    .unwrap();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert!(topic.is_finished());
    // The test thread runs no runtime either: subscribing blocks here too.
    let mut sub = hub.blocking_subscribe("ocr").unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(ended);
    let names: Vec<&str> = evs.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["progress", "completed"]);
}

#[tokio::test]
async fn blocking_wait_inside_a_runtime_returns_would_block_and_the_event_is_published() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let err = t
        .publish(Event::new().data("x"))
        .blocking_wait()
        .unwrap_err();
    assert!(matches!(err, PublishError::WouldBlock), "{err:?}");
    assert_eq!(t.last_seq(), 1, "handed over all the same");
    assert_eq!(
        hub.blocking_subscribe("t").unwrap_err(),
        SubscribeError::WouldBlock
    );
    // On the runtime's blocking pool too: the context is still a runtime's.
    let t2 = t.clone();
    let err =
        tokio::task::spawn_blocking(move || t2.publish(Event::new().data("y")).blocking_wait())
            .await
            .unwrap()
            .unwrap_err();
    assert!(matches!(err, PublishError::WouldBlock), "{err:?}");
    // There, block on the runtime's handle instead.
    let t3 = t.clone();
    let seq = tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(t3.publish(Event::new().data("z")))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(seq, 3);
}

#[tokio::test]
async fn fail_with_sends_the_custom_terminal_event() {
    let hub = Hub::new();
    let job = hub.job("j").unwrap();
    let topic = job.topic().clone();
    let mut sub = hub.subscribe("j").await.unwrap();
    job.progress(&10).await.unwrap();
    let seq = job
        .fail_with(
            Event::new()
                .event("error")
                .json_owned(serde_json::json!({"code": "E_OCR", "page": 3})),
        )
        .await
        .unwrap();
    assert_eq!(seq, 2);
    assert!(topic.is_finished());
    let (evs, ended) = drain(&mut sub);
    assert!(ended);
    assert_eq!(evs.len(), 2);
    let last = &evs[1];
    assert_eq!(last.event, "error");
    assert_eq!(last.data, r#"{"code":"E_OCR","page":3}"#);
    assert_eq!(last.last_event_id, topic.event_id(2));
    // Not the drop guard's generic `failed` event as well.
    assert!(evs.iter().all(|e| e.event != "failed"), "{evs:?}");
    assert!(matches!(
        topic.publish(Event::new().data("late")).await,
        Err(PublishError::Finished)
    ));
}

#[tokio::test]
async fn fail_sends_a_failed_event_with_the_reason() {
    let hub = Hub::new();
    let job = hub.job("j").unwrap();
    let topic = job.topic().clone();
    let mut sub = hub.subscribe("j").await.unwrap();
    job.fail("out of memory").await.unwrap();
    let (evs, ended) = drain(&mut sub);
    assert!(ended && topic.is_finished());
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event, "failed");
    assert_eq!(evs[0].data, r#"{"error":"out of memory"}"#);
}

#[tokio::test]
#[allow(clippy::let_underscore_future)]
async fn dropping_an_unawaited_ack_still_publishes() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let mut sub = hub.subscribe("t").await.unwrap();
    drop(t.publish(Event::new().data("a")));
    let _ = t.publish_keyed("k", Event::new().data("b"));
    drop(hub.publish("t", Event::new().data("c")));
    drop(t.finish(Event::new().event("completed").data("done")));
    assert_eq!(t.last_seq(), 4);
    let (evs, ended) = drain(&mut sub);
    assert!(ended);
    let data: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        data,
        [
            ("message", "a"),
            ("message", "b"),
            ("message", "c"),
            ("completed", "done")
        ]
    );
}

#[tokio::test]
async fn acks_in_flight_resolve_in_call_order() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let acks: Vec<_> = (0..5)
        .map(|i| t.publish(Event::new().data(i.to_string())))
        .collect();
    let mut seqs = Vec::new();
    // Awaited in reverse: the order was fixed when publish was called.
    for ack in acks.into_iter().rev() {
        seqs.push(ack.await.unwrap());
    }
    assert_eq!(seqs, [5, 4, 3, 2, 1]);
}

#[test]
fn an_ack_polled_again_after_it_resolved_says_so() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let mut ack = pin!(t.publish(Event::new().data("x")));
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(matches!(ack.as_mut().poll(&mut cx), Poll::Ready(Ok(1))));
    assert!(matches!(
        ack.as_mut().poll(&mut cx),
        Poll::Ready(Err(PublishError::AckConsumed))
    ));
}

#[tokio::test]
async fn an_invalid_event_is_refused_by_its_ack_and_nothing_is_published() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let err = t
        .publish(Event::new().event("bad\nname"))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Event(_)), "{err:?}");
    assert_eq!(t.last_seq(), 0);
}
