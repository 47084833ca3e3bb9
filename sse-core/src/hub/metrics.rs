//! Hub counters and the serializable [`Metrics`] snapshot.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A point-in-time view of the hub, for a stats endpoint.
///
/// Counters are cumulative since the hub was created. With the `metrics` feature the same
/// counters are also exported through the [`metrics`](https://docs.rs/metrics) facade under the
/// names `sse_published_total`, `sse_delivered_total`, … and the gauges `sse_subscribers`,
/// `sse_topics` and `sse_history_bytes`.
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

    pub(crate) fn add_history(&self, n: usize) {
        let _v = self.history_bytes.fetch_add(n, Relaxed) + n;
        #[cfg(feature = "metrics")]
        metrics::gauge!("sse_history_bytes").set(_v as f64);
    }

    pub(crate) fn sub_history(&self, n: usize) {
        let _v = self.history_bytes.fetch_sub(n, Relaxed) - n;
        #[cfg(feature = "metrics")]
        metrics::gauge!("sse_history_bytes").set(_v as f64);
    }

    pub(crate) fn subscriber_added(&self) {
        let _v = self.subscribers.fetch_add(1, Relaxed) + 1;
        #[cfg(feature = "metrics")]
        metrics::gauge!("sse_subscribers").set(_v as f64);
    }

    pub(crate) fn subscriber_removed(&self) {
        let _v = self.subscribers.fetch_sub(1, Relaxed) - 1;
        #[cfg(feature = "metrics")]
        metrics::gauge!("sse_subscribers").set(_v as f64);
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
