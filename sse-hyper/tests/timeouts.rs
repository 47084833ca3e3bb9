#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `sse_hyper::serve_with`'s timeouts and connection cap, over real sockets: clients that send
//! a request head one byte a second (or nothing at all) are closed within the bound, while a
//! normal request and open event streams (HTTP/1.1 and HTTP/2, heartbeats on) carry on; and
//! connections beyond the cap are refused.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_core::{Event, Hub};
use sse_hyper::{Refusal, ServeOptions, SseResponseBody};
use sse_testkit::sse::{ChunkSource, SseClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The head bound the servers under test use.
const BOUND: Duration = Duration::from_secs(2);
/// Slack on top of the bound (timer granularity, scheduling on a loaded machine).
const SLACK: Duration = Duration::from_millis(1500);

async fn handle(hub: Hub, req: Request<Incoming>) -> Result<Response<SseResponseBody>, Infallible> {
    if let Some(topic) = req.uri().path().strip_prefix("/events/") {
        return Ok(sse_hyper::subscribe(&hub, topic).await);
    }
    Ok(Response::new(SseResponseBody::full("ok")))
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<bool>,
}

async fn start(hub: &Hub, options: ServeOptions) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let svc = service_fn({
        let hub = hub.clone();
        move |req| handle(hub.clone(), req)
    });
    let signal = async {
        let _ = rx.await;
    };
    let task = tokio::spawn(sse_hyper::serve_with(
        listener,
        svc,
        hub.clone(),
        signal,
        options.shutdown_deadline(Duration::from_secs(1)),
    ));
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server exits")
            .unwrap();
    }
}

fn hub() -> Hub {
    Hub::builder()
        .lazy_topics(true)
        .heartbeat(Duration::from_millis(200))
        .build()
}

/// How a connection that never completes its request head ended.
#[derive(Debug)]
struct Closed {
    after: Duration,
    /// What the server sent before closing (an error response, or nothing).
    sent: Vec<u8>,
}

/// Connects, sends `GET / HTTP/1.1\r\nHo`, then one more byte of a never-ending header every
/// second, until the server closes the connection (at most `limit`; panics after that).
async fn slow_head(addr: SocketAddr, limit: Duration) -> Closed {
    drip(addr, b"GET / HTTP/1.1\r\nHo", limit).await
}

/// Connects and sends nothing at all, until the server closes the connection (at most `limit`).
async fn silent(addr: SocketAddr, limit: Duration) -> Closed {
    drip(addr, b"", limit).await
}

async fn drip(addr: SocketAddr, first: &[u8], limit: Duration) -> Closed {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(first).await.unwrap();
    let more = b"st: 127.0.0.1\r\nX-Slow: ";
    let mut sent = Vec::new();
    let mut buf = [0u8; 1024];
    for i in 0..limit.as_secs() + 1 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    return Closed {
                        after: start.elapsed(),
                        sent,
                    }
                }
                Ok(Ok(n)) => sent.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        if !first.is_empty() {
            let i = usize::try_from(i).unwrap();
            let byte = more.get(i).copied().unwrap_or(b'a');
            if s.write_all(&[byte]).await.is_err() {
                return Closed {
                    after: start.elapsed(),
                    sent,
                };
            }
        }
    }
    panic!("the server kept a connection without a request head open for {limit:?}");
}

/// An HTTP/2 connection (prior knowledge).
async fn h2(addr: SocketAddr) -> http2::SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

enum Body {
    H1(reqwest::Response),
    H2(Incoming),
}

impl ChunkSource for Body {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        match self {
            Body::H1(r) => r.chunk().await.unwrap(),
            Body::H2(b) => {
                for _ in 0..100 {
                    match b.frame().await {
                        None => return None,
                        Some(f) => {
                            if let Ok(d) = f.unwrap().into_data() {
                                return Some(d);
                            }
                        }
                    }
                }
                panic!("100 frames without data");
            }
        }
    }
}

