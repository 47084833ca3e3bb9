#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The actix-web settings the crate docs recommend, over real sockets: clients that send a
//! request head one byte a second are answered 408 and closed within
//! `client_request_timeout`, while a normal request and an open event stream (heartbeats on)
//! carry on past it, and past `keep_alive`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use sse_actix::{subscribe, SseResponse, SubscribeRejection};
use sse_core::{Event, Hub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The head bound (and keep-alive) of the server under test.
const BOUND: Duration = Duration::from_secs(2);
/// Slack on top of the bound (timer granularity, scheduling on a loaded machine).
const SLACK: Duration = Duration::from_millis(1500);

async fn events(
    hub: web::Data<Hub>,
    topic: web::Path<String>,
) -> Result<SseResponse, SubscribeRejection> {
    subscribe(&hub, topic.into_inner()).await
}

fn start(hub: &Hub) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let data = web::Data::new(hub.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/events/{topic}", web::get().to(events))
            .route(
                "/",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            )
    })
    .workers(1)
    .disable_signals()
    .h1_allow_half_closed(false)
    .client_request_timeout(BOUND)
    .keep_alive(BOUND)
    .max_connections(1_000)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle)
}

/// How a connection that never completes its request head ended.
#[derive(Debug)]
struct Closed {
    after: Duration,
    /// What the server sent before closing.
    sent: Vec<u8>,
}

/// Connects, sends `GET / HTTP/1.1\r\nHo`, then one more byte of a never-ending header every
/// second, until the server closes the connection (at most `limit`; panics after that).
async fn slow_head(addr: SocketAddr, limit: Duration) -> Closed {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
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
        let i = usize::try_from(i).unwrap();
        let byte = more.get(i).copied().unwrap_or(b'a');
        if s.write_all(&[byte]).await.is_err() {
            return Closed {
                after: start.elapsed(),
                sent,
            };
        }
    }
    panic!("the server kept a connection without a request head open for {limit:?}");
}

#[actix_web::test]
async fn slow_heads_get_a_408_within_the_bound_while_requests_and_streams_carry_on() {
    let hub = Hub::builder()
        .lazy_topics(true)
        .heartbeat(Duration::from_millis(200))
        .build();
    let (addr, handle) = start(&hub);
    let mut stream = sse_testkit::sse::SseClient::new(
        sse_testkit::sse::get(&format!("http://{addr}/events/live"), &[]).await,
    );
    assert_eq!(stream.body.status(), 200);

    let limit = BOUND + SLACK + Duration::from_secs(2);
    let slow: Vec<_> = (0..4)
        .map(|_| actix_web::rt::spawn(slow_head(addr, limit)))
        .collect();

    // The stream carries on past the head bound and the keep-alive.
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
        let sent = String::from_utf8_lossy(&closed.sent);
        assert!(sent.starts_with("HTTP/1.1 408"), "{sent:?}");
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
    handle.stop(false).await;
}
