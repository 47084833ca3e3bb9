//! Hub counters and the serializable [`Metrics`] snapshot; with the `metrics` feature, the
//! same values pushed live to the [`metrics`](https://docs.rs/metrics) facade as they change.
//!
//! Every metric name, type, unit and label is listed in the [hub's module docs](super#metrics).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A point-in-time view of the hub, for a stats endpoint.
///
/// Counters are cumulative since the hub was created. With the `metrics` feature the same
/// values are also pushed to the [`metrics`](https://docs.rs/metrics) facade as they change,
/// with two histograms besides: see the [list of metrics](super#metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Topics currently held.
    pub topics: usize,
    /// Current subscriptions (a multi-topic subscription counts once).
    pub subscribers: usize,
    /// Current subscribers per topic, for topics that have any.
    pub subscribers_per_topic: std::collections::BTreeMap<String, usize>,
    /// Events published (including terminal events and events injected by a backplane).
    pub published: u64,
    /// Frames delivered to subscribers (replayed ones included).
    pub delivered: u64,
    /// Events a slow subscriber skipped because a newer event with the same key replaced them.
    pub conflated: u64,
    /// Events a slow subscriber skipped under drop-oldest or because they left the history.
    pub dropped: u64,
    /// Gap notices sent.
    pub gaps: u64,
    /// Slow subscribers disconnected under the disconnect policy.
    pub slow_disconnects: u64,
    /// Frames replayed to resuming subscribers.
    pub replayed: u64,
    /// Bytes of encoded events held in all topics' histories.
    pub history_bytes: usize,
}

/// Hub-wide atomic counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) subscribers: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) conflated: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) slow_disconnects: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) history_bytes: AtomicUsize,
}

macro_rules! bump {
    ($($name:ident => $field:ident, $metric:literal;)*) => {
        $(
            pub(crate) fn $name(&self, n: u64) {
                if n > 0 {
                    self.$field.fetch_add(n, Relaxed);
                    #[cfg(feature = "metrics")]
                    metrics::counter!($metric).increment(n);
                }
            }
        )*
    };
}

impl Counters {
    bump! {
        published => published, "sse_published_total";
        delivered => delivered, "sse_delivered_total";
        conflated => conflated, "sse_conflated_total";
        dropped => dropped, "sse_dropped_total";
        gap => gaps, "sse_gaps_total";
        slow_disconnect => slow_disconnects, "sse_slow_disconnects_total";
        replayed => replayed, "sse_replayed_total";
    }

    // Gauges move by increments, not by setting the hub's total: concurrent changes can then
    // never leave a stale value behind, and several hubs in one process add up.

    pub(crate) fn add_history(&self, n: usize) {
        if n > 0 {
            self.history_bytes.fetch_add(n, Relaxed);
            #[cfg(feature = "metrics")]
            metrics::gauge!(HISTORY_BYTES).increment(n as f64);
        }
    }

    pub(crate) fn sub_history(&self, n: usize) {
        if n > 0 {
            self.history_bytes.fetch_sub(n, Relaxed);
            #[cfg(feature = "metrics")]
            metrics::gauge!(HISTORY_BYTES).decrement(n as f64);
        }
    }

    pub(crate) fn subscriber_added(&self) {
        self.subscribers.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        metrics::gauge!(SUBSCRIBERS).increment(1.0);
    }

    pub(crate) fn subscriber_removed(&self) {
        self.subscribers.fetch_sub(1, Relaxed);
        #[cfg(feature = "metrics")]
        metrics::gauge!(SUBSCRIBERS).decrement(1.0);
    }

    /// A topic entered the registry.
    pub(crate) fn topic_added(&self) {
        #[cfg(feature = "metrics")]
        metrics::gauge!(TOPICS).increment(1.0);
    }

    /// A topic left the registry.
    pub(crate) fn topic_removed(&self) {
        #[cfg(feature = "metrics")]
        metrics::gauge!(TOPICS).decrement(1.0);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        Metrics {
            subscribers: self.subscribers.load(Relaxed),
            published: self.published.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            conflated: self.conflated.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            slow_disconnects: self.slow_disconnects.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            history_bytes: self.history_bytes.load(Relaxed),
            ..Metrics::default()
        }
    }
}

/// Gauge: current subscriptions.
#[cfg(feature = "metrics")]
const SUBSCRIBERS: &str = "sse_subscribers";
/// Gauge: topics held.
#[cfg(feature = "metrics")]
const TOPICS: &str = "sse_topics";
/// Gauge: bytes of history held.
#[cfg(feature = "metrics")]
const HISTORY_BYTES: &str = "sse_history_bytes";
/// Histogram: seconds from an event's append to the hand-over of the body chunk holding it.
#[cfg(feature = "metrics")]
const DELIVERY_LATENCY: &str = "sse_delivery_latency_seconds";
/// Histogram: events waiting for a subscription in a topic when it reads.
#[cfg(feature = "metrics")]
const SUBSCRIBER_LAG: &str = "sse_subscriber_lag_events";

/// Records the age of the oldest live event of a body chunk as it is handed to the server.
#[cfg(feature = "metrics")]
pub(crate) fn record_delivery_latency(age: std::time::Duration) {
    metrics::histogram!(DELIVERY_LATENCY).record(age.as_secs_f64());
}

/// Records how many events were waiting for a subscription in one topic when it read.
#[cfg(feature = "metrics")]
pub(crate) fn record_lag(events: u64) {
    metrics::histogram!(SUBSCRIBER_LAG).record(events as f64);
}

/// Registers the description and unit of every metric the hub exports with the installed
/// recorder (for example as Prometheus `# HELP` lines). [`HubBuilder::build`](super::HubBuilder::build)
/// calls it; call it again if the recorder is installed after the first hub is built.
///
/// Only with the `metrics` feature. See the [list of metrics](super#metrics).
#[cfg(feature = "metrics")]
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "sse_published_total",
        Unit::Count,
        "Events published (terminal events and events injected by a backplane included)"
    );
    describe_counter!(
        "sse_delivered_total",
        Unit::Count,
        "Frames delivered to subscriptions (replayed ones included)"
    );
    describe_counter!(
        "sse_conflated_total",
        Unit::Count,
        "Events a slow subscriber skipped because a newer event with the same key replaced them"
    );
    describe_counter!(
        "sse_dropped_total",
        Unit::Count,
        "Events a slow subscriber skipped under drop-oldest or because they left the history"
    );
    describe_counter!("sse_gaps_total", Unit::Count, "Gap notices sent");
    describe_counter!(
        "sse_slow_disconnects_total",
        Unit::Count,
        "Slow subscriptions ended under the disconnect policy"
    );
    describe_counter!(
        "sse_replayed_total",
        Unit::Count,
        "Frames replayed to resuming subscriptions"
    );
    describe_gauge!(SUBSCRIBERS, Unit::Count, "Current subscriptions");
    describe_gauge!(TOPICS, Unit::Count, "Topics held");
    describe_gauge!(
        HISTORY_BYTES,
        Unit::Bytes,
        "Bytes of encoded events held in the topics' histories"
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Time from a live event's publish to the hand-over of the body chunk holding it to the \
         server (the oldest live event of each chunk)"
    );
    describe_histogram!(
        SUBSCRIBER_LAG,
        Unit::Count,
        "Events waiting for a subscription in a topic when it reads (recorded when at least one \
         waits)"
    );
}
