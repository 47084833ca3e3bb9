//! The [`Hub`]: per-topic fan-out with replay, snapshots, job lifecycle and backpressure.
//!
//! # Data path
//!
//! `publish(event)` encodes the event **once** into a frame, appends it to the topic's log (a
//! bounded ring that is also the replay history) and wakes the subscribers that wait. Each
//! [`Subscription`] reads the log from its own cursor. Nothing copies, re-encodes or queues a
//! frame per subscriber, and the publisher never waits for a subscriber.
//!
//! # One API, in memory or across nodes
//!
//! Every publish hands its event over when called and returns a [`PublishAck`]: `.await` it in
//! async code, or call [`PublishAck::blocking_wait`] on a plain thread. [`Hub::subscribe`] is
//! async. The same code runs on one node in memory and on many with a [`Backplane`].
//!
//! # Ids, replay and gaps
//!
//! Each topic numbers its events 1, 2, 3, …; the SSE `id:` is `INCARNATION:SEQ` (see
//! [`cursor`]), where the incarnation names this life of the topic, so that an id from before a
//! restart or an eviction is never taken for a position in the topic's new life. A
//! subscription over several topics sends a composite cursor instead. A client that resumes
//! with a `Last-Event-ID` inside the history gets exactly the events after it, then live
//! events, from the same read loop, so there is no gap and no duplicate however publishes race
//! the resume. An id older than the history, of another incarnation, or one the hub never
//! issued gets an in-band `gap` event (`event: gap`, JSON data `{"topic", "after",
//! "resumed_at"}`), then the topic's snapshot.
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
//! [`HubConfig::finished_ttl`], idle ones after [`HubConfig::idle_ttl`]; an evicted finished
//! topic still answers late clients with its final state (or 204) from a bounded set of
//! tombstones ([`HubConfig::max_tombstones`]).
//!
//! # Metrics
//!
//! [`Hub::metrics`] returns a [`Metrics`] snapshot at any time. With the `metrics` feature the
//! hub also pushes its values to the [`metrics`](https://docs.rs/metrics) facade **as they
//! change** (no call to [`Hub::metrics`] is needed): install a recorder (for example
//! `metrics-exporter-prometheus`) before building the hub. No metric has labels: per-topic
//! labels would grow without bound. Gauges move by increments, so several hubs in one process
//! add up; a recorder installed after a hub already holds topics misses what came before.
//!
//! | Name | Type | Unit | What |
//! | --- | --- | --- | --- |
//! | `sse_published_total` | counter | events | Events published (terminal events and events injected by a backplane included) |
//! | `sse_delivered_total` | counter | frames | Frames delivered to subscriptions (replayed ones included) |
//! | `sse_replayed_total` | counter | frames | Frames replayed to resuming subscriptions |
//! | `sse_conflated_total` | counter | events | Events a slow subscriber skipped because a newer event with the same key replaced them |
//! | `sse_dropped_total` | counter | events | Events a slow subscriber skipped under drop-oldest, or because they left the history |
//! | `sse_gaps_total` | counter | notices | `gap` events sent |
//! | `sse_slow_disconnects_total` | counter | subscriptions | Slow subscriptions ended under [`Policy::Disconnect`] |
//! | `sse_subscribers` | gauge | subscriptions | Current subscriptions (a multi-topic one counts once) |
//! | `sse_topics` | gauge | topics | Topics held (evicted ones' tombstones not included) |
//! | `sse_history_bytes` | gauge | bytes | Bytes of encoded events held in all topics' histories |
//! | `sse_delivery_latency_seconds` | histogram | seconds | From a live event's publish (its append to the topic's log) to the moment a response body ([`SseBody`](crate::SseBody)) hands the chunk holding it to the server; one sample per chunk, for the oldest live event in it. Replayed and snapshot frames are not counted |
//! | `sse_subscriber_lag_events` | histogram | events | Events waiting for a subscription in a topic when it reads (one sample per topic read that finds at least one) |
//!
//! `describe_metrics` (with the feature) registers these descriptions and units with the
//! recorder; [`HubBuilder::build`] calls it.
//!
//! # Logging
//!
//! The hub logs through the [`tracing`](https://docs.rs/tracing) facade (it installs no
//! subscriber), with structured fields, never a payload, a user key or a client's raw
//! `Last-Event-ID` (only its parsed position, or its length):
//!
//! | Level | Message | Fields |
//! | --- | --- | --- |
//! | debug | `subscribed` | `topic` (or `topics`), `resume` (`fresh`, `now`, `after:SEQ`, or `foreign` for an id this life of the topic never issued), `last_event_id_len`, `gap`, `subscribers` |
//! | debug | `subscribed to an evicted finished topic` | `topic`, `resume`, `last_event_id_len`, `gap` |
//! | debug | `slow subscriber: events skipped` | `topic` (or `topics`), `conflated`, `dropped`, `gaps`: counts since the last such line of the subscription (the first at once, then at most one per 10 s, and one when it ends) |
//! | debug | `slow subscriber disconnected` | `topic`, `behind`, `queue` |
//! | debug | `backplane unavailable: serving this node's copy` | `topic`, `error` |
//! | debug | `evicting finished and idle topics` | `evicted` |
//! | warn | `job failed: its publisher was dropped without finishing it` | `job`, `panicked` |
//! | warn | `user stream yielded an error: sent as a comment` | `error` |
//! | warn | `user stream yielded an invalid event: sent as a comment` | `error` |
//! | info | `hub shutdown begun` | `subscribers`, `topics` |
//! | info | `hub shutdown done` | `clean`, `remaining`, `elapsed_ms` |
//!
//! Refused subscribes are logged by the adapters, where the HTTP status is known. Nothing is
//! logged per event or per delivered frame.
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use sse_core::{Event, Hub};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let job = hub.job("ocr-42")?;
//! let mut sub = hub.subscribe("ocr-42").await?;
//!
//! job.progress(&serde_json::json!({"page": 1, "of": 2})).await?;
//! job.complete(Event::new().event("completed").data("done")).await?;
//!
//! let id = |seq| hub.get_topic("ocr-42").unwrap().event_id(seq);
//! let first = sub.next().await.unwrap();
//! let want = format!("event: progress\ndata: {{\"of\":2,\"page\":1}}\nid: {}\n\n", id(1));
//! assert_eq!(first.as_bytes(), want.as_bytes());
//! let last = sub.next().await.unwrap();
//! assert_eq!(last.as_bytes(), format!("event: completed\ndata: done\nid: {}\n\n", id(2)).as_bytes());
//! assert!(sub.next().await.is_none()); // the stream ends after the terminal event
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod ack;
mod backplane;
mod builder;
mod config;
pub mod cursor;
mod error;
mod job;
mod metrics;
mod options;
mod publish;
mod registry;
mod subscribe;
mod subscription;
mod topic;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use ack::PublishAck;
pub use backplane::{
    Backplane, BackplaneError, BackplaneFuture, Injected, Outgoing, WeakHub, SEQ_PLACEHOLDER,
    SEQ_PLACEHOLDER_TEXT,
};
pub use builder::{Access, AccessRequest, HubBuilder};
pub use config::{HubConfig, Policy, TopicConfig};
pub use cursor::{Cursor, Incarnation, Position, Seq};
pub use error::{PublishError, SubscribeError};
pub use job::JobPublisher;
#[cfg(feature = "metrics")]
pub use metrics::describe_metrics;
#[cfg(feature = "metrics")]
pub(crate) use metrics::record_delivery_latency;
pub use metrics::Metrics;
pub use options::{SubscribeOptions, TopicOptions};
pub use publish::Topic;
pub use subscription::Subscription;

