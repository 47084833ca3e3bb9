//! The fan-out bench and conformance server (`PROTOCOL.md` in this crate, parts 1 to 3).
//!
//! ```text
//! GET  /sub/{topic}                       `: ok`, then events with id = `INC:` + per-topic seq 1, 2, …
//! POST /pub/{topic}?n=&size=&event=&key=  publishes n events, replies 200 with n
//! POST /finish/{topic}?status=completed|failed
//! GET  /stats                             hub metrics as JSON
//! ```
//!
//! Environment (see [`Config::from_env`]): `PORT` (the binary listens on 127.0.0.1), `POLICY`
//! (`conflate`, `drop-oldest`, `disconnect`), `QUEUE`, `HISTORY`, `FRONTEND` (`raw`, `hyper`).
//! `BACKPLANE=redis://HOST:PORT` (part 3) makes the server a node of a cluster: every server
//! started with the same value shares the topics through that Redis server (see
//! [`sse_redis`]).
//!
//! # Several nodes
//!
//! With `BACKPLANE` set, the hub is built through [`RedisBackplane::connect`] (at startup, before
//! the server listens: an invalid URL exits with status 2, an unreachable Redis with status 1;
//! later outages are survived), `HISTORY` bounds both the hub's ring and the Redis stream of
//! each topic, and the handlers await the hub: `/sub` loads what this node lacks (`503` when
//! Redis is down and this node cannot serve the client's position), `/pub` pipelines its events to Redis and answers `200` only once every one of them
//! is stored (`503` with a one-line message otherwise), `/finish` likewise. The ids are the
//! topic's incarnation (named by the backplane) and its cluster-wide per-topic sequence, and
//! the payload's `seq` equals the id's sequence. `/stats` adds a
//! `backplane` object with the node's Redis counters.
//!
//! # Front ends
//!
//! The protocol logic (module `app`) does not depend on the HTTP server that carries it. Two
//! front ends are built in, both serving `SseBody` chunks as HTTP/1.1 chunked responses:
//!
//! * [`Frontend::Raw`] (the default): a minimal HTTP/1.1 server on Tokio's `TcpStream`. The
//!   request head is parsed with `httparse` from a buffer that is freed before the response
//!   streams; each chunk that `SseBody` coalesces leaves with one `writev` (chunk-size line,
//!   data, CRLF), the response head together with the first `: ok` frame. An idle stream holds
//!   no read or write buffer. It handles keep-alive, pipelining, `Content-Length` and chunked
//!   request bodies, `Expect: 100-continue` and HTTP/1.0 (close-delimited body), and nothing
//!   else: no HTTP/2, no TLS, no upgrades, no request timeouts. It is a bench front end, not a
//!   general-purpose web server.
//! * [`Frontend::Hyper`]: hyper 1's HTTP/1.1 connection (`hyper::server::conn::http1`) with
//!   `SseBody` as the response body: the way an application would serve it with hyper. hyper
//!   keeps a read buffer (at least 8 KiB) and a write buffer per connection, which is what makes
//!   its idle connections several times heavier than the raw front end's.
//!
//! Both run on whatever runtime calls [`serve`]; the binary uses a current-thread runtime (one
//! core).
//!
//! Measured with `cargo bench -p sse-benches --bench fanout_e2e` (1,000 subscribers, a burst of
//! 1,000 events of 100 bytes, server and load generator pinned to one core each, median of 3):
//! both front ends deliver about 20 M events/s with p99 latency under 30 ms and nothing lost,
//! with the load generator's core, not the server's, nearly saturated (`PARSER=fast`; with
//! `sse_core::Decoder` the generator tops out near 6 M/s). The axum + broadcast baseline
//! ([`axum_broadcast`]) delivers about 1.25 M events/s. What separates the front ends is memory:
//! about 3 KiB per idle connection for the raw front end, 13 KiB for hyper (20 KiB for the
//! baseline). Hence the raw default.
//!
//! # Publishing
//!
//! `POST /pub` hands its events to the hub one by one and answers once all are handed over; it
//! never waits for a subscriber. On a single-threaded server it does let the runtime run once
//! every `min(QUEUE, HISTORY) / 2` events (at most 4,096), so that subscribers that keep up get
//! to write before a long burst could push them past their bound, and other requests are not
//! starved by a ten-million-event POST.

pub mod actix_lab;
mod app;
pub mod axum_broadcast;
mod frontends;
mod raw;

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sse_core::hub::{HubBuilder, Policy, TopicConfig};
use sse_core::Hub;
use sse_redis::{redacted, ConnectError, RedisBackplane, RedisConfig};
use tokio::net::TcpListener;

pub use app::{MAX_N, MAX_SIZE};

