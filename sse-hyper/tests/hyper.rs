#![allow(clippy::unwrap_used)]
//! What only hyper has: HTTP/2 (many streams on one connection, disconnects and shutdown over
//! h2) and `serve`'s shutdown deadline, on loopback; reqwest as the HTTP/1.1 client, hyper's
//! HTTP/2 client (prior knowledge). The behaviour every adapter shares is in `conformance.rs`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_core::http::{Negotiated, StreamHeaders};
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Frame, Hub, SseBody};
use sse_hyper::SseResponseBody;
use sse_testkit::sse::{data, header, ids, wait_for, ChunkSource, SseClient};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// The service under test

static JOBS: AtomicU64 = AtomicU64::new(0);

async fn handle(hub: Hub, req: Request<Incoming>) -> Result<Response<SseResponseBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET {
        if let Some(topic) = path.strip_prefix("/events/") {
            let mut opts =
                SubscribeOptions::topic(topic).last_event_id(sse_hyper::last_event_id(&req));
            if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
                opts = opts.user(user);
            }
            return Ok(sse_hyper::subscribe(&hub, opts).await);
        }
        if let Some(topic) = path.strip_prefix("/prefixed/") {
            let hello = Event::new()
                .event("initial_status")
                .data(format!("hello {topic}"))
                .encode()
                .unwrap();
            let opts = SubscribeOptions::topic(topic).last_event_id(sse_hyper::last_event_id(&req));
            return Ok(sse_hyper::subscribe(&hub, opts)
                .await
                .map(|b| b.prefix([hello])));
        }
        if let Some(topic) = path.strip_prefix("/status/") {
            if sse_hyper::negotiate(&req) == Negotiated::EventStream {
                return Ok(sse_hyper::subscribe(&hub, topic).await);
            }
            let Some(t) = hub.get_topic(topic) else {
                return Ok(sse_hyper::status(StatusCode::NOT_FOUND));
            };
            let json = serde_json::json!({ "last_seq": t.last_seq() }).to_string();
            let mut res = Response::new(SseResponseBody::full(json));
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return Ok(res);
        }
    }
    if req.method() == Method::POST && path == "/upload" {
        // The seed use case: the upload's response streams its job.
        let size = req.into_body().collect().await.unwrap().to_bytes().len();
        let id = format!("upload-{}", JOBS.fetch_add(1, Ordering::Relaxed));
        let job = hub.job(&id).unwrap();
        let sub = hub.subscribe(id.as_str()).await.unwrap();
        tokio::spawn(async move {
            for page in 1..=3 {
                job.progress(&serde_json::json!({ "page": page, "bytes": size }))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            job.complete(Event::new().event("completed").data("done"))
                .await
                .unwrap();
        });
        return Ok(sse_hyper::response(sub).map(Into::into));
    }
    Ok(sse_hyper::status(StatusCode::NOT_FOUND))
}

// ---------------------------------------------------------------------------------------------
// Harness

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<bool>,
}

async fn listen() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn start(hub: &Hub, deadline: Duration) -> Server {
    let (listener, addr) = listen().await;
    let (stop, rx) = oneshot::channel::<()>();
    let svc = service_fn({
        let hub = hub.clone();
        move |req| handle(hub.clone(), req)
    });
    let signal = async {
        let _ = rx.await;
    };
    let task = tokio::spawn(sse_hyper::serve(
        listener,
        svc,
        hub.clone(),
        signal,
        deadline,
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

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        sse_testkit::sse::get(&self.url(path), headers).await
    }

    async fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Client {
        let resp = self.get(path, headers).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        Client::new(Body::H1(resp))
    }

    /// An HTTP/2 connection (prior knowledge).
    async fn h2(&self) -> http2::SendRequest<Empty<Bytes>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        send
    }

    async fn stop(mut self) -> bool {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server exits within its deadline")
            .unwrap()
    }
}

async fn h2_get(send: &mut http2::SendRequest<Empty<Bytes>>, path: &str) -> Response<Incoming> {
    let req = Request::get(format!("http://localhost{path}"))
        .body(Empty::new())
        .unwrap();
    send.ready().await.unwrap();
    let fut = send.send_request(req);
    tokio::time::timeout(WAIT, fut).await.unwrap().unwrap()
}

enum Body {
    H1(reqwest::Response),
    H2(Incoming),
}

/// A streaming response and its decoder.
type Client = SseClient<Body>;

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

impl Body {
    /// The next chunk, with a transport error as `Err` (for a body cut by the server).
    async fn next_bytes_result(&mut self) -> Result<Option<Bytes>, ()> {
        match self {
            Body::H1(r) => r.chunk().await.map_err(|_| ()),
            Body::H2(_) => Ok(self.next_chunk().await),
        }
    }
}

