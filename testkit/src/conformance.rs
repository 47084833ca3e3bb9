//! One conformance suite for every adapter: the behaviour a user gets from `sse-axum`,
//! `sse-actix` and `sse-hyper` alike, checked over real sockets with a real HTTP client.
//!
//! An adapter's test file builds [the standard app](Adapter) with its framework, exactly as its
//! docs show, and calls [`conformance_tests!`](crate::conformance_tests) once, which generates
//! one `#[tokio::test]` per check. What only one framework has (actix's half-closed
//! connections, hyper's HTTP/2, each framework's compression middleware) stays in that
//! adapter's own tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use sse_core::hub::{Access, TopicConfig, TopicOptions};
use sse_core::{Event, Hub};

use crate::sse::{data, get, header, ids, wait_for, SseClient};

/// How long a server may take to exit after its stop signal.
const EXIT: Duration = Duration::from_secs(5);

/// A running server of the standard app.
pub struct Running {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    /// Starts a graceful stop (the framework's own, with the hub's shutdown first, as each
    /// adapter's docs show).
    pub stop: Box<dyn FnOnce() + Send>,
    /// Resolves when the server has exited.
    pub exited: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

/// An adapter under test: starts the standard app for a hub.
///
/// The standard app has these routes, each written with the adapter's own front door:
///
/// | route | handler |
/// | --- | --- |
/// | `GET /events/{topic}` | `subscribe` with the `Last-Event-ID` extractor (header, else `lastEventId` query) and the `x-user` header as the user key |
/// | `GET /prefixed/{topic}` | the same, with `.prefix([event: initial_status, data: hello {topic}])` |
/// | `GET /status/{topic}` | content negotiation: the stream if the client prefers `text/event-stream`, else JSON `{"last_seq": N}` (404 if unknown) |
/// | `GET /custom` | a user stream that never yields, with `.retry(1500 ms)`, `Cache-Control: no-store` and 50 ms heartbeats |
/// | `GET /results` | a user stream of `Ok(data: a)`, `Err("boom")`, `Ok(data: b)` |
/// | `POST /upload` | a user stream answering an upload: three `progress` events with ids `1`..`3` and data `{page}/3 of {body length} bytes`, 5 ms apart, then `completed` |
pub trait Adapter {
    /// Starts the standard app for `hub` on 127.0.0.1 port 0.
    fn start(hub: Hub) -> impl Future<Output = Running> + Send;
}

async fn stream(addr: SocketAddr, path: &str, h: &[(&str, &str)]) -> SseClient<reqwest::Response> {
    let resp = get(&format!("http://{addr}{path}"), h).await;
    assert_eq!(resp.status(), 200, "{path}");
    SseClient::new(resp)
}

async fn status(addr: SocketAddr, path: &str, h: &[(&str, &str)]) -> reqwest::Response {
    get(&format!("http://{addr}{path}"), h).await
}

/// The event-stream headers and the first frame arrive at once, before any event.
pub async fn headers_and_first_byte_at_once<A: Adapter>() {
    let hub = Hub::new();
    hub.topic("t").unwrap();
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/events/t", &[]).await;
    assert_eq!(header(&c.body, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&c.body, "cache-control"), Some("no-cache"));
    assert_eq!(header(&c.body, "x-accel-buffering"), Some("no"));
    assert_eq!(header(&c.body, "content-encoding"), Some("identity"));
    assert_eq!(c.chunk().await.unwrap(), b": ok\n\n");
}

/// Events arrive in order with the hub's ids, and the terminal event ends the body.
pub async fn events_in_order_then_the_terminal_event_ends_the_body<A: Adapter>() {
    let hub = Hub::new();
    let t = hub.topic("job").unwrap();
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/events/job", &[]).await;
    c.chunk().await.unwrap();
    for i in 1..=20 {
        t.publish(data(i)).await.unwrap();
    }
    t.finish(Event::new().event("completed").data("bye"))
        .await
        .unwrap();
    let evs = c.rest().await;
    let want: Vec<String> = (1..=21).map(|i| t.event_id(i)).collect();
    assert_eq!(ids(&evs), want);
    assert_eq!(evs[4].data, "5");
    assert_eq!(evs[20].event, "completed");
    assert!(c.ended);
}

async fn resume<A: Adapter>(query: bool) {
    let hub = Hub::new();
    let t = hub.topic("r").unwrap();
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/events/r", &[]).await;
    for i in 1..=5 {
        t.publish(data(i)).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(c.event().await.unwrap());
    }
    drop(c);
    for i in 6..=8 {
        t.publish(data(i)).await.unwrap();
    }
    let last = seen[2].last_event_id.clone();
    assert_eq!(last, t.event_id(3));
    let mut c = if query {
        stream(srv.addr, &format!("/events/r?lastEventId={last}"), &[]).await
    } else {
        stream(srv.addr, "/events/r", &[("last-event-id", &last)]).await
    };
    t.finish(Event::new().event("completed").data("x"))
        .await
        .unwrap();
    let evs = c.rest().await;
    let want: Vec<String> = (4..=9).map(|i| t.event_id(i)).collect();
    assert_eq!(ids(&evs), want);
    let datas: Vec<_> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(datas, ["4", "5", "6", "7", "8", "x"]);
    // The terminal id: nothing new, 204, so an EventSource stops.
    let r = status(srv.addr, "/events/r", &[("last-event-id", &t.event_id(9))]).await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
}

/// A `Last-Event-ID` header resumes exactly after that event.
pub async fn a_last_event_id_header_resumes_exactly<A: Adapter>() {
    resume::<A>(false).await;
}

/// A `lastEventId` query parameter (plain `EventSource`) resumes exactly after that event.
pub async fn a_last_event_id_query_parameter_resumes_exactly<A: Adapter>() {
    resume::<A>(true).await;
}

/// Every refusal has its status: 204, 404, 429 (topic and user limits), 401 with
/// `WWW-Authenticate`, 403, and 503 while shutting down.
pub async fn subscribe_refusals_map_to_statuses<A: Adapter>() {
    let hub = Hub::builder()
        .max_subscriptions_per_user(1)
        .authorize(|r| match (r.owner, r.user) {
            (Some(_), None) => Access::Unauthenticated,
            (Some(o), Some(u)) if o != u => Access::Forbidden,
            _ => Access::Allow,
        })
        .build();
    let done = hub.topic("done").unwrap();
    let last = done
        .finish(Event::new().event("completed").data("x"))
        .await
        .unwrap();
    hub.create_topic(
        "small",
        TopicOptions::new().config(TopicConfig::default().max_subscribers(1)),
    )
    .unwrap();
    hub.create_topic("private", TopicOptions::new().owner("alice"))
        .unwrap();
    hub.topic("open").unwrap();
    let srv = A::start(hub.clone()).await;
    let a = srv.addr;

    let r = status(
        a,
        "/events/done",
        &[("last-event-id", &done.event_id(last))],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());

    let r = status(a, "/events/nope", &[]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "topic not found\n");

    let _held = stream(a, "/events/small", &[]).await;
    let r = status(a, "/events/small", &[]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), Some("1"));

