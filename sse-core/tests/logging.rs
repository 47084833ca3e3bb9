//! The hub's `tracing` events, captured by a real subscriber: subscribe positions, slow
//! subscribers in aggregate (never a line per event), and shutdown.
#![allow(clippy::unwrap_used)]

use sse_testkit::logs as log_capture;

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use sse_core::hub::{Policy, SubscribeOptions, TopicConfig, TopicOptions};
use sse_core::{Event, Hub, Subscription};

/// Reads everything `sub` has ready; whether it has ended.
fn drain(sub: &mut Subscription) -> bool {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut buf = BytesMut::new();
    for _ in 0..10_000 {
        match sub.poll_fill(&mut cx, &mut buf, 1 << 20) {
            Poll::Ready(Some(_)) => buf.clear(),
            Poll::Ready(None) => return true,
            Poll::Pending => return false,
        }
    }
    panic!("never drained");
}

fn topic_with(hub: &Hub, name: &str, config: TopicConfig) -> sse_core::Topic {
    hub.create_topic(name, TopicOptions::new().config(config))
        .unwrap()
}

#[tokio::test]
async fn a_subscribe_logs_its_parsed_position_and_whether_a_gap_was_sent() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    let news = hub.topic("news").unwrap();
    for i in 0..3 {
        news.publish(Event::new().data(format!("PAYLOAD-{i}")))
            .await
            .unwrap();
    }
    hub.topic("weather").unwrap();

    let id = news.event_id(1);
    let _resumed = hub
        .subscribe(SubscribeOptions::topic("news").last_event_id(Some(id.clone())))
        .await
        .unwrap();
    let _foreign = hub
        .subscribe(SubscribeOptions::topic("news").last_event_id(Some("zzzzzz:2")))
        .await
        .unwrap();
    let _both = hub
        .subscribe(SubscribeOptions::topics(["news", "weather"]))
        .await
        .unwrap();

    let lines = logs.with_message("subscribed");
    assert_eq!(lines.len(), 3, "{}", logs.raw());
    let f = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "DEBUG");
    assert_eq!(lines[0]["target"], "sse_core::hub::subscribe");
    assert_eq!(f["topic"], "news");
    assert_eq!(f["resume"], "after:1");
    assert_eq!(f["last_event_id_len"], id.len());
    assert_eq!(f["gap"], false);
    assert_eq!(f["subscribers"], 1);
    let f = &lines[1]["fields"];
    assert_eq!(f["resume"], "foreign");
    assert_eq!(f["gap"], true);
    assert_eq!(f["subscribers"], 2);
    let f = &lines[2]["fields"];
    assert_eq!(f["topics"], r#"["news", "weather"]"#);
    assert_eq!(f["resume"], "fresh,fresh");
    assert_eq!(f["gap"], false);
    assert!(f.get("last_event_id_len").is_none());
    let raw = logs.raw();
    assert!(!raw.contains("PAYLOAD"), "{raw}");
    assert!(
        !raw.contains("zzzzzz"),
        "a raw Last-Event-ID reached the log: {raw}"
    );
}

#[tokio::test]
async fn a_slow_subscribers_skipped_events_are_logged_in_aggregate_not_per_event() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    let topic = topic_with(
        &hub,
        "ticks",
        TopicConfig::default()
            .policy(Policy::DropOldest)
            .queue(2)
            .history_len(4096),
    );
    let mut sub = hub.subscribe("ticks").await.unwrap();
    assert!(!drain(&mut sub));
    // Twenty times: fifty events, then one read that skips all but the newest two.
    for _ in 0..20 {
        for i in 0..50 {
            topic
                .publish(Event::new().data(format!("PAYLOAD-{i}")))
                .await
                .unwrap();
        }
        assert!(!drain(&mut sub));
    }
    // The first action is logged at once; the others wait (10 s between lines).
    let lines = logs.with_message("slow subscriber: events skipped");
    assert_eq!(lines.len(), 1, "{}", logs.raw());
    let f = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "DEBUG");
    assert_eq!(f["topic"], "ticks");
    assert_eq!(
        (&f["dropped"], &f["gaps"], &f["conflated"]),
        (&48.into(), &1.into(), &0.into())
    );

    // What was not logged yet is logged when the subscription ends.
    drop(sub);
    let lines = logs.with_message("slow subscriber: events skipped");
    assert_eq!(lines.len(), 2, "{}", logs.raw());
    let f = &lines[1]["fields"];
    assert_eq!((&f["dropped"], &f["gaps"]), (&(19 * 48).into(), &19.into()));
    assert_eq!(hub.metrics().dropped, 20 * 48);
    assert!(!logs.raw().contains("PAYLOAD"), "{}", logs.raw());
}

#[tokio::test]
async fn a_conflating_subscriber_logs_its_conflated_count() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    let job = topic_with(&hub, "job", TopicConfig::default().queue(2));
    let mut sub = hub.subscribe("job").await.unwrap();
    assert!(!drain(&mut sub));
    for p in 0..10 {
        job.publish_keyed("progress", Event::new().data(p.to_string()))
            .await
            .unwrap();
    }
    assert!(!drain(&mut sub));
    drop(sub);
    let lines = logs.with_message("slow subscriber: events skipped");
    assert_eq!(lines.len(), 1, "{}", logs.raw());
    let f = &lines[0]["fields"];
    assert_eq!(
        (&f["conflated"], &f["dropped"], &f["gaps"]),
        (&9.into(), &0.into(), &0.into())
    );
}

#[tokio::test]
async fn a_slow_subscriber_disconnected_by_its_policy_logs_one_line() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    let topic = topic_with(
        &hub,
        "feed",
        TopicConfig::default().policy(Policy::Disconnect).queue(2),
    );
    let mut sub = hub.subscribe("feed").await.unwrap();
    assert!(!drain(&mut sub));
    for i in 0..5 {
        topic
            .publish(Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    assert!(drain(&mut sub), "disconnected");
    let lines = logs.with_message("slow subscriber disconnected");
    assert_eq!(lines.len(), 1, "{}", logs.raw());
    let f = &lines[0]["fields"];
    assert_eq!(f["topic"], "feed");
    assert_eq!(f["behind"], 5);
    assert_eq!(f["queue"], 2);
    assert!(logs
        .with_message("slow subscriber: events skipped")
        .is_empty());
}

#[tokio::test]
async fn a_shutdown_logs_once_when_it_begins_and_once_when_it_is_done() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    hub.topic("t").unwrap();
    let mut sub = hub.subscribe("t").await.unwrap();
    hub.begin_shutdown();
    hub.begin_shutdown();
    assert!(drain(&mut sub), "ended after the final frame");
    drop(sub);
    assert!(hub.shutdown(Duration::from_secs(1)).await);

    let begun = logs.with_message("hub shutdown begun");
    assert_eq!(begun.len(), 1, "{}", logs.raw());
    assert_eq!(begun[0]["level"], "INFO");
    assert_eq!(begun[0]["fields"]["subscribers"], 1);
    assert_eq!(begun[0]["fields"]["topics"], 1);
    let done = logs.with_message("hub shutdown done");
    assert_eq!(done.len(), 1, "{}", logs.raw());
    assert_eq!(done[0]["level"], "INFO");
    assert_eq!(done[0]["fields"]["clean"], true);
    assert_eq!(done[0]["fields"]["remaining"], 0);
}
