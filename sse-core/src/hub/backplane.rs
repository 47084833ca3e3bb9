//! The seam for multi-node transports.
//!
//! In memory (the default) the hub orders each topic's events itself. With a [`Backplane`], a
//! publish is encoded once on the publishing node and handed to the backplane, which assigns
//! the topic's next sequence number in one atomic step (for Redis Streams: a script that
//! increments and appends) and delivers the event to every node, this one included. Each node
//! applies what it receives with [`Topic::inject`], exactly as an in-memory publish would append
//! it, so subscriptions, replay, policies and bodies are the same code on one node or many, and
//! a `Last-Event-ID` issued by one node is good on every other.
//!
//! See [`Backplane`] for the async publishing rule and the interest hooks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use tokio::time::Instant;

use super::cursor::{Cursor, Position};
use super::topic::Entry;
use super::{
    event_with_seq, Hub, HubInner, PublishError, SubscribeError, SubscribeOptions, Subscription,
    Topic,
};
use crate::event::{Encoded, Event};

/// The number a publish through a backplane passes to a [`Topic::publish_with_async`] builder
/// in place of the sequence number, which only the backplane knows.
///
/// The backplane replaces its decimal text ([`SEQ_PLACEHOLDER_TEXT`]) in the encoded event with
/// the sequence it assigns (see [`Outgoing::seq_in_body`] and [`Outgoing::body_with_seq`]), so that
/// a sequence written into the payload equals the SSE id on every node. Do not use this number
/// for anything else in such an event.
pub const SEQ_PLACEHOLDER: u64 = 18_446_744_073_709_551_557;

/// The decimal text of [`SEQ_PLACEHOLDER`].
pub const SEQ_PLACEHOLDER_TEXT: &str = "18446744073709551557";

/// An event ordered by a backplane, to apply locally with [`Topic::inject`] (or
/// [`Topic::backfill`]).
#[derive(Debug, Clone, Copy)]
pub struct Injected<'a> {
    /// The sequence number the backplane assigned (the SSE id).
    pub seq: u64,
    /// The encoded event without its `id:` line and final blank line (as given to
    /// [`Backplane::publish`], with the placeholder replaced).
    pub body: &'a [u8],
    /// The conflation key, if any.
    pub key: Option<&'a str>,
    /// Whether this is the topic's terminal event.
    pub terminal: bool,
}

/// An event to store, as handed to [`Backplane::publish`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outgoing {
    /// The topic's name.
    pub topic: Arc<str>,
    /// The encoded event without its `id:` line and final blank line.
    pub body: Bytes,
    /// The conflation key, if any.
    pub key: Option<Arc<str>>,
    /// Whether this is the topic's terminal event (it finishes the topic).
    pub terminal: bool,
    /// Refuse with [`BackplaneError::not_found`] if the topic was never published to (a finish
    /// on a node that does not know the topic).
    pub must_exist: bool,
    /// `body` contains [`SEQ_PLACEHOLDER_TEXT`], to be replaced with the assigned sequence.
    pub seq_in_body: bool,
}

impl Outgoing {
    /// The body with [`SEQ_PLACEHOLDER_TEXT`] replaced by `seq` (the body itself when
    /// [`seq_in_body`](Self::seq_in_body) is false). For backplanes that substitute on the
    /// node; a remote store may substitute itself.
    pub fn body_with_seq(&self, seq: u64) -> Bytes {
        if !self.seq_in_body {
            return self.body.clone();
        }
        let needle = SEQ_PLACEHOLDER_TEXT.as_bytes();
        let seq = seq.to_string();
        let mut out = Vec::with_capacity(self.body.len());
        let mut rest = &self.body[..];
        while let Some(i) = memchr::memmem::find(rest, needle) {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(seq.as_bytes());
            rest = &rest[i + needle.len()..];
        }
        out.extend_from_slice(rest);
        Bytes::from(out)
    }
}

