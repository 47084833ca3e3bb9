//! Options of [`Hub::create_topic`](super::Hub::create_topic) and
//! [`Hub::subscribe`](super::Hub::subscribe).

use super::TopicConfig;

/// Options for [`Hub::create_topic`](super::Hub::create_topic).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TopicOptions {
    pub(crate) config: Option<TopicConfig>,
    pub(crate) owner: Option<String>,
}

impl TopicOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Settings for this topic instead of the hub's defaults.
    pub fn config(mut self, config: TopicConfig) -> Self {
        self.config = Some(config);
        self
    }
    /// The topic's owner, passed to the access hook.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
}

/// What to subscribe to, and as whom. Built from a topic name (`"job-1".into()`) or with the
/// methods below.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SubscribeOptions {
    pub(crate) topics: Vec<String>,
    pub(crate) last_event_id: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) create: Option<bool>,
    pub(crate) from_now: bool,
}

impl SubscribeOptions {
    /// Subscribe to one topic.
    pub fn topic(topic: impl Into<String>) -> Self {
        SubscribeOptions {
            topics: vec![topic.into()],
            ..Self::default()
        }
    }

    /// Subscribe to several topics on one stream (ids become composite cursors).
    pub fn topics<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SubscribeOptions {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Resume after this `Last-Event-ID`.
    pub fn last_event_id(mut self, id: Option<impl Into<String>>) -> Self {
        self.last_event_id = id.map(Into::into);
        self
    }

    /// The subscriber's user key: passed to the access hook and counted against
    /// [`HubConfig::max_subscriptions_per_user`](super::HubConfig::max_subscriptions_per_user).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Start at the topic's current end: no snapshot and no replay, only what is published from
    /// now on, and the terminal event (a topic that is already finished still delivers it, so
    /// the stream ends properly). For a dashboard that loads the current state by other means
    /// and wants live updates only. A `Last-Event-ID` takes precedence: a reconnecting client
    /// resumes where it was.
    ///
    /// ```
    /// use sse_core::{hub::SubscribeOptions, Event, Hub};
    /// use futures_util::StreamExt;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let job = hub.job("render-1")?;
    /// job.progress(&1).await?;
    /// let mut sub = hub.subscribe(SubscribeOptions::topic("render-1").from_now()).await?;
    /// job.progress(&2).await?;
    /// let first = sub.next().await.unwrap();
    /// assert!(first.as_bytes().starts_with(b"event: progress\ndata: 2\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn from_now(mut self) -> Self {
        self.from_now = true;
        self
    }

    /// Create unknown topics instead of failing with [`SubscribeError::NotFound`](super::SubscribeError::NotFound)
    /// (overrides [`HubConfig::lazy_topics`](super::HubConfig::lazy_topics)).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create = Some(create);
        self
    }
}

impl From<&str> for SubscribeOptions {
    fn from(t: &str) -> Self {
        SubscribeOptions::topic(t)
    }
}

impl From<String> for SubscribeOptions {
    fn from(t: String) -> Self {
        SubscribeOptions::topic(t)
    }
}
