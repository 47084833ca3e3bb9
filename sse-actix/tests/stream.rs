//! Event-stream responses through a real actix server: headers, first byte, order, resume,
//! terminal events, coalescing, compression, options and extractors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use actix_web::FromRequest;
use common::{get, start, Reader, PROMPT};
use sse_actix::{LastEventId, Negotiate};
use sse_core::http::Negotiated;
use sse_core::{Event, Hub};

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
        let got = Negotiate::extract(&req.to_http_request()).await.unwrap();
        assert_eq!(got.is_event_stream(), want, "{accept:?}");
        let expected = if want {
            Negotiated::EventStream
        } else {
            Negotiated::Json
        };
        assert_eq!(got.0, expected, "{accept:?}");
    }
}
