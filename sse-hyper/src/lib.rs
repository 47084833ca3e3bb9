//! [hyper] 1.x adapter for [`sse_core`]: event-stream responses, subscribe rejections, request
//! helpers, and a server loop (HTTP/1.1 and HTTP/2) with graceful shutdown.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use hyper::body::Incoming;
//! use hyper::{Request, Response};
//! use sse_core::{hub::SubscribeOptions, Hub};
//! use sse_hyper::SseResponseBody;
//!
//! async fn handle(hub: Hub, req: Request<Incoming>) -> Result<Response<SseResponseBody>, Infallible> {
//!     let Some(topic) = req.uri().path().strip_prefix("/events/") else {
//!         return Ok(sse_hyper::status(http::StatusCode::NOT_FOUND));
//!     };
//!     let options = SubscribeOptions::topic(topic).last_event_id(sse_hyper::last_event_id(&req));
//!     // 200 + event stream, or 204 / 404 / 429 / 401 / 403 / 503 from the hub's answer.
//!     Ok(sse_hyper::subscribe(&hub, options).await)
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new();
//! let service = hyper::service::service_fn({
//!     let hub = hub.clone();
//!     move |req| handle(hub.clone(), req)
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! // Serves HTTP/1.1 and HTTP/2 (prior knowledge); on Ctrl-C every stream gets its final
//! // frame and ends, and connections still open after 5 s are closed.
//! let clean = sse_hyper::serve(listener, service, hub, shutdown, Duration::from_secs(5)).await;
//! # let _ = clean;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame as BodyFrame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use sse_core::body::{FrameSource, IntoFrame, StreamSource};
use sse_core::http::{Negotiated, StreamHeaders};
use sse_core::hub::{SubscribeError, SubscribeOptions};
use sse_core::{Hub, SseBody, Subscription};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use sse_core;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An event-stream response over a configured body: `200` and the headers of `headers`.
pub fn body_response<S: FrameSource>(
    body: SseBody<S>,
    headers: &StreamHeaders,
) -> Response<SseBody<S>> {
    let mut res = Response::new(body);
    headers.apply(res.headers_mut());
    res
}

/// An event-stream response over a hub subscription (default headers, the hub's heartbeat).
/// For other settings, build a [`StreamResponse`](sse_core::StreamResponse) (the builder every
/// adapter shares) and call its `into_http`.
pub fn response(subscription: Subscription) -> Response<SseBody> {
    sse_core::StreamResponse::new(subscription).into_http()
}

/// An event-stream response over any `Unpin` stream of [`Event`](sse_core::Event)s,
/// [`Frame`](sse_core::Frame)s or `Result`s of them (an `Err` becomes a comment), with 15 s
/// heartbeats. The body ends when the stream ends.
pub fn stream_response<S>(stream: S) -> Response<SseBody<StreamSource<S>>>
where
    S: Stream + Unpin,
    S::Item: IntoFrame,
{
    sse_core::StreamResponse::from_stream(stream).into_http()
}

/// The response for a refused subscribe; see [`sse_core::http::error_response_parts`].
pub fn rejection(err: &SubscribeError) -> Response<Full<Bytes>> {
    let (status, headers, body) = sse_core::http::error_response_parts(err);
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().extend(headers);
    res
}

/// Subscribes with `options` ([`Hub::subscribe`]): an event-stream response, or the rejection
/// (204, 404, 429, 401, 403, 400 or 503) as one body type.
///
/// Per-connection frames go in with `Response::map` and [`SseResponseBody::prefix`]:
///
/// ```
/// # async fn handler(hub: sse_core::Hub) -> http::Response<sse_hyper::SseResponseBody> {
/// let status = sse_core::Event::new().event("initial_status").data("queued").encode().unwrap();
/// sse_hyper::subscribe(&hub, "job-1").await.map(|body| body.prefix([status]))
/// # }
/// ```
pub async fn subscribe(
    hub: &Hub,
    options: impl Into<SubscribeOptions>,
) -> Response<SseResponseBody> {
    match hub.subscribe(options).await {
        Ok(sub) => response(sub).map(SseResponseBody::Stream),
        Err(err) => rejection(&err).map(SseResponseBody::Full),
    }
}

/// An empty response with `status`, in the shared body type.
pub fn status<S>(status: StatusCode) -> Response<SseResponseBody<S>> {
    let mut res = Response::new(SseResponseBody::Full(Full::default()));
    *res.status_mut() = status;
    res
}