/// The future a [`Backplane`] returns: `Send`, `'static`, and runnable by any executor.
pub type BackplaneFuture<T> =
    Pin<Box<dyn Future<Output = Result<T, BackplaneError>> + Send + 'static>>;

/// A transport that orders and distributes events between nodes.
///
/// In memory (the default) the hub orders each topic's events itself. With a [`Backplane`], a
/// publish is encoded once on the publishing node and handed to the backplane, which assigns
/// the topic's next sequence number in one atomic step (for Redis Streams: a script that
/// increments and appends) and delivers the event to every node, this one included. Each node
/// applies what it receives with [`Topic::inject`], exactly as an in-memory publish would append
/// it, so subscriptions, replay, policies and bodies are the same code on one node or many, and
/// a `Last-Event-ID` issued by one node is good on every other.
///
/// # Publishing is asynchronous
///
/// A backplane acknowledges over the network, so publishing through one is asynchronous:
/// [`Topic::publish_async`], [`Topic::publish_keyed_async`], [`Topic::publish_with_async`],
/// [`Topic::finish_async`], [`Hub::publish_async`] and [`Hub::finish_async`] return a
/// [`PublishAck`] that resolves to the sequence number once the backplane has stored the event.
/// The event is handed over **when the method is called**, not when the ack is first polled:
/// publishes are ordered as they were called, several can be in flight at once (pipelined), and
/// dropping an ack does not cancel its publish. Without a backplane the same methods append in
/// memory at once and the ack is ready immediately, so code written against them works on one
/// node or many.
///
/// The synchronous methods ([`Topic::publish`], [`Topic::finish`], [`JobPublisher`](super::JobPublisher), …)
/// keep working in memory. With a backplane they **block the calling thread** until the ack when
/// called outside a Tokio runtime (a plain worker thread, such as an OCR or transcoding loop), and
/// fail at once with a [`PublishError::Backplane`] whose [`BackplaneError::is_blocking`] is true
/// when called from a thread that runs a Tokio runtime, where blocking could stall the very
/// runtime that drives the backplane. Use the `_async` methods there (in a `spawn_blocking`
/// closure, which also runs with a runtime context: `Handle::current().block_on(topic.publish_async(..))`).
/// A [`JobPublisher`](super::JobPublisher) dropped without a terminal event hands its `failed`
/// event to the backplane from any thread.
///
/// # Subscribing
///
/// A node reads a topic from the backplane only while it has subscribers for it: the hub calls
/// [`Backplane::interest_changed`] when a topic's local subscriber count goes from 0 to 1 or back,
/// and the backplane reads the count with [`Topic::subscriber_count`]. Before a subscribe,
/// [`Hub::subscribe_async`] lets the backplane bring the local topic up to date
/// ([`Backplane::prepare`]): create it if it exists elsewhere, apply what this node has not seen
/// yet, and load older events that a resuming client needs ([`Topic::backfill`]).
///
/// # One hub per backplane
///
/// One backplane instance serves one hub: [`HubBuilder::build`](super::HubBuilder::build) calls
/// [`attach`](Self::attach) with a weak handle on it, through which the backplane applies what it
/// receives ([`Topic::inject`]).
pub trait Backplane: Send + Sync + 'static {
    /// Called once when the hub is built. The backplane keeps the handle to inject events; a
    /// [`WeakHub`] does not keep the hub alive.
    fn attach(&self, hub: WeakHub) {
        let _ = hub;
    }

    /// Stores `event` as the next event of its topic and resolves to its sequence number.
    ///
    /// The publish must be under way when this returns (for example, queued), so that
    /// publishes are stored in the order of the calls and dropping the future does not cancel
    /// it. The future must be runnable from any thread and any executor (the synchronous API
    /// blocks on it outside the runtime). `Ok` is a promise that every node will deliver the
    /// event; a topic already finished fails with [`BackplaneError::finished`].
    fn publish(&self, event: Outgoing) -> BackplaneFuture<u64>;

    /// Called when this node's subscriber count for `topic` may have gone from 0 to 1 or back to
    /// 0. The backplane checks [`Topic::subscriber_count`] and starts or stops reading the
    /// topic. Must not block.
    fn interest_changed(&self, topic: &str) {
        let _ = topic;
    }

    /// Brings this node's copy of `topic` up to date before a subscribe
    /// ([`Hub::subscribe_async`]): creates it locally if it exists in the backplane, applies the
    /// events this node has not applied yet, and, when `after` (the client's last seen sequence)
    /// is older than the local history, loads the missing older events with
    /// [`Topic::backfill`]. The default does nothing.
    fn prepare(&self, topic: &str, after: Option<u64>) -> BackplaneFuture<()> {
        let _ = (topic, after);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A backplane failure: the event was not stored (or, for [`is_unavailable`](Self::is_unavailable),
/// its fate is unknown).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackplaneError {
    kind: Kind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unavailable,
    Finished,
    NotFound,
    Blocking,
}

impl BackplaneError {
    /// The backplane could not be reached or did not answer in time (HTTP 503).
    pub fn new(message: impl Into<String>) -> Self {
        BackplaneError {
            kind: Kind::Unavailable,
            message: message.into(),
        }
    }

    /// The topic is finished (maps to [`PublishError::Finished`], HTTP 409).
    pub fn finished() -> Self {
        BackplaneError {
            kind: Kind::Finished,
            message: "topic is finished".into(),
        }
    }

    /// The topic does not exist (maps to [`PublishError::NotFound`], HTTP 404).
    pub fn not_found() -> Self {
        BackplaneError {
            kind: Kind::NotFound,
            message: "topic not found".into(),
        }
    }

    pub(crate) fn blocking() -> Self {
        BackplaneError {
            kind: Kind::Blocking,
            message: "a hub with a backplane cannot publish synchronously on a thread that runs \
                      a Tokio runtime: use the _async method"
                .into(),
        }
    }

    /// Whether the backplane was unreachable or too slow.
    pub fn is_unavailable(&self) -> bool {
        self.kind == Kind::Unavailable
    }

    /// Whether the topic was finished.
    pub fn is_finished(&self) -> bool {
        self.kind == Kind::Finished
    }

    /// Whether the topic does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == Kind::NotFound
    }

    /// Whether a synchronous publish was refused because it was called on a thread that runs
    /// a Tokio runtime (see [`Backplane`]). Nothing was published.
    pub fn is_blocking(&self) -> bool {
        self.kind == Kind::Blocking
    }
}

