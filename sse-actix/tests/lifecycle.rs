//! What only actix has: half-closed connections and its own graceful stop, through a real
//! actix server. The behaviour every adapter shares is in `conformance.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{eventually, start_with, Reader, Setup, PROMPT};
use sse_core::Hub;

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
