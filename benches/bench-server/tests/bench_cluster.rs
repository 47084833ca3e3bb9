//! Part 3 of the bench protocol (`benches/bench-server/PROTOCOL.md`): several `bench-server` processes sharing one
//! Redis backplane (`BACKPLANE=redis://HOST:PORT`).
//!
//! Each test starts its own `redis-server` on a free port in a temporary directory (never the
//! system service; killed and removed when the test ends), then three real bench-server child
//! processes A, B and C on it (A and B with the raw front end, C with hyper), and talks to them
//! over loopback with hand-written HTTP/1.1. Every read has a timeout and every wait is bounded.
//!
//! Without `redis-server` on the `PATH` the tests are skipped with a message on stderr, unless
//! `CI` is set: then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sse_core::DecodedEvent;
use sse_testkit::raw::{request, Resp, Sub};
use sse_testkit::redis::{have_redis, RedisServer as Redis};

/// A bench server as a child process, killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    fn start(redis: &Redis, frontend: &str, env: &[(&str, &str)]) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench-server"));
        cmd.env("PORT", "0")
            .env("FRONTEND", frontend)
            .env("BACKPLANE", redis.url())
            .env_remove("POLICY")
            .env_remove("QUEUE")
            .env_remove("HISTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start bench-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Node { child, addr }
    }

    fn post(&self, path: &str) -> Resp {
        request(self.addr, "POST", path)
    }

    fn stats(&self) -> serde_json::Value {
        let r = request(self.addr, "GET", "/stats");
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    fn sub(&self, path: &str) -> Sub {
        Sub::open(self.addr, path, &[])
    }

    fn sub_with(&self, path: &str, headers: &[(&str, &str)]) -> Sub {
        Sub::open(self.addr, path, headers)
    }

    /// SIGKILL.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis and three nodes: A and B with the raw front end, C with hyper.
fn cluster() -> (Redis, Node, Node, Node) {
    let redis = Redis::start("sse-bench-cluster");
    let a = Node::start(&redis, "raw", &[]);
    let b = Node::start(&redis, "raw", &[]);
    let c = Node::start(&redis, "hyper", &[]);
    (redis, a, b, c)
}

/// The number N of an event id `PREFIX + N` (the protocol: PREFIX ends in a non-digit; here
/// it is the topic's incarnation, named by the backplane, and `:`).
fn id(e: &DecodedEvent) -> u64 {
    let id = &e.last_event_id;
    let (prefix, n) = id
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("id {id:?} is not INCARNATION:SEQ"));
    assert!(!prefix.is_empty(), "no incarnation in {id:?}");
    n.parse()
        .unwrap_or_else(|_| panic!("id {id:?} does not end with a number"))
}

fn ids(events: &[DecodedEvent]) -> Vec<u64> {
    events.iter().map(id).collect()
}

fn seq(e: &DecodedEvent) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    v["seq"].as_u64().unwrap()
}

fn range(a: u64, b: u64) -> Vec<u64> {
    (a..=b).collect()
}

