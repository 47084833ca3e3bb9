//! The [`Hub`]: per-topic fan-out with replay, snapshots, job lifecycle and backpressure.
//!
//! # Data path
//!
//! `publish(event)` encodes the event **once** into a frame, appends it to the topic's log (a
//! bounded ring that is also the replay history) and wakes the subscribers that wait. Each
//! [`Subscription`] reads the log from its own cursor. Nothing copies, re-encodes or queues a
//! frame per subscriber, and the publisher never waits for a subscriber.
//!
//! # Ids, replay and gaps
//!
//! Each topic numbers its events 1, 2, 3, …; the number is the SSE `id:`. A subscription over
//! several topics sends a composite cursor instead (see [`cursor`]). A client that resumes with a
//! `Last-Event-ID` inside the history gets exactly the events after it, then live events, from
//! the same read loop, so there is no gap and no duplicate however publishes race the resume.
//! An id older than the history (or one the hub never issued) gets an in-band `gap` event
//! (`event: gap`, JSON data `{"topic", "after", "resumed_at"}`), then the topic's snapshot.
//!
//! # Snapshots
//!
//! An event published with a conflation key ([`Topic::publish_keyed`]) becomes the topic's
//! latest state for that key. A new subscriber (no `Last-Event-ID`) first receives the latest
//! event of every key, in publish order, and the terminal event if the topic is finished.
//!
//! # Lifecycle
//!
//! [`Topic::finish`] publishes a terminal event. Subscribers receive it and their streams end;
//! a later subscriber gets the final state and ends; one that already saw the terminal event gets
//! [`SubscribeError::Finished`] (HTTP 204). Finished topics are evicted after
//! [`HubConfig::finished_ttl`], idle ones after [`HubConfig::idle_ttl`].
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use sse_core::{Event, Hub};
//!
//! # tokio_test_block_on(async {
//! let hub = Hub::new();
//! let job = hub.job("ocr-42")?;
//! let mut sub = hub.subscribe("ocr-42")?;
//!
//! job.progress(&serde_json::json!({"page": 1, "of": 2}))?;
//! job.complete(Event::new().event("completed").data("done"))?;
//!
//! let first = sub.next().await.unwrap();
//! assert_eq!(first.as_bytes(), &b"event: progress\ndata: {\"of\":2,\"page\":1}\nid: 1\n\n"[..]);
//! let last = sub.next().await.unwrap();
//! assert_eq!(last.as_bytes(), &b"event: completed\ndata: done\nid: 2\n\n"[..]);
//! assert!(sub.next().await.is_none()); // the stream ends after the terminal event
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod backplane;
mod config;
pub mod cursor;
mod error;
mod job;
mod metrics;
mod subscription;
mod topic;

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

pub use backplane::{
    Backplane, BackplaneError, BackplaneFuture, Injected, Outgoing, PublishAck, WeakHub,
    SEQ_PLACEHOLDER, SEQ_PLACEHOLDER_TEXT,
};
pub use config::{HubConfig, Policy, TopicConfig};
pub use cursor::{Cursor, Position};
pub use error::{PublishError, SubscribeError};
pub use job::JobPublisher;
pub use metrics::Metrics;
pub use subscription::Subscription;

use crate::event::{Event, IdText};
use metrics::Counters;
use subscription::{gap_frame, SubState, SubTopic};
use topic::{AppendError, TopicShared};

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

