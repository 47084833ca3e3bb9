//! Typed errors of the hub.

use crate::EventError;

use super::BackplaneError;

/// Why a publish failed. Nothing was published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic has been finished; its terminal event was the last one (HTTP 409).
    #[error("topic is finished: no more events can be published")]
    Finished,
    /// The topic does not exist (for operations that do not create it), or was evicted.
    #[error("topic not found")]
    NotFound,
    /// The topic's sequence numbers are exhausted (an injected id of `u64::MAX - 1` or more).
    #[error("topic sequence exhausted")]
    SequenceExhausted,
    /// The event is invalid (see [`EventError`]).
    #[error(transparent)]
    Event(#[from] EventError),
    /// The hub already holds its maximum number of topics.
    #[error("too many topics (limit {limit})")]
    TooManyTopics {
        /// The configured limit.
        limit: usize,
    },
    /// The backplane could not store the event (HTTP 503).
    #[error("backplane unavailable: {0}")]
    Backplane(#[source] BackplaneError),
    /// [`PublishAck::blocking_wait`](super::PublishAck::blocking_wait) was called on a thread
    /// that runs a Tokio runtime: `.await` the ack there. The event was handed over.
    #[error(
        "blocking_wait called on a thread that runs a Tokio runtime: `.await` the ack instead"
    )]
    WouldBlock,
    /// The ack was polled again after it had resolved.
    #[error("publish ack polled after it resolved")]
    AckConsumed,
}

/// Why a subscribe was refused. Each variant maps to one HTTP status (see
/// [`crate::http::status_for`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// Unknown topic, or one the access hook hides (HTTP 404).
    #[error("topic not found")]
    NotFound,
    /// The topic is finished and the client already has its terminal event (HTTP 204: an
    /// `EventSource` stops reconnecting).
    #[error("topic is finished and the client has seen everything")]
    Finished,
    /// The topic has its maximum number of subscribers (HTTP 429).
    #[error("too many subscribers on this topic (limit {limit})")]
    TopicFull {
        /// The configured limit.
        limit: usize,
    },
    /// The user has its maximum number of subscriptions (HTTP 429).
    #[error("too many subscriptions for this user (limit {limit})")]
    UserLimit {
        /// The configured limit.
        limit: usize,
    },
    /// The hub holds its maximum number of topics and cannot create another (HTTP 429).
    #[error("too many topics")]
    TooManyTopics,
    /// The access hook found no valid credentials (HTTP 401).
    #[error("authentication required")]
    Unauthenticated,
    /// The access hook refused the subscriber (HTTP 403).
    #[error("not allowed to subscribe to this topic")]
    Forbidden,
    /// No topic was given.
    #[error("no topic to subscribe to")]
    NoTopics,
    /// The hub is shutting down (HTTP 503).
    #[error("server is shutting down")]
    ShuttingDown,
    /// The backplane is unreachable and this node cannot serve the client's position yet
    /// (HTTP 503; see [`Hub::subscribe`](crate::Hub::subscribe)).
    #[error("backplane unavailable")]
    Unavailable,
    /// [`Hub::blocking_subscribe`](crate::Hub::blocking_subscribe) was called on a thread that
    /// runs a Tokio runtime: `.await` [`Hub::subscribe`](crate::Hub::subscribe) there.
    #[error("blocking_subscribe called on a thread that runs a Tokio runtime: `.await` subscribe instead")]
    WouldBlock,
}