/// Reads `stream` for `span`, and returns how many heartbeats (`:` comments) came; panics if
/// the stream ends or stalls (no chunk for 2 s).
async fn heartbeats_for(stream: &mut SseClient<Body>, span: Duration) -> usize {
    let until = Instant::now() + span;
    let mut n = 0;
    for _ in 0..10_000 {
        if Instant::now() >= until {
            return n;
        }
        let chunk = stream.chunk().await.expect("the stream is still open");
        n += String::from_utf8_lossy(&chunk).matches(":\n\n").count();
    }
    panic!("10 000 chunks in {span:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_closed_within_the_bound_while_requests_and_streams_carry_on() {
    let hub = hub();
    let options = ServeOptions::default().header_read_timeout(Some(BOUND));
    let server = start(&hub, options).await;

    // Open streams first, on HTTP/1.1 and HTTP/2.
    let resp = sse_testkit::sse::get(&server.url("/events/live"), &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut h1 = SseClient::new(Body::H1(resp));
    let mut send = h2(server.addr).await;
    let req = Request::get("http://localhost/events/live")
        .body(Empty::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(2), send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut h2_stream = SseClient::new(Body::H2(resp.into_body()));

    let limit = BOUND + SLACK + Duration::from_secs(2);
    let mut slow: Vec<JoinHandle<Closed>> = (0..4)
        .map(|_| tokio::spawn(slow_head(server.addr, limit)))
        .collect();
    slow.push(tokio::spawn(silent(server.addr, limit)));

    // While they drip, the streams carry on past the bound.
    let span = BOUND + SLACK;
    let (a, b) = tokio::join!(
        heartbeats_for(&mut h1, span),
        heartbeats_for(&mut h2_stream, span)
    );
    assert!(a >= 5, "HTTP/1.1 stream: {a} heartbeats in {span:?}");
    assert!(b >= 5, "HTTP/2 stream: {b} heartbeats in {span:?}");

    for task in slow {
        let closed = task.await.unwrap();
        assert!(
            closed.after >= BOUND - Duration::from_millis(100) && closed.after <= BOUND + SLACK,
            "closed after {:?} (bound {BOUND:?}): {:?}",
            closed.after,
            String::from_utf8_lossy(&closed.sent)
        );
    }

    // A normal request, and an event on both streams.
    let ok = sse_testkit::sse::get(&server.url("/"), &[]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "ok");
    hub.publish("live", Event::new().data("still here"))
        .await
        .unwrap();
    for stream in [&mut h1, &mut h2_stream] {
        let ev = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let ev = stream.event().await.expect("an event");
                if ev.event == "message" {
                    return ev;
                }
            }
        })
        .await
        .expect("the event in time");
        assert_eq!(ev.data, "still here");
    }
    drop((h1, h2_stream, send));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_that_starts_a_second_head_slowly_is_closed() {
    let hub = hub();
    let server = start(
        &hub,
        ServeOptions::default().header_read_timeout(Some(BOUND)),
    )
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let until = Instant::now() + Duration::from_secs(2);
    while !got.ends_with(b"ok") && Instant::now() < until {
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    // The second request's head, one byte a second.
    let start = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let mut closed = None;
    for byte in b"st: 127.0.0.1\r\n".iter().cycle().take(8) {
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                closed = Some(start.elapsed());
                break;
            }
            Ok(Ok(n)) => panic!("unexpected bytes: {:?}", &buf[..n]),
            Err(_) => {}
        }
        if s.write_all(&[*byte]).await.is_err() {
            closed = Some(start.elapsed());
            break;
        }
    }
    let closed = closed.expect("the connection was closed");
    assert!(closed <= BOUND + SLACK, "closed after {closed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once_and_a_freed_slot_is_served_again() {
    let hub = hub();
    let options = ServeOptions::default().max_connections(Some(2));
    let server = start(&hub, options).await;
    let first = sse_testkit::sse::get(&server.url("/events/a"), &[]).await;
    let second = sse_testkit::sse::get(&server.url("/events/b"), &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);

    // The third is closed before anything is read.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));

    // The open streams are untouched.
    let mut stream = SseClient::new(Body::H1(first));
    assert!(heartbeats_for(&mut stream, Duration::from_millis(600)).await >= 2);

    // A closed stream frees its slot.
    drop(second);
    let until = Instant::now() + Duration::from_secs(5);
    let served = loop {
        let r = reqwest::Client::new()
            .get(server.url("/"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        match r {
            Ok(r) => break r,
            Err(_) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no slot freed: {e}"),
        }
    };
    assert_eq!(served.status(), StatusCode::OK);
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_a_503_with_retry_after() {
    let hub = hub();
    let options =
        ServeOptions::default()
            .max_connections(Some(1))
            .refusal(Refusal::ServiceUnavailable {
                retry_after: Duration::from_secs(3),
            });
    let server = start(&hub, options).await;
    let open = sse_testkit::sse::get(&server.url("/events/a"), &[]).await;
    assert_eq!(open.status(), StatusCode::OK);

    let refused = sse_testkit::sse::get(&server.url("/events/b"), &[]).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sse_testkit::sse::header(&refused, "retry-after"), Some("3"));
    assert_eq!(
        refused.text().await.unwrap(),
        "too many connections, retry later\n"
    );

    // The open stream carries on.
    let mut stream = SseClient::new(Body::H1(open));
    assert!(heartbeats_for(&mut stream, Duration::from_millis(600)).await >= 2);
    drop(stream);
    server.stop().await;
}
