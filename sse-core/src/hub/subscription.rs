//! [`Subscription`]: a cursor per topic into the topics' shared logs.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::time::Instant;

use super::config::Policy;
use super::cursor::{put_id_line, put_position, write_composite, IdLine, Incarnation};
use super::topic::{Entry, TopicShared};
use super::HubInner;
use crate::frame::Frame;

/// A live stream of frames from one or several topics.
///
/// A `Subscription` is a [`Stream`] of [`Frame`]s: the frames a new or resuming client needs
/// first (a `gap` notice, the snapshot, or the replayed history), then live events as they are
/// published. It ends after a topic's terminal event (for a multi-topic subscription: after
/// every topic's terminal event), when a slow subscriber is disconnected by
/// [`Policy::Disconnect`], when its topics are evicted, or at [`Hub::shutdown`](crate::Hub::shutdown)
/// (after a final frame).
///
/// Its memory does not grow with the events it has not read: it holds one cursor per topic into
/// the topics' shared logs. Dropping it unsubscribes at once.
///
/// For an HTTP response, wrap it in [`SseBody`](crate::SseBody), which writes all frames that are
/// ready together as one chunk.
#[must_use = "a Subscription delivers nothing unless polled"]
pub struct Subscription {
    pub(crate) hub: Arc<HubInner>,
    pub(crate) topics: Vec<SubTopic>,
    /// Frames to send before reading the logs (gap notices, snapshots), and frames read ahead by
    /// the `Stream` implementation.
    pub(crate) pending: VecDeque<Bytes>,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) state: SubState,
    /// Round-robin start, so one busy topic cannot starve the others.
    rr: usize,
    /// When the oldest live event the last read delivered was published (for the body's
    /// delivery latency).
    #[cfg(feature = "metrics")]
    oldest: Option<Instant>,
    /// Slow-subscriber actions not yet logged: boxed, and only once the subscription has been
    /// slow while debug logs are on, so that an idle subscription stays small.
    slow: Option<Box<SlowLog>>,
}

/// What one read of the logs did, gathered for the counters, the logs and the metrics.
#[derive(Debug, Default)]
struct ReadStats {
    delivered: u64,
    replayed: u64,
    conflated: u64,
    dropped: u64,
    gaps: u64,
    /// When the oldest live event delivered was published.
    #[cfg(feature = "metrics")]
    oldest_live: Option<Instant>,
}

/// A slow subscriber's skipped events, aggregated for the log: the first action is logged at
/// once, then at most one line per [`SLOW_LOG_EVERY`], and what remains when the subscription
/// ends.
#[derive(Debug, Default)]
struct SlowLog {
    conflated: u64,
    dropped: u64,
    gaps: u64,
    /// When the last line was written.
    logged: Option<std::time::Instant>,
}

/// Least time between two slow-subscriber log lines of one subscription.
const SLOW_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl SlowLog {
    fn pending(&self) -> bool {
        self.conflated + self.dropped + self.gaps > 0
    }
}