type AccessHook = dyn Fn(&AccessRequest<'_>) -> Access + Send + Sync;

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
    config: HubConfig,
    access: Option<Arc<AccessHook>>,
    backplane: Option<Arc<dyn Backplane>>,
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

    /// Builds the hub.
    pub fn build(self) -> Hub {
        let hub = Hub {
            inner: Arc::new(HubInner {
                config: self.config,
                topics: RwLock::new(HashMap::new()),
                users: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                access: self.access,
                backplane: self.backplane,
                shutting_down: AtomicBool::new(false),
                next_sweep: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        };
        if let Some(bp) = &hub.inner.backplane {
            bp.attach(hub.downgrade());
        }
        hub
    }
}

/// A registry of topics with fan-out to subscriptions. Cheap to clone (`Arc`), `Send + Sync`;
/// usable from async tasks and from plain threads (publishing needs no runtime).
///
/// See the [module docs](self) for the data path and the promises.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    pub(crate) config: HubConfig,
    topics: RwLock<HashMap<Arc<str>, Arc<TopicShared>>>,
    users: Mutex<HashMap<Arc<str>, usize>>,
    pub(crate) counters: Counters,
    access: Option<Arc<AccessHook>>,
    backplane: Option<Arc<dyn Backplane>>,
    shutting_down: AtomicBool,
    /// Milliseconds since `epoch` at which the next lazy eviction sweep is due.
    next_sweep: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("topics", &self.inner.topics.read().len())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

/// Options for [`Hub::create_topic`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TopicOptions {
    config: Option<TopicConfig>,
    owner: Option<String>,
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
    topics: Vec<String>,
    last_event_id: Option<String>,
    user: Option<String>,
    create: Option<bool>,
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
    /// [`HubConfig::max_subscriptions_per_user`].
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Create unknown topics instead of failing with [`SubscribeError::NotFound`] (overrides
    /// [`HubConfig::lazy_topics`]).
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

impl Hub {
    /// A hub with default settings.
    pub fn new() -> Hub {
        Hub::builder().build()
    }

    /// A builder for non-default settings.
    pub fn builder() -> HubBuilder {
        HubBuilder {
            config: HubConfig::default(),
            access: None,
            backplane: None,
        }
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Creates a topic (or returns the existing one) with `options`.
    pub fn create_topic(&self, name: &str, options: TopicOptions) -> Result<Topic, PublishError> {
        let shared = self
            .inner
            .get_or_create(name, options.config, options.owner, false)?;
        Ok(Topic {
            hub: self.clone(),
            shared,
        })
    }

    /// The topic named `name`, created with default settings if missing.
    pub fn topic(&self, name: &str) -> Result<Topic, PublishError> {
        self.create_topic(name, TopicOptions::default())
    }

    /// The topic named `name`, if it exists.
    pub fn get_topic(&self, name: &str) -> Option<Topic> {
        let shared = self.inner.topics.read().get(name).cloned()?;
        Some(Topic {
            hub: self.clone(),
            shared,
        })
    }

    /// A typed publisher for a job: creates the topic `id` and finishes it as failed if the
    /// publisher is dropped without [`JobPublisher::complete`] or [`JobPublisher::fail`].
    pub fn job(&self, id: &str) -> Result<JobPublisher, PublishError> {
        Ok(JobPublisher::new(self.topic(id)?))
    }

    /// Like [`Hub::job`], with an owner (for the access hook) and settings.
    pub fn job_with(&self, id: &str, options: TopicOptions) -> Result<JobPublisher, PublishError> {
        Ok(JobPublisher::new(self.create_topic(id, options)?))
    }

    /// Publishes `event` to `topic` (created if missing) and returns its sequence number, the
    /// event's SSE id. Never waits for subscribers.
    pub fn publish(&self, topic: &str, event: Event<'_>) -> Result<u64, PublishError> {
        self.topic(topic)?.publish(event)
    }

    /// Publishes a terminal event and finishes the topic.
    pub fn finish(&self, topic: &str, event: Event<'_>) -> Result<u64, PublishError> {
        match self.get_topic(topic) {
            Some(t) => t.finish(event),
            None => Err(PublishError::NotFound),
        }
    }

    /// Subscribes to one or several topics.
    ///
    /// Accepts a topic name or [`SubscribeOptions`] (several topics, `Last-Event-ID`, user).
    pub fn subscribe(
        &self,
        options: impl Into<SubscribeOptions>,
    ) -> Result<Subscription, SubscribeError> {
        self.inner.maybe_sweep();
        let mut opts = options.into();
        if self.inner.is_shutting_down() {
            return Err(SubscribeError::ShuttingDown);
        }
        // A topic named twice is one cursor, not two copies of every event.
        let mut seen = std::collections::HashSet::new();
        opts.topics.retain(|t| seen.insert(t.clone()));
        if opts.topics.is_empty() {
            return Err(SubscribeError::NoTopics);
        }
        // The user's slot first, so that a refused subscribe creates no topic.
        let user: Option<Arc<str>> = opts.user.as_deref().map(Arc::from);
        if let Some(u) = &user {
            self.inner.join_user(u)?;
        }
        let shared = match self.resolve(&opts) {
            Ok(shared) => shared,
            Err(e) => {
                if let Some(u) = &user {
                    self.inner.leave_user(u);
                }
                return Err(e);
            }
        };
        let cursor = opts.last_event_id.as_deref().map(Cursor::parse);
        let single = shared.len() == 1;
        let mut topics: Vec<SubTopic> = Vec::with_capacity(shared.len());
        // Per topic with frames to send first: (index, gap notice, snapshot entries, cursor after them).
        let mut initial: Vec<(usize, Option<Bytes>, Vec<topic::Entry>, u64)> = Vec::new();
        let mut all_finished_nothing_new = true;
        let mut shared = shared.into_iter();
        while let Some(t) = shared.next() {
            let mut st = t.state.lock();
            if let Some(max) = t.config.max_subscribers {
                if st.subscribers >= max {
                    drop(st);
                    // Releases the slots taken so far, the user's count, and lazy topics that
                    // this call created and nobody uses.
                    drop(self.inner.partial(topics, user));
                    self.inner.forget_if_unused(&t);
                    for rest in shared {
                        self.inner.forget_if_unused(&rest);
                    }
                    return Err(SubscribeError::TopicFull { limit: max });
                }
            }
            let head = st.last_seq + 1;
            let first = st.first_seq();
            // A caller-supplied id is matched as text first: ids like "20" or "row=1" must not be
            // mistaken for the hub's own cursors.
            let raw = opts.last_event_id.as_deref().filter(|_| single);
            let resume_after: Option<u64> = match raw.and_then(|id| find_id(&st, id)) {
                Some(seq) => Some(seq),
                None => match cursor.as_ref().and_then(|c| c.position(&t.name, single)) {
                    Some(Position::Seq(k)) => Some(k),
                    Some(Position::Id(_)) => Some(u64::MAX),
                    None => None,
                },
            };
            let mut gap = None;
            let mut entries = Vec::new();
            let next;
            match resume_after {
                Some(k) if k.saturating_add(1) == head && st.terminal.is_some() => {
                    // Saw everything, including the terminal event.
                    next = head;
                }
                Some(k) if k < head && k + 1 >= first => {
                    // Inside the history: replay exactly what follows.
                    next = k + 1;
                    all_finished_nothing_new = false;
                }
                Some(k) => {
                    // Older than the history, or never issued here: say so, then the state.
                    let after = (k != u64::MAX).then_some(k);
                    gap = Some(gap_frame(&t.name, after, head));
                    self.inner.counters.gap(1);
                    entries = st.snapshot_before(head);
                    entries.extend(st.terminal.clone());
                    next = head;
                    all_finished_nothing_new = false;
                }
                None => {
                    entries = st.snapshot_before(head);
                    entries.extend(st.terminal.clone());
                    next = head;
                    all_finished_nothing_new = false;
                }
            }
            let done = st.terminal.as_ref().is_some_and(|term| next > term.seq);
            let slot = st.add_slot();
            let first_subscriber = st.subscribers == 1;
            drop(st);
            if first_subscriber {
                self.inner.interest_changed(&t.name);
            }
            // Until its first frames are queued, a topic's cursor stands before them, so that a
            // composite id written for another topic's frame never claims them as seen.
            let start = entries.first().map_or(next, |e| e.seq);
            if gap.is_some() || !entries.is_empty() {
                initial.push((topics.len(), gap, entries, next));
            }
            topics.push(SubTopic {
                topic: t,
                next: Cell::new(start),
                slot,
                done: Cell::new(done),
                live_from: head,
            });
        }
        self.inner.counters.subscriber_added();
        let mut sub = Subscription::new(
            Arc::clone(&self.inner),
            topics,
            VecDeque::new(),
            user,
            SubState::Live,
        );
        if all_finished_nothing_new && sub.topics.iter().all(|t| t.done.get()) {
            drop(sub);
            return Err(SubscribeError::Finished);
        }
        // The frames a new or resuming subscriber needs first.
        for (idx, gap, entries, after) in initial {
            sub.push_initial(idx, gap, &entries, after);
        }
        if sub.topics.iter().all(|t| t.done.get()) {
            sub.state = SubState::Ending;
        }
        Ok(sub)
    }

    /// Finds (or lazily creates) every topic of a subscribe, asking the access hook first.
    fn resolve(&self, opts: &SubscribeOptions) -> Result<Vec<Arc<TopicShared>>, SubscribeError> {
        let create = opts.create.unwrap_or(self.inner.config.lazy_topics);
        let mut shared: Vec<Arc<TopicShared>> = Vec::with_capacity(opts.topics.len());
        let refuse = |shared: &[Arc<TopicShared>], e: SubscribeError| {
            for t in shared {
                self.inner.forget_if_unused(t);
            }
            Err(e)
        };
        for name in &opts.topics {
            let existing = self.inner.topics.read().get(name.as_str()).cloned();
            if existing.is_none() && !create {
                return refuse(&shared, SubscribeError::NotFound);
            }
            if let Some(hook) = &self.inner.access {
                let req = AccessRequest {
                    topic: name,
                    owner: existing.as_ref().and_then(|t| t.owner.as_deref()),
                    user: opts.user.as_deref(),
                };
                let refused = match hook(&req) {
                    Access::Allow => None,
                    Access::Unauthenticated => Some(SubscribeError::Unauthenticated),
                    Access::Forbidden => Some(SubscribeError::Forbidden),
                    Access::Hidden => Some(SubscribeError::NotFound),
                };
                if let Some(e) = refused {
                    return refuse(&shared, e);
                }
            }
            let t = match existing {
                Some(t) => t,
                None => match self.inner.get_or_create(name, None, None, true) {
                    Ok(t) => t,
                    Err(_) => return refuse(&shared, SubscribeError::TooManyTopics),
                },
            };
            shared.push(t);
        }
        Ok(shared)
    }

    /// A snapshot of the hub's counters and gauges.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.inner.counters.snapshot();
        let topics = self.inner.topics.read();
        m.topics = topics.len();
        for (name, t) in topics.iter() {
            let n = t.state.lock().subscribers;
            if n > 0 {
                m.subscribers_per_topic.insert(name.to_string(), n);
            }
        }
        #[cfg(feature = "metrics")]
        ::metrics::gauge!("sse_topics").set(m.topics as f64);
        m
    }

    /// Current number of subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner
            .counters
            .subscribers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Current number of topics.
    pub fn topic_count(&self) -> usize {
        self.inner.topics.read().len()
    }

    /// Evicts finished topics older than their TTL and idle topics, and enforces the global
    /// memory budget. Runs lazily on subscribe and topic creation too; call it from a timer to
    /// evict promptly on a quiet server.
    pub fn evict_expired(&self) {
        self.inner.sweep();
    }

    /// Whether [`Hub::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.is_shutting_down()
    }

    /// Ends every subscription: each receives a final frame (a comment and a short `retry:`
    /// hint) and its stream ends. New subscriptions are refused. Waits until every
    /// subscription has been dropped or `deadline` passes; returns whether all were dropped.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.begin_shutdown();
        let until = Instant::now() + deadline;
        loop {
            if self.subscriber_count() == 0 {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts the shutdown without waiting: every subscription is woken and ends after its
    /// final frame.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let topics: Vec<_> = self.inner.topics.read().values().cloned().collect();
        for t in topics {
            let wake = t.state.lock().take_waiters();
            for w in wake {
                w.wake();
            }
        }
    }
}

fn find_id(st: &topic::TopicState, id: &str) -> Option<u64> {
    st.ring.iter().rev().find_map(|e| {
        let tail = &e.frame[e.body_len as usize..];
        let text = tail.strip_prefix(b"id: ")?.strip_suffix(b"\n\n")?;
        (text == id.as_bytes()).then_some(e.seq)
    })
}

impl HubInner {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    fn get_or_create(
        &self,
        name: &str,
        config: Option<TopicConfig>,
        owner: Option<String>,
        lazy: bool,
    ) -> Result<Arc<TopicShared>, PublishError> {
        let found = |t: &Arc<TopicShared>| {
            if !lazy {
                // Someone publishes here now: it is no longer a subscriber-only topic.
                t.lazy.store(false, Ordering::Relaxed);
            }
            Ok(Arc::clone(t))
        };
        if let Some(t) = self.topics.read().get(name) {
            return found(t);
        }
        self.maybe_sweep();
        let mut topics = self.topics.write();
        if let Some(t) = topics.get(name) {
            return found(t);
        }
        if let Some(max) = self.config.max_topics {
            if topics.len() >= max {
                return Err(PublishError::TooManyTopics { limit: max });
            }
        }
        let name: Arc<str> = Arc::from(name);
        let t = Arc::new(TopicShared::new(
            Arc::clone(&name),
            config.unwrap_or_else(|| self.config.topic.clone()),
            owner.map(Arc::from),
            lazy,
        ));
        topics.insert(name, Arc::clone(&t));
        Ok(t)
    }

    /// A subscription that failed half-way: releases what it took.
    fn partial(self: &Arc<Self>, topics: Vec<SubTopic>, user: Option<Arc<str>>) -> Subscription {
        self.counters.subscriber_added();
        Subscription::new(
            Arc::clone(self),
            topics,
            VecDeque::new(),
            user,
            SubState::Live,
        )
    }

    fn join_user(&self, user: &Arc<str>) -> Result<(), SubscribeError> {
        let mut users = self.users.lock();
        let n = users.entry(Arc::clone(user)).or_insert(0);
        if let Some(max) = self.config.max_subscriptions_per_user {
            if *n >= max {
                if *n == 0 {
                    users.remove(user);
                }
                return Err(SubscribeError::UserLimit { limit: max });
            }
        }
        *n += 1;
        Ok(())
    }

    pub(crate) fn leave_user(&self, user: &str) {
        let mut users = self.users.lock();
        if let Some(n) = users.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                users.remove(user);
            }
        }
    }

    /// Called once per subscription when it ends or is dropped.
    pub(crate) fn leave_topic(&self, t: &Arc<TopicShared>, slot: usize) {
        let last_subscriber = {
            let mut st = t.state.lock();
            st.remove_slot(slot);
            st.subscribers == 0
        };
        self.forget_if_unused(t);
        if last_subscriber {
            self.interest_changed(&t.name);
        }
    }

    /// Forgets a topic created only by subscribers when nobody uses it any more: no subscriber,
    /// nothing published, and no handle held elsewhere (the registry and the caller hold the
    /// only two references). Subscribe/drop cycles thus leave nothing behind.
    pub(crate) fn forget_if_unused(&self, t: &Arc<TopicShared>) {
        let unused = |t: &Arc<TopicShared>, st: &topic::TopicState| {
            st.subscribers == 0
                && t.lazy.load(Ordering::Relaxed)
                && st.last_seq == 0
                && !st.removed
                && Arc::strong_count(t) <= 2
        };
        if !unused(t, &t.state.lock()) {
            return;
        }
        let mut topics = self.topics.write();
        let mut st = t.state.lock();
        if unused(t, &st) {
            st.removed = true;
            topics.remove(&t.name);
        }
    }

    pub(crate) fn subscriber_released(&self) {
        self.counters.subscriber_removed();
    }

    fn maybe_sweep(&self) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now_ms >= due
            && self
                .next_sweep
                .compare_exchange(due, now_ms + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
    }

    fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<Arc<TopicShared>> = self
            .topics
            .read()
            .values()
            .filter(|t| t.expired(now, self.config.finished_ttl, self.config.idle_ttl))
            .cloned()
            .collect();
        for t in expired {
            self.remove_topic(&t);
        }
        // Age bounds, then the global memory budget: trim the biggest histories first.
        let topics: Vec<Arc<TopicShared>> = self.topics.read().values().cloned().collect();
        for t in &topics {
            let mut st = t.state.lock();
            t.trim(&mut st, &self.counters, now);
        }
        if self.counters.history_bytes.load(Ordering::Relaxed) > self.config.memory_budget {
            let mut by_size: Vec<(usize, &Arc<TopicShared>)> = topics
                .iter()
                .map(|t| (t.state.lock().ring_bytes, t))
                .collect();
            by_size.sort_by_key(|(size, _)| std::cmp::Reverse(*size));
            for (_, t) in by_size {
                let mut st = t.state.lock();
                while st.ring.len() > 1
                    && self.counters.history_bytes.load(Ordering::Relaxed)
                        > self.config.memory_budget
                {
                    st.pop_front(&self.counters);
                }
                if self.counters.history_bytes.load(Ordering::Relaxed) <= self.config.memory_budget
                {
                    break;
                }
            }
        }
    }

    fn remove_topic(&self, t: &Arc<TopicShared>) {
        let mut topics = self.topics.write();
        let wake = {
            let mut st = t.state.lock();
            if st.removed {
                return;
            }
            st.removed = true;
            let bytes = st.ring_bytes;
            st.ring.clear();
            st.ring_bytes = 0;
            st.snapshot.clear();
            // `st.terminal` stays: a subscriber still open gets it before its stream ends.
            self.counters.sub_history(bytes);
            st.take_waiters()
        };
        topics.remove(&t.name);
        drop(topics);
        for w in wake {
            w.wake();
        }
    }

    /// Enforces the global budget after a publish grew the histories.
    fn enforce_budget(&self, t: &TopicShared) {
        if self.counters.history_bytes.load(Ordering::Relaxed) > self.config.memory_budget {
            let mut st = t.state.lock();
            while st.ring.len() > 1
                && self.counters.history_bytes.load(Ordering::Relaxed) > self.config.memory_budget
            {
                st.pop_front(&self.counters);
            }
        }
    }
}

