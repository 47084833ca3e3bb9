//! [`StreamResponse`]: the one event-stream response builder that every adapter wraps.
//!
//! It holds the body ([`SseBody`]: first frame, per-connection prefix frames, heartbeats,
//! coalescing) and the headers ([`StreamHeaders`]: `Content-Type`, `Cache-Control`,
//! `X-Accel-Buffering`, `Content-Encoding: identity`). `sse-axum`, `sse-actix` and `sse-hyper`
//! turn it into their framework's response; the builder methods are the same in all three
//! because they are this type's.

use std::time::Duration;

use futures_core::Stream;
use http::HeaderValue;

use crate::body::{FrameSource, IntoFrame, StreamSource};
use crate::http::StreamHeaders;
use crate::{Frame, SseBody, Subscription};

/// An event-stream response before it meets a framework: `200`, the event-stream headers, and
/// an [`SseBody`].
///
/// ```
/// use std::time::Duration;
/// use sse_core::{response::StreamResponse, Event, Hub};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let status = Event::new().event("initial_status").data("queued").encode()?;
/// let res = StreamResponse::new(hub.subscribe(sse_core::hub::SubscribeOptions::topic("job-1").create_if_missing(true)).await?)
///     .retry(Duration::from_secs(2))
///     .prefix([status])
///     .heartbeat(Some(Duration::from_secs(30)))
///     .into_http();
/// assert_eq!(res.headers()["content-type"], "text/event-stream");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use = "a response does nothing unless returned from a handler"]
#[derive(Debug)]
pub struct StreamResponse<S = Subscription> {
    body: SseBody<S>,
    headers: StreamHeaders,
}

impl StreamResponse<Subscription> {
    /// A response streaming `subscription`, with the hub's heartbeat interval.
    pub fn new(subscription: Subscription) -> Self {
        StreamResponse::from_body(SseBody::new(subscription))
    }
}

impl<S> StreamResponse<StreamSource<S>>
where
    S: Stream + Unpin,
    S::Item: IntoFrame,
{
    /// A response streaming any `Unpin` stream of [`Event`](crate::Event)s, [`Frame`]s or
    /// `Result`s of them (an `Err` becomes a comment), with 15 s heartbeats. The body ends when
    /// the stream ends.
    pub fn from_stream(stream: S) -> Self {
        StreamResponse::from_body(SseBody::from_stream(stream))
    }
}

impl<S: FrameSource> StreamResponse<S> {
    /// A response over a body configured by hand.
    pub fn from_body(body: SseBody<S>) -> Self {
        StreamResponse {
            body,
            headers: StreamHeaders::default(),
        }
    }

    /// Replaces the first frame (default `: ok`), for example with [`Frame::retry`]; `None`
    /// sends none, so the first byte waits for the first event.
    pub fn first_frame(mut self, frame: Option<Frame>) -> Self {
        self.body = self.body.first_frame(frame);
        self
    }

    /// Starts the stream with a `retry:` hint (the client's reconnection delay) instead of the
    /// default `: ok` comment.
    pub fn retry(self, delay: Duration) -> Self {
        self.first_frame(Some(Frame::retry(delay)))
    }

    /// Frames for this connection only, sent after the first frame and before the stream's
    /// own (see [`SseBody::prefix`]), for example an `initial_status` event.
    pub fn prefix(mut self, frames: impl IntoIterator<Item = Frame>) -> Self {
        self.body = self.body.prefix(frames);
        self
    }

    /// Sets the heartbeat interval; `None` disables heartbeats.
    pub fn heartbeat(mut self, interval: Option<Duration>) -> Self {
        self.body = self.body.heartbeat(interval);
        self
    }

    /// Sets the most bytes coalesced into one body chunk.
    pub fn max_chunk(mut self, bytes: usize) -> Self {
        self.body = self.body.max_chunk(bytes);
        self
    }

    /// Replaces the `Cache-Control` value (default `no-cache`).
    pub fn cache_control(mut self, value: HeaderValue) -> Self {
        self.headers = self.headers.cache_control(value);
        self
    }

    /// Whether to send `Content-Encoding: identity` (default: yes; see
    /// [`StreamHeaders::identity_encoding`]).
    pub fn identity_encoding(mut self, send: bool) -> Self {
        self.headers = self.headers.identity_encoding(send);
        self
    }

    /// The headers it will send.
    pub fn headers(&self) -> &StreamHeaders {
        &self.headers
    }

    /// The headers and the body, for an adapter to assemble its framework's response.
    pub fn into_parts(self) -> (StreamHeaders, SseBody<S>) {
        (self.headers, self.body)
    }

    /// The body alone (the event-stream headers are then up to you).
    pub fn into_body(self) -> SseBody<S> {
        self.body
    }

    /// An [`http::Response`] with status 200, the headers and the body.
    pub fn into_http(self) -> http::Response<SseBody<S>> {
        let mut res = http::Response::new(self.body);
        self.headers.apply(res.headers_mut());
        res
    }
}

impl From<Subscription> for StreamResponse<Subscription> {
    fn from(subscription: Subscription) -> Self {
        StreamResponse::new(subscription)
    }
}

/// Generates an adapter's builder methods as forwards to [`StreamResponse`]'s, for a newtype
/// `struct SseResponse<S>(StreamResponse<S>)`, so that every adapter has the same methods with
/// the same documentation and behaviour. Not part of the public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_stream_response {
    () => {
        /// Replaces the first frame (default `: ok`), for example with
        /// [`Frame::retry`](sse_core::Frame::retry); `None` sends none, so the first byte waits
        /// for the first event.
        pub fn first_frame(self, frame: Option<$crate::Frame>) -> Self {
            Self(self.0.first_frame(frame))
        }

        /// Starts the stream with a `retry:` hint (the client's reconnection delay) instead of
        /// the default `: ok` comment.
        pub fn retry(self, delay: ::std::time::Duration) -> Self {
            Self(self.0.retry(delay))
        }

        /// Frames for this connection only, sent after the first frame and before the stream's
        /// own (see [`SseBody::prefix`](sse_core::SseBody::prefix)), for example an
        /// `initial_status` event.
        pub fn prefix(self, frames: impl IntoIterator<Item = $crate::Frame>) -> Self {
            Self(self.0.prefix(frames))
        }

        /// Sets the heartbeat interval; `None` disables heartbeats.
        pub fn heartbeat(self, interval: Option<::std::time::Duration>) -> Self {
            Self(self.0.heartbeat(interval))
        }

        /// Sets the most bytes coalesced into one body chunk.
        pub fn max_chunk(self, bytes: usize) -> Self {
            Self(self.0.max_chunk(bytes))
        }

        /// Whether to send `Content-Encoding: identity` (default: yes), which keeps compression
        /// middleware from holding events back in its buffer.
        pub fn identity_encoding(self, send: bool) -> Self {
            Self(self.0.identity_encoding(send))
        }

        /// The framework-neutral response this one wraps.
        pub fn into_inner(self) -> $crate::response::StreamResponse<S> {
            self.0
        }
    };
}