fn h2_client(resp: Response<Incoming>) -> Client {
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    Client::new(Body::H2(resp.into_body()))
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_job_streams_over_one_h2_connection() {
    const JOBS: usize = 20;
    let hub = Hub::new();
    let jobs: Vec<_> = (0..JOBS)
        .map(|i| hub.job(&format!("job-{i}")).unwrap())
        .collect();
    let srv = start(&hub, WAIT).await;
    let mut send = srv.h2().await;
    let mut clients = Vec::new();
    for i in 0..JOBS {
        let resp = h2_get(&mut send, &format!("/events/job-{i}")).await;
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let mut c = h2_client(resp);
        assert_eq!(c.chunk().await.unwrap(), b": ok\n\n");
        clients.push(c);
    }
    assert_eq!(hub.subscriber_count(), JOBS);
    // Interleaved progress on every job, then each completes.
    for step in 1..=5 {
        for (i, job) in jobs.iter().enumerate() {
            job.progress(&serde_json::json!({ "job": i, "step": step }))
                .await
                .unwrap();
        }
    }
    for (i, job) in jobs.into_iter().enumerate() {
        job.complete(Event::new().event("completed").data(i.to_string()))
            .await
            .unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let evs = c.rest().await;
        assert!(c.ended, "job {i}");
        let topic = hub.get_topic(&format!("job-{i}")).unwrap();
        let want: Vec<String> = (1..=6).map(|n| topic.event_id(n)).collect();
        assert_eq!(ids(&evs), want, "job {i}");
        for (step, e) in evs[..5].iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["job"], i);
            assert_eq!(v["step"], step + 1);
        }
        assert_eq!(evs[5].event, "completed");
        assert_eq!(evs[5].data, i.to_string());
    }
    wait_for("no subscriber left", || hub.subscriber_count() == 0).await;
    // The connection is still usable after all those streams ended.
    let r = h2_get(&mut send, "/status/job-0").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_releases_subscription_h1_and_h2() {
    let hub = Hub::new();
    let t = hub.topic("d").unwrap();
    let srv = start(&hub, WAIT).await;
    // HTTP/1.1: the client drops the response, the connection closes.
    let mut c = srv.stream("/events/d", &[]).await;
    c.chunk().await.unwrap();
    assert_eq!(hub.subscriber_count(), 1);
    drop(c);
    wait_for("h1 subscriber released", || hub.subscriber_count() == 0).await;
    // HTTP/2: the client drops one stream (RST_STREAM); the other stream and the connection
    // stay.
    let mut send = srv.h2().await;
    let mut a = h2_client(h2_get(&mut send, "/events/d").await);
    let mut b = h2_client(h2_get(&mut send, "/events/d").await);
    a.chunk().await.unwrap();
    b.chunk().await.unwrap();
    assert_eq!(hub.subscriber_count(), 2);
    drop(a);
    wait_for("h2 subscriber released", || hub.subscriber_count() == 1).await;
    t.publish(data(7)).await.unwrap();
    assert_eq!(b.event().await.unwrap().data, "7");
    drop(b);
    drop(send);
    wait_for("no subscriber left", || hub.subscriber_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_h1_and_h2_streams() {
    let hub = Hub::new();
    hub.topic("s").unwrap();
    let srv = start(&hub, WAIT).await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut c = srv.stream("/events/s", &[]).await;
        c.chunk().await.unwrap();
        clients.push(c);
    }
    let mut send = srv.h2().await;
    for _ in 0..3 {
        let mut c = h2_client(h2_get(&mut send, "/events/s").await);
        c.chunk().await.unwrap();
        clients.push(c);
    }
    assert_eq!(hub.subscriber_count(), 5);
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(srv.stop());
    for c in &mut clients {
        assert!(c.rest().await.is_empty());
        assert!(c.raw().contains(": server shutting down"), "{:?}", c.raw());
        assert!(c.ended);
    }
    assert!(stopping.await.unwrap(), "every connection finished in time");
    assert!(started.elapsed() < WAIT);
    assert_eq!(hub.subscriber_count(), 0);
}

/// A user stream that never ends: options apply, and shutdown closes it at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stream_options_and_shutdown_deadline() {
    let hub = Hub::new();
    let (listener, addr) = listen().await;
    let svc = service_fn(|_req: Request<Incoming>| async {
        let body = SseBody::from_stream(futures_util::stream::pending::<Event<'static>>())
            .first_frame(Some(Frame::retry(Duration::from_millis(1500))))
            .heartbeat(Some(Duration::from_millis(50)));
        let headers =
            StreamHeaders::default().cache_control(http::HeaderValue::from_static("no-store"));
        Ok::<_, Infallible>(sse_hyper::body_response(body, &headers))
    });
    let (stop, rx) = oneshot::channel::<()>();
    let deadline = Duration::from_millis(300);
    let task = tokio::spawn(sse_hyper::serve(
        listener,
        svc,
        hub.clone(),
        async {
            let _ = rx.await;
        },
        deadline,
    ));
    let resp = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    let mut c = Client::new(Body::H1(resp));
    c.heartbeats(3).await;
    assert_eq!(c.dec.retry(), Some(Duration::from_millis(1500)));
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    let clean = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    // The hub cannot end this stream: the connection is closed at the deadline instead.
    assert!(!clean);
    assert!(started.elapsed() >= deadline);
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    // The body is cut (not ended cleanly) once the connection is closed.
    let mut ended = false;
    for _ in 0..100 {
        match tokio::time::timeout(WAIT, c.body.next_bytes_result())
            .await
            .unwrap()
        {
            Ok(Some(_)) => continue,
            Ok(None) | Err(()) => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended);
}
