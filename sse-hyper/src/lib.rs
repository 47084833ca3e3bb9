//! [hyper] 1.x adapter for [`sse_core`]: event-stream responses, subscribe rejections, request
//! helpers, and a server loop (HTTP/1.1 and HTTP/2) with graceful shutdown, timeouts and a
//! connection cap ([`serve`], [`serve_with`] and [`ServeOptions`]: by default a client must send
//! a request head within 10 s, and at most 10 000 connections are open at once; open event
//! streams are never cut by either).
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame as BodyFrame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use sse_core::body::{FrameSource, IntoFrame, StreamSource};
use sse_core::http::{Negotiated, StreamHeaders};
use sse_core::hub::{SubscribeError, SubscribeOptions};
use sse_core::{Hub, SseBody, Subscription};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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

/// The response for a refused subscribe; see [`sse_core::http::error_response_parts`]. Logs
/// the refusal once, with its status and reason (see [`sse_core::http::log_refusal`]).
pub fn rejection(err: &SubscribeError) -> Response<Full<Bytes>> {
    let (status, headers, body) = sse_core::http::error_response_parts(err);
    sse_core::http::log_refusal(err, status);
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

/// What [`serve_with`] does with a connection accepted while
/// [`ServeOptions::max_connections`] are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Close it at once, before reading anything (the default). Costs the server nothing, which
    /// matters most when it is overloaded, and a browser's `EventSource` treats it as a network
    /// error: it reconnects after its retry delay.
    Close,
    /// Read the request and answer `503 Service Unavailable` with `Retry-After` (whole seconds,
    /// at least 1), then close. Clearer to load balancers and HTTP clients; note that a
    /// browser's `EventSource` treats a 503 as final and does not reconnect by itself. At most
    /// 64 connections are answered this way at once; beyond that they are closed.
    ServiceUnavailable {
        /// The `Retry-After` to send.
        retry_after: Duration,
    },
}

/// Settings of [`serve_with`]: timeouts that close idle or slow connections, and a cap on
/// connections. The defaults suit a server exposed to the internet; none of them ever cuts an
/// open event stream (a stream is a response being written, not a request being read).
///
/// ```
/// use std::time::Duration;
/// use sse_hyper::{Refusal, ServeOptions};
///
/// let options = ServeOptions::default()
///     .header_read_timeout(Some(Duration::from_secs(5)))
///     .max_connections(Some(50_000))
///     .refusal(Refusal::ServiceUnavailable { retry_after: Duration::from_secs(2) })
///     .shutdown_deadline(Duration::from_secs(10));
/// # drop(options);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Time a client has to send a whole request head (default 10 s): the first request of a
    /// connection (from the moment it is accepted, HTTP/1.1 and HTTP/2 alike) and every next
    /// one on a kept-alive HTTP/1.1 connection (from the end of the previous response). A
    /// connection that has not sent it in time is closed. `None`: no bound (not advised: a
    /// client that sends a byte now and then holds a connection forever).
    pub header_read_timeout: Option<Duration>,
    /// Interval of HTTP/2 keep-alive pings (default 20 s): a connection whose peer does not
    /// answer a ping within [`http2_keep_alive_timeout`](Self::http2_keep_alive_timeout) is
    /// closed. A live client answers pings, so its streams carry on. `None`: no pings.
    pub http2_keep_alive_interval: Option<Duration>,
    /// Time allowed for the answer to an HTTP/2 keep-alive ping (default 20 s).
    pub http2_keep_alive_timeout: Duration,
    /// Most connections open at once (default 10 000); the next ones are refused as
    /// [`refusal`](Self::refusal) says. `None`: no cap (the process's file limit is the cap).
    pub max_connections: Option<usize>,
    /// What happens to a connection beyond the cap (default [`Refusal::Close`]).
    pub refusal: Refusal,
    /// On shutdown, how long connections get to finish before they are closed (default 5 s).
    pub shutdown_deadline: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Some(Duration::from_secs(10)),
            http2_keep_alive_interval: Some(Duration::from_secs(20)),
            http2_keep_alive_timeout: Duration::from_secs(20),
            max_connections: Some(10_000),
            refusal: Refusal::Close,
            shutdown_deadline: Duration::from_secs(5),
        }
    }
}

impl ServeOptions {
    /// Sets the time allowed for a request head (`None`, or zero: no bound).
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_read_timeout = timeout.filter(|d| !d.is_zero());
        self
    }

    /// Sets the HTTP/2 keep-alive ping interval (`None`, or zero: no pings) and the time
    /// allowed for an answer.
    pub fn http2_keep_alive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.http2_keep_alive_interval = interval.filter(|d| !d.is_zero());
        self.http2_keep_alive_timeout = timeout;
        self
    }

    /// Sets the cap on open connections (`None`: no cap; at least 1).
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.max_connections = max.map(|n| n.max(1));
        self
    }

    /// Sets what happens to a connection beyond the cap.
    pub fn refusal(mut self, refusal: Refusal) -> Self {
        self.refusal = refusal;
        self
    }

    /// Sets how long connections get to finish on shutdown.
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout);
        builder
    }
}

/// Most connections answered with a 503 at once (see [`Refusal::ServiceUnavailable`]).
const MAX_REFUSING: usize = 64;

/// Serves `service` on `listener`, HTTP/1.1 and HTTP/2 (h2c prior knowledge), until `signal`
/// resolves; then shuts down gracefully with [`Graceful::shutdown`] and closes the connections
/// still open after `deadline`. Returns whether every connection finished in time.
///
/// The timeouts and the connection cap of [`ServeOptions::default`] apply (a request head
/// within 10 s, at most 10 000 connections); [`serve_with`] sets them.
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
    let options = ServeOptions::default().shutdown_deadline(deadline);
    serve_with(listener, service, hub, signal, options).await
}

