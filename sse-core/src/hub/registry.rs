//! The hub's registry: creating, finding and evicting topics, per-user limits, the memory
//! budget, and the tombstones of evicted finished topics.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use super::builder::AccessHook;
use super::cursor::Incarnation;
use super::metrics::Counters;
use super::subscription::{SubState, SubTopic};
use super::topic::{self, Entry, TopicShared};
use super::{Backplane, HubConfig, PublishError, SubscribeError, Subscription, TopicConfig};

/// State shared by every clone of a [`Hub`](super::Hub).
///
/// # Lock order
///
/// `topics` (the registry lock) → one topic's `state` lock → `tombstones`. `users` is a leaf:
/// nothing else is taken while it is held. No two topic locks are ever held at once, and
/// wakers are woken after every lock is released.
pub(crate) struct HubInner {
    /// Settings, fixed at build time.
    pub(crate) config: HubConfig,
    /// Live topics by name.
    pub(crate) topics: RwLock<HashMap<Arc<str>, Arc<TopicShared>>>,
    /// Open subscriptions per user key, for `max_subscriptions_per_user`.
    users: Mutex<HashMap<Arc<str>, usize>>,
    /// Counters and gauges behind [`Hub::metrics`](super::Hub::metrics).
    pub(crate) counters: Counters,
    /// The access hook, asked for every topic of every subscribe.
    pub(crate) access: Option<Arc<AccessHook>>,
    /// Orders and distributes publishes between nodes, if any.
    pub(crate) backplane: Option<Arc<dyn Backplane>>,
    /// Set by [`Hub::begin_shutdown`](super::Hub::begin_shutdown): subscribes are refused and
    /// every subscription ends after a final frame.
    pub(crate) shutting_down: AtomicBool,
    /// Milliseconds since `epoch` at which the next lazy eviction sweep is due.
    next_sweep: AtomicU64,
    /// The clock origin of `next_sweep`.
    epoch: Instant,
    /// The final state of finished topics evicted from `topics`, so that a late client still
    /// gets it.
    tombstones: Mutex<Tombstones>,
}

/// What the hub keeps of an evicted finished topic.
#[derive(Debug, Clone)]
pub(crate) struct Tombstone {
    /// The incarnation the topic had.
    pub(crate) incarnation: Incarnation,
    /// Its owner, for the access hook.
    pub(crate) owner: Option<Arc<str>>,
    /// Its snapshot at the end (latest event per key), oldest first.
    pub(crate) snapshot: Vec<Entry>,
    /// Its terminal event.
    pub(crate) terminal: Entry,
}

impl Tombstone {
    /// Whether `id` is the terminal event's SSE id.
    pub(crate) fn terminal_id_is(&self, id: &str) -> bool {
        self.terminal.id_text() == Some(id.as_bytes())
    }
}

/// Tombstones by name, forgotten oldest first beyond the configured count.
#[derive(Debug, Default)]
struct Tombstones {
    by_name: HashMap<Arc<str>, Tombstone>,
    order: VecDeque<Arc<str>>,
}

impl Tombstones {
    fn insert(&mut self, max: usize, name: Arc<str>, tomb: Tombstone) {
        if max == 0 {
            return;
        }
        if self.by_name.insert(Arc::clone(&name), tomb).is_none() {
            self.order.push_back(name);
        }
        while self.by_name.len() > max {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.by_name.remove(&old);
        }
    }

    fn remove(&mut self, name: &str) {
        if self.by_name.remove(name).is_some() {
            self.order.retain(|n| &**n != name);
        }
    }
}

impl HubInner {
    pub(crate) fn new(
        config: HubConfig,
        access: Option<Arc<AccessHook>>,
        backplane: Option<Arc<dyn Backplane>>,
    ) -> Self {
        HubInner {
            config,
            topics: RwLock::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            access,
            backplane,
            shutting_down: AtomicBool::new(false),
            next_sweep: AtomicU64::new(0),
            epoch: Instant::now(),
            tombstones: Mutex::new(Tombstones::default()),
        }
    }

    /// The tombstone of the evicted finished topic `name`, if kept.
    pub(crate) fn tombstone(&self, name: &str) -> Option<Tombstone> {
        self.tombstones.lock().by_name.get(name).cloned()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub(crate) fn get_or_create(
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
        // In memory the hub names each new life of a topic; a backplane names it otherwise.
        let incarnation = self.backplane.is_none().then(Incarnation::new);
        let t = Arc::new(TopicShared::new(
            Arc::clone(&name),
            config.unwrap_or_else(|| self.config.topic.clone()),
            owner.map(Arc::from),
            lazy,
            incarnation,
        ));
        topics.insert(Arc::clone(&name), Arc::clone(&t));
        self.counters.topic_added();
        drop(topics);
        // A new life of the topic: the previous one's final state no longer answers.
        self.tombstones.lock().remove(&name);
        Ok(t)
    }

    /// A subscription that failed half-way: releases what it took.
    pub(crate) fn partial(
        self: &Arc<Self>,
        topics: Vec<SubTopic>,
        user: Option<Arc<str>>,
    ) -> Subscription {
        self.counters.subscriber_added();
        Subscription::new(
            Arc::clone(self),
            topics,
            VecDeque::new(),
            user,
            SubState::Live,
        )
    }

    pub(crate) fn join_user(&self, user: &Arc<str>) -> Result<(), SubscribeError> {
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
            if topics.remove(&t.name).is_some() {
                self.counters.topic_removed();
            }
        }
    }

    pub(crate) fn subscriber_released(&self) {
        self.counters.subscriber_removed();
    }

    pub(crate) fn maybe_sweep(&self) {
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

    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<Arc<TopicShared>> = self
            .topics
            .read()
            .values()
            .filter(|t| t.expired(now, self.config.finished_ttl, self.config.idle_ttl))
            .cloned()
            .collect();
        if !expired.is_empty() {
            tracing::debug!(evicted = expired.len(), "evicting finished and idle topics");
        }
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
            if let (Some(terminal), Some(incarnation)) = (&st.terminal, t.incarnation.get()) {
                self.tombstones.lock().insert(
                    self.config.max_tombstones,
                    Arc::clone(&t.name),
                    Tombstone {
                        incarnation,
                        owner: t.owner.clone(),
                        snapshot: st.snapshot_before(terminal.seq),
                        terminal: terminal.clone(),
                    },
                );
            }
            let bytes = st.ring_bytes;
            st.ring.clear();
            st.ring_bytes = 0;
            st.snapshot.clear();
            // `st.terminal` stays: a subscriber still open gets it before its stream ends.
            self.counters.sub_history(bytes);
            st.take_waiters()
        };
        if topics.remove(&t.name).is_some() {
            self.counters.topic_removed();
        }
        drop(topics);
        for w in wake {
            w.wake();
        }
    }

    /// Enforces the global budget after a publish grew the histories.
    pub(crate) fn enforce_budget(&self, t: &TopicShared) {
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
