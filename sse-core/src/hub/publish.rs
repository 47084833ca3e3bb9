//! [`Topic`]: the handle for publishing, in memory or through a backplane, with one API.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::ack::PublishAck;
use super::backplane::{Injected, Outgoing, SEQ_PLACEHOLDER, SEQ_PLACEHOLDER_TEXT};
use super::cursor::{put_id_line, IdLine, Incarnation};
use super::topic::{AppendError, Entry, Kind, Sequencing, TopicShared};
use super::{Hub, PublishError};
use crate::event::{Encoded, Event, IdText};

/// A handle on one topic, for publishing. Cheap to clone.
///
/// Every publishing method hands the event over when it is called and returns a
/// [`PublishAck`]: `.await` it in async code, or call [`PublishAck::blocking_wait`] on a plain
/// thread. The same code works in memory (the ack is ready at once) and with a
/// [`Backplane`](super::Backplane) (the ack resolves when the backplane has stored the event).
#[derive(Clone)]
pub struct Topic {
    pub(crate) hub: Hub,
    pub(crate) shared: Arc<TopicShared>,
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

    /// Current subscribers of this topic on this node.
    pub fn subscriber_count(&self) -> usize {
        self.shared.state.lock().subscribers
    }

    /// Sequence number of the last event applied on this node (0: none).
    pub fn last_seq(&self) -> u64 {
        self.shared.state.lock().last_seq
    }

    /// The topic's current incarnation (the part of its ids before `:`), if known. With a
    /// backplane it is unknown until this node has applied an event of the topic.
    pub fn incarnation(&self) -> Option<Incarnation> {
        self.shared.incarnation.get()
    }

    /// The SSE id this topic gives the event with sequence `seq`, for example `k3f9x2:12`.
    /// While the incarnation is unknown (a node of a cluster that has not applied an event of
    /// the topic yet), the bare sequence, which means "in the current incarnation".
    ///
    /// ```
    /// use sse_core::{Event, Hub};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let topic = hub.topic("t")?;
    /// let seq = topic.publish(Event::new().data("x")).await?;
    /// assert!(topic.event_id(seq).ends_with(":1"));
    /// # Ok::<(), sse_core::hub::PublishError>(())
    /// # }).unwrap();
    /// ```
    pub fn event_id(&self, seq: u64) -> String {
        let mut v = Vec::with_capacity(24);
        super::cursor::put_position(&mut v, self.incarnation(), seq);
        String::from_utf8(v).unwrap_or_default()
    }

    /// Whether the topic has been finished.
    pub fn is_finished(&self) -> bool {
        self.shared.state.lock().terminal.is_some()
    }

    /// Publishes `event`; the ack resolves to its sequence number (the `SEQ` of its SSE id,
    /// unless the event carries its own id).
    ///
    /// In memory the event is appended at once and the ack is ready. With a backplane the event
    /// is encoded once and handed to the backplane now; the ack resolves when the backplane has
    /// stored it, with [`PublishError::Backplane`] (HTTP 503) if it could not, and
    /// [`PublishError::Finished`] (HTTP 409) if the topic was finished on any node. Local
    /// subscribers receive the event when the backplane delivers it to this node, like every
    /// other node. An event's own `id` is replaced by the topic's id on a backplane.
    pub fn publish(&self, event: Event<'_>) -> PublishAck {
        self.submit(Kind::plain(), |inc, seq| event_with_seq(&event, inc, seq))
    }

    /// Publishes `event` with a conflation key: it becomes the topic's latest state for `key`
    /// (part of the snapshot new subscribers get first), and a slow subscriber under
    /// [`Policy::Conflate`](super::Policy::Conflate) skips it if a newer event with the same key
    /// is waiting.
    pub fn publish_keyed(&self, key: &str, event: Event<'_>) -> PublishAck {
        self.submit(Kind::keyed(key), |inc, seq| {
            event_with_seq(&event, inc, seq)
        })
    }

