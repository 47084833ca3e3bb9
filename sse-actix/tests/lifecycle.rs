//! Rejections, disconnect cleanup and graceful shutdown through a real actix server.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{eventually, get, start, start_with, Reader, Setup, PROMPT};
use sse_core::hub::{Access, TopicConfig, TopicOptions};
use sse_core::{Event, Hub};

async fn expect_status(url: &str, headers: &[(&str, &str)], status: u16) -> reqwest::Response {
    let resp = get(url, headers).await;
    assert_eq!(resp.status(), status, "{url}");
    resp
}

#[actix_web::test]
async fn rejections_map_to_statuses() {
    let hub = Hub::builder()
        .max_subscriptions_per_user(1)
        .authorize(|r| match r.topic {
            "secret" => Access::Unauthenticated,
            "private" => Access::Forbidden,
            _ => Access::Allow,
        })
        .build();
    hub.topic("open").unwrap();
    hub.topic("secret").unwrap();
    hub.topic("private").unwrap();
    hub.create_topic(
        "small",
        TopicOptions::new().config(TopicConfig::default().max_subscribers(1)),
    )
    .unwrap();
    let server = start(&hub, false);

    // 404: unknown topic.
    let resp = expect_status(&server.url("/events/nope"), &[], 404).await;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "topic not found\n");

    // 429: the topic's subscriber limit.
    let mut first = Reader::open(&server.url("/events/small"), &[]).await;
    first.chunk(PROMPT).await.unwrap();
    let resp = expect_status(&server.url("/events/small"), &[], 429).await;
    assert!(resp.text().await.unwrap().contains("limit 1"));
    drop(first);

    // 429: the per-user limit.
    let alice = [("x-user", "alice")];
    let mut a1 = Reader::open(&server.url("/events/open"), &alice).await;
    a1.chunk(PROMPT).await.unwrap();
    expect_status(&server.url("/events/open"), &alice, 429).await;
    let mut bob = Reader::open(&server.url("/events/open"), &[("x-user", "bob")]).await;
    bob.chunk(PROMPT).await.unwrap();

    // 401 with a challenge, 403.
    let resp = expect_status(&server.url("/events/secret"), &[], 401).await;
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    expect_status(&server.url("/events/private"), &[], 403).await;

    // 503 once the hub is shutting down.
    drop((a1, bob));
    hub.begin_shutdown();
    let resp = expect_status(&server.url("/events/open"), &[], 503).await;
    assert_eq!(resp.text().await.unwrap(), "server is shutting down\n");
    server.stop().await;
}

#[actix_web::test]
async fn client_disconnect_drops_the_subscription() {
    let hub = Hub::new();
    hub.topic("d").unwrap();
    // Recommended setup (`h1_allow_half_closed(false)`): noticed at once, even on an idle stream
    // (the hub's heartbeat is 15 s, so nothing is written that could fail).
    let server = start(&hub, false);
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut r = Reader::open(&server.url("/events/d"), &[]).await;
        r.chunk(PROMPT).await.unwrap();
        readers.push(r);
    }
    assert_eq!(hub.subscriber_count(), 3);
    drop(readers.pop());
    assert!(
        eventually(Duration::from_secs(1), || hub.subscriber_count() == 2).await,
        "count stuck at {}",
        hub.subscriber_count()
    );
    drop(readers);
    assert!(
        eventually(Duration::from_secs(1), || hub.subscriber_count() == 0).await,
        "count stuck at {}",
        hub.subscriber_count()
    );
    server.stop().await;
}

#[actix_web::test]
async fn client_disconnect_with_half_closed_allowed_is_noticed_by_the_next_write() {
    let hub = Hub::new();
    hub.topic("d").unwrap();
    // actix's default keeps a half-closed connection: the next write (here a 100 ms heartbeat)
    // notices the disconnect.
    let server = start_with(
        &hub,
        Setup {
            allow_half_closed: true,
            ..Setup::default()
        },
    );
    let mut r = Reader::open(&server.url("/heartbeat/d"), &[]).await;
    r.chunk(PROMPT).await.unwrap();
    assert_eq!(hub.subscriber_count(), 1);
    drop(r);
    assert!(
        eventually(Duration::from_secs(1), || hub.subscriber_count() == 0).await,
        "count stuck at {}",
        hub.subscriber_count()
    );
    server.stop().await;
}

#[actix_web::test]
async fn graceful_shutdown_with_open_streams() {
    let hub = Hub::new();
    let topic = hub.topic("s").unwrap();
    let server = start(&hub, false);
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut r = Reader::open(&server.url("/events/s"), &[]).await;
        r.chunk(PROMPT).await.unwrap();
        readers.push(r);
    }
    topic.publish(Event::new().data("before")).await.unwrap();
    for r in &mut readers {
        assert_eq!(r.events(1, PROMPT).await[0].data, "before");
    }

    // The shutdown timeout is 30 s: the server must not wait for the streams.
    let t0 = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        sse_actix::graceful_shutdown(&hub, &server.handle),
    )
    .await
    .expect("server stopped in time");
    let res = tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("server task ended in time")
        .unwrap();
    assert!(res.is_ok());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // Every stream got a final frame, then ended.
    for mut r in readers {
        let evs = r.read_to_end(PROMPT).await;
        assert!(evs.is_empty());
        let raw = String::from_utf8_lossy(&r.raw()).into_owned();
        assert!(raw.contains(": server shutting down"), "{raw:?}");
    }
    assert_eq!(hub.subscriber_count(), 0);
}

#[actix_web::test]
async fn control_without_hub_shutdown_a_graceful_stop_waits_for_the_streams() {
    let hub = Hub::new();
    hub.topic("s").unwrap();
    let server = start_with(
        &hub,
        Setup {
            shutdown_timeout: Some(2),
            ..Setup::default()
        },
    );
    let mut r = Reader::open(&server.url("/events/s"), &[]).await;
    r.chunk(PROMPT).await.unwrap();
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.handle.stop(true))
        .await
        .expect("forced stop after the shutdown timeout");
    // Held up until the shutdown timeout forced the open stream closed.
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    assert!(!String::from_utf8_lossy(&r.raw()).contains("shutting down"));
}

#[actix_web::test]
async fn shutdown_signal_ends_streams_then_stops_the_server() {
    let hub = Hub::new();
    hub.topic("s").unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = start_with(
        &hub,
        Setup {
            signal: Some(rx),
            ..Setup::default()
        },
    );
    let mut r = Reader::open(&server.url("/events/s"), &[]).await;
    r.chunk(PROMPT).await.unwrap();

    let t0 = Instant::now();
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("server stopped in time")
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    r.read_to_end(PROMPT).await;
    assert!(String::from_utf8_lossy(&r.raw()).contains(": server shutting down"));
    assert!(hub.is_shutting_down());
}
