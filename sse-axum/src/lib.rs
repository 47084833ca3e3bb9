//! [axum] adapter for [`sse_core`]: event-stream responses, subscribe rejections, extractors
//! and graceful shutdown.
//!
//! ```no_run
//! use axum::{extract::{Path, State}, routing::get, Router};
//! use sse_axum::{LastEventId, SseResponse, SubscribeRejection};
//! use sse_core::{hub::SubscribeOptions, Hub};
//!
//! async fn events(
//!     State(hub): State<Hub>,
//!     Path(topic): Path<String>,
//!     LastEventId(last): LastEventId,
//! ) -> Result<SseResponse, SubscribeRejection> {
//!     // 200 + event stream, or 204 / 404 / 429 / 401 / 403 / 503 from the hub's answer.
//!     // With a backplane, the same code waits for this node's copy to catch up first.
//!     sse_axum::subscribe(&hub, SubscribeOptions::topic(topic).last_event_id(last)).await
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new();
//! let app = Router::new()
//!     .route("/events/{topic}", get(events))
//!     .with_state(hub.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app)
//!     // On Ctrl-C: every open stream gets a final frame and ends, so the server can exit.
//!     .with_graceful_shutdown(sse_axum::shutdown_signal(hub, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     }))
//!     .await
//! # }
//! ```
//!
//! A user stream (for example one job streamed as the response to its upload) becomes a
//! response with [`SseResponse::from_stream`].
//!
//! # Timeouts and a connection cap in production
//!
//! `axum::serve` sets no timeout on reading a request head and no cap on connections: a client
//! that sends a request head one byte every few seconds holds a connection (a socket, a task,
//! buffers) for as long as it likes, and enough of them exhaust the server. `tower_http`'s
//! timeout layers cannot help, as they start once the head has arrived. Internet-facing
//! servers should run the router on `sse_hyper`'s server loop instead, which bounds the time to
//! receive a request head (10 s by default; HTTP/2 connections get keep-alive pings), caps open
//! connections (10 000 by default) and shuts down gracefully like [`shutdown_signal`] does.
//! Open event streams are never cut by these: a stream is a response being written, and its
//! heartbeats keep proxies from closing it. It takes `sse-hyper` and `hyper-util` (feature
//! `service`) as dependencies:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use hyper_util::service::TowerToHyperService;
//! use sse_core::Hub;
//! use sse_hyper::ServeOptions;
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "ok" }))
//!     .with_state(hub.clone());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! let options = ServeOptions::default()
//!     .header_read_timeout(Some(std::time::Duration::from_secs(10)))
//!     .max_connections(Some(10_000));
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! // On Ctrl-C every stream gets its final frame and ends; connections still open after the
//! // shutdown deadline (5 s by default) are closed.
//! sse_hyper::serve_with(listener, TowerToHyperService::new(app), hub, shutdown, options).await;
//! # Ok(())
//! # }
//! ```
//!
//! (Handlers that need the peer address take it from a middleware that reads it from the
//! connection, as `ConnectInfo` is a feature of `axum::serve`.) Behind a reverse proxy that
//! already enforces these limits (nginx's `client_header_timeout`, an L7 load balancer),
//! `axum::serve` is fine as it is.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use futures_core::Stream;
use http::request::Parts;
use http::HeaderValue;
use sse_core::body::{FrameSource, IntoFrame, StreamSource};
use sse_core::http::Negotiated;
use sse_core::hub::{SubscribeError, SubscribeOptions};
use sse_core::{Hub, SseBody, StreamResponse, Subscription};

pub use sse_core;

/// An event-stream response: `200`, the headers of [`sse_core::http::stream_headers`] and an
/// [`SseBody`] (first frame at once, coalesced chunks, heartbeats). A thin wrapper of
/// [`sse_core::StreamResponse`], the builder every adapter shares.
///
/// Built from a hub [`Subscription`] ([`SseResponse::new`], or [`subscribe`]) or from any
/// stream of events ([`SseResponse::from_stream`]).
#[must_use = "a response does nothing unless returned from a handler"]
#[derive(Debug)]
pub struct SseResponse<S = Subscription>(StreamResponse<S>);

impl SseResponse<Subscription> {
    /// A response streaming `subscription`, with the hub's heartbeat interval.
    pub fn new(subscription: Subscription) -> Self {
        SseResponse(StreamResponse::new(subscription))
    }
}