/// [`serve`] with `options`: serves `service` on `listener` until `signal` resolves, closes
/// connections that do not send a request head in time, refuses connections beyond the cap,
/// then shuts down gracefully (at most [`ServeOptions::shutdown_deadline`]). Returns whether
/// every connection finished in time.
///
/// ```no_run
/// # use std::time::Duration;
/// # async fn run(service: impl hyper::service::Service<hyper::Request<hyper::body::Incoming>,
/// #     Response = hyper::Response<sse_hyper::SseResponseBody>, Error = std::convert::Infallible,
/// #     Future: Send + 'static> + Clone + Send + 'static, hub: sse_core::Hub) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// let options = sse_hyper::ServeOptions::default().max_connections(Some(50_000));
/// let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
/// sse_hyper::serve_with(listener, service, hub, shutdown, options).await;
/// # Ok(())
/// # }
/// ```
pub async fn serve_with<S, B>(
    listener: TcpListener,
    service: S,
    hub: Hub,
    signal: impl Future<Output = ()>,
    options: ServeOptions,
) -> bool
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = options.builder();
    let mut refuser = options.builder();
    refuser.http1().keep_alive(false);
    let slots = options
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let head_timeout = options.header_read_timeout;
    let graceful = Graceful::new(hub);
    let mut conns = JoinSet::new();
    let mut signal = pin!(signal);
    // Troubles are logged once when they start and once when they end, never per connection.
    let mut failed_accepts = 0u64;
    let mut refused = 0u64;
    loop {
        tokio::select! {
            () = &mut signal => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    if failed_accepts > 0 {
                        tracing::info!(failed = failed_accepts, "accepting connections again");
                        failed_accepts = 0;
                    }
                    let permit = match &slots {
                        None => None,
                        Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                            Ok(p) => Some(p),
                            Err(_) => {
                                if refused == 0 {
                                    tracing::warn!(
                                        max_connections = options.max_connections,
                                        refusal = ?options.refusal,
                                        "connection cap reached: refusing new connections"
                                    );
                                }
                                refused += 1;
                                refuse(&refuser, &options, &refusing, tcp, &mut conns);
                                continue;
                            }
                        },
                    };
                    if refused > 0 {
                        tracing::info!(refused, "below the connection cap again");
                        refused = 0;
                    }
                    let seen = Arc::new(AtomicBool::new(false));
                    let service = FirstRequest {
                        inner: service.clone(),
                        seen: Arc::clone(&seen),
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(tcp), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    conns.spawn(async move {
                        let _permit = permit;
                        // A connection error concerns that connection only.
                        let _ = first_request_within(conn, head_timeout, &seen).await;
                    });
                }
                Err(error) => {
                    if failed_accepts == 0 {
                        tracing::warn!(%error, "accepting a connection failed: retrying");
                    }
                    failed_accepts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    reap(&mut conns);
    tracing::info!(
        connections = conns.len(),
        deadline_ms = u64::try_from(options.shutdown_deadline.as_millis()).unwrap_or(u64::MAX),
        "server shutdown begun"
    );
    let clean = graceful.shutdown(options.shutdown_deadline).await;
    reap(&mut conns);
    let remaining = conns.len();
    conns.shutdown().await;
    tracing::info!(
        clean,
        closed_at_deadline = remaining,
        "server shutdown done"
    );
    clean
}

/// Forgets the connection tasks that have finished, so that `conns.len()` counts open ones.
fn reap(conns: &mut JoinSet<()>) {
    for _ in 0..conns.len() {
        if conns.try_join_next().is_none() {
            break;
        }
    }
}

/// Runs `conn`; drops it (closing the connection) if no request reached the service within
/// `limit`. hyper bounds later heads of a kept-alive HTTP/1.1 connection itself, but not the
/// choice between HTTP/1.1 and HTTP/2 nor an HTTP/2 connection that never sends a request.
async fn first_request_within<F: Future>(
    conn: F,
    limit: Option<Duration>,
    seen: &AtomicBool,
) -> Option<F::Output> {
    let mut conn = pin!(conn);
    if let Some(limit) = limit {
        tokio::select! {
            out = &mut conn => return Some(out),
            () = tokio::time::sleep(limit) => {}
        }
        if !seen.load(Ordering::Acquire) {
            return None;
        }
    }
    Some(conn.await)
}

/// Refuses a connection beyond the cap, as `options.refusal` says.
fn refuse(
    builder: &auto::Builder<TokioExecutor>,
    options: &ServeOptions,
    refusing: &Arc<Semaphore>,
    tcp: tokio::net::TcpStream,
    conns: &mut JoinSet<()>,
) {
    let Refusal::ServiceUnavailable { retry_after } = options.refusal else {
        // Dropped: closed at once.
        return;
    };
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    let secs = retry_after.as_secs().max(1);
    let service = hyper::service::service_fn(move |_req: Request<Incoming>| async move {
        let mut res = Response::new(Full::new(Bytes::from_static(
            b"too many connections, retry later\n",
        )));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        Ok::<_, Infallible>(res)
    });
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .into_owned();
    // Bounded in time as well as in number: an HTTP/2 client could keep it open.
    let limit = options
        .header_read_timeout
        .unwrap_or(Duration::from_secs(10))
        + Duration::from_secs(1);
    conns.spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(limit, conn).await;
    });
}

/// The service of one connection: notes that a request arrived.
#[derive(Clone)]
struct FirstRequest<S> {
    inner: S,
    seen: Arc<AtomicBool>,
}

impl<S, R> Service<R> for FirstRequest<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        self.seen.store(true, Ordering::Release);
        self.inner.call(req)
    }
}
