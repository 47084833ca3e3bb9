//! The backplane seam: acks, blocking waits, interest notifications, prepare and backfill, and
//! the backplane's incarnations, with an in-process backplane shared by several hubs (nodes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use sse_core::hub::{
    Backplane, BackplaneError, BackplaneFuture, Incarnation, Injected, Outgoing, PublishError,
    SubscribeError, SubscribeOptions, TopicConfig, WeakHub, SEQ_PLACEHOLDER, SEQ_PLACEHOLDER_TEXT,
};
use sse_core::{Event, Hub, Subscription};

#[derive(Clone)]
struct Stored {
    seq: u64,
    incarnation: Incarnation,
    body: Vec<u8>,
    key: Option<String>,
    terminal: bool,
}

/// The shared "cluster store": orders events and delivers them to the nodes that read the topic.
#[derive(Default)]
struct Store {
    topics: Mutex<HashMap<String, Vec<Stored>>>,
    /// Each topic's current incarnation, drawn when the store first sees the topic and again
    /// when it loses the topic's data ([`Store::lose`]).
    incarnations: Mutex<HashMap<String, Incarnation>>,
    nodes: Mutex<Vec<Arc<Node>>>,
    down: AtomicBool,
    /// Acks arrive from another thread after this delay (tests the blocking path's waker).
    ack_delay: Mutex<Option<Duration>>,
}

impl Store {
    /// The topic's current incarnation in the store.
    fn incarnation(&self, topic: &str) -> Incarnation {
        *self
            .incarnations
            .lock()
            .unwrap()
            .entry(topic.to_owned())
            .or_default() // `Incarnation::default()` draws a new one
    }

    /// The SSE id every node gives event `seq` of `topic`.
    fn id(&self, topic: &str, seq: u64) -> String {
        format!("{}:{seq}", self.incarnation(topic))
    }

    /// The store loses `topic` (a flush, a failover without persistence): its numbering starts
    /// over in a new incarnation.
    fn lose(&self, topic: &str) -> Incarnation {
        self.topics.lock().unwrap().remove(topic);
        let inc = Incarnation::new();
        self.incarnations
            .lock()
            .unwrap()
            .insert(topic.to_owned(), inc);
        inc
    }
}

/// One node's backplane.
struct Node {
    store: Arc<Store>,
    hub: OnceLock<WeakHub>,
    interest: Mutex<Vec<(String, usize)>>,
}

fn inject(topic: &sse_core::Topic, e: &Stored) {
    topic
        .inject(Injected {
            seq: e.seq,
            incarnation: e.incarnation,
            body: &e.body,
            key: e.key.as_deref(),
            terminal: e.terminal,
        })
        .unwrap();
}

impl Backplane for Node {
    fn attach(&self, hub: WeakHub) {
        self.hub.set(hub).unwrap();
    }