/// Publishes on `node` until it answers 200 (Redis coming back), for at most `within`.
fn post_until_ok(node: &Node, path: &str, within: Duration) -> Resp {
    let until = Instant::now() + within;
    loop {
        let r = node.post(path);
        if r.status == 200 || Instant::now() >= until {
            return r;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn publish_on_a_subscribers_on_b_and_c_resume_anywhere_and_finish_everywhere() {
    if !have_redis("the bench-server cluster tests") {
        return;
    }
    let (_redis, a, b, c) = cluster();
    let mut subs = vec![b.sub("/sub/t"), b.sub("/sub/t"), c.sub("/sub/t")];
    for s in &mut subs {
        s.wait_ok();
    }
    let r = a.post("/pub/t?n=200&size=64");
    assert_eq!((r.status, r.body.as_str()), (200, "200\n"));
    let first: Vec<Vec<DecodedEvent>> = subs.iter_mut().map(|s| s.take(200)).collect();
    for got in &first {
        assert_eq!(ids(got), range(1, 200));
        for e in got {
            assert_eq!(e.event, "message");
            assert_eq!(seq(e), id(e), "payload seq equals the cluster-wide id");
        }
        // The same events (payload and all, ids with the same incarnation) on every node.
        assert_eq!(
            got.iter().map(|e| &e.data).collect::<Vec<_>>(),
            first[0].iter().map(|e| &e.data).collect::<Vec<_>>()
        );
        assert_eq!(
            got.iter().map(|e| &e.last_event_id).collect::<Vec<_>>(),
            first[0]
                .iter()
                .map(|e| &e.last_event_id)
                .collect::<Vec<_>>()
        );
    }

    // Per-node stats: A published the 200 events and has no subscriber of its own (it applies
    // nothing); B applied them from Redis and delivered them to its two subscribers.
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa["published"], 200, "{sa}");
    assert_eq!(sa["applied"], 0, "{sa}");
    assert_eq!(sb["published"], 0, "{sb}");
    assert_eq!(sb["applied"], 200, "{sb}");
    assert_eq!(sb["read_from_backplane"], 200, "{sb}");
    assert!(sb["delivered"].as_u64().unwrap() >= 400, "{sb}");

    // Resume on C (and on A) with ids that B sent: header and query forms.
    let sent_by_b = first[0][149].last_event_id.clone();
    let mut by_header = c.sub_with("/sub/t", &[("Last-Event-ID", &sent_by_b)]);
    by_header.wait_ok();
    assert_eq!(ids(&by_header.take(50)), range(151, 200));
    let mut by_query = c.sub(&format!(
        "/sub/t?lastEventId={}",
        first[1][179].last_event_id
    ));
    by_query.wait_ok();
    assert_eq!(ids(&by_query.take(20)), range(181, 200));
    let mut on_a = a.sub_with("/sub/t", &[("Last-Event-ID", "190")]);
    on_a.wait_ok();
    assert_eq!(ids(&on_a.take(10)), range(191, 200));
    // An id older than the history (HISTORY defaults to 1024: none here) is not a gap.
    let mut from_start = c.sub("/sub/t?lastEventId=0");
    from_start.wait_ok();
    assert_eq!(ids(&from_start.take(200)), range(1, 200));

    // More events with a type, then the finish, all on A.
    let r = a.post("/pub/t?n=3&size=20&event=tick");
    assert_eq!((r.status, r.body.as_str()), (200, "3\n"));
    let r = a.post("/finish/t?status=completed");
    assert_eq!((r.status, r.body.as_str()), (200, "204\n"));
    for s in subs
        .iter_mut()
        .chain([&mut by_header, &mut by_query, &mut on_a, &mut from_start])
    {
        let rest = s.all();
        assert_eq!(ids(&rest), range(201, 204));
        assert_eq!(
            rest.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
            ["tick", "tick", "tick", "completed"]
        );
    }

    // 204 and 409 on every node.
    for node in [&a, &b, &c] {
        assert_eq!(
            node.sub_with("/sub/t", &[("Last-Event-ID", "204")]).status,
            204
        );
        assert_eq!(node.sub("/sub/t?lastEventId=204").status, 204);
        let r = node.post("/pub/t?n=1&size=10");
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.body.trim().lines().count(), 1);
        assert_eq!(node.post("/finish/t?status=failed").status, 409);
        // A late subscriber gets the final state, ending with the terminal event.
        let mut late = node.sub("/sub/t");
        late.wait_ok();
        let state = late.all();
        let last = state.last().unwrap();
        assert_eq!((last.event.as_str(), id(last)), ("completed", 204));
    }
    // A finish on a topic nobody published to, from C; seen on B.
    let r = c.post("/finish/f2?status=failed");
    assert_eq!((r.status, r.body.as_str()), (200, "1\n"));
    let mut s = b.sub("/sub/f2");
    s.wait_ok();
    let e = s.all();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].event.as_str(), id(&e[0])), ("failed", 1));

    // /stats reports each node's backplane counters.
    assert!(a.stats()["backplane"]["published"].as_u64().unwrap() >= 204);
    assert_eq!(b.stats()["backplane"]["kind"], "redis");
}

#[test]
fn gap_for_an_id_older_than_the_history_on_another_node() {
    if !have_redis("the bench-server cluster tests") {
        return;
    }
    let redis = Redis::start("sse-bench-cluster");
    let a = Node::start(&redis, "raw", &[("HISTORY", "8"), ("QUEUE", "8")]);
    let c = Node::start(&redis, "hyper", &[("HISTORY", "8"), ("QUEUE", "8")]);
    assert_eq!(a.post("/pub/g?n=100&size=20").status, 200);
    let mut inside = c.sub_with("/sub/g", &[("Last-Event-ID", "96")]);
    inside.wait_ok();
    assert_eq!(ids(&inside.take(4)), range(97, 100));
    let mut old = c.sub("/sub/g?lastEventId=3");
    old.wait_ok();
    let gap = old.next().unwrap();
    assert_eq!(gap.event, "gap");
    let v: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(v["after"], 3);
    assert_eq!(a.post("/pub/g?n=1&size=20").status, 200);
    let next = std::iter::from_fn(|| old.next()).find(|e| e.event == "message" && id(e) == 101);
    assert!(next.is_some(), "live events follow the gap");
    assert_eq!(id(&inside.next().unwrap()), 101);
}

