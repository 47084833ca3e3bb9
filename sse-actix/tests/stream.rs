//! Event-stream responses through a real actix server: headers, first byte, order, resume,
//! terminal events, coalescing, compression, options and extractors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use actix_web::FromRequest;
use common::{get, ids_data, start, Reader, PROMPT};
use sse_actix::{AcceptsEventStream, LastEventId};
use sse_core::http::Negotiated;
use sse_core::{Event, Hub};

#[actix_web::test]
async fn headers_first_byte_then_events_in_order() {
    let hub = Hub::new();
    let topic = hub.topic("t").unwrap();
    let server = start(&hub, false);

    let started = Instant::now();
    let resp = get(&server.url("/events/t"), &[]).await;
    let h = resp.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let mut r = Reader::new(resp);
    // The first frame arrives before any event is published.
    let first = r.chunk(PROMPT).await.unwrap();
    assert_eq!(&first[..], b": ok\n\n");
    assert!(started.elapsed() < PROMPT);

    for i in 1..=3 {
        topic
            .publish(Event::new().data(format!("e{i}")))
            .await
            .unwrap();
    }
    let evs = r.events(3, PROMPT).await;
    assert_eq!(
        ids_data(&evs),
        [(1, "e1"), (2, "e2"), (3, "e3")].map(|(a, b)| (topic.event_id(a), b.to_owned()))
    );
    server.stop().await;
}

#[actix_web::test]
async fn resume_with_last_event_id_header_and_query_then_terminal_and_204() {
    let hub = Hub::new();
    let topic = hub.topic("r").unwrap();
    let server = start(&hub, false);
    let pairs = |v: &[(u64, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(i, d)| (topic.event_id(*i), d.to_string()))
            .collect()
    };

    let mut r = Reader::open(&server.url("/events/r"), &[]).await;
    for i in 1..=5 {
        topic
            .publish(Event::new().data(format!("e{i}")))
            .await
            .unwrap();
    }
    let evs = r.events(5, PROMPT).await;
    assert_eq!(evs.last().unwrap().last_event_id, topic.event_id(5));
    drop(r);

    // Published while the client was away.
    topic.publish(Event::new().data("e6")).await.unwrap();
    topic.publish(Event::new().data("e7")).await.unwrap();

    // Header: exactly the missed events, then live ones.
    let id5 = topic.event_id(5);
    let mut r = Reader::open(&server.url("/events/r"), &[("last-event-id", &id5)]).await;
    let evs = r.events(2, PROMPT).await;
    assert_eq!(ids_data(&evs), pairs(&[(6, "e6"), (7, "e7")]));
    topic.publish(Event::new().data("e8")).await.unwrap();
    let evs = r.events(1, PROMPT).await;
    assert_eq!(ids_data(&evs), pairs(&[(8, "e8")]));
    drop(r);

    topic.publish(Event::new().data("e9")).await.unwrap();

    // Query parameter (plain EventSource): same, then the terminal event ends the body.
    let url = server.url(&format!("/events/r?lastEventId={}", topic.event_id(8)));
    let mut r = Reader::open(&url, &[]).await;
    let evs = r.events(1, PROMPT).await;
    assert_eq!(ids_data(&evs), pairs(&[(9, "e9")]));
    topic
        .finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let evs = r.read_to_end(PROMPT).await;
    assert_eq!(ids_data(&evs), pairs(&[(10, "done")]));
    assert_eq!(evs[0].event, "completed");

    // The client has the terminal event: 204, no body (EventSource stops reconnecting).
    let id10 = topic.event_id(10);
    let resp = get(&server.url("/events/r"), &[("last-event-id", &id10)]).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());

    // A new client gets the final state, then the end.
    let mut r = Reader::open(&server.url("/events/r"), &[]).await;
    let evs = r.read_to_end(PROMPT).await;
    assert_eq!(evs.last().unwrap().event, "completed");
    server.stop().await;
}

#[actix_web::test]
async fn a_burst_is_coalesced_and_a_lone_event_is_prompt() {
    let hub = Hub::new();
    let topic = hub.topic("c").unwrap();
    let server = start(&hub, false);
    let mut r = Reader::open(&server.url("/events/c"), &[]).await;
    assert_eq!(&r.chunk(PROMPT).await.unwrap()[..], b": ok\n\n");
    let before = r.chunks.len();

    for i in 0..100 {
        topic
            .publish(Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    let evs = r.events(100, Duration::from_secs(5)).await;
    let data: Vec<String> = evs.iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    let chunks = r.chunks.len() - before;
    assert!(chunks < 100, "100 events in {chunks} chunks");

    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    topic.publish(Event::new().data("lone")).await.unwrap();
    let evs = r.events(1, PROMPT).await;
    assert_eq!(evs[0].data, "lone");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "lone event took {:?}",
        t0.elapsed()
    );
    server.stop().await;
}

#[actix_web::test]
async fn compress_middleware_leaves_the_stream_alone() {
    let hub = Hub::new();
    let topic = hub.topic("z").unwrap();
    let server = start(&hub, true);
    let gzip = [("accept-encoding", "gzip")];

    // Control: the middleware is active for ordinary responses.
    let plain = get(&server.url("/plain"), &gzip).await;
    assert_eq!(plain.headers()["content-encoding"], "gzip");

    let resp = get(&server.url("/events/z"), &gzip).await;
    assert_eq!(resp.headers()["content-encoding"], "identity");
    let mut r = Reader::new(resp);
    assert_eq!(&r.chunk(PROMPT).await.unwrap()[..], b": ok\n\n");
    let t0 = Instant::now();
    topic
        .publish(Event::new().data("uncompressed"))
        .await
        .unwrap();
    let evs = r.events(1, PROMPT).await;
    assert_eq!(evs[0].data, "uncompressed");
    assert!(t0.elapsed() < Duration::from_millis(500));
    let want = format!(": ok\n\ndata: uncompressed\nid: {}\n\n", topic.event_id(1));
    assert!(r.raw().starts_with(want.as_bytes()));
    server.stop().await;
}

#[actix_web::test]
async fn user_stream_retry_first_frame_and_cache_control() {
    let hub = Hub::new();
    let server = start(&hub, false);
    let resp = get(&server.url("/stream"), &[]).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut r = Reader::new(resp);
    let evs = r.read_to_end(PROMPT).await;
    assert!(r.raw().starts_with(b"retry: 2000\n\n"), "{:?}", r.raw());
    assert_eq!(r.dec.retry(), Some(Duration::from_secs(2)));
    let got: Vec<_> = evs
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [("greeting", "hello", ""), ("message", "world", "x-2")]
    );
    // The failed item became a comment, not an event.
    assert!(String::from_utf8_lossy(&r.raw()).contains(": event dropped: boom\n"));
    server.stop().await;
}