    fn publish(&self, o: Outgoing) -> BackplaneFuture<u64> {
        let store = &self.store;
        if store.down.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(BackplaneError::new(
                "store is down",
            ))));
        }
        let stored = {
            let mut topics = store.topics.lock().unwrap();
            if o.must_exist && !topics.contains_key(&*o.topic) {
                return Box::pin(std::future::ready(Err(BackplaneError::not_found())));
            }
            let log = topics.entry(o.topic.to_string()).or_default();
            if log.last().is_some_and(|e| e.terminal) {
                return Box::pin(std::future::ready(Err(BackplaneError::finished())));
            }
            let seq = log.len() as u64 + 1;
            let e = Stored {
                seq,
                incarnation: store.incarnation(&o.topic),
                body: o.body_with_seq(seq).to_vec(),
                key: o.key.as_deref().map(String::from),
                terminal: o.terminal,
            };
            log.push(e.clone());
            e
        };
        // Deliver to every node that reads the topic (has local subscribers).
        for node in store.nodes.lock().unwrap().iter() {
            let Some(hub) = node.hub.get().and_then(WeakHub::upgrade) else {
                continue;
            };
            if let Some(t) = hub.get_topic(&o.topic).filter(|t| t.subscriber_count() > 0) {
                inject(&t, &stored);
            }
        }
        let seq = stored.seq;
        match *store.ack_delay.lock().unwrap() {
            None => Box::pin(std::future::ready(Ok(seq))),
            Some(d) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    std::thread::sleep(d);
                    let _ = tx.send(seq);
                });
                Box::pin(async move { rx.await.map_err(|_| BackplaneError::new("lost")) })
            }
        }
    }

    fn interest_changed(&self, topic: &str) {
        let hub = self.hub.get().and_then(WeakHub::upgrade).unwrap();
        let n = hub.get_topic(topic).map_or(0, |t| t.subscriber_count());
        self.interest.lock().unwrap().push((topic.to_owned(), n));
    }

    fn prepare(&self, topic: &str, after: Option<u64>) -> BackplaneFuture<()> {
        if self.store.down.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(BackplaneError::new(
                "store is down",
            ))));
        }
        let hub = self.hub.get().and_then(WeakHub::upgrade).unwrap();
        let log = self.store.topics.lock().unwrap().get(topic).cloned();
        if let Some(log) = log {
            let t = hub.topic(topic).unwrap();
            // The older events a resuming client needs, then what this node has not applied.
            if let Some(k) = after {
                let older: Vec<Injected<'_>> = log
                    .iter()
                    .filter(|e| e.seq > k)
                    .map(|e| Injected {
                        seq: e.seq,
                        incarnation: e.incarnation,
                        body: &e.body,
                        key: e.key.as_deref(),
                        terminal: e.terminal,
                    })
                    .collect();
                t.backfill(&older);
            }
            // A topic new to this node starts at the client's position (and holds at least
            // the latest event).
            let last = match t.last_seq() {
                0 => after.unwrap_or(0).min(log.len() as u64 - 1),
                n => n,
            };
            for e in log.iter().filter(|e| e.seq > last) {
                inject(&t, e);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

fn cluster(n: usize) -> (Arc<Store>, Vec<Hub>, Vec<Arc<Node>>) {
    cluster_with(n, TopicConfig::default())
}

fn cluster_with(n: usize, cfg: TopicConfig) -> (Arc<Store>, Vec<Hub>, Vec<Arc<Node>>) {
    let store = Arc::new(Store::default());
    let mut hubs = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let node = Arc::new(Node {
            store: Arc::clone(&store),
            hub: OnceLock::new(),
            interest: Mutex::new(Vec::new()),
        });
        store.nodes.lock().unwrap().push(Arc::clone(&node));
        let hub = Hub::builder()
            .topic_config(cfg.clone())
            .backplane(Arc::clone(&node) as Arc<dyn Backplane>)
            .build();
        hubs.push(hub);
        nodes.push(node);
    }
    (store, hubs, nodes)
}

async fn next_text(sub: &mut Subscription) -> String {
    let f = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("timed out")
        .expect("stream ended");
    String::from_utf8(f.as_bytes().to_vec()).unwrap()
}

#[test]
fn placeholder_text_matches() {
    assert_eq!(SEQ_PLACEHOLDER.to_string(), SEQ_PLACEHOLDER_TEXT);
}

#[tokio::test]
async fn in_memory_publishes_are_stored_when_called_and_acked_at_once() {
    let hub = Hub::new();
    let topic = hub.topic("t").unwrap();
    let mut sub = hub.subscribe("t").await.unwrap();
    let a = topic.publish(Event::new().data("a"));
    let b = topic.publish_keyed("k", Event::new().data("b"));
    assert_eq!(
        topic.last_seq(),
        2,
        "appended when called, before the acks are polled"
    );
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (1, 2));
    let c = topic
        .publish_with(None, |seq| Event::new().data(format!("seq={seq}")))
        .await
        .unwrap();
    assert_eq!(c, 3);
    assert_eq!(hub.publish("t", Event::new().data("d")).await.unwrap(), 4);
    assert_eq!(
        hub.finish("t", Event::new().event("done")).await.unwrap(),
        5
    );
    assert!(matches!(
        topic.publish(Event::new().data("late")).await,
        Err(PublishError::Finished)
    ));
    assert!(matches!(
        hub.finish("nope", Event::new()).await,
        Err(PublishError::NotFound)
    ));
    let id = |seq| topic.event_id(seq);
    assert_eq!(
        next_text(&mut sub).await,
        format!("data: a\nid: {}\n\n", id(1))
    );
    assert_eq!(
        next_text(&mut sub).await,
        format!("data: b\nid: {}\n\n", id(2))
    );
    // The payload's sequence is the bare number; the id carries the incarnation.
    assert_eq!(
        next_text(&mut sub).await,
        format!("data: seq=3\nid: {}\n\n", id(3))
    );
}