/// The HTTP server that carries the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frontend {
    /// A minimal HTTP/1.1 server on raw `TcpStream`s: one `writev` per coalesced chunk, no
    /// per-connection buffers while idle.
    #[default]
    Raw,
    /// `sse_hyper::serve` (HTTP/1.1 and HTTP/2), the stream route calling
    /// `sse_hyper::subscribe`.
    Hyper,
    /// A `Router` served by `axum::serve`, the stream route calling `sse_axum::subscribe`.
    Axum,
    /// An actix-web `HttpServer` (one worker), the stream route calling
    /// `sse_actix::subscribe`.
    Actix,
}

impl Frontend {
    /// The name used by the `FRONTEND` variable.
    pub fn as_str(self) -> &'static str {
        match self {
            Frontend::Raw => "raw",
            Frontend::Hyper => "hyper",
            Frontend::Axum => "axum",
            Frontend::Actix => "actix",
        }
    }
}

impl std::str::FromStr for Frontend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(Frontend::Raw),
            "hyper" => Ok(Frontend::Hyper),
            "axum" => Ok(Frontend::Axum),
            "actix" => Ok(Frontend::Actix),
            other => Err(format!(
                "unknown FRONTEND {other:?} (expected raw, hyper, axum or actix)"
            )),
        }
    }
}

/// Settings of the bench server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Backpressure policy for slow subscribers (`POLICY`, default `conflate`).
    pub policy: Policy,
    /// Per-subscriber bound in events (`QUEUE`, default 1024).
    pub queue: usize,
    /// Events retained per topic (`HISTORY`, default 1024).
    pub history: usize,
    /// The HTTP front end (`FRONTEND`, default `raw`).
    pub frontend: Frontend,
    /// Heartbeat interval on idle streams (15 s).
    pub heartbeat: Duration,
    /// The Redis backplane's URL (`BACKPLANE`, `redis://HOST:PORT`); `None`: a single
    /// in-memory node.
    pub backplane: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::Conflate,
            queue: 1024,
            history: 1024,
            frontend: Frontend::default(),
            heartbeat: Duration::from_secs(15),
            backplane: None,
        }
    }
}

impl Config {
    /// Sets the backpressure policy.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the per-subscriber bound in events.
    #[must_use]
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// Sets the events retained per topic.
    #[must_use]
    pub fn history(mut self, events: usize) -> Self {
        self.history = events.max(1);
        self
    }

    /// Sets the heartbeat interval on idle streams.
    #[must_use]
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Sets the front end.
    #[must_use]
    pub fn frontend(mut self, frontend: Frontend) -> Self {
        self.frontend = frontend;
        self
    }

    /// Makes the server a node of the cluster that shares the Redis server at `url`
    /// (`redis://HOST:PORT`); `None`: a single in-memory node.
    #[must_use]
    pub fn backplane(mut self, url: Option<String>) -> Self {
        self.backplane = url;
        self
    }

    /// Reads `POLICY`, `QUEUE`, `HISTORY`, `FRONTEND` and `BACKPLANE` from the environment.
    /// Fails on a value that does not parse (a `BACKPLANE` that is not a `redis://` or
    /// `rediss://` URL included).
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Config::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut c = Config::default();
        // The check every example app shares (`sse_redis::backplane_url`).
        let bp = get(sse_redis::BACKPLANE_VAR);
        c.backplane = sse_redis::backplane_url(bp.as_deref())
            .map_err(|e| e.to_string())?
            .map(str::to_owned);
        if let Some(p) = get("POLICY").filter(|v| !v.is_empty()) {
            c.policy = p.parse()?;
        }
        if let Some(q) = get("QUEUE").filter(|v| !v.is_empty()) {
            c.queue = parse_count("QUEUE", &q)?;
        }
        if let Some(h) = get("HISTORY").filter(|v| !v.is_empty()) {
            c.history = parse_count("HISTORY", &h)?;
        }
        if let Some(f) = get("FRONTEND").filter(|v| !v.is_empty()) {
            c.frontend = f.parse()?;
        }
        Ok(c)
    }

    /// The node's hub: in memory, or through a Redis backplane when [`Config::backplane`] is
    /// set (connects first; fails if the URL is invalid or Redis cannot be reached now).
    async fn node(&self) -> Result<(Hub, Option<Arc<RedisBackplane>>), ConnectError> {
        let Some(url) = &self.backplane else {
            return Ok((self.hub(Hub::builder()), None));
        };
        // Redis keeps at least HISTORY events (a client resuming on any node finds what the
        // node that served it could replay) and at least the default 100,000 (a node reading a
        // burst published elsewhere at its subscribers' pace catches up without loss).
        let max_len = RedisConfig::default().max_len.map(|n| n.max(self.history));
        let redis = RedisConfig::default().max_len(max_len);
        let bp = RedisBackplane::connect(url, redis).await?;
        Ok((self.hub(bp.hub_builder()), Some(bp)))
    }

    fn hub(&self, builder: HubBuilder) -> Hub {
        builder
            .lazy_topics(true)
            .heartbeat(self.heartbeat)
            .topic_config(
                TopicConfig::default()
                    .policy(self.policy)
                    .queue(self.queue)
                    .history_len(self.history),
            )
            .build()
    }
}

