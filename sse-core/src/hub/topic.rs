//! One topic: its shared log (history ring), snapshot, lifecycle and waiting subscribers.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::config::TopicConfig;
use super::cursor::{Incarnation, IncarnationCell};
use super::metrics::Counters;
use crate::event::Encoded;

/// One event in a topic's log.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    /// The full frame, with the single-topic id (`id: seq`).
    pub(crate) frame: Bytes,
    /// Where the `id:` line starts: `frame[..body_len]` is the event without its id.
    pub(crate) body_len: u32,
    pub(crate) key: Option<Arc<str>>,
    pub(crate) terminal: bool,
    pub(crate) at: Instant,
}

impl Entry {
    /// The value of the frame's `id:` line.
    pub(crate) fn id_text(&self) -> Option<&[u8]> {
        let tail = self.frame.get(self.body_len as usize..)?;
        tail.strip_prefix(b"id: ")?.strip_suffix(b"\n\n")
    }
}

/// Shared state of one topic: held by the hub's registry, by every [`Topic`](super::Topic)
/// handle and by every subscription of it.
///
/// # Locking
///
/// `state` is the topic lock. The hub's registry lock (`HubInner::topics`) may be held while
/// taking it, never the other way round, and no two topic locks are ever held at once.
/// Wakers are taken out under the lock and woken after it is released, so a woken task never
/// contends with the publisher that woke it.
pub(crate) struct TopicShared {
    /// The topic's name (the registry's key).
    pub(crate) name: Arc<str>,
    /// Bounds and policy, fixed at creation.
    pub(crate) config: TopicConfig,
    /// The owner given at creation, passed to the access hook.
    pub(crate) owner: Option<Arc<str>>,
    /// Created on demand by a subscriber: removed again when its last subscriber leaves before
    /// anything was published. Cleared when someone asks for the topic to publish.
    pub(crate) lazy: AtomicBool,
    /// This life of the topic, the first part of its ids. Drawn at creation in memory; with a
    /// backplane unknown until the backplane names it (on the first injected event). Outside
    /// the lock so that a multi-topic subscription can write every topic's position while
    /// holding one topic's lock; it changes only under `state`'s lock.
    pub(crate) incarnation: IncarnationCell,
    /// Everything that changes as events are published and subscribers come and go.
    pub(crate) state: Mutex<TopicState>,
}

/// The part of a topic guarded by its lock.
pub(crate) struct TopicState {
    /// The log: the retained events, oldest first, with contiguous sequence numbers. Bounded by
    /// `history_len`, `history_bytes` and `history_age`, and by the hub's memory budget; the
    /// newest event always stays.
    pub(crate) ring: VecDeque<Entry>,
    /// Sum of the frame sizes in `ring` (also counted in the hub's `history_bytes`).
    pub(crate) ring_bytes: usize,
    /// Sequence of the last event appended (0: none yet). `last_seq + 1` is the head: the
    /// sequence the next event gets, and where a subscriber that has read everything stands.
    pub(crate) last_seq: u64,
    /// Latest event per conflation key, in no particular order (small: bounded by
    /// `max_snapshot_keys`). What a new subscriber receives first, and what a conflating slow
    /// subscriber compares against to skip superseded events.
    pub(crate) snapshot: Vec<Entry>,
    /// The terminal event once the topic is finished. Kept apart from the ring, so that
    /// trimming or eviction never loses it for a subscriber still reading.
    pub(crate) terminal: Option<Entry>,
    /// Last publish or subscriber change: the idle and finished TTLs count from it.
    pub(crate) last_activity: Instant,
    /// Live subscriptions reading this topic.
    pub(crate) subscribers: usize,
    /// Waker slots, one per subscription of this topic (indexed by the subscription's slot).
    wakers: Vec<Option<Waker>>,
    /// Slots free for reuse.
    free: Vec<usize>,
    /// Slots whose waker is set: the subscriptions to wake on the next publish, so a publish
    /// costs O(waiting), not O(subscribers).
    waiting: Vec<usize>,
    /// Set once the topic is removed from the registry: its subscriptions end.
    pub(crate) removed: bool,
}

/// How an event's sequence number is decided.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sequencing {
    /// In memory: this topic assigns the next sequence.
    Local,
    /// Ordered by a backplane, which assigned `seq` in `incarnation`.
    Injected {
        /// The assigned sequence.
        seq: u64,
        /// The topic's life the sequence belongs to.
        incarnation: Incarnation,
    },
}

