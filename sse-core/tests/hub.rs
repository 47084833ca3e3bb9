#![allow(clippy::unwrap_used)]
//! Hub behaviour: fan-out, replay, gaps, snapshots, lifecycle, limits.

use std::time::Duration;

use futures_util::StreamExt;
use sse_core::hub::{Access, Policy, SubscribeError, SubscribeOptions, TopicConfig, TopicOptions};
use sse_core::{Decoder, Event, Frame, Hub, Subscription};

/// Reads every frame that is ready now (without waiting), decoded.
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

fn ev(data: &str) -> Event<'_> {
    Event::new().data(data)
}

#[tokio::test]
async fn fan_out_ids_and_terminal_end() {
    let hub = Hub::new();
    let t = hub.topic("job").unwrap();
    let mut a = hub.subscribe("job").await.unwrap();
    let mut b = hub.subscribe("job").await.unwrap();
    assert_eq!(t.publish(ev("1")).await.unwrap(), 1);
    assert_eq!(t.publish(ev("2")).await.unwrap(), 2);
    t.finish(Event::new().event("completed").data("x"))
        .await
        .unwrap();
    for s in [&mut a, &mut b] {
        let (evs, ended) = drain(s);
        assert!(ended);
        let ids: Vec<_> = evs.iter().map(|e| e.2.clone()).collect();
        assert_eq!(ids, [t.event_id(1), t.event_id(2), t.event_id(3)]);
        assert_eq!(evs[2].0, "completed");
    }
    assert!(matches!(
        t.publish(ev("late")).await,
        Err(sse_core::hub::PublishError::Finished)
    ));
    // Seen everything: 204, with the id the hub sent and with the bare sequence.
    for id in [t.event_id(3), "3".to_owned()] {
        let err = hub
            .subscribe(SubscribeOptions::topic("job").last_event_id(Some(id)))
            .await
            .unwrap_err();
        assert_eq!(err, SubscribeError::Finished);
    }
    // No Last-Event-ID: the final state, then end.
    let mut c = hub.subscribe("job").await.unwrap();
    let (evs, ended) = drain(&mut c);
    assert!(ended);
    assert_eq!(evs.last().unwrap().0, "completed");
    drop((a, b, c));
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test]
async fn unknown_topic_is_not_found_unless_lazy() {
    let hub = Hub::new();
    assert_eq!(
        hub.subscribe("nope").await.unwrap_err(),
        SubscribeError::NotFound
    );
    let s = hub
        .subscribe(SubscribeOptions::topic("nope").create_if_missing(true))
        .await
        .unwrap();
    assert_eq!(hub.topic_count(), 1);
    drop(s);
    assert_eq!(hub.topic_count(), 0);
}

#[tokio::test]
async fn replay_inside_history_then_live() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    for i in 0..10 {
        t.publish(ev(&i.to_string())).await.unwrap();
    }
    let mut s = hub
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(t.event_id(6))))
        .await
        .unwrap();
    t.publish(ev("10")).await.unwrap();
    let (evs, _) = drain(&mut s);
    let ids: Vec<_> = evs.iter().map(|e| e.2.clone()).collect();
    let want: Vec<_> = (7..=11).map(|n| t.event_id(n)).collect();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn gap_then_snapshot_when_older_than_history() {
    let hub = Hub::builder()
        .topic_config(TopicConfig::default().history_len(5))
        .build();
    let t = hub.topic("t").unwrap();
    for i in 0..20 {
        t.publish_keyed(
            "progress",
            Event::new().event("progress").data(i.to_string()),
        )
        .await
        .unwrap();
        t.publish(ev("other")).await.unwrap();
    }
    let mut s = hub
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some("3")))
        .await
        .unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs[0].0, "gap");
    assert!(evs[0].1.contains("\"after\":3"));
    assert_eq!(evs[1].0, "progress");
    assert_eq!(evs[1].1, "19");
    assert_eq!(evs.len(), 2);
}