impl From<BackplaneError> for PublishError {
    fn from(e: BackplaneError) -> Self {
        match e.kind {
            Kind::Finished => PublishError::Finished,
            Kind::NotFound => PublishError::NotFound,
            Kind::Unavailable | Kind::Blocking => PublishError::Backplane(e),
        }
    }
}

/// A handle on a [`Hub`] that does not keep it alive (see [`Hub::downgrade`]).
#[derive(Clone)]
pub struct WeakHub(Weak<HubInner>);

impl WeakHub {
    /// The hub, if it still exists.
    pub fn upgrade(&self) -> Option<Hub> {
        self.0.upgrade().map(|inner| Hub { inner })
    }
}

impl fmt::Debug for WeakHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakHub")
            .field("alive", &(self.0.strong_count() > 0))
            .finish()
    }
}

/// The acknowledgement of a publish: resolves to the event's sequence number once it is stored
/// (at once in memory; after the backplane's answer otherwise).
///
/// The publish is already under way when a `PublishAck` exists; dropping it only gives up the
/// answer.
#[must_use = "the ack tells whether the event was stored"]
pub struct PublishAck(AckState);

enum AckState {
    Ready(Option<Result<u64, PublishError>>),
    Waiting(BackplaneFuture<u64>),
}

impl PublishAck {
    fn ready(r: Result<u64, PublishError>) -> Self {
        PublishAck(AckState::Ready(Some(r)))
    }
}

