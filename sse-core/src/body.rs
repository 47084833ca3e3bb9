//! [`SseBody`]: an `http_body::Body` over a [`Subscription`] or any stream of events.
//!
//! * **First byte at once.** The body starts with a first frame (default `: ok\n\n`, or a
//!   `retry:` hint), so a proxy or client sees the headers and first byte immediately.
//! * **Coalescing.** Every frame that is ready when the server asks for data leaves as one chunk
//!   (up to [`SseBody::max_chunk`] bytes), so a burst costs one write per wakeup instead of one
//!   per event; a lone event is never held back waiting for company.
//! * **Heartbeats.** After [`HubConfig::heartbeat`](crate::hub::HubConfig::heartbeat) of silence
//!   (15 s by default) a comment frame goes out, so proxies keep the connection and dead peers are
//!   detected. Real events reset the idle time. The timer is armed only when the stream goes idle
//!   and is re-armed at most once per interval, so a busy stream costs no timer work and an idle
//!   one a single entry in the runtime's timer wheel (no OS timer per connection).
//! * **End.** The body ends after a terminal event, at hub shutdown (after a final frame), or
//!   when a user stream ends.
//!
//! Requires a Tokio runtime with the time driver enabled when heartbeats are on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::time::{Instant, Sleep};

use crate::{Event, Frame, Subscription};

/// Default most bytes coalesced into one body chunk.
pub const DEFAULT_MAX_CHUNK: usize = 64 * 1024;

/// A source of frames for an [`SseBody`].
pub trait FrameSource: Unpin {
    /// Appends ready frames to `buf` (up to about `max` bytes). `Ready(Some(n))`: `n > 0` frames
    /// appended; `Ready(None)`: the source has ended; `Pending`: nothing ready, waker registered.
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<Option<usize>>;

    /// When the oldest live event among the frames the last [`poll_fill`](Self::poll_fill)
    /// appended was published, if the source knows (`None` by default). With the `metrics`
    /// feature, [`SseBody`] records its age as the chunk leaves (the hub's
    /// `sse_delivery_latency_seconds`); a [`Subscription`] knows it only with that feature.
    fn oldest_appended(&self) -> Option<Instant> {
        None
    }
}

impl FrameSource for Subscription {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<Option<usize>> {
        Subscription::poll_fill(self, cx, buf, max)
    }

    fn oldest_appended(&self) -> Option<Instant> {
        self.oldest_appended()
    }
}

/// Something a user stream may yield: a ready [`Frame`] or an [`Event`] to encode.
///
/// An event that fails to encode (see [`EventError`](crate::EventError)) is not sent; a comment
/// naming the error takes its place, so the stream is never corrupted.
pub trait IntoFrame {
    /// Converts into a frame.
    fn into_frame(self) -> Frame;
}

impl IntoFrame for Frame {
    fn into_frame(self) -> Frame {
        self
    }
}

impl IntoFrame for Event<'_> {
    /// The encoded event; an invalid one is logged (a `tracing` warning with the error, never
    /// the event's content) and replaced by a comment.
    fn into_frame(self) -> Frame {
        match self.encode() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(
                    error = e.to_string(),
                    "user stream yielded an invalid event: sent as a comment"
                );
                Frame::comment(&format!("event dropped: {e}"))
            }
        }
    }
}

impl<T: IntoFrame, E: std::fmt::Display> IntoFrame for Result<T, E> {
    /// `Ok`: its frame. `Err`: logged (a `tracing` warning with the error's text) and sent as a
    /// comment naming it.
    fn into_frame(self) -> Frame {
        match self {
            Ok(t) => t.into_frame(),
            Err(e) => {
                tracing::warn!(
                    error = e.to_string(),
                    "user stream yielded an error: sent as a comment"
                );
                Frame::comment(&format!("event dropped: {e}"))
            }
        }
    }
}

impl<T: FrameSource + ?Sized> FrameSource for Box<T> {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<Option<usize>> {
        (**self).poll_fill(cx, buf, max)
    }

    fn oldest_appended(&self) -> Option<Instant> {
        (**self).oldest_appended()
    }
}

/// A [`FrameSource`] over any `Stream` of [`IntoFrame`] items (events, frames, results).
///
/// The stream is pinned on the heap, so any stream works (`async-stream`, `unfold`, …), and it
/// is never polled again after it has ended.
pub struct StreamSource<S> {
    stream: Pin<Box<S>>,
    ended: bool,
}

