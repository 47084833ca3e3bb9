//! Conformance of `bench-server` to the bench protocol (`benches/bench-server/PROTOCOL.md`), parts 1 and 2.
//!
//! Each test starts the real binary (`PORT=0`, configured through its environment, under both
//! front ends) and talks to it over loopback: hand-written HTTP/1.1 on `std::net::TcpStream`
//! (chunked transfer coding undone here, events decoded with `sse_core::Decoder`), plus one
//! test through `reqwest`. Every read has a timeout, so a broken server fails a test instead of
//! hanging it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sse_core::DecodedEvent;
use sse_testkit::raw::{request, Resp, Sub};

/// The bench server as a child process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(frontend: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench-server"));
        cmd.env("PORT", "0")
            .env("FRONTEND", frontend)
            .env_remove("BACKPLANE")
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
        Server { child, addr }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn request(&self, method: &str, path: &str) -> Resp {
        request(self.addr, method, path)
    }

    fn post(&self, path: &str) -> Resp {
        self.request("POST", path)
    }

    fn stats(&self) -> serde_json::Value {
        let r = self.request("GET", "/stats");
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    fn subscribers(&self) -> u64 {
        self.stats()["subscribers"].as_u64().unwrap()
    }

    fn sub(&self, path: &str) -> Sub {
        Sub::open(self.addr, path, &[])
    }

    fn sub_with(&self, path: &str, headers: &[(&str, &str)]) -> Sub {
        Sub::open(self.addr, path, headers)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number N of an event id `PREFIX + N` (the protocol: PREFIX is empty or ends in a
/// non-digit; this server's is the topic's incarnation and `:`).
fn id(e: &DecodedEvent) -> u64 {
    let id = &e.last_event_id;
    let prefix = id.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = &id[prefix.len()..];
    assert!(!n.is_empty(), "id {id:?} does not end with a number");
    assert!(
        prefix.is_empty() || prefix.ends_with(':'),
        "id {id:?}: the prefix is the incarnation and `:`"
    );
    n.parse()
        .unwrap_or_else(|_| panic!("id {id:?} does not end with a number"))
}

fn seq(e: &DecodedEvent) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    v["seq"].as_u64().unwrap()
}

/// The bound for "a POST is not slowed down": generous, for a debug build on a busy machine.
const POST_BOUND: Duration = Duration::from_secs(5);

/// Every check runs against every front end: the bench-only raw one and the three built on
/// the adapters.
macro_rules! every_frontend {
    ($($name:ident),* $(,)?) => {
        mod raw {
            $( #[test] fn $name() { super::$name("raw") } )*
        }
        mod hyper {
            $( #[test] fn $name() { super::$name("hyper") } )*
        }
        mod axum {
            $( #[test] fn $name() { super::$name("axum") } )*
        }
        mod actix {
            $( #[test] fn $name() { super::$name("actix") } )*
        }
    };
}

every_frontend!(
    fan_out_ids_and_payloads,
    event_type_and_key,
    resume_while_publishing,
    gap_for_an_id_older_than_history,
    lifecycle,
    bad_input,
    cleanup_within_a_second,
    stalled_conflate,
    stalled_drop_oldest,
    stalled_disconnect,
);

fn fan_out_ids_and_payloads(fe: &str) {
    let srv = Server::start(fe, &[]);
    let mut subs: Vec<Sub> = (0..3).map(|_| srv.sub("/sub/t")).collect();
    for s in &mut subs {
        assert_eq!(s.status, 200);
        assert!(
            s.head.contains("content-type: text/event-stream"),
            "{}",
            s.head
        );
        s.wait_ok();
    }
    let r = srv.post("/pub/t?n=300&size=100");
    assert_eq!((r.status, r.body.as_str()), (200, "300\n"));
    for s in &mut subs {
        for k in 1..=300 {
            let e = s.next().unwrap();
            assert_eq!(e.event, "message");
            assert_eq!(id(&e), k);
            assert_eq!(seq(&e), k, "payload seq equals the id");
            assert_eq!(e.data.len(), 100, "padded to size");
            let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            assert!(v["ts"].as_u64().unwrap() > 1_600_000_000_000_000_000);
            assert!(v["pad"].as_str().unwrap().bytes().all(|b| b == b'x'));
        }
    }
    let stats = srv.stats();
    for key in [
        "subscribers",
        "topics",
        "published",
        "delivered",
        "conflated",
        "dropped",
        "gaps",
        "history_bytes",
    ] {
        assert!(stats.get(key).is_some(), "/stats lacks {key}: {stats}");
    }
    assert_eq!(stats["subscribers"], 3);
    assert_eq!(stats["published"], 300);
    assert!(stats["delivered"].as_u64().unwrap() >= 900);
    // A topic is created by its publisher too.
    assert_eq!(srv.post("/pub/fresh?n=2&size=10").status, 200);
    assert_eq!(srv.stats()["topics"], 2);
}

fn event_type_and_key(fe: &str) {
    let srv = Server::start(fe, &[]);
    let mut s = srv.sub("/sub/k");
    s.wait_ok();
    assert_eq!(srv.post("/pub/k?n=2&size=30").status, 200);
    let r = srv.post("/pub/k?n=3&size=30&event=tick&key=price");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(srv.post("/pub/k?n=1&size=30&event=tock").status, 200);
    let events: Vec<_> = (0..6).map(|_| s.next().unwrap()).collect();
    let kinds: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["message", "message", "tick", "tick", "tick", "tock"]
    );
    assert_eq!(
        events.iter().map(id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(events.iter().all(|e| seq(e) == id(e)));
    // A new subscriber first gets the latest event of each key (the topic's state).
    let mut late = srv.sub("/sub/k");
    late.wait_ok();
    let first = late.next().unwrap();
    assert_eq!((first.event.as_str(), id(&first)), ("tick", 5));
    assert_eq!(srv.post("/pub/k?n=1&size=30").status, 200);
    assert_eq!(id(&late.next().unwrap()), 7);
    // An event type that would break the framing is refused.
    assert_eq!(srv.post("/pub/k?n=1&size=30&event=a%0Ab").status, 400);
}

fn resume_while_publishing(fe: &str) {
    let srv = Server::start(fe, &[]);
    let addr = srv.addr;
    let mut s = srv.sub("/sub/r");
    s.wait_ok();
    const POSTS: u64 = 40;
    const PER: u64 = 50;
    let publisher = thread::spawn(move || {
        for _ in 0..POSTS {
            let r = request(addr, "POST", &format!("/pub/r?n={PER}&size=40"));
            assert_eq!(r.status, 200);
            thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(
            request(addr, "POST", "/finish/r?status=completed").status,
            200
        );
    });
    let mut seen: Vec<u64> = Vec::new();
    let mut last_id = String::new();
    let mut round = 0u32;
    let mut sub = Some(s);
    'outer: loop {
        let mut s = match sub.take() {
            Some(s) => s,
            None => {
                // The id as the client got it (`INCARNATION:SEQ`), as a browser resumes.
                let last = last_id.clone();
                round += 1;
                // Alternate between the header and the query parameter.
                let mut s = if round.is_multiple_of(2) {
                    srv.sub_with("/sub/r", &[("Last-Event-ID", &last)])
                } else {
                    srv.sub(&format!("/sub/r?lastEventId={last}"))
                };
                assert_eq!(s.status, 200);
                s.wait_ok();
                s
            }
        };
        for _ in 0..(37 + round % 50) {
            let Some(e) = s.next() else {
                panic!("stream ended before the terminal event")
            };
            assert_ne!(e.event, "gap", "no gap inside the history");
            seen.push(id(&e));
            last_id.clone_from(&e.last_event_id);
            if e.event == "completed" {
                break 'outer;
            }
            assert_eq!(seq(&e), id(&e));
        }
    }
    publisher.join().unwrap();
    let want: Vec<u64> = (1..=POSTS * PER + 1).collect();
    assert_eq!(seen, want, "no gap, no duplicate across {round} resumes");
    assert!(round >= 10);
}

fn gap_for_an_id_older_than_history(fe: &str) {
    let srv = Server::start(fe, &[("HISTORY", "8"), ("QUEUE", "8")]);
    assert_eq!(srv.post("/pub/g?n=20&size=20").status, 200);
    // Inside the history (13..=20): exactly what follows.
    let mut s = srv.sub_with("/sub/g", &[("Last-Event-ID", "14")]);
    s.wait_ok();
    let replay: Vec<u64> = (0..6).map(|_| id(&s.next().unwrap())).collect();
    assert_eq!(replay, [15, 16, 17, 18, 19, 20]);
    // Older than the history: a gap event first, then the current state and live events.
    let mut old = srv.sub("/sub/g?lastEventId=3");
    old.wait_ok();
    let gap = old.next().unwrap();
    assert_eq!(gap.event, "gap");
    let v: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(v["after"], 3);
    assert_eq!(srv.post("/pub/g?n=1&size=20").status, 200);
    let next = old.next().unwrap();
    assert_eq!((next.event.as_str(), id(&next)), ("message", 21));
    assert_eq!(id(&s.next().unwrap()), 21);
    assert!(srv.stats()["gaps"].as_u64().unwrap() >= 1);
}

fn lifecycle(fe: &str) {
    let srv = Server::start(fe, &[]);
    let mut live = srv.sub("/sub/f");
    live.wait_ok();
    assert_eq!(srv.post("/pub/f?n=5&size=20").status, 200);
    let r = srv.post("/finish/f?status=completed");
    assert_eq!((r.status, r.body.as_str()), (200, "6\n"));
    let events = live.all();
    assert_eq!(
        events.iter().map(id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    let term = events.last().unwrap();
    assert_eq!(term.event, "completed");
    assert!(live.ended, "the body ends after the terminal event");

    // Resuming with the terminal id: nothing new (the id as sent, or its bare number).
    let s = srv.sub_with("/sub/f", &[("Last-Event-ID", &term.last_event_id)]);
    assert_eq!(s.status, 204);
    let s = srv.sub_with("/sub/f", &[("Last-Event-ID", "6")]);
    assert_eq!(s.status, 204);
    let s = srv.sub("/sub/f?lastEventId=6");
    assert_eq!(s.status, 204);
    // Resuming from before it: the rest, then the end.
    let mut s = srv.sub_with("/sub/f", &[("Last-Event-ID", "4")]);
    s.wait_ok();
    assert_eq!(s.all().iter().map(id).collect::<Vec<_>>(), [5, 6]);
    // No Last-Event-ID: the final state, ending with the terminal event, then the end.
    let mut s = srv.sub("/sub/f");
    assert_eq!(s.status, 200);
    s.wait_ok();
    let state = s.all();
    let last = state.last().unwrap();
    assert_eq!((last.event.as_str(), id(last)), ("completed", 6));
    assert!(s.ended);

    let r = srv.post("/pub/f?n=1&size=10");
    assert_eq!(r.status, 409);
    assert!(!r.body.trim().is_empty() && r.body.trim().lines().count() == 1);
    assert_eq!(srv.post("/finish/f?status=failed").status, 409);

    // `failed`, on a topic that nobody subscribed to yet.
    let r = srv.post("/finish/f2?status=failed");
    assert_eq!((r.status, r.body.as_str()), (200, "1\n"));
    let mut s = srv.sub("/sub/f2");
    s.wait_ok();
    let e = s.all();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].event.as_str(), id(&e[0])), ("failed", 1));
}

fn bad_input(fe: &str) {
    let srv = Server::start(fe, &[]);
    let mut bystander = srv.sub("/sub/ok");
    bystander.wait_ok();
    let cases = [
        ("POST", "/pub/b"),
        ("POST", "/pub/b?size=10"),
        ("POST", "/pub/b?n=10"),
        ("POST", "/pub/b?n=abc&size=10"),
        ("POST", "/pub/b?n=10&size=x"),
        ("POST", "/pub/b?n=-1&size=10"),
        ("POST", "/pub/b?n=1.5&size=10"),
        ("POST", "/pub/b?n=10000001&size=10"),
        ("POST", "/pub/b?n=99999999999999999999999&size=10"),
        ("POST", "/pub/b?n=1&size=1048577"),
        ("POST", "/finish/b?status=bogus"),
        ("POST", "/finish/b"),
        ("GET", "/nope"),
        ("GET", "/"),
        ("GET", "/sub/"),
        ("POST", "/pub/"),
        ("GET", "/sub/a/b"),
        ("GET", "/pub/b?n=1&size=1"),
        ("POST", "/sub/b"),
        ("POST", "/stats"),
    ];
    for (method, path) in cases {
        let r = srv.request(method, path);
        assert!(
            (400..500).contains(&r.status),
            "{method} {path}: {} {:?}",
            r.status,
            r.body
        );
        assert!(
            r.body.ends_with('\n') && r.body.matches('\n').count() == 1 && r.body.len() > 1,
            "{method} {path}: not a one-line message: {:?}",
            r.body
        );
        assert!(r.head.contains("content-type: text/plain"), "{}", r.head);
    }
    // The limits themselves are fine.
    assert_eq!(srv.post("/pub/b?n=1&size=1048576").status, 200);
    assert_eq!(srv.post("/pub/b?n=0&size=0").status, 200);
    // Everyone else is still served.
    assert_eq!(srv.post("/pub/ok?n=1&size=10").status, 200);
    assert_eq!(id(&bystander.next().unwrap()), 1);
    assert_eq!(srv.stats()["subscribers"], 1);
}

fn cleanup_within_a_second(fe: &str) {
    let srv = Server::start(fe, &[]);
    let mut subs: Vec<Sub> = (0..5).map(|_| srv.sub("/sub/c")).collect();
    for s in &mut subs {
        s.wait_ok();
    }
    assert_eq!(srv.subscribers(), 5);
    // One of them with unread events in flight.
    assert_eq!(srv.post("/pub/c?n=200&size=100").status, 200);
    drop(subs);
    let t = Instant::now();
    while srv.subscribers() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{} subscribers still counted after 1 s",
            srv.subscribers()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A client socket with a small receive buffer, so that a client that stops reading falls
/// behind the hub quickly.
fn small_buffer_socket(addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.set_recv_buffer_size(4096)?;
            sock.connect(addr).await?.into_std()
        })
        .unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

fn stalled_conflate(fe: &str) {
    stalled(fe, "conflate");
}

fn stalled_drop_oldest(fe: &str) {
    stalled(fe, "drop-oldest");
}

fn stalled_disconnect(fe: &str) {
    stalled(fe, "disconnect");
}

/// One subscriber stops reading while 20 MB are published: the POST is not slowed, the other
/// subscriber gets everything, the server's memory stays bounded, and the stalled one still
/// ends up with the terminal event, never skipping events without a `gap` notice.
fn stalled(fe: &str, policy: &str) {
    const N: u64 = 20_000;
    const SIZE: u64 = 1000;
    let srv = Server::start(fe, &[("POLICY", policy)]);
    let addr = srv.addr;
    let mut stalled = Sub::on(small_buffer_socket(addr), addr, "/sub/s", &[]);
    stalled.wait_ok();
    let mut good = srv.sub("/sub/s");
    good.wait_ok();
    let good = thread::spawn(move || good.read_body_to_end());
    let rss_before = srv.rss_kib();

    let t = Instant::now();
    // Keyed under conflate, so that the stalled client may skip superseded events.
    let key = if policy == "conflate" { "&key=k" } else { "" };
    let r = srv.post(&format!("/pub/s?n={N}&size={SIZE}{key}"));
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(took < POST_BOUND, "POST /pub took {took:?}");

    let grew = srv.rss_kib().saturating_sub(rss_before);
    assert!(
        grew < 16 << 10,
        "server memory grew by {grew} KiB while {} MB were published",
        (N * SIZE) >> 20
    );
    let stats = srv.stats();
    assert!(
        stats["history_bytes"].as_u64().unwrap() <= 4 << 20,
        "{stats}"
    );
    assert_eq!(srv.post("/finish/s?status=completed").status, 200);

    // The subscriber that kept reading has everything (keyed events included: it never fell
    // behind), then the terminal event.
    let events = good.join().unwrap();
    let ids: Vec<u64> = events.iter().map(id).collect();
    assert_eq!(
        ids,
        (1..=N + 1).collect::<Vec<_>>(),
        "the reading subscriber lost events"
    );
    assert_eq!(events.last().unwrap().event, "completed");

    // The stalled one reads again: increasing ids, any skip announced by a gap, and the
    // terminal event, on this stream or after reconnecting with its Last-Event-ID.
    let mut t = Tracker {
        policy,
        ..Tracker::default()
    };
    t.check(stalled.all());
    let mut reconnects = 0;
    while !t.terminal {
        reconnects += 1;
        assert!(
            reconnects <= 3,
            "no terminal event after {reconnects} reconnects"
        );
        let mut s = srv.sub_with("/sub/s", &[("Last-Event-ID", &t.last.to_string())]);
        assert_eq!(s.status, 200);
        s.wait_ok();
        t.check(s.all());
    }
    assert_eq!(t.last, N + 1);
    assert!(
        t.gaps >= 1,
        "the stalled subscriber missed events without a gap ({policy})"
    );
    eprintln!(
        "{fe} {policy}: POST {took:?}, rss +{grew} KiB, stalled: {} gaps, {reconnects} reconnects",
        t.gaps
    );
    if policy == "disconnect" {
        assert!(reconnects >= 1, "disconnect ends the slow stream");
    }
    let t = Instant::now();
    while srv.subscribers() > 0 {
        assert!(t.elapsed() < Duration::from_secs(1));
        thread::sleep(Duration::from_millis(10));
    }
}

/// What a subscriber that fell behind has seen.
#[derive(Default)]
struct Tracker<'a> {
    policy: &'a str,
    last: u64,
    gaps: usize,
    gap_pending: bool,
    terminal: bool,
}

impl Tracker<'_> {
    fn check(&mut self, events: Vec<DecodedEvent>) {
        for e in events {
            if e.event == "gap" {
                self.gaps += 1;
                self.gap_pending = true;
                continue;
            }
            let k = id(&e);
            let last = self.last;
            assert!(k > last, "id {k} after {last}");
            assert!(
                k == last + 1 || self.gap_pending,
                "skipped from {last} to {k} without a gap event ({})",
                self.policy
            );
            self.gap_pending = false;
            self.last = k;
            self.terminal |= e.event == "completed";
        }
    }
}

/// In-process (`spawn_thread`), with a short heartbeat: an idle stream gets `:` comments.
#[test]
fn heartbeats_and_cors_in_process() {
    use sse_bench_server::{spawn_thread, Config, Frontend};
    for fe in [
        Frontend::Raw,
        Frontend::Hyper,
        Frontend::Axum,
        Frontend::Actix,
    ] {
        let config = Config::default()
            .frontend(fe)
            .heartbeat(Duration::from_millis(200));
        let addr = spawn_thread(config, 0).unwrap();
        let mut s = Sub::open(addr, "/sub/hb", &[]);
        assert!(
            s.head.contains("access-control-allow-origin: *"),
            "{}",
            s.head
        );
        s.wait_ok();
        let t = Instant::now();
        while !s.start.windows(3).any(|w| w == b"\n:\n") {
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "no heartbeat ({fe:?})"
            );
            assert!(s.read_some());
        }
        let r = request(addr, "OPTIONS", "/pub/hb");
        assert_eq!(r.status, 204);
        assert!(
            r.head.contains("access-control-allow-methods"),
            "{}",
            r.head
        );
        let r = request(addr, "POST", "/pub/hb?n=1&size=1");
        assert!(
            r.head.contains("access-control-allow-origin: *"),
            "{}",
            r.head
        );
    }
}

/// `BACKPLANE` (part 3) must be a Redis URL; the cluster itself is tested in `bench_cluster.rs`.
#[test]
fn backplane_that_is_not_a_redis_url_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-server"))
        .env("PORT", "0")
        .env("BACKPLANE", "http://127.0.0.1:6379")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected redis://HOST:PORT"), "{err}");
}

#[test]
fn bad_environment_is_refused() {
    for (k, v) in [
        ("POLICY", "lossy"),
        ("QUEUE", "0"),
        ("HISTORY", "x"),
        ("FRONTEND", "h3"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bench-server"))
            .env("PORT", "0")
            .env_remove("BACKPLANE")
            .env(k, v)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{k}={v} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(k) || k == "POLICY");
    }
}

/// Through a real HTTP client: reqwest (hyper's client), with `DecodeStream`.
#[tokio::test]
async fn reqwest_client() {
    use futures_util::StreamExt;
    for fe in ["raw", "hyper", "axum", "actix"] {
        let srv = Server::start(fe, &[]);
        let base = format!("http://{}", srv.addr);
        let client = reqwest::Client::new();
        let resp = client
            .get(format!("{base}/sub/q"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut body = resp.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        assert!(first.starts_with(b": ok\n\n"), "{fe}: {first:?}");
        let r = client
            .post(format!("{base}/pub/q?n=50&size=64"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "50\n");
        let rest = futures_util::stream::iter([Ok::<_, reqwest::Error>(first)]).chain(body);
        let mut events = sse_core::DecodeStream::new(rest);
        for k in 1..=50u64 {
            let e = events.next().await.unwrap().unwrap();
            assert_eq!(id(&e), k);
            assert_eq!(seq(&e), k);
        }
        // Keep-alive: the same client (and pooled connection) asks again.
        let stats: serde_json::Value = client
            .get(format!("{base}/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["subscribers"], 1, "{fe}");
        assert_eq!(stats["frontend"], fe);
    }
}
