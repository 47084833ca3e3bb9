//! [`HubBuilder`] and the access hook.

use std::sync::Arc;
use std::time::Duration;

use super::{Backplane, Hub, HubConfig, HubInner, TopicConfig};

/// The answer of an [access hook](HubBuilder::authorize) for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The subscriber may read the topic.
    Allow,
    /// No valid credentials (HTTP 401).
    Unauthenticated,
    /// Authenticated, but not allowed (HTTP 403).
    Forbidden,
    /// Pretend the topic does not exist (HTTP 404), so that its existence does not leak.
    Hidden,
}

/// What an [access hook](HubBuilder::authorize) sees.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The topic asked for.
    pub topic: &'a str,
    /// The topic's owner, if it was created with one.
    pub owner: Option<&'a str>,
    /// The subscriber's user key, if the request carries one.
    pub user: Option<&'a str>,
}

pub(crate) type AccessHook = dyn Fn(&AccessRequest<'_>) -> Access + Send + Sync;

/// Builds a [`Hub`] with non-default settings.
///
/// ```
/// use std::time::Duration;
/// use sse_core::{Hub, hub::{Access, Policy, TopicConfig}};
///
/// let hub = Hub::builder()
///     .topic_config(TopicConfig::default().policy(Policy::DropOldest).queue(256))
///     .finished_ttl(Duration::from_secs(60))
///     .max_subscriptions_per_user(5)
///     .authorize(|req| match (req.owner, req.user) {
///         (Some(owner), Some(user)) if owner == user => Access::Allow,
///         (None, _) => Access::Allow,
///         _ => Access::Hidden,
///     })
///     .build();
/// # drop(hub);
/// ```
#[must_use]
pub struct HubBuilder {
    pub(crate) config: HubConfig,
    pub(crate) access: Option<Arc<AccessHook>>,
    pub(crate) backplane: Option<Arc<dyn Backplane>>,
}

impl HubBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }

    /// Settings for topics created without their own.
    pub fn topic_config(mut self, topic: TopicConfig) -> Self {
        self.config.topic = topic;
        self
    }

    /// Whether subscribing to an unknown topic creates it.
    pub fn lazy_topics(mut self, lazy: bool) -> Self {
        self.config.lazy_topics = lazy;
        self
    }

    /// How long finished topics stay.
    pub fn finished_ttl(mut self, ttl: Duration) -> Self {
        self.config.finished_ttl = ttl;
        self
    }

    /// How long idle topics (no subscribers, no publishes) stay.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.config.idle_ttl = ttl;
        self
    }

    /// Global budget for history bytes.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.config.memory_budget = bytes;
        self
    }

    /// Limits concurrent subscriptions per user key.
    pub fn max_subscriptions_per_user(mut self, max: usize) -> Self {
        self.config.max_subscriptions_per_user = Some(max);
        self
    }

    /// Heartbeat interval of response bodies built from this hub's subscriptions.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config.heartbeat = interval;
        self
    }

    /// Installs an access hook, called for every topic of every subscribe.
    pub fn authorize(
        mut self,
        hook: impl Fn(&AccessRequest<'_>) -> Access + Send + Sync + 'static,
    ) -> Self {
        self.access = Some(Arc::new(hook));
        self
    }

    /// Routes publishes through a backplane (see [`Backplane`]).
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// How many evicted finished topics the hub still answers for (see
    /// [`HubConfig::max_tombstones`]).
    pub fn max_tombstones(mut self, max: usize) -> Self {
        self.config.max_tombstones = max;
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Hub {
        #[cfg(feature = "metrics")]
        super::describe_metrics();
        let hub = Hub {
            inner: Arc::new(HubInner::new(self.config, self.access, self.backplane)),
        };
        if let Some(bp) = &hub.inner.backplane {
            bp.attach(hub.downgrade());
        }
        hub
    }
}