fn parse_count(name: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{name}={v:?}: expected a positive integer")),
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Conflate => "conflate",
        Policy::DropOldest => "drop-oldest",
        Policy::Disconnect => "disconnect",
    }
}

/// Serves the protocol on `listener` until an unrecoverable accept error.
///
/// Runs on the caller's runtime; the connection tasks are spawned with `tokio::spawn`.
///
/// With [`Config::backplane`] set, connects to Redis first and fails if it cannot.
pub async fn serve(listener: TcpListener, config: Config) -> io::Result<()> {
    let node = config.node().await.map_err(io::Error::other)?;
    serve_node(listener, config, node).await
}

async fn serve_node(
    listener: TcpListener,
    config: Config,
    (hub, backplane): (Hub, Option<Arc<RedisBackplane>>),
) -> io::Result<()> {
    let app = Arc::new(app::App::new(hub, backplane, &config));
    tokio::spawn(app::sweeper(app.hub().clone()));
    match config.frontend {
        Frontend::Raw => raw::serve(listener, app).await,
        Frontend::Hyper => frontends::hyper_front::serve(listener, app).await,
        Frontend::Axum => frontends::axum_front::serve(listener, app).await,
        Frontend::Actix => frontends::actix_front::serve(listener, app).await,
    }
}

/// Starts the server on 127.0.0.1 (port 0: any free port) in a new thread with its own
/// current-thread runtime, and returns its address. For tests and benches; the server lives
/// until the process exits.
pub fn spawn_thread(config: Config, port: u16) -> io::Result<SocketAddr> {
    spawn_with(port, move |l| serve(l, config))
}

/// Starts a server made by `serve` like [`spawn_thread`] does.
pub fn spawn_with<F, Fut>(port: u16, serve: F) -> io::Result<SocketAddr>
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("bench-server-{port}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(listener.local_addr());
                if let Err(e) = serve(listener).await {
                    eprintln!("bench server stopped: {e}");
                }
            });
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("server thread died before binding"))?
}

/// The `main` of a server binary: reads `PORT` (default 8080), binds 127.0.0.1, prints
/// `listening on http://ADDR` on stdout, and serves with `serve` on a current-thread runtime.
pub fn main_with<F, Fut>(name: &str, serve: F) -> ExitCode
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    main_prepared(name, async { Ok(()) }, move |l, ()| serve(l))
}

/// [`main_with`], with a step that runs on the runtime before the server binds its port
/// (connecting to a backplane): `Err((status, message))` exits with that status.
fn main_prepared<S, P, F, Fut>(name: &str, prepare: P, serve: F) -> ExitCode
where
    P: std::future::Future<Output = Result<S, (u8, String)>>,
    F: FnOnce(TcpListener, S) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    let port = match std::env::var("PORT") {
        Ok(p) if !p.is_empty() => match p.parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("{name}: PORT={p:?}: expected a port number");
                return ExitCode::from(2);
            }
        },
        _ => 8080,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        let state = match prepare.await {
            Ok(s) => s,
            Err(fail) => return Ok(Err(fail)),
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on http://{}", listener.local_addr()?);
        serve(listener, state).await.map(Ok)
    });
    match res {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err((code, msg))) => {
            eprintln!("{name}: {msg}");
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `main` of `bench-server`: [`Config::from_env`], then [`main_with`].
pub fn main_from_env() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench-server: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "bench-server: frontend={} policy={} queue={} history={} backplane={}",
        config.frontend.as_str(),
        policy_name(config.policy),
        config.queue,
        config.history,
        config
            .backplane
            .as_deref()
            .map_or_else(|| "none (in memory)".to_owned(), redacted)
    );
    let prepare = {
        let config = config.clone();
        async move {
            config.node().await.map_err(|e| {
                let url = redacted(config.backplane.as_deref().unwrap_or_default());
                match e {
                    // A setting that cannot work: like any other invalid setting.
                    ConnectError::Url(_) => (2, format!("BACKPLANE={url:?}: {e}")),
                    e => (
                        1,
                        format!(
                            "BACKPLANE={url:?}: {e}; start redis-server there first (a node \
                             survives Redis outages once it is running)"
                        ),
                    ),
                }
            })
        }
    };
    main_prepared("bench-server", prepare, move |l, node| {
        serve_node(l, config, node)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backplane_from_env() {
        let get = |v: &'static str| move |k: &str| (k == "BACKPLANE").then(|| v.to_owned());
        assert_eq!(Config::from_lookup(get("")).unwrap().backplane, None);
        assert_eq!(
            Config::from_lookup(get("redis://127.0.0.1:6390"))
                .unwrap()
                .backplane
                .as_deref(),
            Some("redis://127.0.0.1:6390")
        );
        let err = Config::from_lookup(get("http://u:secret@h:1")).unwrap_err();
        assert!(err.contains("expected redis://HOST:PORT"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
        assert_eq!(redacted("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redacted("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redacted("nonsense"), "nonsense");
    }
}