#[tokio::test]
async fn publish_on_one_node_reaches_subscribers_on_others() {
    let (store, hubs, _nodes) = cluster(3);
    let mut b = hubs[1]
        .subscribe(SubscribeOptions::topic("job").create_if_missing(true))
        .await
        .unwrap();
    let mut c = hubs[2]
        .subscribe(SubscribeOptions::topic("job").create_if_missing(true))
        .await
        .unwrap();
    let a = hubs[0].topic("job").unwrap();
    for i in 1..=3u64 {
        assert_eq!(
            a.publish(Event::new().data(format!("e{i}"))).await.unwrap(),
            i
        );
    }
    // With the placeholder, the payload's sequence is the id's on every node.
    let seq = a
        .publish_with(None, |seq| {
            Event::new().json_owned(serde_json::json!({ "seq": seq }))
        })
        .await
        .unwrap();
    assert_eq!(seq, 4);
    assert_eq!(a.finish(Event::new().event("completed")).await.unwrap(), 5);
    let id = |seq| store.id("job", seq);
    for sub in [&mut b, &mut c] {
        for i in 1..=3 {
            assert_eq!(
                next_text(sub).await,
                format!("data: e{i}\nid: {}\n\n", id(i))
            );
        }
        assert_eq!(
            next_text(sub).await,
            format!("data: {{\"seq\":4}}\nid: {}\n\n", id(4))
        );
        assert_eq!(
            next_text(sub).await,
            format!("event: completed\nid: {}\n\n", id(5))
        );
        assert!(sub.next().await.is_none());
    }
    // Node A had no subscriber: it did not apply the events, yet knows nothing is open.
    assert_eq!(a.last_seq(), 0);
    // Finished everywhere: 409 on another node, 204 for a client that saw the end, even on a
    // node that never served it.
    assert!(matches!(
        hubs[2].publish("job", Event::new().data("x")).await,
        Err(PublishError::Finished)
    ));
    let done = hubs[0]
        .subscribe(SubscribeOptions::topic("job").last_event_id(Some(id(5))))
        .await;
    assert!(matches!(done, Err(SubscribeError::Finished)));
}

#[tokio::test]
async fn resume_on_another_node_backfills_what_it_never_held() {
    let (store, hubs, _nodes) = cluster(2);
    let a = hubs[0].topic("t").unwrap();
    for i in 1..=10 {
        a.publish(Event::new().data(format!("e{i}"))).await.unwrap();
    }
    let id = |seq| store.id("t", seq);
    // Node B first sees the topic through a client resuming after 8: it holds 9..=10.
    let mut first = hubs[1]
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(id(8))))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut first).await,
        format!("data: e9\nid: {}\n\n", id(9))
    );
    // A client that node A served up to 3 resumes on B: B loads 4..=8 from the backplane.
    let mut second = hubs[1]
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(id(3))))
        .await
        .unwrap();
    for i in 4..=10 {
        assert_eq!(
            next_text(&mut second).await,
            format!("data: e{i}\nid: {}\n\n", id(i))
        );
    }
    a.publish(Event::new().data("e11")).await.unwrap();
    assert_eq!(
        next_text(&mut second).await,
        format!("data: e11\nid: {}\n\n", id(11))
    );
}

#[tokio::test]
async fn backfill_inserts_only_a_contiguous_older_run_within_bounds() {
    let hub = Hub::builder()
        .topic_config(TopicConfig::default().history_len(6))
        .build();
    let t = hub.topic("t").unwrap();
    let incarnation = t.incarnation().unwrap();
    let bodies: Vec<Vec<u8>> = (0..=10)
        .map(|i| format!("data: e{i}\n").into_bytes())
        .collect();
    let ev = |seq: u64| Injected {
        seq,
        incarnation,
        body: &bodies[seq as usize],
        key: (seq == 2).then_some("k"),
        terminal: false,
    };
    for s in 8..=9 {
        assert!(t.inject(ev(s)).unwrap());
    }
    // A run that does not end at 7 leaves a hole: nothing is inserted.
    assert_eq!(t.backfill(&[ev(3), ev(4), ev(5)]), 0);
    // Events of another incarnation never continue this one's history.
    let other = Incarnation::new();
    let foreign: Vec<Injected<'_>> = (1..=7)
        .map(|s| Injected {
            incarnation: other,
            ..ev(s)
        })
        .collect();
    assert_eq!(t.backfill(&foreign), 0);
    // Room for 4 more (history_len 6): 7, 6, 5, 4, newest first.
    assert_eq!(t.backfill(&(1..=7).map(ev).collect::<Vec<_>>()), 4);
    let mut sub = hub
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(t.event_id(3))))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(next_text(&mut sub).await);
    }
    let want: Vec<String> = (4..=9)
        .map(|i| format!("data: e{i}\nid: {}\n\n", t.event_id(i)))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn backfilled_keyed_event_joins_the_snapshot() {
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let incarnation = t.incarnation().unwrap();
    let body = b"event: progress\ndata: 1\n";
    t.inject(Injected {
        seq: 2,
        incarnation,
        body: b"data: x\n",
        key: None,
        terminal: false,
    })
    .unwrap();
    let old = Injected {
        seq: 1,
        incarnation,
        body,
        key: Some("progress"),
        terminal: false,
    };
    assert_eq!(t.backfill(&[old]), 1);
    let mut sub = hub.subscribe("t").await.unwrap();
    assert_eq!(
        next_text(&mut sub).await,
        format!("event: progress\ndata: 1\nid: {}\n\n", t.event_id(1))
    );
}