    /// Publishes the event that `build` makes from the sequence number the event will get, so
    /// that a sequence inside the payload always equals the `SEQ` of the SSE id.
    ///
    /// With a backplane, `build` receives [`SEQ_PLACEHOLDER`], and the backplane writes the
    /// sequence it assigns in place of the placeholder's text, so a sequence inside the payload
    /// still equals the id's on every node.
    ///
    /// ```
    /// use sse_core::{Event, Hub};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Update { sequence: u64, progress: u8 }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let hub = Hub::new();
    /// let topic = hub.topic("task-1")?;
    /// let seq = topic
    ///     .publish_with(None, |seq| {
    ///         Event::new().event("task_progress").json_owned(Update { sequence: seq, progress: 10 })
    ///     })
    ///     .await?;
    /// assert_eq!(seq, 1);
    /// # Ok::<(), sse_core::hub::PublishError>(())
    /// # }).unwrap();
    /// ```
    pub fn publish_with<'e>(
        &self,
        key: Option<&str>,
        build: impl FnOnce(u64) -> Event<'e>,
    ) -> PublishAck {
        let kind = Kind {
            key,
            terminal: false,
        };
        self.submit(kind, |inc, seq| event_with_seq(&build(seq), inc, seq))
    }

    /// Publishes the terminal event and finishes the topic: subscribers receive it and their
    /// streams end; later publishes fail with [`PublishError::Finished`]. With a backplane, a
    /// finish on any node ends the topic's streams on every node.
    pub fn finish(&self, event: Event<'_>) -> PublishAck {
        self.submit(Kind::terminal(), |inc, seq| {
            event_with_seq(&event, inc, seq)
        })
    }

    /// Injects an event ordered elsewhere (by a [`Backplane`](super::Backplane)) with its
    /// sequence number and incarnation.
    ///
    /// Sequences at or below the last one applied in the same incarnation are ignored (a
    /// duplicate delivery), so a backplane may redeliver after a reconnect. An event of another
    /// incarnation than the topic's starts the topic's life over: the old history is dropped
    /// and subscribers get a `gap`. Returns whether the event was applied.
    pub fn inject(&self, injected: Injected<'_>) -> Result<bool, PublishError> {
        let body = injected.body;
        let kind = Kind {
            key: injected.key,
            terminal: injected.terminal,
        };
        let sequencing = Sequencing::Injected {
            seq: injected.seq,
            incarnation: injected.incarnation,
        };
        let res = self
            .shared
            .append(&self.hub.inner.counters, kind, sequencing, |inc, seq| {
                let (frame, body_len) = injected_frame(body, inc, seq);
                Ok(Encoded {
                    frame: crate::Frame::from_bytes(frame),
                    body_len,
                })
            });
        match res {
            Ok(_) => {
                self.hub.inner.enforce_budget(&self.shared);
                Ok(true)
            }
            Err(AppendError::Finished | AppendError::Stale) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Inserts events older than the topic's history in front of it: the events a resuming
    /// client needs that this node never held (a [`Backplane`](super::Backplane) loads them
    /// from its store in [`Backplane::prepare`](super::Backplane::prepare)). Returns how many
    /// were inserted.
    ///
    /// `events` are in ascending order; only those of the topic's incarnation that continue the
    /// history downwards without a hole (ending at the sequence just before the oldest held
    /// event) are inserted, newest first, while the history bounds
    /// ([`TopicConfig::history_len`](super::TopicConfig::history_len) and `history_bytes`)
    /// leave room. Keyed events join the snapshot when their key has no newer event there.
    /// Subscribers already reading are unaffected.
    pub fn backfill(&self, events: &[Injected<'_>]) -> usize {
        let counters = &self.hub.inner.counters;
        let cfg = &self.shared.config;
        let mut st = self.shared.state.lock();
        if st.removed {
            return 0;
        }
        let inc = match (self.shared.incarnation.get(), events.last()) {
            (Some(inc), _) => inc,
            (None, Some(last)) if st.last_seq == 0 => {
                self.shared.incarnation.set(last.incarnation);
                last.incarnation
            }
            _ => return 0,
        };
        let mut expect = st.first_seq().saturating_sub(1);
        let at = st.ring.front().map_or_else(Instant::now, |e| e.at);
        let mut added = 0;
        for ev in events.iter().rev() {
            if expect == 0 || ev.seq < expect || ev.incarnation != inc {
                break;
            }
            if ev.seq > expect || ev.terminal {
                continue;
            }
            if st.ring.len() >= cfg.history_len {
                break;
            }
            let (frame, body_len) = injected_frame(ev.body, Some(inc), ev.seq);
            let size = frame.len();
            if st.ring_bytes + size > cfg.history_bytes {
                break;
            }
            let key: Option<Arc<str>> = ev.key.map(|k| {
                st.snapshot
                    .iter()
                    .find_map(|e| e.key.as_ref().filter(|ek| &***ek == k).cloned())
                    .unwrap_or_else(|| Arc::from(k))
            });
            let entry = Entry {
                seq: ev.seq,
                frame,
                body_len: u32::try_from(body_len).unwrap_or(u32::MAX),
                key,
                terminal: false,
                at,
            };
            if let Some(k) = &entry.key {
                let known = st.snapshot.iter().any(|e| e.key.as_deref() == Some(&**k));
                if !known && st.snapshot.len() < cfg.max_snapshot_keys {
                    st.snapshot.push(entry.clone());
                }
            }
            st.ring.push_front(entry);
            st.ring_bytes += size;
            counters.add_history(size);
            expect -= 1;
            added += 1;
        }
        drop(st);
        if added > 0 {
            self.hub.inner.enforce_budget(&self.shared);
        }
        added
    }

    /// Hands an event over: appends it in memory, or gives it to the backplane.
    pub(crate) fn submit(
        &self,
        kind: Kind<'_>,
        make: impl FnOnce(Option<Incarnation>, u64) -> Result<Encoded, crate::EventError>,
    ) -> PublishAck {
        let Some(bp) = &self.hub.inner.backplane else {
            let res = self
                .shared
                .append(&self.hub.inner.counters, kind, Sequencing::Local, make);
            if res.is_ok() {
                self.hub.inner.enforce_budget(&self.shared);
            }
            return PublishAck::ready(res.map_err(PublishError::from));
        };
        if self.is_finished() {
            // Applied from the backplane, so finished everywhere.
            return PublishAck::ready(Err(PublishError::Finished));
        }
        match outgoing(Arc::clone(&self.shared.name), kind, false, make) {
            Ok(o) => PublishAck::waiting(bp.publish(o)),
            Err(e) => PublishAck::ready(Err(e)),
        }
    }
}

impl<'a> Kind<'a> {
    pub(crate) fn plain() -> Self {
        Kind {
            key: None,
            terminal: false,
        }
    }
    pub(crate) fn keyed(key: &'a str) -> Self {
        Kind {
            key: Some(key),
            terminal: false,
        }
    }
    pub(crate) fn terminal() -> Self {
        Kind {
            key: None,
            terminal: true,
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

/// Encodes `event` with the topic's id (`incarnation:seq`) unless it carries its own.
pub(crate) fn event_with_seq(
    event: &Event<'_>,
    inc: Option<Incarnation>,
    seq: u64,
) -> Result<Encoded, crate::EventError> {
    match event.id_ref() {
        Some(id) => event.encode_parts(Some(IdText::Str(id))),
        None => event.encode_parts(Some(IdText::Seq(inc, seq))),
    }
}

/// Encodes an event for a backplane: once, with the placeholder as its sequence.
pub(crate) fn outgoing(
    topic: Arc<str>,
    kind: Kind<'_>,
    must_exist: bool,
    make: impl FnOnce(Option<Incarnation>, u64) -> Result<Encoded, crate::EventError>,
) -> Result<Outgoing, PublishError> {
    let enc = make(None, SEQ_PLACEHOLDER).map_err(PublishError::Event)?;
    let body = enc.frame.into_bytes().slice(..enc.body_len);
    let seq_in_body = memchr::memmem::find(&body, SEQ_PLACEHOLDER_TEXT.as_bytes()).is_some();
    Ok(Outgoing {
        topic,
        body,
        key: kind.key.map(Arc::from),
        terminal: kind.terminal,
        must_exist,
        seq_in_body,
    })
}

/// A frame from an injected body: the body, then the `id:` line and the blank line.
fn injected_frame(body: &[u8], inc: Option<Incarnation>, seq: u64) -> (Bytes, usize) {
    let mut buf = Vec::with_capacity(body.len() + super::cursor::MAX_POSITION_LINE);
    buf.extend_from_slice(body);
    put_id_line(&mut buf, IdLine::Position(inc, seq));
    (Bytes::from(buf), body.len())
}