#[actix_web::test]
async fn heartbeats_on_an_idle_stream() {
    let hub = Hub::new();
    hub.topic("h").unwrap();
    let server = start(&hub, false);
    let mut r = Reader::open(&server.url("/heartbeat/h"), &[]).await;
    assert_eq!(&r.chunk(PROMPT).await.unwrap()[..], b": ok\n\n");
    for _ in 0..2 {
        assert_eq!(&r.chunk(PROMPT).await.unwrap()[..], b":\n\n");
    }
    server.stop().await;
}

#[actix_web::test]
async fn extractors() {
    use actix_web::test::TestRequest;

    let req = TestRequest::default()
        .uri("/e?x=1&lastEventId=job%3D7")
        .to_http_request();
    let id = LastEventId::extract(&req).await.unwrap();
    assert_eq!(id, LastEventId(Some("job=7".to_owned())));

    let req = TestRequest::default()
        .uri("/e?lastEventId=7")
        .insert_header(("last-event-id", "42"))
        .to_http_request();
    assert_eq!(
        LastEventId::extract(&req).await.unwrap().into_inner(),
        Some("42".to_owned())
    );

    let req = TestRequest::default()
        .uri("/e?lastEventId=")
        .to_http_request();
    assert_eq!(LastEventId::extract(&req).await.unwrap().0, None);

    for (accept, want) in [
        (Some("text/event-stream"), true),
        (Some("application/json, text/event-stream;q=0.5"), false),
        (
            Some("text/event-stream;q=0.9, application/json;q=0.8"),
            true,
        ),
        (Some("*/*"), false),
        (None, false),
    ] {
        let mut req = TestRequest::default();
        if let Some(a) = accept {
            req = req.insert_header(("accept", a));
        }
        let got = AcceptsEventStream::extract(&req.to_http_request())
            .await
            .unwrap();
        assert_eq!(got.0, want, "{accept:?}");
        assert_eq!(
            got.negotiated(),
            if want {
                Negotiated::EventStream
            } else {
                Negotiated::Json
            }
        );
    }
}

#[actix_web::test]
async fn prefix_frames_come_after_the_first_frame_and_before_the_subscription() {
    let hub = Hub::new();
    let topic = hub.topic("p").unwrap();
    topic
        .publish_keyed("status", Event::new().event("status").data("queued"))
        .await
        .unwrap();
    let server = start(&hub, false);
    let mut r = Reader::open(&server.url("/prefixed/p"), &[]).await;
    topic
        .finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let evs = r.read_to_end(PROMPT).await;
    assert_eq!(evs.len(), 3);
    let want = format!(
        ": ok\n\nevent: initial_status\ndata: hello p\n\n\
         event: status\ndata: queued\nid: {}\n\nevent: completed\ndata: done\nid: {}\n\n",
        topic.event_id(1),
        topic.event_id(2)
    );
    assert_eq!(String::from_utf8_lossy(&r.raw()), want);
    server.stop().await;
}

#[actix_web::test]
async fn an_id_from_before_a_restart_gets_a_gap() {
    let before = Hub::new();
    let old = before.topic("r").unwrap();
    for i in 1..=5 {
        old.publish(Event::new().data(format!("old{i}")))
            .await
            .unwrap();
    }
    let old_id = old.event_id(5);
    let hub = Hub::new();
    let topic = hub.topic("r").unwrap();
    for i in 1..=8 {
        topic
            .publish(Event::new().data(format!("e{i}")))
            .await
            .unwrap();
    }
    let server = start(&hub, false);
    let mut r = Reader::open(&server.url("/events/r"), &[("last-event-id", &old_id)]).await;
    let evs = r.events(1, PROMPT).await;
    assert_eq!(evs[0].event, "gap");
    assert!(evs[0].data.contains("\"after\":null"), "{:?}", evs[0].data);
    topic.publish(Event::new().data("e9")).await.unwrap();
    let evs = r.events(1, PROMPT).await;
    assert_eq!(ids_data(&evs), [(topic.event_id(9), "e9".to_owned())]);
    server.stop().await;
}
