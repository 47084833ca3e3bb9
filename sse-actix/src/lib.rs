//! [actix-web](https://actix.rs) adapter for [`sse_core`]: Server-Sent Events responses,
//! subscribe rejections, extractors and graceful shutdown.
//!
//! ```no_run
//! use actix_web::{get, web, App, HttpServer};
//! use sse_actix::{subscribe, LastEventId, SseResponse, SubscribeRejection};
//! use sse_core::{hub::SubscribeOptions, Hub};
//!
//! #[get("/jobs/{id}/events")]
//! async fn events(
//!     hub: web::Data<Hub>,
//!     id: web::Path<String>,
//!     last: LastEventId,
//! ) -> Result<SseResponse, SubscribeRejection> {
//!     // 200 + event stream, or 204 / 404 / 429 / 401 / 403 / 503 with a plain-text reason.
//!     subscribe(&hub, SubscribeOptions::topic(id.into_inner()).last_event_id(last.0)).await
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = Hub::new();
//!     let data = web::Data::new(hub.clone());
//!     HttpServer::new(move || App::new().app_data(data.clone()).service(events))
//!         // Notice a client that went away at once, not at the next write (see "Disconnects").
//!         .h1_allow_half_closed(false)
//!         // On Ctrl-C: end every event stream first, so the graceful stop does not wait for them.
//!         .shutdown_signal(sse_actix::shutdown_signal(hub, async {
//!             let _ = actix_web::rt::signal::ctrl_c().await;
//!         }))
//!         .bind(("127.0.0.1", 8080))?
//!         .run()
//!         .await
//! }
//! ```
//!
//! * [`SseResponse`]: a [`Responder`] over a [`Subscription`] or any stream of events: status
//!   200, the headers of [`sse_core::http::stream_headers`], and a body that sends the first frame
//!   at once, coalesces ready frames into one chunk and sends heartbeats (see [`SseBody`]).
//! * [`SubscribeRejection`]: a [`ResponseError`] for a refused subscribe, with the status of
//!   [`sse_core::http::status_for`]; [`subscribe`] combines both.
//! * Extractors: [`LastEventId`] (header, then `lastEventId` query parameter) and
//!   [`Negotiate`] (`Accept` negotiation), named and shaped as in `sse-axum`.
//!
//! # Disconnects
//!
//! When actix notices that a client went away, it drops the response body and with it the
//! [`Subscription`]: the subscriber is gone from the hub at once.
//!
//! Over HTTP/1.1 actix notices a closed connection on an idle stream only with
//! [`HttpServer::h1_allow_half_closed`]`(false)`; with actix's default (`true`) it notices only
//! when a write fails, that is at the first or second event or heartbeat after the client left
//! (heartbeats: [`HubConfig::heartbeat`](sse_core::hub::HubConfig::heartbeat), 15 s by default,
//! or [`SseResponse::heartbeat`]).
//!
//! # Compression
//!
//! The response declares `Content-Encoding: identity`, so [`actix_web::middleware::Compress`]
//! leaves it alone and events are never held back in a compressor's buffer.
//!
//! # Graceful shutdown
//!
//! An event stream never ends on its own, so a graceful stop of the server
//! ([`ServerHandle::stop`]`(true)`, SIGTERM) would wait for the shutdown timeout (30 s by
//! default). Call [`Hub::begin_shutdown`] first: every stream then sends a final frame and ends,
//! and the server exits as soon as its connections are closed. [`graceful_shutdown`] does both,
//! and [`shutdown_signal`] wraps a signal future for [`HttpServer::shutdown_signal`] (actix-web
//! 4.11 or later; older versions also keep idle keep-alive connections open during a graceful
//! stop).
//!
//! # Timeouts and connection limits
//!
//! actix-web bounds slow clients by itself; the settings that matter for a server with
//! long-lived event streams, on [`HttpServer`]:
//!
//! * [`client_request_timeout`](actix_web::HttpServer::client_request_timeout) (default 5 s):
//!   time to receive a request head; a client too slow gets `408 Request Timeout` and the
//!   connection is closed. Keep it (a few seconds); `0` disables it, which lets a client that
//!   sends a header one byte at a time hold a connection forever.
//! * [`keep_alive`](actix_web::HttpServer::keep_alive) (default 5 s): how long an idle
//!   connection waits for its next request. An open event stream is a response being written,
//!   not an idle connection: neither this nor the request timeout ever cuts it.
//! * [`max_connections`](actix_web::HttpServer::max_connections) (default 25 000 **per
//!   worker**): at the cap a worker stops accepting; new connections wait in the listen backlog
//!   ([`backlog`](actix_web::HttpServer::backlog)) until one closes. Size it for your streams:
//!   every open event stream holds one connection (HTTP/1.1) for as long as it is open.
//! * [`client_disconnect_timeout`](actix_web::HttpServer::client_disconnect_timeout) (default
//!   1 s): time allowed to close a connection cleanly.
//!
//! ```no_run
//! use std::time::Duration;
//! use actix_web::{App, HttpServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! HttpServer::new(|| App::new())
//!     .client_request_timeout(Duration::from_secs(10))
//!     .keep_alive(Duration::from_secs(30))
//!     .max_connections(10_000)
//!     .h1_allow_half_closed(false)
//!     .bind(("0.0.0.0", 8080))?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! [`HttpServer::shutdown_signal`]: actix_web::HttpServer::shutdown_signal
//! [`HttpServer::h1_allow_half_closed`]: actix_web::HttpServer::h1_allow_half_closed
//! [`HttpServer`]: actix_web::HttpServer