impl Future for PublishAck {
    type Output = Result<u64, PublishError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            AckState::Ready(r) => {
                Poll::Ready(r.take().unwrap_or_else(|| {
                    Err(BackplaneError::new("ack polled after completion").into())
                }))
            }
            AckState::Waiting(f) => f.as_mut().poll(cx).map(|r| r.map_err(PublishError::from)),
        }
    }
}

impl fmt::Debug for PublishAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            AckState::Ready(_) => "ready",
            AckState::Waiting(_) => "waiting",
        };
        f.debug_tuple("PublishAck").field(&state).finish()
    }
}

impl Hub {
    /// A handle that does not keep the hub alive (for a [`Backplane`]'s reader task).
    pub fn downgrade(&self) -> WeakHub {
        WeakHub(Arc::downgrade(&self.inner))
    }

    /// The hub's backplane, if it has one.
    pub fn backplane(&self) -> Option<&Arc<dyn Backplane>> {
        self.inner.backplane.as_ref()
    }

    /// Publishes `event` to `topic` (created if missing); the ack resolves to its sequence
    /// number. See [`Topic::publish_async`].
    pub fn publish_async(&self, topic: &str, event: Event<'_>) -> PublishAck {
        match self.topic(topic) {
            Ok(t) => t.publish_async(event),
            Err(e) => PublishAck::ready(Err(e)),
        }
    }

    /// Publishes a terminal event and finishes `topic`. In memory, and when this node knows the
    /// topic, as [`Topic::finish_async`]; with a backplane, a topic this node has not seen is
    /// finished in the backplane if it exists there ([`PublishError::NotFound`] otherwise).
    pub fn finish_async(&self, topic: &str, event: Event<'_>) -> PublishAck {
        if let Some(t) = self.get_topic(topic) {
            return t.finish_async(event);
        }
        let Some(bp) = &self.inner.backplane else {
            return PublishAck::ready(Err(PublishError::NotFound));
        };
        match outgoing(Arc::from(topic), None, true, true, |seq| {
            event_with_seq(&event, seq)
        }) {
            Ok(o) => PublishAck(AckState::Waiting(bp.publish(o))),
            Err(e) => PublishAck::ready(Err(e)),
        }
    }

    /// Subscribes like [`Hub::subscribe`], after letting the backplane bring this node's copy of
    /// each topic up to date ([`Backplane::prepare`]): with a backplane, a client resuming on
    /// this node with an id that another node sent gets exactly what it missed, and a new
    /// subscriber gets the topic's current state. Without a backplane this is
    /// [`Hub::subscribe`].
    ///
    /// If the backplane is unreachable, the subscription is served from this node's copy when
    /// that copy already holds everything the client has seen (it continues once the backplane
    /// is back), and refused with [`SubscribeError::Unavailable`] (HTTP 503) otherwise.
    ///
    /// ```
    /// use sse_core::Hub;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// hub.publish_async("news", sse_core::Event::new().data("hello")).await?;
    /// let sub = hub
    ///     .subscribe_async(sse_core::hub::SubscribeOptions::topic("news").last_event_id(Some("0")))
    ///     .await?;
    /// # drop(sub);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn subscribe_async(
        &self,
        options: impl Into<SubscribeOptions>,
    ) -> Result<Subscription, SubscribeError> {
        let opts = options.into();
        if let Some(bp) = self.inner.backplane.clone() {
            if self.inner.is_shutting_down() {
                return Err(SubscribeError::ShuttingDown);
            }
            let cursor = opts.last_event_id.as_deref().map(Cursor::parse);
            let single = opts.topics.len() == 1;
            for name in &opts.topics {
                let after = match cursor.as_ref().and_then(|c| c.position(name, single)) {
                    Some(Position::Seq(k)) => Some(k),
                    _ => None,
                };
                if bp.prepare(name, after).await.is_err() {
                    // Degraded: serve this node's copy only if it holds all the client saw.
                    let local = self.get_topic(name).map(|t| t.last_seq());
                    let complete = match (after, local) {
                        (None, _) => true,
                        (Some(k), Some(last)) => k <= last,
                        (Some(_), None) => false,
                    };
                    if !complete {
                        return Err(SubscribeError::Unavailable);
                    }
                }
            }
        }
        self.subscribe(opts)
    }
}