impl<S> SseResponse<StreamSource<S>>
where
    S: Stream + Unpin,
    S::Item: IntoFrame,
{
    /// A response streaming any stream of [`Event`](sse_core::Event)s, [`Frame`](sse_core::Frame)s or
    /// `Result`s of them (an `Err` becomes a comment), with 15 s heartbeats. The body ends when
    /// the stream ends.
    ///
    /// The stream must be `Unpin`: wrap others in `Box::pin`.
    pub fn from_stream(stream: S) -> Self {
        SseResponse(StreamResponse::from_stream(stream))
    }
}

impl<S: FrameSource> SseResponse<S> {
    /// A response over a body configured by hand.
    pub fn from_body(body: SseBody<S>) -> Self {
        SseResponse(StreamResponse::from_body(body))
    }

    sse_core::__forward_stream_response!();

    /// Replaces the `Cache-Control` value (default `no-cache`).
    pub fn cache_control(self, value: HeaderValue) -> Self {
        SseResponse(self.0.cache_control(value))
    }

    /// The body, for use outside axum.
    pub fn into_body(self) -> SseBody<S> {
        self.0.into_body()
    }
}

impl<S: FrameSource> From<StreamResponse<S>> for SseResponse<S> {
    fn from(inner: StreamResponse<S>) -> Self {
        SseResponse(inner)
    }
}

impl<S> IntoResponse for SseResponse<S>
where
    S: FrameSource + Send + 'static,
{
    fn into_response(self) -> Response {
        self.0.into_http().map(Body::new)
    }
}

/// Subscribes with `options` ([`Hub::subscribe`]) and turns the outcome into a response: an
/// [`SseResponse`], or a [`SubscribeRejection`] (204, 404, 429, 401, 403, 400 or 503).
pub async fn subscribe(
    hub: &Hub,
    options: impl Into<SubscribeOptions>,
) -> Result<SseResponse, SubscribeRejection> {
    Ok(SseResponse::new(hub.subscribe(options).await?))
}

/// A refused subscribe as a response; see [`sse_core::http::error_response_parts`] for the
/// status of each [`SubscribeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRejection(pub SubscribeError);

impl From<SubscribeError> for SubscribeRejection {
    fn from(err: SubscribeError) -> Self {
        SubscribeRejection(err)
    }
}

impl fmt::Display for SubscribeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SubscribeRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for SubscribeRejection {
    /// The refusal's response. Logs it once, with its status and reason (see
    /// [`sse_core::http::log_refusal`]).
    fn into_response(self) -> Response {
        let (status, headers, body) = sse_core::http::error_response_parts(&self.0);
        sse_core::http::log_refusal(&self.0, status);
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = status;
        res.headers_mut().extend(headers);
        res
    }
}

/// Extracts the client's last event id: the `Last-Event-ID` header, else the `lastEventId`
/// query parameter (see [`sse_core::http::last_event_id`]). Never rejects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

impl<St: Send + Sync> FromRequestParts<St> for LastEventId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Infallible> {
        Ok(LastEventId(sse_core::http::last_event_id(
            &parts.headers,
            parts.uri.query(),
        )))
    }
}

/// Extracts what the client's `Accept` header prefers: an event stream or JSON (see
/// [`sse_core::http::negotiate`]). Never rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiate(pub Negotiated);

impl Negotiate {
    /// Whether the client prefers `text/event-stream`.
    pub fn is_event_stream(self) -> bool {
        self.0 == Negotiated::EventStream
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Negotiate {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Infallible> {
        Ok(Negotiate(sse_core::http::negotiate_headers(&parts.headers)))
    }
}

/// A graceful-shutdown signal for [`axum::serve()`]: waits for `signal`, then starts the hub's
/// shutdown ([`Hub::begin_shutdown`]), so every open stream gets its final frame and ends and
/// the server's connections can close.
///
/// Streams built with [`SseResponse::from_stream`] are not ended by the hub: end them yourself,
/// or bound the wait with a timeout around the server future.
pub async fn shutdown_signal(hub: Hub, signal: impl Future<Output = ()>) {
    signal.await;
    hub.begin_shutdown();
}

/// The README's quick start, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeQuickStart;