    let _mine = stream(a, "/events/open", &[("x-user", "bob")]).await;
    let r = status(a, "/events/open", &[("x-user", "bob")]).await;
    assert_eq!(r.status(), 429);

    let r = status(a, "/events/private", &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), Some("Bearer"));
    let r = status(a, "/events/private", &[("x-user", "mallory")]).await;
    assert_eq!(r.status(), 403);
    let _ok = stream(a, "/events/private", &[("x-user", "alice")]).await;

    hub.begin_shutdown();
    let r = status(a, "/events/open", &[]).await;
    assert_eq!(r.status(), 503);
}

/// A client that goes away is gone from the hub promptly; the others are unaffected.
pub async fn a_client_that_disconnects_is_released<A: Adapter>() {
    let hub = Hub::new();
    let t = hub.topic("d").unwrap();
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/events/d", &[]).await;
    c.chunk().await.unwrap();
    let mut c2 = stream(srv.addr, "/events/d", &[]).await;
    c2.chunk().await.unwrap();
    assert_eq!(hub.subscriber_count(), 2);
    drop(c);
    // Some servers notice a closed connection only when they write: an event does that.
    t.publish(data(1)).await.unwrap();
    wait_for("one subscriber left", || hub.subscriber_count() == 1).await;
    assert_eq!(c2.event().await.unwrap().data, "1");
    drop(c2);
    t.publish(data(2)).await.unwrap();
    wait_for("no subscriber left", || hub.subscriber_count() == 0).await;
    assert_eq!(t.subscriber_count(), 0);
}