use crate::event::Event;
pub(crate) use registry::HubInner;

/// A registry of topics with fan-out to subscriptions. Cheap to clone (`Arc`), `Send + Sync`;
/// usable from async tasks and from plain threads (publishing needs no runtime).
///
/// See the [module docs](self) for the data path and the promises.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
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

    /// Publishes `event` to `topic` (created if missing); the ack resolves to its sequence
    /// number. Never waits for subscribers. See [`Topic::publish`].
    pub fn publish(&self, topic: &str, event: Event<'_>) -> PublishAck {
        match self.topic(topic) {
            Ok(t) => t.publish(event),
            Err(e) => PublishAck::ready(Err(e)),
        }
    }

    /// Publishes a terminal event and finishes `topic` ([`PublishError::NotFound`] if it does
    /// not exist). With a backplane, a topic this node has not seen is finished in the backplane
    /// if it exists there. See [`Topic::finish`].
    pub fn finish(&self, topic: &str, event: Event<'_>) -> PublishAck {
        if let Some(t) = self.get_topic(topic) {
            return t.finish(event);
        }
        let Some(bp) = &self.inner.backplane else {
            return PublishAck::ready(Err(PublishError::NotFound));
        };
        match publish::outgoing(
            Arc::from(topic),
            topic::Kind::terminal(),
            true,
            |inc, seq| publish::event_with_seq(&event, inc, seq),
        ) {
            Ok(o) => PublishAck::waiting(bp.publish(o)),
            Err(e) => PublishAck::ready(Err(e)),
        }
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
        let started = Instant::now();
        let until = started + deadline;
        let clean = loop {
            if self.subscriber_count() == 0 {
                break true;
            }
            if Instant::now() >= until {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        tracing::info!(
            clean,
            remaining = self.subscriber_count(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "hub shutdown done"
        );
        clean
    }

    /// Starts the shutdown without waiting: every subscription is woken and ends after its
    /// final frame.
    pub fn begin_shutdown(&self) {
        if !self.inner.shutting_down.swap(true, Ordering::SeqCst) {
            tracing::info!(
                subscribers = self.subscriber_count(),
                topics = self.topic_count(),
                "hub shutdown begun"
            );
        }
        let topics: Vec<_> = self.inner.topics.read().values().cloned().collect();
        for t in topics {
            let wake = t.state.lock().take_waiters();
            for w in wake {
                w.wake();
            }
        }
    }
}