#[tokio::test]
async fn blocking_wait_on_a_runtime_thread_is_refused_but_the_event_is_handed_over() {
    let (store, hubs, _nodes) = cluster(1);
    let t = hubs[0].topic("t").unwrap();
    let err = t
        .publish(Event::new().data("x"))
        .blocking_wait()
        .unwrap_err();
    assert!(matches!(err, PublishError::WouldBlock), "{err:?}");
    assert_eq!(
        sse_core::http::publish_status(&err),
        http::StatusCode::INTERNAL_SERVER_ERROR
    );
    // Handed over when `publish` was called: the store has it.
    assert_eq!(store.topics.lock().unwrap()["t"].len(), 1);
    // The same on a hub without a backplane, so that code does not change behaviour the day a
    // backplane is added.
    let hub = Hub::new();
    let t = hub.topic("t").unwrap();
    let err = t
        .publish(Event::new().data("x"))
        .blocking_wait()
        .unwrap_err();
    assert!(matches!(err, PublishError::WouldBlock), "{err:?}");
    assert_eq!(t.last_seq(), 1);
    // And for subscribing.
    assert_eq!(
        hub.blocking_subscribe("t").unwrap_err(),
        SubscribeError::WouldBlock
    );
}

#[test]
fn blocking_wait_off_runtime_blocks_until_the_ack() {
    let (store, hubs, _nodes) = cluster(1);
    *store.ack_delay.lock().unwrap() = Some(Duration::from_millis(20));
    let hub = hubs[0].clone();
    let seqs = std::thread::spawn(move || {
        let t = hub.topic("t").unwrap();
        let a = t.publish(Event::new().data("a")).blocking_wait().unwrap();
        let b = t
            .publish_keyed("k", Event::new().data("b"))
            .blocking_wait()
            .unwrap();
        let c = t
            .finish(Event::new().event("done"))
            .blocking_wait()
            .unwrap();
        (a, b, c)
    })
    .join()
    .unwrap();
    assert_eq!(seqs, (1, 2, 3));
    assert_eq!(store.topics.lock().unwrap()["t"].len(), 3);
}

