#![allow(clippy::unwrap_used)]
//! End-to-end tests: a real axum server on loopback, a real HTTP/1.1 client (reqwest).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use sse_axum::{LastEventId, Negotiate, SseResponse, SubscribeRejection};
use sse_core::hub::{Access, SubscribeOptions, TopicConfig, TopicOptions};
use sse_core::{Event, Hub};
use sse_testkit::sse::{data, header, ids, wait_for, SseClient};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::compression::CompressionLayer;

const WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// The app under test

async fn events(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
    LastEventId(last): LastEventId,
    headers: HeaderMap,
) -> Result<SseResponse, SubscribeRejection> {
    let mut opts = SubscribeOptions::topic(topic).last_event_id(last);
    if let Some(user) = headers.get("x-user").and_then(|v| v.to_str().ok()) {
        opts = opts.user(user);
    }
    sse_axum::subscribe(&hub, opts).await
}

/// A stream that starts with this connection's own frame, from the app's state.
async fn prefixed(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
    LastEventId(last): LastEventId,
) -> Result<SseResponse, SubscribeRejection> {
    let status = Event::new()
        .event("initial_status")
        .data(format!("hello {topic}"))
        .encode()
        .unwrap();
    let opts = SubscribeOptions::topic(topic).last_event_id(last);
    Ok(sse_axum::subscribe(&hub, opts).await?.prefix([status]))
}