/// A graceful stop ends every open stream with the final frame, and the server exits.
pub async fn a_graceful_stop_ends_open_streams_and_the_server_exits<A: Adapter>() {
    let hub = Hub::new();
    hub.topic("s").unwrap();
    let srv = A::start(hub.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = stream(srv.addr, "/events/s", &[]).await;
        c.chunk().await.unwrap();
        clients.push(c);
    }
    assert_eq!(hub.subscriber_count(), 3);
    (srv.stop)();
    for c in &mut clients {
        assert!(c.rest().await.is_empty());
        let raw = c.raw();
        assert!(raw.contains(": server shutting down"), "{raw:?}");
        assert!(c.ended);
    }
    tokio::time::timeout(EXIT, srv.exited)
        .await
        .expect("the server exits after its streams end");
    assert_eq!(hub.subscriber_count(), 0);
}

/// A burst leaves in few chunks (one write per wakeup), and a lone event is not held back.
pub async fn a_burst_is_coalesced_and_a_lone_event_is_prompt<A: Adapter>() {
    let hub = Hub::new();
    let t = hub.topic("c").unwrap();
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/events/c", &[]).await;
    c.chunk().await.unwrap();
    let before = c.chunks;
    for i in 1..=100 {
        t.publish(data(i)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 100 {
        got.push(c.event().await.unwrap());
    }
    assert_eq!(got.last().unwrap().last_event_id, t.event_id(100));
    let used = c.chunks - before;
    assert!(used < 100, "{used} chunks for 100 events");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = std::time::Instant::now();
    t.publish(data(101)).await.unwrap();
    assert_eq!(c.event().await.unwrap().data, "101");
    assert!(sent.elapsed() < Duration::from_millis(500));
}

/// The response to an upload can stream that upload's job (a user stream with its own ids).
pub async fn an_upload_response_streams_its_job<A: Adapter>() {
    let srv = A::start(Hub::new()).await;
    let resp = tokio::time::timeout(
        crate::sse::WAIT,
        reqwest::Client::new()
            .post(format!("http://{}/upload", srv.addr))
            .body("0123456789")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("text/event-stream"));
    let mut c = SseClient::new(resp);
    let evs = c.rest().await;
    let names: Vec<_> = evs.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["progress", "progress", "progress", "completed"]);
    assert_eq!(evs[2].data, "3/3 of 10 bytes");
    assert_eq!(evs[3].last_event_id, "3");
}

/// The negotiation helper tells a stream request from a JSON one.
pub async fn negotiation_chooses_a_stream_or_json<A: Adapter>() {
    let hub = Hub::new();
    let t = hub.topic("n").unwrap();
    t.publish(data(1)).await.unwrap();
    let srv = A::start(hub.clone()).await;
    let r = status(srv.addr, "/status/n", &[("accept", "application/json")]).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["last_seq"], 1);
    let r = status(srv.addr, "/status/n", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").is_some_and(|v| v.starts_with("application/json")));
    let mut c = stream(srv.addr, "/status/n", &[("accept", "text/event-stream")]).await;
    assert_eq!(header(&c.body, "content-type"), Some("text/event-stream"));
    t.publish(data(2)).await.unwrap();
    assert_eq!(c.event().await.unwrap().data, "2");
}

/// Response options: the retry hint first, the cache-control given, heartbeats on an idle
/// stream.
pub async fn response_options_set_the_first_frame_cache_control_and_heartbeats<A: Adapter>() {
    let srv = A::start(Hub::new()).await;
    let mut c = stream(srv.addr, "/custom", &[]).await;
    assert_eq!(header(&c.body, "cache-control"), Some("no-store"));
    c.heartbeats(3).await;
    assert_eq!(c.dec.retry(), Some(Duration::from_millis(1500)));
    assert!(c.dec.next_event().is_none());
}

/// An `Err` item of a user stream becomes a comment; the stream goes on, uncorrupted.
pub async fn a_user_stream_reports_errors_in_band<A: Adapter>() {
    let srv = A::start(Hub::new()).await;
    let mut c = stream(srv.addr, "/results", &[]).await;
    let evs = c.rest().await;
    let datas: Vec<_> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(datas, ["a", "b"]);
    let raw = c.raw();
    assert!(raw.contains(": event dropped: boom\n"), "{raw:?}");
}

/// Per-connection frames come right after the first frame and before the subscription's.
pub async fn prefix_frames_come_after_the_first_frame_and_before_the_subscription<A: Adapter>() {
    let hub = Hub::new();
    let t = hub.topic("p").unwrap();
    t.publish_keyed("status", Event::new().event("status").data("queued"))
        .await
        .unwrap();
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/prefixed/p", &[]).await;
    t.finish(Event::new().event("completed").data("done"))
        .await
        .unwrap();
    let evs = c.rest().await;
    let want = format!(
        ": ok\n\nevent: initial_status\ndata: hello p\n\n\
         event: status\ndata: queued\nid: {}\n\nevent: completed\ndata: done\nid: {}\n\n",
        t.event_id(1),
        t.event_id(2)
    );
    assert_eq!(c.raw(), want);
    assert_eq!(evs.len(), 3);
    let r = status(
        srv.addr,
        "/prefixed/p",
        &[("last-event-id", &t.event_id(2))],
    )
    .await;
    assert_eq!(r.status(), 204);
}

/// An id from before a restart gets a `gap`, never a silent resume in the new incarnation; a
/// bare number still means a position in the current one.
pub async fn an_id_from_before_a_restart_gets_a_gap<A: Adapter>() {
    let before = Hub::new();
    let old = before.topic("r").unwrap();
    for i in 1..=5 {
        old.publish(data(i)).await.unwrap();
    }
    let old_id = old.event_id(5);
    let hub = Hub::new();
    let t = hub.topic("r").unwrap();
    for i in 1..=8 {
        t.publish(data(i)).await.unwrap();
    }
    let srv = A::start(hub.clone()).await;
    let mut c = stream(srv.addr, "/events/r", &[("last-event-id", &old_id)]).await;
    let gap = c.event().await.unwrap();
    assert_eq!(gap.event, "gap");
    let v: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(v["after"], serde_json::Value::Null);
    t.publish(data(9)).await.unwrap();
    let e = c.event().await.unwrap();
    assert_eq!(e.data, "9");
    assert_eq!(e.last_event_id, t.event_id(9));
    let mut c = stream(srv.addr, "/events/r?lastEventId=7", &[]).await;
    let e = c.event().await.unwrap();
    assert_eq!((e.data.as_str(), e.last_event_id), ("8", t.event_id(8)));
}

/// Generates one `#[tokio::test]` per conformance check for an [`Adapter`].
///
/// ```ignore
/// struct Axum;
/// impl sse_testkit::conformance::Adapter for Axum { /* start the standard app */ }
/// sse_testkit::conformance_tests!(Axum);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:ty) => {
        $crate::conformance_tests!(@tests $adapter;
            headers_and_first_byte_at_once,
            events_in_order_then_the_terminal_event_ends_the_body,
            a_last_event_id_header_resumes_exactly,
            a_last_event_id_query_parameter_resumes_exactly,
            subscribe_refusals_map_to_statuses,
            a_client_that_disconnects_is_released,
            a_graceful_stop_ends_open_streams_and_the_server_exits,
            a_burst_is_coalesced_and_a_lone_event_is_prompt,
            an_upload_response_streams_its_job,
            negotiation_chooses_a_stream_or_json,
            response_options_set_the_first_frame_cache_control_and_heartbeats,
            a_user_stream_reports_errors_in_band,
            prefix_frames_come_after_the_first_frame_and_before_the_subscription,
            an_id_from_before_a_restart_gets_a_gap,
        );
    };
    (@tests $adapter:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::conformance::$check::<$adapter>().await;
            }
        )*
    };
}
