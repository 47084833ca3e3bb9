//! How a subscription fills a response chunk: every ready frame in one buffer, sized once.
#![allow(clippy::unwrap_used)]

use std::task::{Context, Poll};

use bytes::BytesMut;
use sse_core::{Event, Hub};

fn poll_fill(sub: &mut sse_core::Subscription, buf: &mut BytesMut, max: usize) -> usize {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match sub.poll_fill(&mut cx, buf, max) {
        Poll::Ready(Some(n)) => n,
        other => panic!("nothing ready: {other:?}"),
    }
}

#[tokio::test]
async fn a_burst_is_copied_into_one_buffer_sized_for_it() {
    let hub = Hub::new();
    let t = hub.topic("burst").unwrap();
    let mut sub = hub.subscribe("burst").await.unwrap();
    for i in 0..300 {
        t.publish(Event::new().data(format!("{i:0>100}")))
            .await
            .unwrap();
    }
    let mut buf = BytesMut::new();
    let frames = poll_fill(&mut sub, &mut buf, 64 * 1024);
    assert_eq!(frames, 300);
    // Sized for the burst (about 35 KB), not doubled up to 64 KiB.
    assert!(buf.capacity() >= buf.len());
    assert!(
        buf.capacity() < buf.len() + 4096,
        "capacity {} for {} bytes",
        buf.capacity(),
        buf.len()
    );
}

#[tokio::test]
async fn a_lone_event_allocates_only_its_own_size() {
    let hub = Hub::new();
    let t = hub.topic("lone").unwrap();
    let mut sub = hub.subscribe("lone").await.unwrap();
    t.publish(Event::new().data("x")).await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(poll_fill(&mut sub, &mut buf, 64 * 1024), 1);
    assert!(buf.capacity() < 256, "capacity {}", buf.capacity());
}

#[tokio::test]
async fn a_chunk_stops_at_its_budget_and_the_rest_follows() {
    let hub = Hub::new();
    let t = hub.topic("budget").unwrap();
    let mut sub = hub.subscribe("budget").await.unwrap();
    for i in 0..100 {
        t.publish(Event::new().data(format!("{i:0>100}")))
            .await
            .unwrap();
    }
    let mut first = BytesMut::new();
    let a = poll_fill(&mut sub, &mut first, 2048);
    assert!(a < 100 && first.len() >= 2048 && first.len() < 2048 + 200);
    let mut rest = BytesMut::new();
    let b = poll_fill(&mut sub, &mut rest, 1 << 20);
    assert_eq!(a + b, 100);
}
