//! Hub and topic configuration.

use std::time::Duration;

/// What a subscriber that fell behind receives next.
///
/// A subscriber "falls behind" when more than [`TopicConfig::queue`] events are waiting for it, or
/// when the events it still needs have left the topic's history. Its memory never grows: the
/// events live once in the topic's shared log, and a subscriber is only a cursor into it.
/// Terminal events are delivered under every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Events published with a conflation key replace older waiting events with the same key: a
    /// slow client sees fewer intermediate steps but always the latest, and every event without
    /// a key that is still in the history. Events lost from the history are announced with a
    /// `gap` event followed by the topic's snapshot.
    #[default]
    Conflate,
    /// The oldest waiting events are skipped, announced in-band by a `gap` event; the subscriber
    /// continues with the newest [`TopicConfig::queue`] events.
    DropOldest,
    /// The slow subscriber's stream ends; its client reconnects with its Last-Event-ID and
    /// resumes from the history.
    Disconnect,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "conflate" => Ok(Policy::Conflate),
            "drop-oldest" => Ok(Policy::DropOldest),
            "disconnect" => Ok(Policy::Disconnect),
            other => Err(format!(
                "unknown policy {other:?} (expected conflate, drop-oldest or disconnect)"
            )),
        }
    }
}

/// Per-topic settings. Every topic created without explicit settings uses
/// [`HubConfig::topic`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Backpressure policy for slow subscribers.
    pub policy: Policy,
    /// How many waiting events a subscriber may fall behind before the policy applies.
    pub queue: usize,
    /// Most events kept in the topic's history (the replay window).
    pub history_len: usize,
    /// Most bytes of encoded events kept in the topic's history.
    pub history_bytes: usize,
    /// Oldest event kept in the history.
    pub history_age: Duration,
    /// Most concurrent subscribers of this topic (`None`: unlimited).
    pub max_subscribers: Option<usize>,
    /// Most distinct conflation keys whose latest event the snapshot keeps.
    pub max_snapshot_keys: usize,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            policy: Policy::Conflate,
            queue: 1024,
            history_len: 1024,
            history_bytes: 4 << 20,
            history_age: Duration::from_secs(3600),
            max_subscribers: None,
            max_snapshot_keys: 64,
        }
    }
}

impl TopicConfig {
    /// Sets the backpressure policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the per-subscriber bound, in events (at least 1).
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// Sets the history bound in events (at least 1).
    pub fn history_len(mut self, events: usize) -> Self {
        self.history_len = events.max(1);
        self
    }

    /// Sets the history bound in bytes.
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.history_bytes = bytes;
        self
    }

    /// Sets the history bound in age.
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age;
        self
    }

    /// Limits concurrent subscribers of the topic.
    pub fn max_subscribers(mut self, max: usize) -> Self {
        self.max_subscribers = Some(max);
        self
    }
}

/// Hub-wide settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Settings for topics created without their own.
    pub topic: TopicConfig,
    /// Whether subscribing to an unknown topic creates it (otherwise: [`SubscribeError::NotFound`](crate::hub::SubscribeError::NotFound)).
    pub lazy_topics: bool,
    /// How long a finished topic and its history stay after its terminal event.
    pub finished_ttl: Duration,
    /// How long a topic with no subscribers and no publishes stays before it is evicted.
    pub idle_ttl: Duration,
    /// Global budget for the bytes of history over all topics.
    pub memory_budget: usize,
    /// Most concurrent subscriptions per user key (`None`: unlimited).
    pub max_subscriptions_per_user: Option<usize>,
    /// Interval of heartbeat comments on idle streams.
    pub heartbeat: Duration,
    /// Most topics (`None`: unlimited). Creating more fails with a typed error.
    pub max_topics: Option<usize>,
    /// How many finished topics the hub still answers for after evicting them: their final
    /// state (snapshot and terminal event) is kept, so that a late client gets it (or `204` if
    /// it already saw the end) instead of `404`. Oldest forgotten first; 0 keeps none.
    pub max_tombstones: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            topic: TopicConfig::default(),
            lazy_topics: false,
            finished_ttl: Duration::from_secs(300),
            idle_ttl: Duration::from_secs(3600),
            memory_budget: 256 << 20,
            max_subscriptions_per_user: None,
            heartbeat: Duration::from_secs(15),
            max_topics: Some(1_000_000),
            max_tombstones: 4096,
        }
    }
}