impl HubInner {
    /// Tells the backplane that `topic`'s local subscriber count may have crossed zero.
    pub(super) fn interest_changed(&self, topic: &str) {
        if let Some(bp) = &self.backplane {
            bp.interest_changed(topic);
        }
    }
}

impl Topic {
    /// Publishes `event`; the ack resolves to its sequence number (its SSE id).
    ///
    /// In memory the event is appended at once and the ack is ready. With a backplane the event
    /// is encoded once and handed to the backplane now; the ack resolves when the backplane has
    /// stored it, with [`PublishError::Backplane`] (HTTP 503) if it could not, and
    /// [`PublishError::Finished`] (HTTP 409) if the topic was finished on any node. Local
    /// subscribers receive the event when the backplane delivers it to this node, like every
    /// other node. An event's own `id` is replaced by the sequence number on a backplane.
    ///
    /// ```
    /// use sse_core::{Event, Hub};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let topic = hub.topic("prices")?;
    /// // Several in flight at once, stored in call order.
    /// let a = topic.publish_async(Event::new().data("1"));
    /// let b = topic.publish_async(Event::new().data("2"));
    /// assert_eq!((a.await?, b.await?), (1, 2));
    /// # Ok::<(), sse_core::hub::PublishError>(())
    /// # }).unwrap();
    /// ```
    pub fn publish_async(&self, event: Event<'_>) -> PublishAck {
        self.submit(None, false, |seq| event_with_seq(&event, seq))
    }

    /// [`Topic::publish_keyed`] through the backplane: see [`Topic::publish_async`].
    pub fn publish_keyed_async(&self, key: &str, event: Event<'_>) -> PublishAck {
        self.submit(Some(key), false, |seq| event_with_seq(&event, seq))
    }