impl<S> std::fmt::Debug for StreamSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource")
            .field("ended", &self.ended)
            .finish()
    }
}

impl<S> StreamSource<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        StreamSource {
            stream: Box::pin(stream),
            ended: false,
        }
    }
}

impl<S> FrameSource for StreamSource<S>
where
    S: Stream,
    S::Item: IntoFrame,
{
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<Option<usize>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut n = 0;
        while buf.len() < max {
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    buf.extend_from_slice(item.into_frame().as_bytes());
                    n += 1;
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    if n == 0 {
                        return Poll::Ready(None);
                    }
                    break;
                }
                Poll::Pending => break,
            }
        }
        if n == 0 {
            Poll::Pending
        } else {
            Poll::Ready(Some(n))
        }
    }
}

/// A streaming `text/event-stream` response body. See the [module docs](self).
///
/// ```
/// use http_body_util::BodyExt;
/// use sse_core::{Event, Hub, SseBody};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let topic = hub.topic("t")?;
/// let body = SseBody::new(hub.subscribe("t").await?);
/// topic.publish(Event::new().data("a")).await?;
/// topic.publish(Event::new().data("b")).await?;
/// topic.finish(Event::new().event("completed").data("c")).await?;
/// // Everything ready leaves as one chunk, after the first frame.
/// let bytes = body.collect().await.unwrap().to_bytes();
/// let id = |n| topic.event_id(n);
/// let want = format!(
///     ": ok\n\ndata: a\nid: {}\n\ndata: b\nid: {}\n\nevent: completed\ndata: c\nid: {}\n\n",
///     id(1), id(2), id(3),
/// );
/// assert_eq!(bytes, want.as_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use = "a body does nothing unless polled by a server"]
pub struct SseBody<S = Subscription> {
    source: S,
    first: Option<Bytes>,
    /// Per-connection frames sent after the first frame, before the source's.
    prefix: Option<Bytes>,
    buf: BytesMut,
    max_chunk: usize,
    heartbeat: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    last_activity: Instant,
    ended: bool,
}

impl<S> std::fmt::Debug for SseBody<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseBody")
            .field("max_chunk", &self.max_chunk)
            .field("heartbeat", &self.heartbeat)
            .field("ended", &self.ended)
            .finish()
    }
}

/// The first frame by default: a comment that tells the client it is subscribed.
pub const FIRST_FRAME: &[u8] = b": ok\n\n";

impl SseBody<Subscription> {
    /// A body over a hub subscription, with the hub's heartbeat interval.
    pub fn new(subscription: Subscription) -> Self {
        let hb = subscription.hub.config.heartbeat;
        SseBody::from_source(subscription).heartbeat(Some(hb))
    }
}

impl<S> SseBody<StreamSource<S>>
where
    S: Stream,
    S::Item: IntoFrame,
{
    /// A body over any stream of events or frames, with 15 s heartbeats.
    pub fn from_stream(stream: S) -> Self {
        SseBody::from_source(StreamSource::new(stream))
    }
}

impl<S: FrameSource> SseBody<S> {
    /// A body over any [`FrameSource`], with 15 s heartbeats.
    pub fn from_source(source: S) -> Self {
        SseBody {
            source,
            first: Some(Bytes::from_static(FIRST_FRAME)),
            prefix: None,
            buf: BytesMut::new(),
            max_chunk: DEFAULT_MAX_CHUNK,
            heartbeat: Some(Duration::from_secs(15)),
            sleep: None,
            last_activity: Instant::now(),
            ended: false,
        }
    }

    /// Boxes the source, so that bodies over different sources (a hub subscription, a user
    /// stream) have one type.
    pub fn boxed(self) -> SseBody<Box<dyn FrameSource + Send>>
    where
        S: Send + 'static,
    {
        SseBody {
            source: Box::new(self.source),
            first: self.first,
            prefix: self.prefix,
            buf: self.buf,
            max_chunk: self.max_chunk,
            heartbeat: self.heartbeat,
            sleep: self.sleep,
            last_activity: self.last_activity,
            ended: self.ended,
        }
    }

    /// Replaces the first frame (for example with [`Frame::retry`]); `None` sends none.
    pub fn first_frame(mut self, frame: Option<Frame>) -> Self {
        self.first = frame.map(Frame::into_bytes);
        self
    }

