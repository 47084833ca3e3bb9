//! [`Hub::subscribe`]: resolving topics, asking the access hook, and placing each cursor
//! (fresh, resumed, from now, or after a `gap`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::ack::block_on;
use super::builder::{Access, AccessRequest};
use super::cursor::{Cursor, Position};
use super::registry::Tombstone;
use super::subscription::{gap_frame, SubState, SubTopic};
use super::topic::{Entry, TopicShared, TopicState};
use super::{Hub, SubscribeError, SubscribeOptions, Subscription};

/// Where a subscriber starts in one topic, from its `Last-Event-ID` and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// No id: the snapshot (and the terminal event, if any), then live.
    Fresh,
    /// No id and [`SubscribeOptions::from_now`]: live only (and the terminal event, if any).
    Now,
    /// After this sequence of the topic's current incarnation.
    After(u64),
    /// An id this topic never issued: another incarnation's, or an unknown one.
    Foreign,
}

impl std::fmt::Display for Start {
    /// The parsed position, as logged: never the client's raw id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Start::Fresh => f.write_str("fresh"),
            Start::Now => f.write_str("now"),
            Start::After(k) => write!(f, "after:{k}"),
            Start::Foreign => f.write_str("foreign"),
        }
    }
}

/// Several topics' starts, as logged (`after:3,fresh`).
struct Starts<'a>(&'a [Start]);

impl std::fmt::Display for Starts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            s.fmt(f)?;
        }
        Ok(())
    }
}

/// The frames a new or resuming subscriber needs first from one topic.
struct Initial {
    /// Index of the topic in the subscription.
    index: usize,
    /// A `gap` notice, when the client's position cannot be continued.
    gap: Option<Bytes>,
    /// Snapshot entries (and the terminal event), oldest first.
    entries: Vec<Entry>,
    /// The cursor after them.
    next: u64,
}

/// One topic's cursor, as placed by [`place`].
struct Placed {
    initial: Option<(Option<Bytes>, Vec<Entry>)>,
    next: u64,
    /// Whether the client has already seen this topic's terminal event.
    saw_end: bool,
}

