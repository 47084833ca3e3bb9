//! A real SSE server for the client's tests: axum + [`sse_axum`] over a [`Hub`], served by
//! hyper on 127.0.0.1, optionally over TLS, that records every request it gets and can be
//! killed (all its connections cut) and started again on the same port.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use sse_axum::{SseResponse, SubscribeRejection};
use sse_core::body::FrameSource;
use sse_core::hub::SubscribeOptions;
use sse_core::Hub;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Every wait in a test is bounded by this.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The most connections one server accepts (its accept loop is bounded).
const MAX_CONNECTIONS: usize = 1000;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

#[derive(Clone)]
struct AppState {
    hub: Hub,
    log: Arc<Mutex<Vec<Recorded>>>,
}

/// Query parameters of `/topic/{name}`.
#[derive(Debug, serde::Deserialize)]
struct TopicQuery {
    /// End the response after this many frames of the subscription.
    take: Option<usize>,
    /// Start with `retry: MS`.
    retry: Option<u64>,
    /// Heartbeat interval in ms (default: the hub's).
    heartbeat: Option<u64>,
}

fn record(state: &AppState, method: Method, path: String, headers: HeaderMap, body: Bytes) {
    state.log.lock().push(Recorded {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    });
}

/// `/topic/{name}`: a hub subscription resuming from `Last-Event-ID`.
async fn topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<TopicQuery>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let last = sse_core::http::last_event_id(&headers, None);
    record(&state, method, format!("/topic/{name}"), headers, body);
    let options = SubscribeOptions::topic(name)
        .last_event_id(last)
        .create_if_missing(true);
    let subscription = match state.hub.subscribe(options).await {
        Ok(s) => s,
        Err(e) => return SubscribeRejection(e).into_response(),
    };
    match query.take {
        Some(n) => {
            configure(SseResponse::from_stream(subscription.take(n)), &query).into_response()
        }
        None => configure(SseResponse::new(subscription), &query).into_response(),
    }
}

/// Applies `retry` and `heartbeat`.
fn configure<S: FrameSource>(mut response: SseResponse<S>, query: &TopicQuery) -> SseResponse<S> {
    if let Some(ms) = query.retry {
        response = response.retry(Duration::from_millis(ms));
    }
    if let Some(ms) = query.heartbeat {
        response = response.heartbeat(Some(Duration::from_millis(ms)));
    }
    response
}

/// `/status/{code}`: that status, with a text body.
async fn status(
    State(state): State<AppState>,
    Path(code): Path<u16>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        method,
        format!("/status/{code}"),
        headers,
        Bytes::new(),
    );
    let status = StatusCode::from_u16(code).unwrap();
    (status, "not a stream").into_response()
}

/// `/html`: 200 with an HTML page.
async fn html(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    record(&state, method, "/html".into(), headers, Bytes::new());
    (
        [("content-type", "text/html; charset=utf-8")],
        "<html></html>",
    )
        .into_response()
}

/// `/hang`: an event-stream head and one comment, then nothing, ever.
async fn hang(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    record(&state, method, "/hang".into(), headers, Bytes::new());
    let body = futures_util::stream::once(async { Ok::<_, Infallible>(Bytes::from(": hi\n\n")) })
        .chain(futures_util::stream::pending());
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `/empty`: an event stream that ends at once, without an event.
async fn empty(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    record(&state, method, "/empty".into(), headers, Bytes::new());
    ([("content-type", "text/event-stream")], ": bye\n\n").into_response()
}

/// The routes, over `hub`, recording requests into `log`.
pub fn app(hub: Hub, log: Arc<Mutex<Vec<Recorded>>>) -> Router {
    Router::new()
        .route("/topic/{name}", get(topic).post(topic))
        .route("/status/{code}", get(status))
        .route("/html", get(html))
        .route("/hang", get(hang))
        .route("/empty", get(empty))
        .with_state(AppState { hub, log })
}

/// A running server. Dropping it kills it.
pub struct Server {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub log: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1 with a new hub.
    pub async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::on(listener, Hub::new(), Arc::default(), None)
    }

    /// Starts a server on `listener`.
    pub fn on(
        listener: TcpListener,
        hub: Hub,
        log: Arc<Mutex<Vec<Recorded>>>,
        tls: Option<TlsAcceptor>,
    ) -> Server {
        let addr = listener.local_addr().unwrap();
        let router = app(hub.clone(), log.clone());
        let task = tokio::spawn(async move {
            // Owns every connection: when the server task is aborted, they all go with it.
            let mut connections = JoinSet::new();
            for _ in 0..MAX_CONNECTIONS {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let service = TowerToHyperService::new(router.clone());
                let tls = tls.clone();
                connections.spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Server {
            addr,
            hub,
            log,
            task,
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().clone()
    }

    /// Kills the server: stops accepting and cuts every open connection; waits until it is gone.
    pub async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