#[tokio::test]
async fn snapshot_for_new_subscriber() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    t.publish_keyed("status", Event::new().event("status").data("queued"))
        .await
        .unwrap();
    for p in 0..5 {
        t.publish_keyed(
            "progress",
            Event::new().event("progress").data(p.to_string()),
        )
        .await
        .unwrap();
    }
    t.publish(ev("log line")).await.unwrap();
    let mut s = hub.subscribe("t").await.unwrap();
    let (evs, ended) = drain(&mut s);
    assert!(!ended);
    let got: Vec<_> = evs.iter().map(|e| (e.0.as_str(), e.1.as_str())).collect();
    assert_eq!(got, [("status", "queued"), ("progress", "4")]);
}

#[tokio::test]
async fn multi_topic_composite_ids_resume() {
    let hub = Hub::new();
    let a = hub.topic("a").unwrap();
    let b = hub.topic("b,x").unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topics(["a", "b,x"]))
        .await
        .unwrap();
    a.publish(ev("a1")).await.unwrap();
    b.publish(ev("b1")).await.unwrap();
    a.publish(ev("a2")).await.unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs.len(), 3);
    let last_id = evs.last().unwrap().2.clone();
    drop(s);
    b.publish(ev("b2")).await.unwrap();
    a.publish(ev("a3")).await.unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topics(["a", "b,x"]).last_event_id(Some(last_id)))
        .await
        .unwrap();
    let (evs, _) = drain(&mut s);
    let mut data: Vec<_> = evs.iter().map(|e| e.1.clone()).collect();
    data.sort();
    assert_eq!(data, ["a3", "b2"]);
}

#[tokio::test]
async fn limits_and_access_hook() {
    let hub = Hub::builder()
        .max_subscriptions_per_user(2)
        .authorize(|r| match (r.owner, r.user) {
            (Some(o), Some(u)) if o == u => Access::Allow,
            (Some(_), None) => Access::Unauthenticated,
            (Some(_), Some(_)) => Access::Hidden,
            (None, _) => Access::Allow,
        })
        .build();
    hub.create_topic("j", TopicOptions::new().owner("alice"))
        .unwrap();
    let opts = |u: &str| SubscribeOptions::topic("j").user(u);
    assert_eq!(
        hub.subscribe(opts("bob")).await.unwrap_err(),
        SubscribeError::NotFound
    );
    assert_eq!(
        hub.subscribe("j").await.unwrap_err(),
        SubscribeError::Unauthenticated
    );
    let s1 = hub.subscribe(opts("alice")).await.unwrap();
    let _s2 = hub.subscribe(opts("alice")).await.unwrap();
    assert_eq!(
        hub.subscribe(opts("alice")).await.unwrap_err(),
        SubscribeError::UserLimit { limit: 2 }
    );
    drop(s1);
    let _s3 = hub.subscribe(opts("alice")).await.unwrap();

    let hub = Hub::new();
    hub.create_topic(
        "small",
        TopicOptions::new().config(TopicConfig::default().max_subscribers(1)),
    )
    .unwrap();
    let _a = hub.subscribe("small").await.unwrap();
    assert_eq!(
        hub.subscribe("small").await.unwrap_err(),
        SubscribeError::TopicFull { limit: 1 }
    );
    assert_eq!(hub.subscriber_count(), 1);
}

#[tokio::test]
async fn dropped_job_fails_loudly() {
    let hub = Hub::new();
    let job = hub.job("j").unwrap();
    let mut s = hub.subscribe("j").await.unwrap();
    job.progress(&serde_json::json!({"p": 1})).await.unwrap();
    std::thread::spawn(move || {
        let _job = job;
        panic!("worker died");
    })
    .join()
    .unwrap_err();
    let (evs, ended) = drain(&mut s);
    assert!(ended);
    assert_eq!(evs.last().unwrap().0, "failed");
    assert!(evs.last().unwrap().1.contains("panicked"));
}

#[tokio::test]
async fn caller_supplied_ids_resume() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    t.publish(Event::new().id("abc").data("1")).await.unwrap();
    t.publish(Event::new().id("def").data("2")).await.unwrap();
    let mut s = hub
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some("abc")))
        .await
        .unwrap();
    let (evs, _) = drain(&mut s);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].2, "def");
}