/// Content negotiation: the state as JSON, or a stream of it.
async fn status(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
    negotiate: Negotiate,
) -> Response {
    if negotiate.is_event_stream() {
        return sse_axum::subscribe(&hub, topic.as_str())
            .await
            .into_response();
    }
    match hub.get_topic(&topic) {
        Some(t) => Json(serde_json::json!({ "last_seq": t.last_seq() })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The seed use case: the response to an upload streams that upload's job.
async fn upload(body: String) -> SseResponse<impl sse_core::body::FrameSource> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event<'static>>(8);
    tokio::spawn(async move {
        for page in 1..=3 {
            let ev = Event::new()
                .event("progress")
                .id(page.to_string())
                .data(format!("{page}/3 of {} bytes", body.len()));
            if tx.send(ev).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = tx.send(Event::new().event("completed").data("done")).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await?;
        Some((ev, rx))
    });
    // `.fuse()`: sse-core's `StreamSource` polls the stream again after it returned
    // `Ready(None)` when that came after items in the same poll; `unfold` panics on that.
    SseResponse::from_stream(Box::pin(stream.fuse()))
}

/// Every option: retry hint first, own cache-control, fast heartbeats, a stream that never yields.
async fn custom() -> impl IntoResponse {
    SseResponse::from_stream(futures_util::stream::pending::<Event<'static>>())
        .retry(Duration::from_millis(1500))
        .cache_control(HeaderValue::from_static("no-store"))
        .heartbeat(Some(Duration::from_millis(50)))
}

fn app(hub: Hub) -> Router {
    Router::new()
        .route("/events/{topic}", get(events))
        .route("/status/{topic}", get(status))
        .route("/prefixed/{topic}", get(prefixed))
        .route("/upload", post(upload))
        .route("/custom", get(custom))
        .with_state(hub)
}

// ---------------------------------------------------------------------------------------------
// Harness

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn serve(hub: &Hub, router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let signal = sse_axum::shutdown_signal(hub.clone(), async {
        let _ = rx.await;
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
    });
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

async fn start(hub: &Hub) -> Server {
    serve(hub, app(hub.clone())).await
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        sse_testkit::sse::get(&self.url(path), headers).await
    }

    async fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Client {
        let resp = self.get(path, headers).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        Client::new(resp)
    }
}

/// A streaming response and its decoder.
type Client = SseClient<reqwest::Response>;

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_first_byte_at_once() {
    let hub = Hub::new();
    hub.topic("t").unwrap();
    let srv = start(&hub).await;
    let mut c = srv.stream("/events/t", &[]).await;
    assert_eq!(header(&c.body, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&c.body, "cache-control"), Some("no-cache"));
    assert_eq!(header(&c.body, "x-accel-buffering"), Some("no"));
    // Nothing is published: the first frame alone arrives.
    assert_eq!(c.chunk().await.unwrap(), b": ok\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_order_then_terminal_ends_body() {
    let hub = Hub::new();
    let t = hub.topic("job").unwrap();
    let srv = start(&hub).await;
    let mut c = srv.stream("/events/job", &[]).await;
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

async fn resume(query: bool) {
    let hub = Hub::new();
    let t = hub.topic("r").unwrap();
    let srv = start(&hub).await;
    let mut c = srv.stream("/events/r", &[]).await;
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
    let last = &seen[2].last_event_id;
    assert_eq!(*last, t.event_id(3));
    let mut c = if query {
        srv.stream(&format!("/events/r?lastEventId={last}"), &[])
            .await
    } else {
        srv.stream("/events/r", &[("last-event-id", last)]).await
    };
    t.finish(Event::new().event("completed").data("x"))
        .await
        .unwrap();
    let evs = c.rest().await;
    let want: Vec<String> = (4..=9).map(|i| t.event_id(i)).collect();
    assert_eq!(ids(&evs), want);
    let datas: Vec<_> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(datas, ["4", "5", "6", "7", "8", "x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_last_event_id_header() {
    resume(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_last_event_id_query() {
    resume(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_outcomes_map_to_statuses() {
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
    let srv = start(&hub).await;

    // Finished, and the client saw the terminal event: 204, no body.
    let last = done.event_id(last);
    let r = srv.get("/events/done", &[("last-event-id", &last)]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());

    let r = srv.get("/events/nope", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), "topic not found\n");

    // Topic limit.
    let _held = srv.stream("/events/small", &[]).await;
    let r = srv.get("/events/small", &[]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Per-user limit.
    let _mine = srv.stream("/events/open", &[("x-user", "bob")]).await;
    let r = srv.get("/events/open", &[("x-user", "bob")]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Access hook.
    let r = srv.get("/events/private", &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, "www-authenticate"), Some("Bearer"));
    let r = srv.get("/events/private", &[("x-user", "mallory")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let _ok = srv.stream("/events/private", &[("x-user", "alice")]).await;

    // Shutting down: 503.
    hub.begin_shutdown();
    let r = srv.get("/events/open", &[]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_releases_subscription() {
    let hub = Hub::new();
    let t = hub.topic("d").unwrap();
    let srv = start(&hub).await;
    let mut c = srv.stream("/events/d", &[]).await;
    c.chunk().await.unwrap();
    let mut c2 = srv.stream("/events/d", &[]).await;
    c2.chunk().await.unwrap();
    assert_eq!(hub.subscriber_count(), 2);
    drop(c);
    wait_for("one subscriber left", || hub.subscriber_count() == 1).await;
    // The other stream is unaffected.
    t.publish(data(1)).await.unwrap();
    assert_eq!(c2.event().await.unwrap().data, "1");
    drop(c2);
    wait_for("no subscriber left", || hub.subscriber_count() == 0).await;
    assert_eq!(t.subscriber_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_open_streams() {
    let hub = Hub::new();
    hub.topic("s").unwrap();
    let mut srv = start(&hub).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = srv.stream("/events/s", &[]).await;
        c.chunk().await.unwrap();
        clients.push(c);
    }
    assert_eq!(hub.subscriber_count(), 3);
    srv.stop.take().unwrap().send(()).unwrap();
    for c in &mut clients {
        assert!(c.rest().await.is_empty());
        let raw = String::from_utf8_lossy(&c.raw).into_owned();
        assert!(raw.contains(": server shutting down"), "{raw:?}");
        assert!(c.ended);
    }
    tokio::time::timeout(WAIT, srv.task)
        .await
        .expect("server exits within its deadline")
        .unwrap()
        .unwrap();
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_layer_leaves_stream_alone() {
    let hub = Hub::new();
    let t = hub.topic("z").unwrap();
    let srv = serve(&hub, app(hub.clone()).layer(CompressionLayer::new())).await;
    let mut c = srv
        .stream("/events/z", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(header(&c.body, "content-encoding"), Some("identity"));
    assert_eq!(c.chunk().await.unwrap(), b": ok\n\n");
    t.publish(Event::new().data("a".repeat(2000)))
        .await
        .unwrap();
    // Arrives promptly and in clear, while the stream stays open.
    let e = c.event().await.unwrap();
    assert_eq!(e.data.len(), 2000);
    assert!(!c.ended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_is_coalesced_and_lone_event_is_prompt() {
    let hub = Hub::new();
    let t = hub.topic("c").unwrap();
    let srv = start(&hub).await;
    let mut c = srv.stream("/events/c", &[]).await;
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
    // A lone event later is not held back waiting for company.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = std::time::Instant::now();
    t.publish(data(101)).await.unwrap();
    let e = c.event().await.unwrap();
    assert_eq!(e.data, "101");
    assert!(sent.elapsed() < Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_response_streams_its_job() {
    let hub = Hub::new();
    let srv = start(&hub).await;
    let resp = tokio::time::timeout(
        WAIT,
        reqwest::Client::new()
            .post(srv.url("/upload"))
            .body("0123456789")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("text/event-stream"));
    let mut c = Client::new(resp);
    let evs = c.rest().await;
    let names: Vec<_> = evs.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["progress", "progress", "progress", "completed"]);
    assert_eq!(evs[2].data, "3/3 of 10 bytes");
    assert_eq!(evs[3].last_event_id, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_extractor() {
    let hub = Hub::new();
    let t = hub.topic("n").unwrap();
    t.publish(data(1)).await.unwrap();
    let srv = start(&hub).await;
    let r = srv
        .get("/status/n", &[("accept", "application/json")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["last_seq"], 1);
    let r = srv.get("/status/n", &[]).await;
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    let mut c = srv
        .stream("/status/n", &[("accept", "text/event-stream")])
        .await;
    assert_eq!(header(&c.body, "content-type"), Some("text/event-stream"));
    t.publish(data(2)).await.unwrap();
    assert_eq!(c.event().await.unwrap().data, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_options_first_frame_cache_control_heartbeat() {
    let hub = Hub::new();
    let srv = start(&hub).await;
    let mut c = srv.stream("/custom", &[]).await;
    assert_eq!(header(&c.body, "cache-control"), Some("no-store"));
    // The retry hint first; the stream never yields, so then only heartbeats.
    c.heartbeats(3).await;
    assert_eq!(c.dec.retry(), Some(Duration::from_millis(1500)));
    assert!(c.dec.next_event().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_of_results_reports_errors_in_band() {
    let hub = Hub::new();
    let router = Router::new().route(
        "/r",
        get(|| async {
            let items: Vec<Result<Event<'static>, &'static str>> = vec![
                Ok(Event::new().data("a")),
                Err("boom"),
                Ok(Event::new().data("b")),
            ];
            SseResponse::from_stream(futures_util::stream::iter(items))
        }),
    );
    let srv = serve(&hub, router).await;
    let mut c = srv.stream("/r", &[]).await;
    let evs = c.rest().await;
    let datas: Vec<_> = evs.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(datas, ["a", "b"]);
    let raw = String::from_utf8_lossy(&c.raw).into_owned();
    assert!(raw.contains(": event dropped: boom\n"), "{raw:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_frames_come_after_the_first_frame_and_before_the_subscription() {
    let hub = Hub::new();
    let t = hub.topic("p").unwrap();
    t.publish_keyed("status", Event::new().event("status").data("queued"))
        .await
        .unwrap();
    let srv = start(&hub).await;
    let mut c = srv.stream("/prefixed/p", &[]).await;
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
    // Refusals are not prefixed: 204 for a client that saw the end.
    let r = srv
        .get("/prefixed/p", &[("last-event-id", &t.event_id(2))])
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_from_before_a_restart_gets_a_gap_over_http() {
    // The id a client kept from the server's previous run.
    let before = Hub::new();
    let old = before.topic("r").unwrap();
    for i in 1..=5 {
        old.publish(data(i)).await.unwrap();
    }
    let old_id = old.event_id(5);
    // The restarted server's topic of the same name is further along.
    let hub = Hub::new();
    let t = hub.topic("r").unwrap();
    for i in 1..=8 {
        t.publish(data(i)).await.unwrap();
    }
    let srv = start(&hub).await;
    let mut c = srv.stream("/events/r", &[("last-event-id", &old_id)]).await;
    let gap = c.event().await.unwrap();
    assert_eq!(gap.event, "gap");
    let v: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(v["after"], serde_json::Value::Null);
    // Then live events of the new incarnation, never 6..=8 as if they followed the old 5.
    t.publish(data(9)).await.unwrap();
    let e = c.event().await.unwrap();
    assert_eq!(e.data, "9");
    assert_eq!(e.last_event_id, t.event_id(9));
    // A bare number still means a position in the current incarnation.
    let mut c = srv.stream("/events/r?lastEventId=7", &[]).await;
    let e = c.event().await.unwrap();
    assert_eq!((e.data.as_str(), e.last_event_id), ("8", t.event_id(8)));
}