/// What an append adds: a plain event, a conflatable one, or the terminal event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind<'a> {
    /// The conflation key, if any.
    pub(crate) key: Option<&'a str>,
    /// Whether the event finishes the topic.
    pub(crate) terminal: bool,
}

/// Why an append was refused.
#[derive(Debug)]
pub(crate) enum AppendError {
    Finished,
    /// The topic was evicted from the hub.
    Removed,
    /// An injected sequence at or below the last one applied (a redelivery).
    Stale,
    /// The sequence space is exhausted.
    Overflow,
    Encode(crate::EventError),
}

impl TopicShared {
    pub(crate) fn new(
        name: Arc<str>,
        config: TopicConfig,
        owner: Option<Arc<str>>,
        lazy: bool,
        incarnation: Option<Incarnation>,
    ) -> Self {
        TopicShared {
            name,
            config,
            owner,
            lazy: AtomicBool::new(lazy),
            incarnation: IncarnationCell::new(incarnation),
            state: Mutex::new(TopicState {
                ring: VecDeque::new(),
                ring_bytes: 0,
                last_seq: 0,
                snapshot: Vec::new(),
                terminal: None,
                last_activity: Instant::now(),
                subscribers: 0,
                wakers: Vec::new(),
                free: Vec::new(),
                waiting: Vec::new(),
                removed: false,
            }),
        }
    }

    /// Appends one event. `make` encodes it once its sequence number is known, under the topic's
    /// lock, so that ids are assigned in append order and an id written into the payload always
    /// matches the event's SSE id.
    pub(crate) fn append(
        &self,
        counters: &Counters,
        kind: Kind<'_>,
        sequencing: Sequencing,
        make: impl FnOnce(Option<Incarnation>, u64) -> Result<Encoded, crate::EventError>,
    ) -> Result<u64, AppendError> {
        let Kind { key, terminal } = kind;
        let mut st = self.state.lock();
        if let Sequencing::Injected { incarnation, .. } = sequencing {
            match self.incarnation.get() {
                Some(current) if current == incarnation => {}
                Some(_) if st.last_seq > 0 || st.terminal.is_some() => {
                    // The backplane started a new life of the topic (it lost its data): the
                    // old history cannot be continued. Subscribers notice the new incarnation
                    // and get a `gap` (see `Subscription`).
                    counters.sub_history(st.ring_bytes);
                    st.ring.clear();
                    st.ring_bytes = 0;
                    st.snapshot.clear();
                    st.terminal = None;
                    st.last_seq = 0;
                    self.incarnation.set(incarnation);
                }
                _ => self.incarnation.set(incarnation),
            }
        }
        if st.terminal.is_some() {
            return Err(AppendError::Finished);
        }
        if st.removed {
            return Err(AppendError::Removed);
        }
        let Some(following) = st.last_seq.checked_add(1).filter(|&n| n < u64::MAX) else {
            return Err(AppendError::Overflow);
        };
        let seq = match sequencing {
            // Checked under the lock, so that concurrent redeliveries cannot both pass.
            Sequencing::Injected { seq: s, .. } if s < following => return Err(AppendError::Stale),
            Sequencing::Injected { seq: u64::MAX, .. } => return Err(AppendError::Overflow),
            Sequencing::Injected { seq: s, .. } => s,
            Sequencing::Local => following,
        };
        let enc = make(self.incarnation.get(), seq).map_err(AppendError::Encode)?;
        if seq != following {
            // An injected sequence that skips ahead (a backplane that lost events): the ring
            // must stay contiguous, so the old history can no longer be stitched to it.
            counters.sub_history(st.ring_bytes);
            st.ring.clear();
            st.ring_bytes = 0;
        }
        let now = Instant::now();
        let key: Option<Arc<str>> = key.map(|k| {
            st.snapshot
                .iter()
                .find_map(|e| e.key.as_ref().filter(|ek| &***ek == k).cloned())
                .unwrap_or_else(|| Arc::from(k))
        });
        let entry = Entry {
            seq,
            body_len: u32::try_from(enc.body_len).unwrap_or(u32::MAX),
            frame: enc.frame.into_bytes(),
            key,
            terminal,
            at: now,
        };
        let size = entry.frame.len();
        if let Some(k) = &entry.key {
            if let Some(slot) = st
                .snapshot
                .iter_mut()
                .find(|e| e.key.as_deref() == Some(&**k))
            {
                *slot = entry.clone();
            } else if st.snapshot.len() < self.config.max_snapshot_keys {
                st.snapshot.push(entry.clone());
            }
        }
        if terminal {
            st.terminal = Some(entry.clone());
        }
        st.ring.push_back(entry);
        st.ring_bytes += size;
        st.last_seq = seq;
        st.last_activity = now;
        counters.add_history(size);
        self.trim(&mut st, counters, now);
        let wake = st.take_waiters();
        drop(st);
        counters.published(1);
        for w in wake {
            w.wake();
        }
        Ok(seq)
    }