use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServerHandle};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError};
use bytes::Bytes;
use futures_core::Stream;
use sse_core::body::{FrameSource, IntoFrame, StreamSource};
use sse_core::http::Negotiated;
use sse_core::hub::{SubscribeError, SubscribeOptions};
use sse_core::{Hub, SseBody, StreamResponse, Subscription};

pub use sse_core;

/// An event-stream response: a [`Responder`] over a [`Subscription`] (the default) or any
/// [`FrameSource`].
///
/// Responds with status 200, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
/// `X-Accel-Buffering: no` and `Content-Encoding: identity`, and an [`SseStreamBody`].
///
/// ```
/// use std::time::Duration;
/// use sse_actix::SseResponse;
/// use sse_core::Event;
///
/// // Any `Unpin` stream of events, frames or `Result<Event, E>` (pin it with `Box::pin` if needed).
/// let events = futures_util::stream::iter([Event::new().data("a"), Event::new().data("b")]);
/// let response = SseResponse::from_stream(events)
///     .retry(Duration::from_secs(3))
///     .heartbeat(Some(Duration::from_secs(30)));
/// # drop(response);
/// ```
#[must_use = "a response does nothing unless returned from a handler"]
#[derive(Debug)]
pub struct SseResponse<S = Subscription>(StreamResponse<S>);

impl SseResponse<Subscription> {
    /// A response over a hub subscription, with the hub's heartbeat interval.
    pub fn new(subscription: Subscription) -> Self {
        SseResponse(StreamResponse::new(subscription))
    }
}

impl From<Subscription> for SseResponse<Subscription> {
    fn from(subscription: Subscription) -> Self {
        SseResponse::new(subscription)
    }
}

impl<St> SseResponse<StreamSource<St>>
where
    St: Stream + Unpin,
    St::Item: IntoFrame,
{
    /// A response over any `Unpin` stream of [`Event`](sse_core::Event)s, [`Frame`](sse_core::Frame)s or
    /// `Result`s of them (an `Err` is sent as a comment), with 15 s heartbeats. The body ends when
    /// the stream ends.
    pub fn from_stream(stream: St) -> Self {
        SseResponse(StreamResponse::from_stream(stream))
    }
}

impl<S: FrameSource> SseResponse<S> {
    /// A response over a configured [`SseBody`].
    pub fn from_body(body: SseBody<S>) -> Self {
        SseResponse(StreamResponse::from_body(body))
    }

    sse_core::__forward_stream_response!();

    /// Replaces the `Cache-Control` value (default `no-cache`).
    pub fn cache_control(self, value: HeaderValue) -> Self {
        match compat::to_core_value(&value) {
            Some(v) => SseResponse(self.0.cache_control(v)),
            None => self,
        }
    }

    /// The body, for building a custom response (the event-stream headers are then up to you).
    pub fn into_body(self) -> SseStreamBody<S> {
        SseStreamBody {
            inner: self.0.into_body(),
        }
    }
}

impl<S: FrameSource> From<StreamResponse<S>> for SseResponse<S> {
    fn from(inner: StreamResponse<S>) -> Self {
        SseResponse(inner)
    }
}

impl<S: FrameSource + 'static> Responder for SseResponse<S> {
    type Body = SseStreamBody<S>;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse<Self::Body> {
        let (headers, body) = self.0.into_parts();
        let pairs = headers.pairs();
        let mut res = HttpResponse::with_body(StatusCode::OK, SseStreamBody::new(body));
        for (name, value) in &pairs {
            if let Some((name, value)) = compat::header(name, value) {
                res.headers_mut().insert(name, value);
            }
        }
        res
    }
}

/// The body of an [`SseResponse`]: an actix [`MessageBody`] over an [`SseBody`]. Each chunk the
/// `SseBody` coalesces is one body chunk.
#[must_use = "a body does nothing unless polled by a server"]
pub struct SseStreamBody<S = Subscription> {
    inner: SseBody<S>,
}

impl<S> fmt::Debug for SseStreamBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SseStreamBody").field(&self.inner).finish()
    }
}

impl<S: FrameSource> SseStreamBody<S> {
    /// Wraps `body`.
    pub fn new(body: SseBody<S>) -> Self {
        SseStreamBody { inner: body }
    }

