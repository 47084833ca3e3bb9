//! With sse-core's `metrics` feature, the hub's gauges move as topics and subscriptions come
//! and go (no call to `Hub::metrics` needed), and the delivery-latency and lag histograms get
//! samples, as read by a real recorder (`metrics-util`'s `DebuggingRecorder`, installed as the
//! global recorder of this test binary) while `sse_hyper::serve_with` streams to a real client
//! on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sse_core::{Event, Hub};
use sse_hyper::{ServeOptions, SseResponseBody};
use sse_testkit::sse::{get, SseClient};

/// What the recorder has seen so far. The debugging recorder hands out (and resets) what
/// changed since its last snapshot, so the values are summed here: a gauge that the hub moves
/// by increments is the sum of its changes.
#[derive(Default)]
struct Seen {
    snapshotter: Option<Snapshotter>,
    values: HashMap<String, f64>,
    samples: HashMap<String, Vec<f64>>,
    units: HashMap<String, Unit>,
}

impl Seen {
    fn update(&mut self) {
        let snap = self.snapshotter.as_ref().unwrap().snapshot();
        for (key, unit, _, value) in snap.into_vec() {
            let name = key.key().name().to_owned();
            assert!(
                key.key().labels().next().is_none(),
                "{name} has labels: the hub's metrics have none"
            );
            if let Some(u) = unit {
                self.units.insert(name.clone(), u);
            }
            match value {
                DebugValue::Counter(n) => *self.values.entry(name).or_default() += n as f64,
                DebugValue::Gauge(v) => *self.values.entry(name).or_default() += v.into_inner(),
                DebugValue::Histogram(v) => self
                    .samples
                    .entry(name)
                    .or_default()
                    .extend(v.into_iter().map(|x| x.into_inner())),
            }
        }
    }

    fn value(&mut self, name: &str) -> f64 {
        self.update();
        self.values.get(name).copied().unwrap_or(0.0)
    }

    fn samples(&mut self, name: &str) -> Vec<f64> {
        self.update();
        self.samples.get(name).cloned().unwrap_or_default()
    }

    /// Waits (up to 2 s) until gauge `name` reads `want`.
    async fn wait_gauge(&mut self, name: &str, want: f64) {
        for _ in 0..200 {
            if self.value(name) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name} is {}, not {want}", self.value(name));
    }
}

async fn handle(hub: Hub, req: Request<Incoming>) -> Result<Response<SseResponseBody>, Infallible> {
    let topic = req.uri().path().trim_start_matches("/events/").to_owned();
    Ok(sse_hyper::subscribe(&hub, topic).await)
}

// One test in this binary: the recorder is process-wide.
#[tokio::test]
async fn gauges_follow_topics_and_subscriptions_and_histograms_get_samples() {
    let recorder = DebuggingRecorder::new();
    let mut seen = Seen {
        snapshotter: Some(recorder.snapshotter()),
        ..Seen::default()
    };
    recorder.install().unwrap();

    let hub = Hub::builder()
        .lazy_topics(true)
        .finished_ttl(Duration::ZERO)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = hyper::service::service_fn({
        let hub = hub.clone();
        move |req| handle(hub.clone(), req)
    });
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sse_hyper::serve_with(
        listener,
        service,
        hub.clone(),
        async {
            let _ = rx.await;
        },
        ServeOptions::default(),
    ));
    assert_eq!(seen.value("sse_topics"), 0.0);
    assert_eq!(seen.value("sse_subscribers"), 0.0);

    // Subscribers arrive: each creates its topic (lazily).
    let mut a = SseClient::new(get(&format!("http://{addr}/events/a"), &[]).await);
    a.chunk().await.unwrap();
    seen.wait_gauge("sse_topics", 1.0).await;
    seen.wait_gauge("sse_subscribers", 1.0).await;
    let mut b = SseClient::new(get(&format!("http://{addr}/events/b"), &[]).await);
    b.chunk().await.unwrap();
    seen.wait_gauge("sse_topics", 2.0).await;
    seen.wait_gauge("sse_subscribers", 2.0).await;
    assert_eq!(seen.value("sse_history_bytes"), 0.0);

    // A burst of five: this (current-thread) runtime does not run the server before the test
    // task yields, and the test then holds the thread 40 ms more, so the server's body reads
    // all five at once (lag 5) and hands them over at least 40 ms after their publish.
    let topic = hub.get_topic("a").unwrap();
    let mut history = 0;
    for i in 0..5 {
        topic
            .publish(Event::new().data(format!("event {i}")))
            .await
            .unwrap();
    }
    for i in 0..5 {
        history += format!("data: event {i}\nid: {}\n\n", topic.event_id(i + 1)).len();
    }
    std::thread::sleep(Duration::from_millis(40));
    for _ in 0..5 {
        a.event().await.unwrap();
    }
    assert_eq!(seen.value("sse_history_bytes"), history as f64);
    assert_eq!(seen.value("sse_published_total"), 5.0);
    assert_eq!(seen.value("sse_delivered_total"), 5.0);
    let lag = seen.samples("sse_subscriber_lag_events");
    assert_eq!(lag, vec![5.0], "one read, five events waiting");
    let latency = seen.samples("sse_delivery_latency_seconds");
    assert_eq!(latency.len(), 1, "one chunk: {latency:?}");
    assert!(
        (0.040..5.0).contains(&latency[0]),
        "the oldest event of the chunk waited at least 40 ms: {latency:?}"
    );

    // A lone event, read at once: a sample per chunk, well under the burst's.
    topic.publish(Event::new().data("lone")).await.unwrap();
    a.event().await.unwrap();
    let latency = seen.samples("sse_delivery_latency_seconds");
    assert_eq!(latency.len(), 2, "{latency:?}");
    assert!(latency[1] < latency[0], "{latency:?}");
    assert_eq!(seen.samples("sse_subscriber_lag_events"), vec![5.0, 1.0]);

    // A subscriber leaves: its topic (never published to) goes with it.
    drop(b);
    seen.wait_gauge("sse_subscribers", 1.0).await;
    seen.wait_gauge("sse_topics", 1.0).await;

    // The last one ends with its topic; the finished topic is evicted, its history freed.
    topic
        .finish(Event::new().event("done").data("bye"))
        .await
        .unwrap();
    let rest = a.rest().await;
    assert_eq!(rest.last().unwrap().event, "done");
    seen.wait_gauge("sse_subscribers", 0.0).await;
    assert!(seen.value("sse_history_bytes") > history as f64);
    hub.evict_expired();
    seen.wait_gauge("sse_topics", 0.0).await;
    assert_eq!(seen.value("sse_history_bytes"), 0.0);

    // The hub described its metrics to the recorder.
    seen.update();
    assert_eq!(
        seen.units.get("sse_delivery_latency_seconds"),
        Some(&Unit::Seconds)
    );
    assert_eq!(seen.units.get("sse_history_bytes"), Some(&Unit::Bytes));
    assert_eq!(
        seen.units.get("sse_subscriber_lag_events"),
        Some(&Unit::Count)
    );

    // The snapshot agrees with what was pushed.
    let m = hub.metrics();
    assert_eq!((m.topics, m.subscribers, m.history_bytes), (0, 0, 0));
    assert_eq!(seen.value("sse_published_total"), m.published as f64);
    assert_eq!(seen.value("sse_delivered_total"), m.delivered as f64);

    stop.send(()).unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap());
}