/// The client's last event id: the `Last-Event-ID` header, else the `lastEventId` query
/// parameter (see [`sse_core::http::last_event_id`]).
pub fn last_event_id<B>(req: &Request<B>) -> Option<String> {
    sse_core::http::last_event_id(req.headers(), req.uri().query())
}

/// What the request's `Accept` header prefers (see [`sse_core::http::negotiate`]).
pub fn negotiate<B>(req: &Request<B>) -> Negotiated {
    sse_core::http::negotiate_headers(req.headers())
}

/// A response body that is either an event stream or a fixed body, so one service can return
/// streams and refusals as one type. (Services that stream several kinds of source can use
/// `http_body_util::BodyExt::boxed_unsync` instead.)
#[derive(Debug)]
pub enum SseResponseBody<S = Subscription> {
    /// An event stream.
    Stream(SseBody<S>),
    /// A fixed body (a refusal, JSON, …).
    Full(Full<Bytes>),
}

impl<S> From<SseBody<S>> for SseResponseBody<S> {
    fn from(body: SseBody<S>) -> Self {
        SseResponseBody::Stream(body)
    }
}

impl<S> From<Full<Bytes>> for SseResponseBody<S> {
    fn from(body: Full<Bytes>) -> Self {
        SseResponseBody::Full(body)
    }
}

impl<S> SseResponseBody<S> {
    /// A fixed body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        SseResponseBody::Full(Full::new(bytes.into()))
    }
}

impl<S: FrameSource> SseResponseBody<S> {
    /// Frames for this connection only, sent after the first frame and before the stream's own
    /// (see [`SseBody::prefix`]); a fixed body is left as it is.
    pub fn prefix(self, frames: impl IntoIterator<Item = sse_core::Frame>) -> Self {
        match self {
            SseResponseBody::Stream(b) => SseResponseBody::Stream(b.prefix(frames)),
            full => full,
        }
    }
}

impl<S: FrameSource> Body for SseResponseBody<S> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        match self.get_mut() {
            SseResponseBody::Stream(b) => Pin::new(b).poll_frame(cx),
            SseResponseBody::Full(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SseResponseBody::Stream(b) => b.is_end_stream(),
            SseResponseBody::Full(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SseResponseBody::Stream(b) => Body::size_hint(b),
            SseResponseBody::Full(b) => Body::size_hint(b),
        }
    }
}

/// hyper-util's [`GracefulShutdown`] tied to a hub: connections are watched as usual, and
/// [`Graceful::shutdown`] first ends every hub stream (final frame, see
/// [`Hub::begin_shutdown`]) so that the connections can actually finish.
#[derive(Debug)]
pub struct Graceful {
    hub: Hub,
    inner: GracefulShutdown,
}

impl Graceful {
    /// Watches connections on behalf of `hub`.
    pub fn new(hub: Hub) -> Self {
        Graceful {
            hub,
            inner: GracefulShutdown::new(),
        }
    }

    /// Wraps a connection so that [`Graceful::shutdown`] shuts it down gracefully.
    pub fn watch<C: GracefulConnection>(&self, conn: C) -> impl Future<Output = C::Output> {
        self.inner.watch(conn)
    }

    /// Ends every hub stream, asks every watched connection to finish (HTTP/1.1: no
    /// keep-alive; HTTP/2: GOAWAY) and waits for them, at most `deadline`. Returns whether all
    /// finished in time.
    ///
    /// Streams not backed by the hub ([`stream_response`]) end only when their stream does.
    pub async fn shutdown(self, deadline: Duration) -> bool {
        self.hub.begin_shutdown();
        tokio::time::timeout(deadline, self.inner.shutdown())
            .await
            .is_ok()
    }
}

/// Serves `service` on `listener`, HTTP/1.1 and HTTP/2 (h2c prior knowledge), until `signal`
/// resolves; then shuts down gracefully with [`Graceful::shutdown`] and closes the connections
/// still open after `deadline`. Returns whether every connection finished in time.
///
/// Failed accepts (for example too many open files) are retried after a short pause.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    hub: Hub,
    signal: impl Future<Output = ()>,
    deadline: Duration,
) -> bool
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = Graceful::new(hub);
    let mut conns = JoinSet::new();
    let mut signal = pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let conn = builder
                        .serve_connection(TokioIo::new(tcp), service.clone())
                        .into_owned();
                    let conn = graceful.watch(conn);
                    conns.spawn(async move {
                        // A connection error concerns that connection only.
                        let _ = conn.await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
    drop(listener);
    let clean = graceful.shutdown(deadline).await;
    conns.shutdown().await;
    clean
}
