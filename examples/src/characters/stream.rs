//! Per-connection frames in front of a hub subscription.
//!
//! Seed 001's streams start with messages that belong to one connection, not to the job's
//! history: `connected`, and `initial_status` (the job's state when the client connected). They
//! carry no `id:`, so they never move the client's `Last-Event-ID`; everything after them comes
//! from the hub with its ids, and resumes exactly.

use std::collections::VecDeque;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use sse_core::body::FrameSource;
use sse_core::{Frame, Hub, SseBody, Subscription};

/// A [`FrameSource`]: some frames first, then a [`Subscription`].
#[derive(Debug)]
pub struct Prefixed {
    prefix: VecDeque<Frame>,
    subscription: Subscription,
}

impl Prefixed {
    /// `prefix` first, then `subscription`.
    pub fn new(prefix: impl IntoIterator<Item = Frame>, subscription: Subscription) -> Self {
        Prefixed {
            prefix: prefix.into_iter().collect(),
            subscription,
        }
    }

    /// A response body over this source, with heartbeat comments after `heartbeat` of silence.
    pub fn into_body(self, heartbeat: Duration) -> SseBody<Prefixed> {
        SseBody::from_source(self).heartbeat(Some(heartbeat))
    }
}

impl FrameSource for Prefixed {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<Option<usize>> {
        let mut n = 0;
        while let Some(f) = self.prefix.pop_front() {
            buf.extend_from_slice(f.as_bytes());
            n += 1;
        }
        match self.subscription.poll_fill(cx, buf, max) {
            Poll::Ready(Some(k)) => Poll::Ready(Some(n + k)),
            Poll::Ready(None) | Poll::Pending if n > 0 => Poll::Ready(Some(n)),
            other => other,
        }
    }
}

/// The `Last-Event-ID` that makes a new subscriber to `topic` start *now*: the live events that
/// follow, without the hub's snapshot (the handler sends the current state itself, as
/// `initial_status` / `status`). For a finished topic: just before its terminal event, so that the
/// client still receives the final state and its stream ends. `None` if the topic does not
/// exist (the subscribe then answers 404).
pub fn start_from_now(hub: &Hub, topic: &str) -> Option<String> {
    let t = hub.get_topic(topic)?;
    let last = t.last_seq();
    let from = if t.is_finished() {
        last.saturating_sub(1)
    } else {
        last
    };
    Some(from.to_string())
}

/// [`start_from_now`] on a node of a cluster: with a backplane, this node's copy of `topic` is
/// first brought up to date (it may lag, or not exist yet, when the events were published on
/// another node), so that "now" is the cluster's. In memory, the same as [`start_from_now`].
pub async fn start_from_now_async(hub: &Hub, topic: &str) -> Option<String> {
    if let Some(bp) = hub.backplane() {
        // Unreachable: the subscribe that follows decides (503 if this node cannot serve).
        let _ = bp.prepare(topic, None).await;
    }
    start_from_now(hub, topic)
}