    /// Applies the history bounds (count, bytes, age). The newest event always stays.
    pub(crate) fn trim(&self, st: &mut TopicState, counters: &Counters, now: Instant) {
        let c = &self.config;
        while st.ring.len() > 1
            && (st.ring.len() > c.history_len
                || st.ring_bytes > c.history_bytes
                || st
                    .ring
                    .front()
                    .is_some_and(|e| now.saturating_duration_since(e.at) > c.history_age))
        {
            st.pop_front(counters);
        }
    }

    /// Whether the topic can be evicted at `now`.
    /// Whether the topic can be evicted at `now`. `self` is the registry's `Arc`: an idle topic
    /// that someone still holds a handle on (a live `JobPublisher`) stays.
    pub(crate) fn expired(
        self: &Arc<Self>,
        now: Instant,
        finished_ttl: std::time::Duration,
        idle_ttl: std::time::Duration,
    ) -> bool {
        let st = self.state.lock();
        let idle = now.saturating_duration_since(st.last_activity);
        if st.terminal.is_some() {
            idle >= finished_ttl
        } else {
            st.subscribers == 0 && idle >= idle_ttl && Arc::strong_count(self) == 1
        }
    }
}

impl TopicState {
    pub(crate) fn pop_front(&mut self, counters: &Counters) {
        if let Some(e) = self.ring.pop_front() {
            self.ring_bytes -= e.frame.len();
            counters.sub_history(e.frame.len());
        }
    }

    /// Sequence of the oldest event still in the history (`last_seq + 1` when empty).
    pub(crate) fn first_seq(&self) -> u64 {
        self.ring.front().map_or(self.last_seq + 1, |e| e.seq)
    }

    pub(crate) fn entry(&self, seq: u64) -> Option<&Entry> {
        let first = self.ring.front()?.seq;
        let idx = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.ring.get(idx)
    }

    /// Snapshot entries older than `before`, in publish order: what a subscriber that starts at
    /// `before` needs to know the topic's current state.
    pub(crate) fn snapshot_before(&self, before: u64) -> Vec<Entry> {
        let mut v: Vec<Entry> = self
            .snapshot
            .iter()
            .filter(|e| e.seq < before && !e.terminal)
            .cloned()
            .collect();
        v.sort_by_key(|e| e.seq);
        v
    }

    /// Whether the event `seq` with `key` is superseded by a newer event with the same key.
    pub(crate) fn superseded(&self, e: &Entry) -> bool {
        match &e.key {
            None => false,
            Some(k) => self
                .snapshot
                .iter()
                .any(|s| s.seq > e.seq && s.key.as_deref() == Some(&**k)),
        }
    }

    pub(crate) fn add_slot(&mut self) -> usize {
        self.subscribers += 1;
        if let Some(i) = self.free.pop() {
            i
        } else {
            self.wakers.push(None);
            self.wakers.len() - 1
        }
    }

    pub(crate) fn remove_slot(&mut self, slot: usize) {
        self.subscribers -= 1;
        if let Some(w) = self.wakers.get_mut(slot) {
            if w.take().is_some() {
                if let Some(p) = self.waiting.iter().position(|&s| s == slot) {
                    self.waiting.swap_remove(p);
                }
            }
            self.free.push(slot);
        }
        if self.subscribers == 0 {
            self.wakers.clear();
            self.free.clear();
            self.waiting.clear();
        }
    }

    pub(crate) fn register(&mut self, slot: usize, waker: &Waker) {
        if let Some(w) = self.wakers.get_mut(slot) {
            match w {
                Some(old) if old.will_wake(waker) => {}
                Some(old) => old.clone_from(waker),
                None => {
                    *w = Some(waker.clone());
                    self.waiting.push(slot);
                }
            }
        }
    }

    pub(crate) fn take_waiters(&mut self) -> Vec<Waker> {
        if self.waiting.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.waiting.len());
        for slot in self.waiting.drain(..) {
            if let Some(w) = self.wakers.get_mut(slot).and_then(Option::take) {
                out.push(w);
            }
        }
        out
    }
}