    /// [`Topic::publish_with`] through the backplane: see [`Topic::publish_async`].
    ///
    /// With a backplane, `build` receives [`SEQ_PLACEHOLDER`], and the backplane writes the
    /// sequence it assigns in place of the placeholder's text, so a sequence inside the payload
    /// still equals the SSE id on every node.
    pub fn publish_with_async<'e>(
        &self,
        key: Option<&str>,
        build: impl FnOnce(u64) -> Event<'e>,
    ) -> PublishAck {
        self.submit(key, false, |seq| event_with_seq(&build(seq), seq))
    }

    /// [`Topic::finish`] through the backplane: see [`Topic::publish_async`]. A finish on any
    /// node ends the topic's streams on every node.
    pub fn finish_async(&self, event: Event<'_>) -> PublishAck {
        self.submit(None, true, |seq| event_with_seq(&event, seq))
    }

    fn submit(
        &self,
        key: Option<&str>,
        terminal: bool,
        make: impl FnOnce(u64) -> Result<Encoded, crate::EventError>,
    ) -> PublishAck {
        let Some(bp) = &self.hub.inner.backplane else {
            return PublishAck::ready(self.append(key, terminal, make));
        };
        if self.is_finished() {
            // Applied from the backplane, so finished everywhere.
            return PublishAck::ready(Err(PublishError::Finished));
        }
        match outgoing(Arc::clone(&self.shared.name), key, terminal, false, make) {
            Ok(o) => PublishAck(AckState::Waiting(bp.publish(o))),
            Err(e) => PublishAck::ready(Err(e)),
        }
    }

    /// The synchronous publish with a backplane: blocks outside a runtime, refuses on one.
    pub(super) fn publish_blocking(
        &self,
        key: Option<&str>,
        terminal: bool,
        make: impl FnOnce(u64) -> Result<Encoded, crate::EventError>,
    ) -> Result<u64, PublishError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PublishError::Backplane(BackplaneError::blocking()));
        }
        block_on(self.submit(key, terminal, make))
    }

    /// Inserts events older than the topic's history in front of it: the events a resuming
    /// client needs that this node never held (a [`Backplane`] loads them from its store in
    /// [`Backplane::prepare`]). Returns how many were inserted.
    ///
    /// `events` are in ascending order; only those that continue the history downwards without
    /// a hole (ending at the sequence just before the oldest held event) are inserted, newest
    /// first, while the history bounds ([`TopicConfig::history_len`](super::TopicConfig::history_len)
    /// and `history_bytes`) leave room. Keyed events join the snapshot when their key has no
    /// newer event there. Subscribers already reading are unaffected.
    pub fn backfill(&self, events: &[Injected<'_>]) -> usize {
        let counters = &self.hub.inner.counters;
        let cfg = &self.shared.config;
        let mut st = self.shared.state.lock();
        if st.removed {
            return 0;
        }
        let mut expect = st.first_seq().saturating_sub(1);
        let at = st.ring.front().map_or_else(Instant::now, |e| e.at);
        let mut added = 0;
        for ev in events.iter().rev() {
            if expect == 0 || ev.seq < expect {
                break;
            }
            if ev.seq > expect || ev.terminal {
                continue;
            }
            if st.ring.len() >= cfg.history_len {
                break;
            }
            let (frame, body_len) = injected_frame(ev.body, ev.seq);
            let size = frame.len();
            if st.ring_bytes + size > cfg.history_bytes {
                break;
            }
            let key: Option<Arc<str>> = ev.key.map(|k| {
                st.snapshot
                    .iter()
                    .find_map(|e| e.key.as_ref().filter(|ek| &***ek == k).cloned())
                    .unwrap_or_else(|| Arc::from(k))
            });
            let entry = Entry {
                seq: ev.seq,
                frame,
                body_len: u32::try_from(body_len).unwrap_or(u32::MAX),
                key,
                terminal: false,
                at,
            };
            if let Some(k) = &entry.key {
                let known = st.snapshot.iter().any(|e| e.key.as_deref() == Some(&**k));
                if !known && st.snapshot.len() < cfg.max_snapshot_keys {
                    st.snapshot.push(entry.clone());
                }
            }
            st.ring.push_front(entry);
            st.ring_bytes += size;
            counters.add_history(size);
            expect -= 1;
            added += 1;
        }
        drop(st);
        if added > 0 {
            self.hub.inner.enforce_budget(&self.shared);
        }
        added
    }
}

/// Encodes an event for a backplane: once, with the placeholder as its sequence.
fn outgoing(
    topic: Arc<str>,
    key: Option<&str>,
    terminal: bool,
    must_exist: bool,
    make: impl FnOnce(u64) -> Result<Encoded, crate::EventError>,
) -> Result<Outgoing, PublishError> {
    let enc = make(SEQ_PLACEHOLDER).map_err(PublishError::Event)?;
    let body = enc.frame.into_bytes().slice(..enc.body_len);
    let seq_in_body = memchr::memmem::find(&body, SEQ_PLACEHOLDER_TEXT.as_bytes()).is_some();
    Ok(Outgoing {
        topic,
        body,
        key: key.map(Arc::from),
        terminal,
        must_exist,
        seq_in_body,
    })
}

/// A frame from an injected body: the body, then `id: seq` and the blank line.
fn injected_frame(body: &[u8], seq: u64) -> (Bytes, usize) {
    let mut buf = Vec::with_capacity(body.len() + 26);
    buf.extend_from_slice(body);
    buf.extend_from_slice(b"id: ");
    buf.extend_from_slice(seq.to_string().as_bytes());
    buf.extend_from_slice(b"\n\n");
    (Bytes::from(buf), body.len())
}

/// Runs `f` to completion on this thread (a thread outside any runtime).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
