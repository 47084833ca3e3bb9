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
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub};
use sse_testkit::conformance::{Adapter, Running};
use sse_testkit::sse::{header, SseClient};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::compression::CompressionLayer;

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

/// A user stream with an error in the middle.
async fn results() -> impl IntoResponse {
    let items: Vec<Result<Event<'static>, &'static str>> = vec![
        Ok(Event::new().data("a")),
        Err("boom"),
        Ok(Event::new().data("b")),
    ];
    SseResponse::from_stream(futures_util::stream::iter(items))
}

/// The conformance suite's standard app (see `sse_testkit::conformance::Adapter`).
fn app(hub: Hub) -> Router {
    Router::new()
        .route("/events/{topic}", get(events))
        .route("/status/{topic}", get(status))
        .route("/prefixed/{topic}", get(prefixed))
        .route("/upload", post(upload))
        .route("/custom", get(custom))
        .route("/results", get(results))
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
// The shared conformance suite, then what only axum has

struct Axum;

impl Adapter for Axum {
    async fn start(hub: Hub) -> Running {
        let srv = start(&hub).await;
        let mut stop = srv.stop;
        Running {
            addr: srv.addr,
            stop: Box::new(move || {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }),
            exited: Box::pin(async move {
                let _ = srv.task.await;
            }),
        }
    }
}

sse_testkit::conformance_tests!(Axum);

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