/// A handle on one topic, for publishing. Cheap to clone.
#[derive(Clone)]
pub struct Topic {
    hub: Hub,
    shared: Arc<TopicShared>,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The hub this topic belongs to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Current subscribers of this topic.
    pub fn subscriber_count(&self) -> usize {
        self.shared.state.lock().subscribers
    }

    /// Sequence number of the last event published (0: none).
    pub fn last_seq(&self) -> u64 {
        self.shared.state.lock().last_seq
    }

    /// Whether the topic has been finished.
    pub fn is_finished(&self) -> bool {
        self.shared.state.lock().terminal.is_some()
    }

    /// Publishes `event`; returns its sequence number (its SSE id, unless the event carries its
    /// own id).
    pub fn publish(&self, event: Event<'_>) -> Result<u64, PublishError> {
        self.append(None, false, |seq| event_with_seq(&event, seq))
    }

    /// Publishes `event` with a conflation key: it becomes the topic's latest state for `key`
    /// (part of the snapshot new subscribers get first), and a slow subscriber under
    /// [`Policy::Conflate`] skips it if a newer event with the same key is waiting.
    pub fn publish_keyed(&self, key: &str, event: Event<'_>) -> Result<u64, PublishError> {
        self.append(Some(key), false, |seq| event_with_seq(&event, seq))
    }