    /// Frames for this connection only, sent right after the first frame and before anything
    /// from the source: for example an `initial_status` event built from the application's own
    /// state before the live subscription takes over. Called again, adds more.
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use sse_core::{Event, Frame, Hub, SseBody};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let topic = hub.topic("t")?;
    /// let status = Event::new().event("initial_status").data("queued").encode()?;
    /// let body = SseBody::new(hub.subscribe("t").await?).prefix([status]);
    /// topic.finish(Event::new().event("completed")).await?;
    /// let bytes = body.collect().await.unwrap().to_bytes();
    /// assert!(bytes.starts_with(b": ok\n\nevent: initial_status\ndata: queued\n\nevent: completed\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn prefix(mut self, frames: impl IntoIterator<Item = Frame>) -> Self {
        let mut buf = BytesMut::from(self.prefix.take().unwrap_or_default());
        for f in frames {
            buf.extend_from_slice(f.as_bytes());
        }
        self.prefix = (!buf.is_empty()).then(|| buf.freeze());
        self
    }

    /// Sets the heartbeat interval; `None` disables heartbeats.
    pub fn heartbeat(mut self, interval: Option<Duration>) -> Self {
        self.heartbeat = interval.filter(|d| !d.is_zero());
        self
    }

    /// Sets the most bytes coalesced into one chunk (at least one frame is always sent).
    pub fn max_chunk(mut self, bytes: usize) -> Self {
        self.max_chunk = bytes.max(1);
        self
    }

    /// The source (for example the subscription).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Polls for the next chunk of bytes. `Ready(None)` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut first = self.first.take();
        if let Some(f) = &first {
            self.buf.extend_from_slice(f);
        }
        if let Some(p) = self.prefix.take() {
            self.buf.extend_from_slice(&p);
            first.get_or_insert(p);
        }
        let max = self.max_chunk;
        match self.source.poll_fill(cx, &mut self.buf, max) {
            Poll::Ready(Some(_)) => {}
            Poll::Ready(None) => {
                self.ended = true;
                self.sleep = None;
            }
            Poll::Pending => {
                if first.is_none() {
                    return self.poll_heartbeat(cx);
                }
            }
        }
        if self.buf.is_empty() {
            return Poll::Ready(None);
        }
        // One clock read per chunk, shared by the heartbeat and the latency histogram.
        #[cfg(feature = "metrics")]
        let oldest = self.source.oldest_appended();
        #[cfg(not(feature = "metrics"))]
        let oldest: Option<Instant> = None;
        if self.heartbeat.is_some() || oldest.is_some() {
            let now = Instant::now();
            if self.heartbeat.is_some() {
                self.last_activity = now;
            }
            #[cfg(feature = "metrics")]
            if let Some(at) = oldest {
                crate::hub::record_delivery_latency(now.saturating_duration_since(at));
            }
        }
        // Hand the whole buffer over instead of splitting it: a split would leave the idle body
        // holding the burst's allocation until the next chunk.
        Poll::Ready(Some(std::mem::take(&mut self.buf).freeze()))
    }

    fn poll_heartbeat(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(interval) = self.heartbeat else {
            return Poll::Pending;
        };
        let due = self.last_activity + interval;
        let sleep = match &mut self.sleep {
            Some(s) => {
                if s.deadline() != due {
                    s.as_mut().reset(due);
                }
                s
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(due))),
        };
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.last_activity = Instant::now();
                Poll::Ready(Some(Frame::heartbeat().into_bytes()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: FrameSource> http_body::Body for SseBody<S> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

impl<S: FrameSource> Stream for SseBody<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx).map(|o| o.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that panics if polled after it ended, like `futures::stream::unfold`.
    struct Strict(Vec<&'static str>, bool);

    impl Stream for Strict {
        type Item = Frame;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Frame>> {
            assert!(!self.1, "polled after end");
            match self.0.pop() {
                Some(s) => Poll::Ready(Some(Frame::comment(s))),
                None => {
                    self.1 = true;
                    Poll::Ready(None)
                }
            }
        }
    }

    #[test]
    fn ended_user_stream_is_not_polled_again() {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut body = SseBody::from_stream(Strict(vec!["b", "a"], false))
            .heartbeat(None)
            .boxed();
        let Poll::Ready(Some(chunk)) = body.poll_chunk(&mut cx) else {
            panic!("no chunk")
        };
        assert_eq!(&chunk[..], b": ok\n\n: a\n\n: b\n\n");
        assert!(matches!(body.poll_chunk(&mut cx), Poll::Ready(None)));
        assert!(matches!(body.poll_chunk(&mut cx), Poll::Ready(None)));
    }
}