#[test]
fn two_nodes_publishing_at_once_give_ids_one_to_n() {
    if !have_redis("the bench-server cluster tests") {
        return;
    }
    let (_redis, a, b, c) = cluster();
    let mut sub = c.sub("/sub/race");
    sub.wait_ok();
    // 1,000 events in all: within the subscriber's bound (QUEUE, 1024) while it waits, and
    // within the history (HISTORY, 1024) for the late subscriber.
    const POSTS: usize = 5;
    const PER_POST: u64 = 100;
    thread::scope(|s| {
        for node in [&a, &b] {
            s.spawn(move || {
                for _ in 0..POSTS {
                    let r = node.post(&format!("/pub/race?n={PER_POST}&size=32"));
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
    let total = 2 * POSTS as u64 * PER_POST;
    let got = sub.take(total as usize);
    assert_eq!(
        ids(&got),
        range(1, total),
        "no duplicate, no hole, in order"
    );
    assert!(got.iter().all(|e| seq(e) == id(e)));
    // The same on a node that joins later, from the start.
    let mut late = b.sub("/sub/race?lastEventId=0");
    late.wait_ok();
    assert_eq!(ids(&late.take(total as usize)), range(1, total));
}

#[test]
fn a_node_killed_with_sigkill_its_clients_resume_on_another() {
    if !have_redis("the bench-server cluster tests") {
        return;
    }
    let (_redis, a, mut b, c) = cluster();
    let mut clients = vec![b.sub("/sub/k"), b.sub("/sub/k")];
    for s in &mut clients {
        s.wait_ok();
    }
    assert_eq!(a.post("/pub/k?n=100&size=32").status, 200);
    // The clients have read part of it when B dies.
    let mut got: Vec<Vec<u64>> = clients
        .iter_mut()
        .zip([40usize, 100])
        .map(|(s, k)| ids(&s.take(k)))
        .collect();
    b.kill();
    // What they still receive (what B had sent), up to the end of their streams.
    for (s, g) in clients.iter_mut().zip(&mut got) {
        g.extend(ids(&s.all()));
    }
    let seen: Vec<u64> = got
        .iter()
        .map(|g| {
            assert_eq!(*g, range(1, g.len() as u64), "in order, no duplicate");
            g.len() as u64
        })
        .collect();
    assert!(seen[0] >= 40 && seen[1] == 100, "{seen:?}");
    // Published while the clients reconnect.
    assert_eq!(a.post("/pub/k?n=50&size=32").status, 200);
    let mut resumed: Vec<Sub> = seen
        .iter()
        .map(|k| c.sub_with("/sub/k", &[("Last-Event-ID", &k.to_string())]))
        .collect();
    for s in &mut resumed {
        s.wait_ok();
    }
    assert_eq!(a.post("/finish/k?status=completed").status, 200);
    for (s, k) in resumed.iter_mut().zip(&seen) {
        assert_eq!(ids(&s.all()), range(k + 1, 151), "nothing missed after {k}");
    }
}

#[test]
fn redis_outage_503_streams_stay_open_and_continue_after_restart() {
    if !have_redis("the bench-server cluster tests") {
        return;
    }
    let (mut redis, a, b, c) = cluster();
    let mut subs = vec![b.sub("/sub/o"), c.sub("/sub/o")];
    for s in &mut subs {
        s.wait_ok();
    }
    assert_eq!(a.post("/pub/o?n=10&size=32").status, 200);
    for s in &mut subs {
        assert_eq!(ids(&s.take(10)), range(1, 10));
    }

    // `SHUTDOWN SAVE`: Redis writes its data to the directory and exits.
    assert!(
        redis.stop(true),
        "redis-server did not shut down within 10 s"
    );
    for node in [&a, &b, &c] {
        let r = node.post("/pub/o?n=5&size=32");
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.body.trim().lines().count(), 1, "one line: {:?}", r.body);
        assert!(!r.body.trim().is_empty());
        let r = node.post("/finish/o?status=completed");
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.body.trim().lines().count(), 1, "one line: {:?}", r.body);
    }
    // A node that cannot serve a client's position without Redis says so.
    assert_eq!(a.sub_with("/sub/o", &[("Last-Event-ID", "5")]).status, 503);
    // Open streams stay open (nothing to read, no end).
    for s in &mut subs {
        assert!(s.still_open(Duration::from_millis(500)), "stream closed");
    }

    redis.spawn();
    // The nodes reconnect by themselves.
    let r = post_until_ok(&a, "/pub/o?n=1&size=32", Duration::from_secs(15));
    assert_eq!((r.status, r.body.as_str()), (200, "1\n"), "{}", r.body);
    assert_eq!(
        post_until_ok(&b, "/pub/o?n=9&size=32", Duration::from_secs(15)).status,
        200
    );
    assert_eq!(a.post("/finish/o?status=completed").status, 200);
    for s in &mut subs {
        let rest = s.all();
        // Ids continue the sequence: nothing stored was lost, nothing repeated, and the 503s
        // stored nothing.
        assert_eq!(ids(&rest), range(11, 21));
        assert_eq!(rest.last().unwrap().event, "completed");
    }
    // Resume across nodes still works after the restart.
    let mut s = c.sub_with("/sub/o", &[("Last-Event-ID", "8")]);
    s.wait_ok();
    assert_eq!(ids(&s.all()), range(9, 21));
}

#[test]
fn invalid_or_unreachable_backplane_fails_at_startup() {
    let run = |url: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_bench-server"))
            .env("PORT", "0")
            .env("BACKPLANE", url)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("http://127.0.0.1:1");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("BACKPLANE"), "{err}");
    let (code, err) = run("redis://127.0.0.1:notaport");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("BACKPLANE"), "{err}");
    // Nothing listens on port 1.
    let (code, err) = run("redis://127.0.0.1:1");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot reach redis"), "{err}");
}