#[tokio::test]
async fn backplane_errors_map_to_publish_errors() {
    let (store, hubs, _nodes) = cluster(2);
    store.down.store(true, Ordering::SeqCst);
    let err = hubs[0]
        .publish("t", Event::new().data("x"))
        .await
        .unwrap_err();
    assert!(matches!(&err, PublishError::Backplane(e) if e.is_unavailable()));
    store.down.store(false, Ordering::SeqCst);
    // A node that never saw the topic finishes it in the backplane, or answers 404.
    assert!(matches!(
        hubs[1].finish("unknown", Event::new()).await,
        Err(PublishError::NotFound)
    ));
    hubs[0].publish("t", Event::new().data("x")).await.unwrap();
    assert_eq!(
        hubs[1]
            .finish("t", Event::new().event("done"))
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn interest_is_reported_on_first_and_last_subscriber() {
    let (_store, hubs, nodes) = cluster(1);
    hubs[0].topic("t").unwrap();
    let s1 = hubs[0].subscribe("t").await.unwrap();
    let s2 = hubs[0].subscribe("t").await.unwrap();
    drop(s1);
    drop(s2);
    let multi = hubs[0]
        .subscribe(SubscribeOptions::topics(["t", "u"]).create_if_missing(true))
        .await
        .unwrap();
    drop(multi);
    let calls = nodes[0].interest.lock().unwrap().clone();
    let want: Vec<(String, usize)> = vec![
        ("t".into(), 1),
        ("t".into(), 0),
        ("t".into(), 1),
        ("u".into(), 1),
        ("t".into(), 0),
        ("u".into(), 0),
    ];
    assert_eq!(calls, want);
}

#[tokio::test]
async fn subscribe_while_the_backplane_is_down() {
    let (store, hubs, _nodes) = cluster(2);
    let mut b = hubs[1]
        .subscribe(SubscribeOptions::topic("t").create_if_missing(true))
        .await
        .unwrap();
    hubs[0].publish("t", Event::new().data("1")).await.unwrap();
    let id = |seq| store.id("t", seq);
    assert_eq!(
        next_text(&mut b).await,
        format!("data: 1\nid: {}\n\n", id(1))
    );
    store.down.store(true, Ordering::SeqCst);
    // This node holds everything up to 1: served from its copy.
    let ok = hubs[1]
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(id(1))))
        .await;
    assert!(ok.is_ok());
    // A position this node cannot serve yet: 503, not a false gap.
    let refused = hubs[1]
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(id(5))))
        .await;
    assert!(matches!(refused, Err(SubscribeError::Unavailable)));
    assert_eq!(
        sse_core::http::status_for(&SubscribeError::Unavailable),
        http::StatusCode::SERVICE_UNAVAILABLE
    );
    let missing = hubs[0]
        .subscribe(SubscribeOptions::topic("t").last_event_id(Some(id(1))))
        .await;
    assert!(matches!(missing, Err(SubscribeError::Unavailable)));
}

#[tokio::test]
async fn dropped_job_publisher_fails_the_job_through_the_backplane() {
    let (store, hubs, _nodes) = cluster(2);
    let job = hubs[0].job("j").unwrap();
    job.progress(&serde_json::json!({"p": 1})).await.unwrap();
    drop(job);
    let log = store.topics.lock().unwrap()["j"].clone();
    assert_eq!(log.len(), 2);
    assert!(log[1].terminal);
    assert!(String::from_utf8_lossy(&log[1].body).contains("worker ended without finishing"));
    let job = hubs[1].job("k").unwrap();
    assert_eq!(
        job.complete(Event::new().event("completed")).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn the_backplanes_incarnation_names_ids_and_a_new_one_gives_live_subscribers_a_gap() {
    let (store, hubs, _nodes) = cluster(2);
    let mut sub = hubs[1]
        .subscribe(SubscribeOptions::topic("t").create_if_missing(true))
        .await
        .unwrap();
    let local = hubs[1].get_topic("t").unwrap();
    // Unknown until the backplane names it with the first event.
    assert_eq!(local.incarnation(), None);
    for i in 1..=3 {
        hubs[0]
            .publish("t", Event::new().data(format!("old{i}")))
            .await
            .unwrap();
    }
    let old = store.incarnation("t");
    assert_eq!(local.incarnation(), Some(old));
    for i in 1..=3 {
        assert_eq!(
            next_text(&mut sub).await,
            format!("data: old{i}\nid: {old}:{i}\n\n")
        );
    }
    // The store loses the topic; its numbering starts over in a new incarnation.
    let new = store.lose("t");
    assert_ne!(new, old);
    for i in 1..=2u64 {
        assert_eq!(
            hubs[0]
                .publish("t", Event::new().data(format!("new{i}")))
                .await
                .unwrap(),
            i
        );
    }
    assert_eq!(local.incarnation(), Some(new));
    // The live subscriber is told, then reads the new life from its start: never "new1" and
    // "new2" taken for events 4 and 5 of the old life, never skipped as already seen.
    let gap = next_text(&mut sub).await;
    assert!(gap.starts_with("event: gap\n"), "{gap:?}");
    assert!(gap.contains("\"after\":null"), "{gap:?}");
    assert!(!gap.contains("\nid:"), "a gap carries no id: {gap:?}");
    for i in 1..=2 {
        assert_eq!(
            next_text(&mut sub).await,
            format!("data: new{i}\nid: {new}:{i}\n\n")
        );
    }
    // A client holding an id of the old life, resuming on either node, gets a gap too.
    for hub in &hubs {
        let mut again = hub
            .subscribe(SubscribeOptions::topic("t").last_event_id(Some(format!("{old}:3"))))
            .await
            .unwrap();
        let gap = next_text(&mut again).await;
        assert!(gap.starts_with("event: gap\n"), "{gap:?}");
        assert!(gap.contains("\"after\":null"), "{gap:?}");
    }
}