#[tokio::test]
async fn shutdown_ends_every_subscription() {
    let hub = Hub::new();
    hub.topic("t").unwrap();
    let mut subs = Vec::new();
    for _ in 0..10 {
        subs.push(hub.subscribe("t").await.unwrap());
    }
    let h = hub.clone();
    let waiter = tokio::spawn(async move { h.shutdown(Duration::from_secs(5)).await });
    for s in &mut subs {
        let last = s.next().await.unwrap();
        assert!(last.as_bytes().starts_with(b": server shutting down"));
        assert!(s.next().await.is_none());
    }
    drop(subs);
    assert!(waiter.await.unwrap());
    assert_eq!(
        hub.subscribe("t").await.unwrap_err(),
        SubscribeError::ShuttingDown
    );
}

#[tokio::test]
async fn frames_are_shared_not_copied() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let mut a = hub.subscribe("t").await.unwrap();
    let mut b = hub.subscribe("t").await.unwrap();
    t.publish(ev("x")).await.unwrap();
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let fa: Frame = match a.poll_next_unpin(&mut cx) {
        std::task::Poll::Ready(Some(f)) => f,
        _ => panic!(),
    };
    let fb: Frame = match b.poll_next_unpin(&mut cx) {
        std::task::Poll::Ready(Some(f)) => f,
        _ => panic!(),
    };
    assert_eq!(fa.as_bytes().as_ptr(), fb.as_bytes().as_ptr());
}

#[tokio::test]
async fn policies_bound_slow_subscribers() {
    for policy in [Policy::Conflate, Policy::DropOldest, Policy::Disconnect] {
        let hub = Hub::builder()
            .topic_config(
                TopicConfig::default()
                    .policy(policy)
                    .queue(8)
                    .history_len(64),
            )
            .build();
        let t = hub.topic("t").unwrap();
        let mut slow = hub.subscribe("t").await.unwrap();
        for i in 0..1000 {
            t.publish_keyed(
                "progress",
                Event::new().event("progress").data(i.to_string()),
            )
            .await
            .unwrap();
            if i % 100 == 0 {
                t.publish(Event::new().event("milestone").data(i.to_string()))
                    .await
                    .unwrap();
            }
        }
        t.finish(Event::new().event("completed").data("done"))
            .await
            .unwrap();
        assert!(hub.metrics().history_bytes < 64 * 64, "{policy:?}");
        let (evs, ended) = drain(&mut slow);
        assert!(ended, "{policy:?}");
        match policy {
            Policy::Disconnect => {
                assert!(evs.is_empty());
                assert_eq!(hub.metrics().slow_disconnects, 1);
                let id = "0";
                let mut again = hub
                    .subscribe(SubscribeOptions::topic("t").last_event_id(Some(id)))
                    .await
                    .unwrap();
                let (evs, ended) = drain(&mut again);
                assert!(ended);
                assert_eq!(evs[0].0, "gap");
                assert_eq!(evs.last().unwrap().0, "completed");
            }
            _ => {
                assert!(evs.len() <= 64 + 3, "{policy:?}: {}", evs.len());
                assert_eq!(evs[0].0, "gap", "{policy:?}");
                assert_eq!(evs.last().unwrap().0, "completed", "{policy:?}");
                // Never a stale progress after a newer one.
                let ps: Vec<u32> = evs
                    .iter()
                    .filter(|e| e.0 == "progress")
                    .map(|e| e.1.parse().unwrap())
                    .collect();
                assert!(ps.windows(2).all(|w| w[0] < w[1]), "{policy:?}");
                assert_eq!(*ps.last().unwrap(), 999, "{policy:?}");
            }
        }
    }
}

#[tokio::test]
async fn shutdown_delivers_what_was_published_before_it() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let mut s = hub.subscribe("t").await.unwrap();
    t.publish(ev("a")).await.unwrap();
    hub.begin_shutdown();
    let a = s.next().await.unwrap();
    let want = format!("data: a\nid: {}\n\n", t.event_id(1));
    assert_eq!(a.as_bytes(), want.as_bytes());
    let last = s.next().await.unwrap();
    assert!(last.as_bytes().starts_with(b": server shutting down"));
    assert!(s.next().await.is_none());
}
