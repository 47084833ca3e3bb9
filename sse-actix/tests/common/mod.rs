//! A real actix server on 127.0.0.1:0 and a reqwest client that decodes the event stream.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::middleware::{Compress, Condition};
use actix_web::{http::header::HeaderValue, web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use sse_actix::{subscribe, LastEventId, SseResponse, SubscribeRejection};
use sse_core::hub::SubscribeOptions;
use sse_core::{DecodedEvent, Decoder, Event, Hub};

/// Generous bound for anything that should happen "at once" on loopback.
pub const PROMPT: Duration = Duration::from_secs(2);

pub struct Server {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub task: actix_web::rt::task::JoinHandle<io::Result<()>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server (not gracefully) and waits, bounded.
    pub async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.handle.stop(false)).await;
    }
}

/// `GET /events/{topic}`: subscribe with `Last-Event-ID` and the user key of `x-user`.
async fn events(
    req: HttpRequest,
    hub: web::Data<Hub>,
    topic: web::Path<String>,
    last: LastEventId,
) -> Result<SseResponse, SubscribeRejection> {
    let mut opts = SubscribeOptions::topic(topic.into_inner()).last_event_id(last.0);
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        opts = opts.user(user);
    }
    subscribe(&hub, opts).await
}

/// `GET /heartbeat/{topic}`: like `/events`, with 100 ms heartbeats.
async fn heartbeat(
    hub: web::Data<Hub>,
    topic: web::Path<String>,
) -> Result<SseResponse, SubscribeRejection> {
    Ok(subscribe(&hub, topic.into_inner())
        .await?
        .heartbeat(Some(Duration::from_millis(100))))
}

/// `GET /prefixed/{topic}`: like `/events`, starting with this connection's own frame.
async fn prefixed(
    hub: web::Data<Hub>,
    topic: web::Path<String>,
    last: LastEventId,
) -> Result<SseResponse, SubscribeRejection> {
    let topic = topic.into_inner();
    let hello = Event::new()
        .event("initial_status")
        .data(format!("hello {topic}"))
        .encode()
        .unwrap();
    let opts = SubscribeOptions::topic(topic).last_event_id(last.0);
    Ok(subscribe(&hub, opts).await?.prefix([hello]))
}

/// `GET /stream`: a user stream with a `retry:` first frame and a custom cache-control.
async fn user_stream() -> impl actix_web::Responder {
    let items: Vec<Result<Event<'static>, String>> = vec![
        Ok(Event::new().event("greeting").data("hello")),
        Err("boom".to_owned()),
        Ok(Event::new().id("x-2").data("world")),
    ];
    SseResponse::from_stream(futures_util::stream::iter(items))
        .retry(Duration::from_secs(2))
        .cache_control(HeaderValue::from_static("no-store"))
}

/// `GET /plain`: a compressible non-SSE body (to show that `Compress` is active).
async fn plain() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("compress me ".repeat(200))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events/{topic}", web::get().to(events))
        .route("/heartbeat/{topic}", web::get().to(heartbeat))
        .route("/prefixed/{topic}", web::get().to(prefixed))
        .route("/stream", web::get().to(user_stream))
        .route("/plain", web::get().to(plain));
}

/// How to set up a test server.
#[derive(Default)]
pub struct Setup {
    /// Wrap the app in `Compress`.
    pub compress: bool,
    /// Stop gracefully through [`sse_actix::shutdown_signal`] when this fires.
    pub signal: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Keep actix's default `h1_allow_half_closed(true)` instead of the recommended `false`.
    pub allow_half_closed: bool,
    /// Seconds a graceful stop waits for open connections (30 if `None`).
    pub shutdown_timeout: Option<u64>,
}

/// Starts a server on the current actix runtime (one worker thread).
pub fn start(hub: &Hub, compress: bool) -> Server {
    start_with(
        hub,
        Setup {
            compress,
            ..Setup::default()
        },
    )
}

/// Like [`start`], set up as `setup` says.
pub fn start_with(hub: &Hub, setup: Setup) -> Server {
    let Setup {
        compress,
        signal,
        allow_half_closed,
        shutdown_timeout,
    } = setup;
    let data = web::Data::new(hub.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(Condition::new(compress, Compress::default()))
            .app_data(data.clone())
            .configure(routes)
    })
    .workers(1)
    .h1_allow_half_closed(allow_half_closed)
    .shutdown_timeout(shutdown_timeout.unwrap_or(30));
    let server = match signal {
        Some(rx) => server.shutdown_signal(sse_actix::shutdown_signal(hub.clone(), async move {
            let _ = rx.await;
        })),
        None => server.disable_signals(),
    };
    let server = server.bind(("127.0.0.1", 0)).unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    let task = actix_web::rt::spawn(server);
    Server { addr, handle, task }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Sends `GET url` with `headers`, bounded.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    tokio::time::timeout(PROMPT, req.send())
        .await
        .expect("response head in time")
        .unwrap()
}

/// An event-stream response being read and decoded.
pub struct Reader {
    pub resp: reqwest::Response,
    pub dec: Decoder,
    /// Body chunks received.
    pub chunks: Vec<Bytes>,
    pub ended: bool,
}

impl Reader {
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), 200);
        Reader {
            resp,
            dec: Decoder::new(),
            chunks: Vec::new(),
            ended: false,
        }
    }

    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Self {
        Reader::new(get(url, headers).await)
    }

    /// The next body chunk (`None` at the end); panics if none arrives `within`.
    pub async fn chunk(&mut self, within: Duration) -> Option<Bytes> {
        let c = tokio::time::timeout(within, self.resp.chunk())
            .await
            .expect("a chunk in time")
            .unwrap();
        match &c {
            Some(b) => {
                self.dec.feed(b);
                self.chunks.push(b.clone());
            }
            None => self.ended = true,
        }
        c
    }

    /// Reads until `n` events are decoded; panics if they do not all arrive `within`.
    pub async fn events(&mut self, n: usize, within: Duration) -> Vec<DecodedEvent> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        loop {
            while let Some(e) = self.dec.next_event() {
                out.push(e);
            }
            if out.len() >= n {
                return out;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "only {} of {n} events in time", out.len());
            if self.chunk(left).await.is_none() {
                panic!("stream ended after {} of {n} events", out.len());
            }
        }
    }

    /// Reads to the end of the body (bounded); returns the events decoded on the way.
    pub async fn read_to_end(&mut self, within: Duration) -> Vec<DecodedEvent> {
        let deadline = Instant::now() + within;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "body did not end in time");
            self.chunk(left).await;
        }
        std::iter::from_fn(|| self.dec.next_event()).collect()
    }

    /// Everything received so far.
    pub fn raw(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// `(id, data)` of each event.
pub fn ids_data(evs: &[DecodedEvent]) -> Vec<(String, String)> {
    evs.iter()
        .map(|e| (e.last_event_id.clone(), e.data.clone()))
        .collect()
}

/// Polls `cond` every 10 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