    /// The wrapped body.
    pub fn get_ref(&self) -> &SseBody<S> {
        &self.inner
    }
}

impl<S: FrameSource> MessageBody for SseStreamBody<S> {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().inner.poll_chunk(cx).map(|c| c.map(Ok))
    }
}

/// A refused subscribe as an actix [`ResponseError`]: 204 (finished, the client has everything),
/// 404, 429, 401 (with `WWW-Authenticate: Bearer`), 403, 400 or 503, with a one-line plain-text
/// body (none for 204). See [`sse_core::http::error_response_parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRejection(pub SubscribeError);

impl From<SubscribeError> for SubscribeRejection {
    fn from(err: SubscribeError) -> Self {
        SubscribeRejection(err)
    }
}

impl fmt::Display for SubscribeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SubscribeRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ResponseError for SubscribeRejection {
    fn status_code(&self) -> StatusCode {
        compat::status(sse_core::http::status_for(&self.0))
    }

    /// The refusal's response. Logs it once, with its status and reason (see
    /// [`sse_core::http::log_refusal`]).
    fn error_response(&self) -> HttpResponse<BoxBody> {
        let (status, headers, body) = sse_core::http::error_response_parts(&self.0);
        sse_core::http::log_refusal(&self.0, status);
        let mut res = HttpResponse::new(compat::status(status));
        for (name, value) in &headers {
            if let Some((name, value)) = compat::header(name, value) {
                res.headers_mut().insert(name, value);
            }
        }
        if body.is_empty() {
            res
        } else {
            res.set_body(BoxBody::new(body))
        }
    }
}

/// Subscribes with `options` ([`Hub::subscribe`]) and wraps the subscription in an
/// [`SseResponse`], or returns the rejection (204, 404, 429, 401, 403, 400 or 503).
pub async fn subscribe(
    hub: &Hub,
    options: impl Into<SubscribeOptions>,
) -> Result<SseResponse, SubscribeRejection> {
    Ok(SseResponse::new(hub.subscribe(options).await?))
}

/// Extracts the client's last event id: the `Last-Event-ID` header, else the `lastEventId` query
/// parameter (for a plain `EventSource`'s first request). Empty values count as absent. Never
/// fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

impl LastEventId {
    /// The id, if any.
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

impl FromRequest for LastEventId {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let headers = compat::core_headers(req, "last-event-id");
        let id = sse_core::http::last_event_id(&headers, Some(req.query_string()));
        ready(Ok(LastEventId(id)))
    }
}

/// Extracts what the client's `Accept` header prefers: an event stream or JSON (q-values
/// honoured; no header means JSON). See [`sse_core::http::negotiate`]. Never fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiate(pub Negotiated);

impl Negotiate {
    /// Whether the client prefers `text/event-stream`.
    pub fn is_event_stream(self) -> bool {
        self.0 == Negotiated::EventStream
    }
}

impl FromRequest for Negotiate {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let n = sse_core::http::negotiate(accept);
        ready(Ok(Negotiate(n)))
    }
}

/// Ends every event stream of `hub` ([`Hub::begin_shutdown`]: each sends a final frame and
/// ends), then stops the server gracefully and waits until it has stopped. Requests in flight
/// finish; new subscribes get 503.
pub async fn graceful_shutdown(hub: &Hub, server: &ServerHandle) {
    hub.begin_shutdown();
    server.stop(true).await;
}

/// Waits for `signal`, then begins the shutdown of `hub`. Pass the result to
/// [`HttpServer::shutdown_signal`](actix_web::HttpServer::shutdown_signal): the server's graceful
/// stop then does not wait for open event streams.
pub async fn shutdown_signal<F>(hub: Hub, signal: F)
where
    F: Future<Output = ()>,
{
    signal.await;
    hub.begin_shutdown();
}

/// Conversions between the `http` 1.x types of `sse_core` and the `http` 0.2 types of actix-web,
/// by their string and numeric forms.
mod compat {
    use actix_web::http::header::{HeaderName, HeaderValue};
    use actix_web::http::StatusCode;
    use actix_web::HttpRequest;

    pub(crate) fn status(status: http::StatusCode) -> StatusCode {
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub(crate) fn header(
        name: &http::HeaderName,
        value: &http::HeaderValue,
    ) -> Option<(HeaderName, HeaderValue)> {
        Some((
            HeaderName::from_bytes(name.as_str().as_bytes()).ok()?,
            HeaderValue::from_bytes(value.as_bytes()).ok()?,
        ))
    }

    pub(crate) fn to_core_value(value: &HeaderValue) -> Option<http::HeaderValue> {
        http::HeaderValue::from_bytes(value.as_bytes()).ok()
    }

    /// The request's headers named `name`, as an `http` 1.x map.
    pub(crate) fn core_headers(req: &HttpRequest, name: &'static str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for value in req.headers().get_all(name) {
            if let Some(v) = to_core_value(value) {
                map.append(http::HeaderName::from_static(name), v);
            }
        }
        map
    }
}