impl ReadStats {
    /// Whether a slow-subscriber action happened.
    fn slow(&self) -> bool {
        self.conflated + self.dropped + self.gaps > 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubState {
    Live,
    /// Ends once `pending` is drained.
    Ending,
    Ended,
}

/// One topic of a subscription: a cursor into its log.
pub(crate) struct SubTopic {
    /// The topic read.
    pub(crate) topic: Arc<TopicShared>,
    /// The topic's incarnation this cursor counts in (`None` while unknown). When the topic
    /// starts a new life under a running subscription (a backplane that lost its data), the
    /// cursor no longer means anything there: the subscriber gets a `gap`.
    pub(crate) incarnation: Cell<Option<Incarnation>>,
    /// Sequence of the next event to deliver. A `Cell`, so that reading a topic's log under its
    /// lock (which borrows `topic`) can advance the cursor, and composite ids can read every
    /// cursor, without cloning the `Arc` on the hot path.
    pub(crate) next: Cell<u64>,
    /// This subscription's waker slot in the topic.
    pub(crate) slot: usize,
    /// This topic's terminal event has been delivered (or the topic went away).
    pub(crate) done: Cell<bool>,
    /// Events below this sequence are replays for this subscriber.
    pub(crate) live_from: u64,
}

/// Where read frames go.
pub(crate) trait Sink {
    fn frame(&mut self, frame: &Bytes);
    fn composite(&mut self, body: &[u8], id: &[u8]);
    fn full(&self) -> bool;
    /// Bytes this sink still takes before it is full (`usize::MAX`: no byte budget).
    fn room(&self) -> usize {
        usize::MAX
    }
    /// Makes room for `bytes` more at once, so that copying a burst grows the buffer once.
    fn reserve(&mut self, bytes: usize) {
        let _ = bytes;
    }
}

/// Copies frames into one buffer, up to a byte budget: the response body's coalescing.
pub(crate) struct BufSink<'a> {
    pub(crate) buf: &'a mut BytesMut,
    pub(crate) max: usize,
    pub(crate) frames: usize,
}

impl Sink for BufSink<'_> {
    fn frame(&mut self, frame: &Bytes) {
        self.buf.extend_from_slice(frame);
        self.frames += 1;
    }
    fn composite(&mut self, body: &[u8], id: &[u8]) {
        self.buf.reserve(body.len() + id.len() + 6);
        self.buf.extend_from_slice(body);
        put_id_line(self.buf, IdLine::Text(id));
        self.frames += 1;
    }
    fn full(&self) -> bool {
        // At least one frame per fill, so a small budget never returns Pending unregistered.
        self.frames > 0 && self.buf.len() >= self.max
    }
    fn room(&self) -> usize {
        self.max.saturating_sub(self.buf.len())
    }
    fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }
}

/// Queues frames by reference: the `Stream` implementation.
struct QueueSink<'a> {
    queue: &'a mut VecDeque<Bytes>,
    frames: usize,
}

const STREAM_READ_AHEAD: usize = 64;

impl Sink for QueueSink<'_> {
    fn frame(&mut self, frame: &Bytes) {
        self.queue.push_back(frame.clone());
        self.frames += 1;
    }
    fn composite(&mut self, body: &[u8], id: &[u8]) {
        let mut b = BytesMut::with_capacity(body.len() + id.len() + 6);
        b.extend_from_slice(body);
        put_id_line(&mut b, IdLine::Text(id));
        self.queue.push_back(b.freeze());
        self.frames += 1;
    }
    fn full(&self) -> bool {
        self.queue.len() >= STREAM_READ_AHEAD
    }
}

/// The in-band notice that events were skipped.
///
/// `event: gap`, with JSON data `{"topic": …, "after": K, "resumed_at": M}`: the client had
/// seen up to `after` (or asked to resume after it) and the next event it can get from the
/// history is `resumed_at`; what lies between is lost to it, and the topic's snapshot follows.
/// A gap event has no `id:`, so the client's last event id is unchanged by it.
pub(crate) fn gap_frame(topic: &str, after: Option<u64>, resumed_at: u64) -> Bytes {
    #[derive(serde::Serialize)]
    struct Gap<'a> {
        topic: &'a str,
        after: Option<u64>,
        resumed_at: u64,
    }
    let gap = Gap {
        topic,
        after,
        resumed_at,
    };
    let encoded = crate::Event::new().event("gap").json(&gap).encode();
    match encoded {
        Ok(f) => f.into_bytes(),
        Err(_) => Bytes::from_static(b"event: gap\ndata: {}\n\n"),
    }
}

/// The frame every subscription receives when the hub shuts down: a comment, and a retry hint
/// so that clients reconnect (to another instance) soon.
pub(crate) const SHUTDOWN_FRAME: &[u8] = b": server shutting down\nretry: 1000\n\n";

impl Subscription {
    pub(crate) fn new(
        hub: Arc<HubInner>,
        topics: Vec<SubTopic>,
        pending: VecDeque<Bytes>,
        user: Option<Arc<str>>,
        state: SubState,
    ) -> Self {
        Subscription {
            hub,
            topics,
            pending,
            user,
            state,
            rr: 0,
            #[cfg(feature = "metrics")]
            oldest: None,
            slow: None,
        }
    }

