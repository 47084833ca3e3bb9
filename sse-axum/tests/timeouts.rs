#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The server setup the crate docs recommend for axum (`sse_hyper::serve_with` over the
//! router), over real sockets: clients that send a request head one byte a second, or nothing,
//! are closed within the bound, while a normal request and an open event stream (heartbeats
//! on) carry on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use hyper_util::service::TowerToHyperService;
use sse_axum::{SseResponse, SubscribeRejection};
use sse_core::{Event, Hub};
use sse_hyper::ServeOptions;
use sse_testkit::sse::SseClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The head bound of the server under test.
const BOUND: Duration = Duration::from_secs(2);
/// Slack on top of the bound (timer granularity, scheduling on a loaded machine).
const SLACK: Duration = Duration::from_millis(1500);

async fn events(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
) -> Result<SseResponse, SubscribeRejection> {
    sse_axum::subscribe(&hub, topic).await
}

/// How a connection that never completes its request head ended.
#[derive(Debug)]
struct Closed {
    after: Duration,
}

/// Connects, sends `first`, then (if `first` is not empty) one more byte of a never-ending
/// header every second, until the server closes the connection (at most `limit`).
async fn drip(addr: SocketAddr, first: &'static [u8], limit: Duration) -> Closed {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(first).await.unwrap();
    let more = b"st: 127.0.0.1\r\nX-Slow: ";
    let mut buf = [0u8; 1024];
    for i in 0..limit.as_secs() + 1 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    return Closed {
                        after: start.elapsed(),
                    }
                }
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
        if !first.is_empty() {
            let i = usize::try_from(i).unwrap();
            let byte = more.get(i).copied().unwrap_or(b'a');
            if s.write_all(&[byte]).await.is_err() {
                return Closed {
                    after: start.elapsed(),
                };
            }
        }
    }
    panic!("the server kept a connection without a request head open for {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_closed_within_the_bound_while_requests_and_streams_carry_on() {
    let hub = Hub::builder()
        .lazy_topics(true)
        .heartbeat(Duration::from_millis(200))
        .build();
    let app = Router::new()
        .route("/events/{topic}", get(events))
        .route("/", get(|| async { "ok" }))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(sse_hyper::serve_with(
        listener,
        TowerToHyperService::new(app),
        hub.clone(),
        async {
            let _ = rx.await;
        },
        ServeOptions::default()
            .header_read_timeout(Some(BOUND))
            .shutdown_deadline(Duration::from_secs(1)),
    ));

    let resp = sse_testkit::sse::get(&format!("http://{addr}/events/live"), &[]).await;
    assert_eq!(resp.status(), 200);
    let mut stream = SseClient::new(resp);

    let limit = BOUND + SLACK + Duration::from_secs(2);
    let mut slow: Vec<_> = (0..4)
        .map(|_| tokio::spawn(drip(addr, b"GET / HTTP/1.1\r\nHo", limit)))
        .collect();
    slow.push(tokio::spawn(drip(addr, b"", limit)));

    let until = Instant::now() + BOUND + SLACK;
    let mut heartbeats = 0;
    for _ in 0..10_000 {
        if Instant::now() >= until {
            break;
        }
        let chunk = stream.chunk().await.expect("the stream is still open");
        heartbeats += String::from_utf8_lossy(&chunk).matches(":\n\n").count();
    }
    assert!(heartbeats >= 5, "{heartbeats} heartbeats");

    for task in slow {
        let closed = task.await.unwrap();
        assert!(
            closed.after >= BOUND - Duration::from_millis(100) && closed.after <= BOUND + SLACK,
            "closed after {:?} (bound {BOUND:?})",
            closed.after
        );
    }

    let ok = sse_testkit::sse::get(&format!("http://{addr}/"), &[]).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok");
    hub.publish("live", Event::new().data("still here"))
        .await
        .unwrap();
    let ev = loop {
        let ev = stream.event().await.expect("an event");
        if ev.event == "message" {
            break ev;
        }
    };
    assert_eq!(ev.data, "still here");
    drop(stream);
    stop.send(()).unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server exits")
        .unwrap());
}