impl Hub {
    /// Subscribes to one or several topics.
    ///
    /// Accepts a topic name or [`SubscribeOptions`] (several topics, `Last-Event-ID`, user,
    /// [from now](SubscribeOptions::from_now)). With a backplane, the backplane first brings
    /// this node's copy of each topic up to date ([`Backplane::prepare`](super::Backplane::prepare)),
    /// so a client resuming on this node with an id that another node sent gets exactly what it
    /// missed, and a new subscriber gets the topic's current state. If the backplane is
    /// unreachable, the subscription is served from this node's copy when that copy already
    /// holds everything the client has seen (it continues once the backplane is back), and
    /// refused with [`SubscribeError::Unavailable`] (HTTP 503) otherwise.
    ///
    /// A finished topic that the hub has evicted still answers (up to
    /// [`HubConfig::max_tombstones`](super::HubConfig::max_tombstones) of them): a new client
    /// gets its final state and the stream ends; one that saw the terminal event gets
    /// [`SubscribeError::Finished`] (HTTP 204).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use sse_core::{hub::SubscribeOptions, Event, Hub};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let topic = hub.topic("news")?;
    /// topic.publish(Event::new().data("hello")).await?;
    /// let id = topic.event_id(1); // what the client got as `id:`
    /// topic.publish(Event::new().data("world")).await?;
    ///
    /// let mut sub = hub.subscribe(SubscribeOptions::topic("news").last_event_id(Some(id))).await?;
    /// let frame = sub.next().await.unwrap();
    /// assert!(frame.as_bytes().starts_with(b"data: world\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn subscribe(
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
                    Some(Position::Seq(s)) => Some(s.seq),
                    _ => None,
                };
                if let Err(error) = bp.prepare(name, after).await {
                    // Degraded: serve this node's copy only if it holds all the client saw.
                    let local = self.get_topic(name).map(|t| t.last_seq());
                    let complete = match (after, local) {
                        (None, _) => true,
                        (Some(k), Some(last)) => k <= last,
                        (Some(_), None) => false,
                    };
                    if !complete {
                        // Refused with 503: the adapter logs the refusal.
                        return Err(SubscribeError::Unavailable);
                    }
                    tracing::debug!(
                        topic = name.as_str(),
                        %error,
                        "backplane unavailable: serving this node's copy"
                    );
                }
            }
        }
        self.subscribe_local(opts)
    }

    /// [`subscribe`](Self::subscribe) for a plain thread (one that does not run a Tokio
    /// runtime), waiting for the backplane if there is one.
    ///
    /// Refused with [`SubscribeError::WouldBlock`] on a thread that runs a Tokio runtime, in
    /// memory as with a backplane: `.await` [`subscribe`](Self::subscribe) there.
    pub fn blocking_subscribe(
        &self,
        options: impl Into<SubscribeOptions>,
    ) -> Result<Subscription, SubscribeError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SubscribeError::WouldBlock);
        }
        block_on(self.subscribe(options))
    }

    /// Subscribes from this node's copy of the topics.
    fn subscribe_local(&self, mut opts: SubscribeOptions) -> Result<Subscription, SubscribeError> {
        self.inner.maybe_sweep();
        if self.inner.is_shutting_down() {
            return Err(SubscribeError::ShuttingDown);
        }
        // A topic named twice is one cursor, not two copies of every event.
        let mut seen = std::collections::HashSet::new();
        opts.topics.retain(|t| seen.insert(t.clone()));
        if opts.topics.is_empty() {
            return Err(SubscribeError::NoTopics);
        }
        if let [name] = &opts.topics[..] {
            if self.inner.topics.read().get(name.as_str()).is_none() {
                if let Some(tomb) = self.inner.tombstone(name) {
                    return self.subscribe_tombstone(&opts, name, &tomb);
                }
            }
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
        let mut initial: Vec<Initial> = Vec::new();
        let mut all_seen = true;
        // What the subscribe log line says of each topic (only gathered when it is written).
        let log = tracing::enabled!(tracing::Level::DEBUG);
        let mut starts: Vec<Start> = Vec::new();
        let mut gap_sent = false;
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
            let start = start_of(&t, &st, &opts, cursor.as_ref(), single);
            if log {
                starts.push(start);
            }
            let placed = place(&t, &st, start);
            if placed
                .initial
                .as_ref()
                .is_some_and(|(gap, _)| gap.is_some())
            {
                self.inner.counters.gap(1);
                gap_sent = true;
            }
            all_seen &= placed.saw_end;
            let head = st.last_seq + 1;
            let done = st
                .terminal
                .as_ref()
                .is_some_and(|term| placed.next > term.seq);
            let slot = st.add_slot();
            let first_subscriber = st.subscribers == 1;
            drop(st);
            if first_subscriber {
                self.inner.interest_changed(&t.name);
            }
            // Until its first frames are queued, a topic's cursor stands before them, so that a
            // composite id written for another topic's frame never claims them as seen.
            let mut cursor_at = placed.next;
            if let Some((gap, entries)) = placed.initial {
                cursor_at = entries.first().map_or(placed.next, |e| e.seq);
                initial.push(Initial {
                    index: topics.len(),
                    gap,
                    entries,
                    next: placed.next,
                });
            }
            topics.push(SubTopic {
                incarnation: Cell::new(t.incarnation.get()),
                topic: t,
                next: Cell::new(cursor_at),
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
        if all_seen {
            drop(sub);
            return Err(SubscribeError::Finished);
        }
        if log {
            let id_len = opts.last_event_id.as_deref().map(str::len);
            match (&sub.topics[..], &starts[..]) {
                ([t], [start]) => tracing::debug!(
                    topic = &*t.topic.name,
                    resume = %start,
                    last_event_id_len = id_len,
                    gap = gap_sent,
                    subscribers = t.topic.state.lock().subscribers,
                    "subscribed"
                ),
                _ => tracing::debug!(
                    topics = ?opts.topics,
                    resume = %Starts(&starts),
                    last_event_id_len = id_len,
                    gap = gap_sent,
                    "subscribed"
                ),
            }
        }
        for init in initial {
            sub.push_initial(init.index, init.gap, &init.entries, init.next);
        }
        if sub.topics.iter().all(|t| t.done.get()) {
            sub.state = SubState::Ending;
        }
        Ok(sub)
    }

    /// A late client of a finished topic that the hub evicted: its final state, or 204.
    fn subscribe_tombstone(
        &self,
        opts: &SubscribeOptions,
        name: &str,
        tomb: &Tombstone,
    ) -> Result<Subscription, SubscribeError> {
        self.check_access(name, tomb.owner.as_deref(), opts.user.as_deref())?;
        let term_seq = tomb.terminal.seq;
        let start = match opts.last_event_id.as_deref() {
            None if opts.from_now => Start::Now,
            None => Start::Fresh,
            Some(id) if tomb.terminal_id_is(id) => Start::After(term_seq),
            Some(id) => match Cursor::parse(id).position(name, true) {
                Some(Position::Seq(s))
                    if s.incarnation.is_none() || s.incarnation == Some(tomb.incarnation) =>
                {
                    Start::After(s.seq)
                }
                _ => Start::Foreign,
            },
        };
        let mut pending = VecDeque::new();
        let gap = match start {
            Start::After(k) if k >= term_seq => return Err(SubscribeError::Finished),
            Start::After(k) => Some(gap_frame(name, Some(k), term_seq)),
            Start::Foreign => Some(gap_frame(name, None, term_seq)),
            Start::Fresh | Start::Now => None,
        };
        tracing::debug!(
            topic = name,
            resume = %start,
            last_event_id_len = opts.last_event_id.as_deref().map(str::len),
            gap = gap.is_some(),
            "subscribed to an evicted finished topic"
        );
        if gap.is_some() {
            self.inner.counters.gap(1);
        }
        pending.extend(gap);
        if start != Start::Now {
            pending.extend(tomb.snapshot.iter().map(|e| e.frame.clone()));
        }
        pending.push_back(tomb.terminal.frame.clone());
        self.inner.counters.subscriber_added();
        Ok(Subscription::new(
            Arc::clone(&self.inner),
            Vec::new(),
            pending,
            None,
            SubState::Ending,
        ))
    }

    fn check_access(
        &self,
        topic: &str,
        owner: Option<&str>,
        user: Option<&str>,
    ) -> Result<(), SubscribeError> {
        let Some(hook) = &self.inner.access else {
            return Ok(());
        };
        let req = AccessRequest { topic, owner, user };
        match hook(&req) {
            Access::Allow => Ok(()),
            Access::Unauthenticated => Err(SubscribeError::Unauthenticated),
            Access::Forbidden => Err(SubscribeError::Forbidden),
            Access::Hidden => Err(SubscribeError::NotFound),
        }
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
            let owner = existing.as_ref().and_then(|t| t.owner.as_deref());
            if let Err(e) = self.check_access(name, owner, opts.user.as_deref()) {
                return refuse(&shared, e);
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
}

/// Where the subscriber starts in topic `t`.
fn start_of(
    t: &TopicShared,
    st: &TopicState,
    opts: &SubscribeOptions,
    cursor: Option<&Cursor>,
    single: bool,
) -> Start {
    // A caller-supplied id is matched as text first: ids like "20" or "row=1" must not be
    // mistaken for the hub's own cursors.
    let raw = opts.last_event_id.as_deref().filter(|_| single);
    if let Some(seq) = raw.and_then(|id| find_id(st, id)) {
        return Start::After(seq);
    }
    match cursor.and_then(|c| c.position(&t.name, single)) {
        Some(Position::Seq(s)) => match (s.incarnation, t.incarnation.get()) {
            (None, _) => Start::After(s.seq),
            (Some(theirs), Some(ours)) if theirs == ours => Start::After(s.seq),
            _ => Start::Foreign,
        },
        Some(Position::Id(_)) => Start::Foreign,
        None if opts.from_now => Start::Now,
        None => Start::Fresh,
    }
}

/// Places the cursor for `start`: what to send first, and where live reading begins.
fn place(t: &TopicShared, st: &TopicState, start: Start) -> Placed {
    let head = st.last_seq + 1;
    let first = st.first_seq();
    let state = || {
        let mut entries = st.snapshot_before(head);
        entries.extend(st.terminal.clone());
        entries
    };
    match start {
        // Saw everything, including the terminal event.
        Start::After(k) if k.saturating_add(1) == head && st.terminal.is_some() => Placed {
            initial: None,
            next: head,
            saw_end: true,
        },
        // Inside the history: replay exactly what follows.
        Start::After(k) if k < head && k + 1 >= first => Placed {
            initial: None,
            next: k + 1,
            saw_end: false,
        },
        // Older than the history, or never issued here: say so, then the state.
        Start::After(k) => Placed {
            initial: Some((Some(gap_frame(&t.name, Some(k), head)), state())),
            next: head,
            saw_end: false,
        },
        Start::Foreign => Placed {
            initial: Some((Some(gap_frame(&t.name, None, head)), state())),
            next: head,
            saw_end: false,
        },
        Start::Fresh => Placed {
            initial: Some((None, state())),
            next: head,
            saw_end: false,
        },
        Start::Now => Placed {
            initial: Some((None, st.terminal.iter().cloned().collect())),
            next: head,
            saw_end: false,
        },
    }
}

/// The sequence of the retained event whose `id:` is exactly `id`.
fn find_id(st: &TopicState, id: &str) -> Option<u64> {
    st.ring
        .iter()
        .rev()
        .find_map(|e| (e.id_text()? == id.as_bytes()).then_some(e.seq))
}