    /// The names of the subscribed topics.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|t| &*t.topic.name)
    }

    /// When the oldest live event among the frames the last [`poll_fill`](Self::poll_fill)
    /// appended was published: known with the `metrics` feature only (`None` otherwise, and
    /// when those frames were all replays, snapshots or notices).
    pub fn oldest_appended(&self) -> Option<Instant> {
        #[cfg(feature = "metrics")]
        return self.oldest;
        #[cfg(not(feature = "metrics"))]
        None
    }

    /// Whether the subscription has ended (it yields nothing more).
    pub fn is_ended(&self) -> bool {
        self.state == SubState::Ended
    }

    /// The id of the current position: `INCARNATION:SEQ` of the last delivered event (single
    /// topic), or the composite id of every topic's position (several topics).
    pub fn last_event_id(&self) -> String {
        let id = if let [t] = &self.topics[..] {
            let mut v = Vec::with_capacity(24);
            put_position(&mut v, t.incarnation.get(), t.next.get().saturating_sub(1));
            v
        } else {
            composite_id(&self.topics)
        };
        String::from_utf8(id).unwrap_or_default()
    }

    /// Appends every frame that is ready, up to about `max_bytes`, to `buf`, so that they can
    /// leave in one write.
    ///
    /// Returns `Ready(Some(n))` with the number of frames appended (at least one),
    /// `Ready(None)` when the subscription has ended, and `Pending` (with the waker registered)
    /// when nothing is ready.
    pub fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max_bytes: usize,
    ) -> Poll<Option<usize>> {
        #[cfg(feature = "metrics")]
        {
            self.oldest = None;
        }
        let mut sink = BufSink {
            buf,
            max: max_bytes,
            frames: 0,
        };
        while let Some(f) = self.pending.pop_front() {
            sink.frame(&f);
            if sink.full() {
                break;
            }
        }
        self.poll_read(cx, &mut sink);
        match sink.frames {
            0 if self.state == SubState::Ended => Poll::Ready(None),
            0 => Poll::Pending,
            n => Poll::Ready(Some(n)),
        }
    }

    /// Reads the logs into `sink`; registers the waker when nothing is ready.
    fn poll_read<S: Sink>(&mut self, cx: &mut Context<'_>, sink: &mut S) {
        match self.state {
            SubState::Ended => return,
            SubState::Ending => {
                if self.pending.is_empty() {
                    self.finish();
                }
                return;
            }
            SubState::Live => {}
        }
        let n = self.topics.len();
        let mut stats = ReadStats::default();
        let mut disconnect = false;
        for k in 0..n {
            if sink.full() {
                break;
            }
            let i = (self.rr + k) % n;
            if self.topics[i].done.get() {
                continue;
            }
            if self.read_topic(i, cx, sink, &mut stats) == Outcome::Disconnect {
                disconnect = true;
                break;
            }
        }
        self.rr = (self.rr + 1) % n.max(1);
        self.hub.counters.delivered(stats.delivered);
        self.hub.counters.replayed(stats.replayed);
        #[cfg(feature = "metrics")]
        {
            self.oldest = stats.oldest_live;
        }
        if stats.slow() {
            self.note_slow(&stats);
        }
        if disconnect {
            self.hub.counters.slow_disconnect(1);
            self.finish();
        }
        if self.state == SubState::Live && self.topics.iter().all(|t| t.done.get()) {
            self.finish();
        } else if self.state == SubState::Live && self.hub.is_shutting_down() && !sink.full() {
            // Deliver what was published before the shutdown (a terminal event among it), then
            // the final frame.
            sink.frame(&Bytes::from_static(SHUTDOWN_FRAME));
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.state = SubState::Ended;
        self.release();
    }

    /// Adds a read's slow-subscriber actions to the log's tally; writes a line if due.
    fn note_slow(&mut self, stats: &ReadStats) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let slow = self.slow.get_or_insert_default();
        slow.conflated += stats.conflated;
        slow.dropped += stats.dropped;
        slow.gaps += stats.gaps;
        let now = std::time::Instant::now();
        if slow
            .logged
            .is_none_or(|t| now.duration_since(t) >= SLOW_LOG_EVERY)
        {
            slow.logged = Some(now);
            self.log_slow();
        }
    }

    /// Writes the slow-subscriber actions not yet logged, and clears them.
    fn log_slow(&mut self) {
        let Some(slow) = self.slow.as_deref_mut() else {
            return;
        };
        let SlowLog {
            conflated,
            dropped,
            gaps,
            ..
        } = *slow;
        slow.conflated = 0;
        slow.dropped = 0;
        slow.gaps = 0;
        match &self.topics[..] {
            [t] => tracing::debug!(
                topic = &*t.topic.name,
                conflated,
                dropped,
                gaps,
                "slow subscriber: events skipped"
            ),
            topics => tracing::debug!(
                topics = ?TopicNames(topics),
                conflated,
                dropped,
                gaps,
                "slow subscriber: events skipped"
            ),
        }
    }

    /// Reads one topic's log under its lock.
    fn read_topic<S: Sink>(
        &self,
        i: usize,
        cx: &mut Context<'_>,
        sink: &mut S,
        stats: &mut ReadStats,
    ) -> Outcome {
        let topics = &self.topics[..];
        let multi = topics.len() > 1;
        let sub = &topics[i];
        let topic = &*sub.topic;
        let counters = &self.hub.counters;
        let mut st = topic.state.lock();
        if st.removed {
            // Evicted: the terminal event (kept on eviction) still reaches an open subscriber.
            if let Some(term) = st.terminal.as_ref().filter(|t| sub.next.get() <= t.seq) {
                sub.next.set(term.seq + 1);
                emit(topics, term, multi, sink);
                stats.delivered += 1;
            }
            sub.done.set(true);
            return Outcome::Read;
        }
        let cfg = &topic.config;
        let head = st.last_seq + 1;
        let mut next = sub.next.get();
        let current = topic.incarnation.get();
        if sub.incarnation.get() != current {
            match sub.incarnation.get() {
                // Learned from the first event the backplane delivered: nothing was read yet.
                None => sub.incarnation.set(current),
                // A new life of the topic: the cursor means nothing there. Say so, then read
                // the new life from its oldest retained event.
                Some(_) => {
                    sub.incarnation.set(current);
                    let first = st.first_seq();
                    sink.frame(&gap_frame(&topic.name, None, first));
                    counters.gap(1);
                    // Not a slow subscriber's doing: the backplane lost data (and says so).
                    next = first;
                    sub.next.set(next);
                }
            }
        }
        if next >= head {
            st.register(sub.slot, cx.waker());
            return Outcome::Empty;
        }
        #[cfg(feature = "metrics")]
        super::metrics::record_lag(head - next);
        let first = st.first_seq();
        if next < first {
            // The events this subscriber needs left the history.
            if cfg.policy == Policy::Disconnect {
                log_disconnect(topic, head - next, cfg.queue);
                return Outcome::Disconnect;
            }
            sink.frame(&gap_frame(&topic.name, next.checked_sub(1), first));
            counters.gap(1);
            counters.dropped(first - next);
            stats.gaps += 1;
            stats.dropped += first - next;
            for e in st.snapshot_before(first) {
                sub.next.set(e.seq + 1);
                emit(topics, &e, multi, sink);
                stats.delivered += 1;
            }
            next = first;
        }
        let queue = cfg.queue as u64;
        let mut conflating = false;
        // The policy judges the live backlog only: a resume's replay is bounded by the history
        // and is delivered whole.
        if head - next.max(sub.live_from) > queue {
            match cfg.policy {
                Policy::Disconnect => {
                    log_disconnect(topic, head - next, cfg.queue);
                    return Outcome::Disconnect;
                }
                Policy::DropOldest => {
                    let skip_to = (head - queue).max(next);
                    sink.frame(&gap_frame(&topic.name, next.checked_sub(1), skip_to));
                    counters.gap(1);
                    counters.dropped(skip_to - next);
                    stats.gaps += 1;
                    stats.dropped += skip_to - next;
                    next = skip_to;
                }
                Policy::Conflate => conflating = true,
            }
        }
        // Size the sink once for what is ready (up to its budget): a burst is then copied into
        // one allocation instead of a buffer that doubles its way up, and a lone event
        // allocates only its own size.
        let room = sink.room();
        if room != usize::MAX {
            let mut ready = 0usize;
            let mut k = next;
            while k < head && ready < room {
                match st.entry(k) {
                    Some(e) => ready += e.frame.len(),
                    None => break,
                }
                k += 1;
            }
            sink.reserve(ready.min(room.saturating_add(4096)));
        }
        let mut conflated = 0;
        while next < head && !sink.full() {
            let Some(e) = st.entry(next) else { break };
            next += 1;
            if conflating && !e.terminal && st.superseded(e) {
                conflated += 1;
                continue;
            }
            sub.next.set(next);
            emit(topics, e, multi, sink);
            stats.delivered += 1;
            if e.seq < sub.live_from {
                stats.replayed += 1;
            } else {
                #[cfg(feature = "metrics")]
                if stats.oldest_live.is_none_or(|t| e.at < t) {
                    stats.oldest_live = Some(e.at);
                }
            }
            if e.terminal {
                sub.done.set(true);
                break;
            }
        }
        sub.next.set(next);
        drop(st);
        counters.conflated(conflated);
        stats.conflated += conflated;
        Outcome::Read
    }

    /// Queues the frames a new or resuming subscriber needs first (gap notices, snapshot
    /// entries of topic `i`), with the right ids.
    pub(crate) fn push_initial(
        &mut self,
        i: usize,
        gap: Option<Bytes>,
        entries: &[Entry],
        after: u64,
    ) {
        let mut queue = std::mem::take(&mut self.pending);
        queue.extend(gap);
        let mut sink = QueueSink {
            queue: &mut queue,
            frames: 0,
        };
        let multi = self.topics.len() > 1;
        for e in entries {
            self.topics[i].next.set(e.seq + 1);
            emit(&self.topics, e, multi, &mut sink);
        }
        self.topics[i].next.set(after);
        self.hub.counters.delivered(entries.len() as u64);
        self.pending = queue;
    }

    /// Leaves every topic: frees the waker slots and the limits' counts.
    fn release(&mut self) {
        if self.slow.as_deref().is_some_and(SlowLog::pending) {
            self.log_slow();
        }
        for t in self.topics.drain(..) {
            self.hub.leave_topic(&t.topic, t.slot);
        }
        if let Some(u) = self.user.take() {
            self.hub.leave_user(&u);
        }
        self.hub.subscriber_released();
    }
}

