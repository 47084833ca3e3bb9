//! The seam for multi-node transports.
//!
//! In memory (the default) the hub orders each topic's events itself. With a [`Backplane`], a
//! publish is encoded once on the publishing node and handed to the backplane, which assigns
//! the topic's next sequence number in one atomic step (for Redis Streams: a script that
//! increments and appends) and delivers the event to every node, this one included. Each node
//! applies what it receives with [`Topic::inject`](super::Topic::inject), exactly as an
//! in-memory publish would append it, so subscriptions, replay, policies and bodies are the same
//! code on one node or many, and a `Last-Event-ID` issued by one node is good on every other.

/// An event ordered by a backplane, to apply locally with [`Topic::inject`](super::Topic::inject).
#[derive(Debug, Clone, Copy)]
pub struct Injected<'a> {
    /// The sequence number the backplane assigned (the SSE id).
    pub seq: u64,
    /// The encoded event without its `id:` line and final blank line (as given to
    /// [`Backplane::publish`]).
    pub body: &'a [u8],
    /// The conflation key, if any.
    pub key: Option<&'a str>,
    /// Whether this is the topic's terminal event.
    pub terminal: bool,
}

/// A transport that orders and distributes events between nodes.
pub trait Backplane: Send + Sync + 'static {
    /// Stores `body` (an encoded event without id) as the next event of `topic`, and returns
    /// its sequence number. Must not return before the event is durably ordered: an `Ok` is a
    /// promise that every node will deliver it.
    fn publish(
        &self,
        topic: &str,
        body: &[u8],
        key: Option<&str>,
        terminal: bool,
    ) -> Result<u64, BackplaneError>;
}

/// A backplane failure: the event was not stored.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackplaneError {
    message: String,
}

impl BackplaneError {
    /// A failure with a one-line message.
    pub fn new(message: impl Into<String>) -> Self {
        BackplaneError {
            message: message.into(),
        }
    }
}