    /// Publishes the event that `build` makes from the sequence number the event will get, so
    /// that a sequence inside the payload always equals the SSE id.
    ///
    /// ```
    /// use sse_core::{Event, Hub};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Update { sequence: u64, progress: u8 }
    ///
    /// let hub = Hub::new();
    /// let topic = hub.topic("task-1")?;
    /// let seq = topic.publish_with(None, |seq| {
    ///     Event::new().event("task_progress").json_owned(Update { sequence: seq, progress: 10 })
    /// })?;
    /// assert_eq!(seq, 1);
    /// # Ok::<(), sse_core::hub::PublishError>(())
    /// ```
    pub fn publish_with<'e>(
        &self,
        key: Option<&str>,
        build: impl FnOnce(u64) -> Event<'e>,
    ) -> Result<u64, PublishError> {
        self.append(key, false, |seq| event_with_seq(&build(seq), seq))
    }

    /// Publishes the terminal event and finishes the topic: subscribers receive it and their
    /// streams end; later publishes fail with [`PublishError::Finished`].
    pub fn finish(&self, event: Event<'_>) -> Result<u64, PublishError> {
        self.append(None, true, |seq| event_with_seq(&event, seq))
    }

    /// Injects an event ordered elsewhere (by a [`Backplane`]) with its sequence number.
    ///
    /// Sequences at or below the last one applied are ignored (a duplicate delivery), so a
    /// backplane may redeliver after a reconnect. Returns whether the event was applied.
    pub fn inject(&self, injected: Injected<'_>) -> Result<bool, PublishError> {
        let body = injected.body;
        let res = self.shared.append(
            &self.hub.inner.counters,
            injected.key,
            injected.terminal,
            Some(injected.seq),
            |seq| {
                let mut buf = Vec::with_capacity(body.len() + 26);
                buf.extend_from_slice(body);
                let body_len = buf.len();
                buf.extend_from_slice(b"id: ");
                buf.extend_from_slice(seq.to_string().as_bytes());
                buf.extend_from_slice(b"\n\n");
                Ok(crate::event::Encoded {
                    frame: crate::Frame::from_vec(buf),
                    body_len,
                })
            },
        );
        match res {
            Ok(_) => {
                self.hub.inner.enforce_budget(&self.shared);
                Ok(true)
            }
            Err(AppendError::Finished | AppendError::Stale) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn append(
        &self,
        key: Option<&str>,
        terminal: bool,
        make: impl FnOnce(u64) -> Result<crate::event::Encoded, crate::EventError>,
    ) -> Result<u64, PublishError> {
        if self.hub.inner.backplane.is_some() {
            // Encoded once here; the backplane orders the event and every node (this one too)
            // applies it through `inject`. Blocks off-runtime, refuses on one (see `backplane`).
            return self.publish_blocking(key, terminal, make);
        }
        let res = self
            .shared
            .append(&self.hub.inner.counters, key, terminal, None, make);
        match res {
            Ok(seq) => {
                self.hub.inner.enforce_budget(&self.shared);
                Ok(seq)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl From<AppendError> for PublishError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Finished | AppendError::Stale => PublishError::Finished,
            AppendError::Removed => PublishError::NotFound,
            AppendError::Overflow => PublishError::SequenceExhausted,
            AppendError::Encode(e) => PublishError::Event(e),
        }
    }
}

/// Encodes `event` with the hub's id (`seq`) unless it carries its own.
fn event_with_seq(event: &Event<'_>, seq: u64) -> Result<crate::event::Encoded, crate::EventError> {
    match event.id_ref() {
        Some(id) => event.encode_parts(Some(IdText::Str(id))),
        None => event.encode_parts(Some(IdText::Seq(seq))),
    }
}