/// Logs a slow subscriber's disconnection (once per subscription: it ends).
fn log_disconnect(topic: &TopicShared, behind: u64, queue: usize) {
    tracing::debug!(
        topic = &*topic.name,
        behind,
        queue,
        "slow subscriber disconnected"
    );
}

/// A subscription's topic names, as logged (escaped: `["a", "b"]`).
struct TopicNames<'a>(&'a [SubTopic]);

impl fmt::Debug for TopicNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|t| &*t.topic.name))
            .finish()
    }
}

/// Writes one log entry: the shared frame as is (single topic), or its body with a composite
/// id of every topic's position (several topics).
fn emit<S: Sink>(topics: &[SubTopic], e: &Entry, multi: bool, sink: &mut S) {
    if multi {
        sink.composite(&e.frame[..e.body_len as usize], &composite_id(topics));
    } else {
        sink.frame(&e.frame);
    }
}

fn composite_id(topics: &[SubTopic]) -> Vec<u8> {
    let mut id = Vec::with_capacity(topics.len() * 24);
    write_composite(
        &mut id,
        topics.iter().map(|t| {
            let name = &*t.topic.name;
            (name, t.incarnation.get(), t.next.get().saturating_sub(1))
        }),
    );
    id
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Read,
    Empty,
    Disconnect,
}

impl Stream for Subscription {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let this = &mut *self;
        if let Some(f) = this.pending.pop_front() {
            return Poll::Ready(Some(Frame::from_bytes(f)));
        }
        let mut queue = std::mem::take(&mut this.pending);
        let mut sink = QueueSink {
            queue: &mut queue,
            frames: 0,
        };
        this.poll_read(cx, &mut sink);
        this.pending = queue;
        match this.pending.pop_front() {
            Some(f) => Poll::Ready(Some(Frame::from_bytes(f))),
            None if this.state == SubState::Ended => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.state != SubState::Ended {
            self.release();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topics", &self.topics().collect::<Vec<_>>())
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .finish()
    }
}
