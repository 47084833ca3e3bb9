//! With the `metrics` feature, the hub's counters and gauges reach the `metrics` facade.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use sse_core::{Event, Hub};

#[derive(Default)]
struct Value(AtomicU64);

impl CounterFn for Value {
    fn increment(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn absolute(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

impl GaugeFn for Value {
    fn increment(&self, v: f64) {
        self.set(self.get() + v);
    }
    fn decrement(&self, v: f64) {
        self.set(self.get() - v);
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

impl Value {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Capture {
    counters: Mutex<HashMap<String, Arc<Value>>>,
    gauges: Mutex<HashMap<String, Arc<Value>>>,
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let v = self
            .counters
            .lock()
            .unwrap()
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Counter::from_arc(v)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let v = self
            .gauges
            .lock()
            .unwrap()
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Gauge::from_arc(v)
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn hub_counters_reach_the_facade() {
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || {
        let hub = Hub::new();
        let t = hub.topic("t").unwrap();
        let mut a = hub.blocking_subscribe("t").unwrap();
        let mut b = hub.blocking_subscribe("t").unwrap();
        for i in 0..3 {
            t.publish(Event::new().data(i.to_string()))
                .blocking_wait()
                .unwrap();
        }
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        for s in [&mut a, &mut b] {
            while let std::task::Poll::Ready(Some(_)) = s.poll_next_unpin(&mut cx) {}
        }
        let counter = |n: &str| {
            capture.counters.lock().unwrap()[n]
                .0
                .load(Ordering::Relaxed)
        };
        let gauge = |n: &str| capture.gauges.lock().unwrap()[n].get();
        assert_eq!(counter("sse_published_total"), 3);
        assert_eq!(counter("sse_delivered_total"), 6);
        assert_eq!(gauge("sse_subscribers"), 2.0);
        assert!(gauge("sse_history_bytes") > 0.0);
        drop((a, b));
        assert_eq!(gauge("sse_subscribers"), 0.0);
        let _ = hub.metrics();
        assert_eq!(gauge("sse_topics"), 1.0);
    });
}
