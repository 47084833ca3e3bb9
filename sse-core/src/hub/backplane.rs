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

use bytes::Bytes;

use super::cursor::Incarnation;
use super::{Hub, HubInner, PublishError};

/// The number a publish through a backplane passes to a [`Topic::publish_with`](super::Topic::publish_with) builder
/// in place of the sequence number, which only the backplane knows.
///
/// The backplane replaces its decimal text ([`SEQ_PLACEHOLDER_TEXT`]) in the encoded event with
/// the sequence it assigns (see [`Outgoing::seq_in_body`] and [`Outgoing::body_with_seq`]), so that
/// a sequence written into the payload equals the SSE id on every node. Do not use this number
/// for anything else in such an event.
pub const SEQ_PLACEHOLDER: u64 = 18_446_744_073_709_551_557;

/// The decimal text of [`SEQ_PLACEHOLDER`].
pub const SEQ_PLACEHOLDER_TEXT: &str = "18446744073709551557";

/// An event ordered by a backplane, to apply locally with
/// [`Topic::inject`](super::Topic::inject) (or [`Topic::backfill`](super::Topic::backfill)).
#[derive(Debug, Clone, Copy)]
pub struct Injected<'a> {
    /// The sequence number the backplane assigned.
    pub seq: u64,
    /// The topic's incarnation the sequence belongs to, named by the backplane: the same on
    /// every node, and new whenever the backplane starts the topic's numbering over (it lost
    /// its data, or the topic expired there and was created again). The SSE id is
    /// `incarnation:seq`.
    pub incarnation: Incarnation,
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
/// applies what it receives with [`Topic::inject`](super::Topic::inject), exactly as an
/// in-memory publish would append it, so subscriptions, replay, policies and bodies are the
/// same code on one node or many, and a `Last-Event-ID` issued by one node is good on every
/// other. The backplane also names each topic's [`Incarnation`], so that ids stay unambiguous
/// when it starts a topic's numbering over.
///
/// # One API on one node or many
///
/// The hub's publishing methods ([`Topic::publish`](super::Topic::publish) and the rest) return
/// a [`PublishAck`](super::PublishAck) whether or not there is a backplane: the event is handed
/// over when the method is called, and the ack resolves once it is stored (at once in memory).
/// [`Hub::subscribe`] is async for the same reason: with a backplane it first lets the backplane
/// bring this node's copy of the topic up to date ([`Backplane::prepare`]).
///
/// # Subscribing
///
/// A node reads a topic from the backplane only while it has subscribers for it: the hub calls
/// [`Backplane::interest_changed`] when a topic's local subscriber count goes from 0 to 1 or
/// back, and the backplane reads the count with
/// [`Topic::subscriber_count`](super::Topic::subscriber_count).
///
/// # One hub per backplane
///
/// One backplane instance serves one hub: [`HubBuilder::build`](super::HubBuilder::build) calls
/// [`attach`](Self::attach) with a weak handle on it, through which the backplane applies what it
/// receives.
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
    /// 0. The backplane checks [`Topic::subscriber_count`](super::Topic::subscriber_count) and
    /// starts or stops reading the topic. Must not block.
    fn interest_changed(&self, topic: &str) {
        let _ = topic;
    }

    /// Brings this node's copy of `topic` up to date before a subscribe ([`Hub::subscribe`]):
    /// creates it locally if it exists in the backplane, applies the events this node has not
    /// applied yet, and, when `after` (the client's last seen sequence) is older than the local
    /// history, loads the missing older events with [`Topic::backfill`](super::Topic::backfill).
    /// The default does nothing.
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
}

impl From<BackplaneError> for PublishError {
    fn from(e: BackplaneError) -> Self {
        match e.kind {
            Kind::Finished => PublishError::Finished,
            Kind::NotFound => PublishError::NotFound,
            Kind::Unavailable => PublishError::Backplane(e),
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

impl Hub {
    /// A handle that does not keep the hub alive (for a [`Backplane`]'s reader task).
    pub fn downgrade(&self) -> WeakHub {
        WeakHub(Arc::downgrade(&self.inner))
    }

    /// The hub's backplane, if it has one.
    pub fn backplane(&self) -> Option<&Arc<dyn Backplane>> {
        self.inner.backplane.as_ref()
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
