//! A Redis Streams backplane for the [`sse_core`] hub: several nodes behind a load balancer
//! serve one set of topics, with one id order per topic for the whole cluster.
//!
//! * **Ordering.** A publish on any node runs one Lua script in Redis that increments the topic's
//!   sequence and appends the event to the topic's stream (`XADD`, entry id `{seq}-0`), so two
//!   nodes publishing at once never share or skip a number, and a `Last-Event-ID` from one node
//!   is good on every other. Each entry also carries the topic's incarnation (the first part
//!   of its ids): when Redis no longer has a topic's stream (it expired, or Redis lost its
//!   data), the next publish starts a new incarnation, so an old id gets a `gap` instead of a
//!   silent resume at the wrong place.
//! * **History in Redis**, bounded per topic by length (`MAXLEN ~`) and age, so a client that
//!   reconnects to another node receives exactly what it missed ([`Hub::subscribe`] loads
//!   it from the stream first); an id older than the history gets the hub's `gap` event.
//! * **Lifecycle everywhere.** The terminal event is flagged in its stream entry and a finished
//!   marker key is set: a finish on node A ends the streams on node B, and a publish on any node
//!   then fails with [`PublishError::Finished`](sse_core::hub::PublishError) (409). Finished
//!   topics' keys expire after [`RedisConfig::finished_ttl`], idle ones after
//!   [`RedisConfig::idle_ttl`].
//! * **Each node reads each event once**: one task per node blocks on one `XREAD` over every
//!   topic the node has subscribers for, and applies what it reads to the local hub, which fans
//!   it out through the same ring and cursors as in memory. No Redis traffic per subscriber, no
//!   polling per topic, and a node without subscribers for a topic does not read it.
//! * **Faults.** While Redis is unreachable, publishes fail with
//!   [`PublishError::Backplane`](sse_core::hub::PublishError) (503) and open subscriptions stay
//!   open (their heartbeats go on). The connections come back by themselves with backoff, and
//!   the reader resumes each topic from the last sequence applied on this node: no duplicate,
//!   nothing lost that Redis kept.
//! * **Data loss in Redis is never silent.** When Redis loses a topic's stream (`FLUSHALL`, a
//!   restart without its data, another server behind the same address, an expired or evicted
//!   key), the next publish starts a new incarnation numbered from 1 again. Each node notices
//!   it: at once when a read returns entries of another incarnation, and otherwise within
//!   twice [`RedisConfig::read_block`] (4 s by default): the reader compares every topic it reads with Redis
//!   after each reconnect and whenever an epoch key it keeps in Redis disappears (one `GET` per
//!   `read_block`), and a few silent topics at a time in between (`XREVRANGE … COUNT 1` each;
//!   nothing per event). It then reads the new life from its start: subscribers get a `gap`,
//!   then every event of the new life that Redis holds. A `tracing` warning names the topic,
//!   and [`Stats::topics_lost`] counts these.
//!
//! # Wiring
//!
//! ```no_run
//! use sse_core::{Event, Hub};
//! use sse_redis::{RedisBackplane, RedisConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let backplane = RedisBackplane::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?;
//! let hub: Hub = backplane.hub_builder().lazy_topics(true).build();
//!
//! // The same calls as in memory: `subscribe` loads what this node lacks, and a publish's ack
//! // resolves once Redis has stored the event.
//! let sub = hub.subscribe("job-1").await?;
//! let seq = hub.publish("job-1", Event::new().data("hello")).await?;
//! # drop((sub, seq));
//! # Ok(())
//! # }
//! ```
//!
//! See the crate's README for running several nodes.

mod config;
mod env;
mod reader;
mod script;
mod writer;

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use redis::aio::MultiplexedConnection;
use redis::Value;
use sse_core::hub::{Backplane, BackplaneError, BackplaneFuture, HubBuilder, Outgoing, WeakHub};
use sse_core::Hub;
use tokio::sync::mpsc;

pub use config::RedisConfig;
pub use env::{
    backplane_from_env, backplane_url, hub_builder_from_env, hub_builder_from_env_with, redacted,
    EnvError, BACKPLANE_VAR,
};

use reader::ReaderState;
use script::{parse_entries, RawEntry};
use writer::Job;

/// Why [`RedisBackplane::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a valid Redis URL.
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis could not be reached, or refused the publish script.
    #[error("cannot reach redis: {0}")]
    Unreachable(#[source] redis::RedisError),
    /// Not called from within a Tokio runtime (the backplane spawns its tasks on it).
    #[error("RedisBackplane::connect must be called from within a Tokio runtime")]
    NoRuntime,
}

/// Counters of one node's backplane (see [`RedisBackplane::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events stored by publishes from this node.
    pub published: u64,
    /// Publishes from this node that failed because Redis was unreachable or too slow.
    pub publish_errors: u64,
    /// Events this node read from Redis (the reader, and history loaded before subscribes).
    pub events_read: u64,
    /// Blocking reads issued.
    pub reads: u64,
    /// Connections (re)established.
    pub connects: u64,
    /// Topics this node reads now (those it has subscribers for).
    pub topics_read: u64,
    /// Times this node found that Redis had lost a topic it was following (the stream gone or
    /// replaced by a new life, after a `FLUSHALL`, a restart without data, an expiry or a
    /// deletion). Each time the topic's next life is read from its start, and its subscribers
    /// get a `gap` then every event of the new life that Redis holds.
    pub topics_lost: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    publish_errors: AtomicU64,
    pub(crate) events_read: AtomicU64,
    pub(crate) reads: AtomicU64,
    connects: AtomicU64,
    pub(crate) replaced: AtomicU64,
}

impl Counters {
    pub(crate) fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn publish_error(&self) {
        self.publish_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn reconnect(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the background tasks share (never the backplane itself, so that dropping the hub stops
/// them).
pub(crate) struct Ctx {
    pub(crate) config: RedisConfig,
    pub(crate) client: redis::Client,
    pub(crate) script_sha: String,
    pub(crate) stats: Counters,
}

/// A [`Backplane`] on Redis Streams. One per hub (node); see the [crate docs](crate).
pub struct RedisBackplane {
    ctx: Arc<Ctx>,
    writers: Vec<mpsc::Sender<Job>>,
    reader: Arc<ReaderState>,
    runtime: tokio::runtime::Handle,
    hub: OnceLock<WeakHub>,
    control: Arc<Control>,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("prefix", &self.ctx.config.prefix)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisBackplane {
    /// Connects to the Redis server at `url` (`redis://HOST:PORT[/DB]`, or `rediss://…` for
    /// TLS with rustls, as managed Redis services require; credentials as the `redis` crate
    /// accepts them), checks that it answers and loads the publish script. A `rediss://`
    /// server's certificate must chain to the operating system's roots or to
    /// [`RedisConfig::tls_root_certificate`]. Call it from within a Tokio runtime: the backplane's connections run as
    /// tasks on it.
    ///
    /// Then build the node's hub with [`hub_builder`](Self::hub_builder) (or pass the backplane
    /// to [`HubBuilder::backplane`]).
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Arc<Self>, ConnectError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConnectError::NoRuntime)?;
        if url.starts_with("rediss://") && rustls::crypto::CryptoProvider::get_default().is_none() {
            // rustls needs a process-wide crypto provider; use ring unless the application
            // installed one (another thread may install one meanwhile: either is fine).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = match &config.tls_root_certificate {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(ConnectError::Url)?;
        let ctx = Arc::new(Ctx {
            script_sha: redis::Script::new(script::PUBLISH).get_hash().to_owned(),
            config,
            client,
            stats: Counters::default(),
        });
        // Fail fast at startup if Redis is not there; later outages are survived.
        let conn = writer::connect(&ctx, Some(ctx.config.response_timeout))
            .await
            .map_err(ConnectError::Unreachable)?;
        let pool = ctx.config.pool_size.max(1);
        let mut writers = Vec::with_capacity(pool);
        for i in 0..pool {
            let (tx, rx) = mpsc::channel(ctx.config.queue.max(1));
            runtime.spawn(writer::run(Arc::clone(&ctx), rx, i));
            writers.push(tx);
        }
        let reader = Arc::new(ReaderState::default());
        runtime.spawn(reader::unblocker(Arc::clone(&ctx), Arc::clone(&reader)));
        let control = Arc::new(Control {
            ctx: Arc::clone(&ctx),
            conn: tokio::sync::Mutex::new(Some(conn)),
        });
        Ok(Arc::new(RedisBackplane {
            ctx,
            writers,
            reader,
            runtime,
            hub: OnceLock::new(),
            control,
        }))
    }

    /// A [`HubBuilder`] with this backplane: `backplane.hub_builder().build()` is a node.
    pub fn hub_builder(self: &Arc<Self>) -> HubBuilder {
        Hub::builder().backplane(Arc::clone(self) as Arc<dyn Backplane>)
    }

    /// This node's counters.
    pub fn stats(&self) -> Stats {
        let c = &self.ctx.stats;
        Stats {
            published: c.published.load(Ordering::Relaxed),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
            events_read: c.events_read.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            topics_read: self.reader.reading.load(Ordering::Relaxed),
            topics_lost: c.replaced.load(Ordering::Relaxed),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.ctx.config
    }

    /// Deletes a topic's keys in Redis (its history, sequence and finished marker). Nodes keep
    /// their local copies until their hubs evict them; a later publish starts the topic at 1.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), BackplaneError> {
        let keys = self.ctx.config.keys(topic);
        let mut conn = self.control.conn().await?;
        let r = redis::cmd("DEL")
            .arg(&keys.seq)
            .arg(&keys.fin)
            .arg(&keys.log)
            .query_async::<i64>(&mut conn)
            .await;
        self.control.check(r).await.map(drop)
    }
}

/// A connection for history reads and administration, made on first use and after failures.
pub(crate) struct Control {
    ctx: Arc<Ctx>,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Control {
    async fn conn(&self) -> Result<MultiplexedConnection, BackplaneError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = writer::connect(&self.ctx, Some(self.ctx.config.response_timeout))
            .await
            .map_err(|e| BackplaneError::new(format!("redis unreachable: {e}")))?;
        Ok(guard.insert(c).clone())
    }

    /// Maps a result; forgets the connection if it failed.
    async fn check<T>(&self, r: redis::RedisResult<T>) -> Result<T, BackplaneError> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    *self.conn.lock().await = None;
                }
                Err(BackplaneError::new(format!("redis unavailable: {e}")))
            }
        }
    }

    async fn range(&self, cmd: redis::Cmd) -> Result<Vec<RawEntry>, BackplaneError> {
        let mut conn = self.conn().await?;
        let r = cmd.query_async::<Value>(&mut conn).await;
        Ok(parse_entries(self.check(r).await?))
    }
}

/// [`Backplane::prepare`]: brings this node's copy of `topic` up to date.
async fn prepare(
    ctx: Arc<Ctx>,
    control: Arc<Control>,
    hub: Option<WeakHub>,
    topic: String,
    after: Option<u64>,
) -> Result<(), BackplaneError> {
    let Some(hub) = hub.as_ref().and_then(WeakHub::upgrade) else {
        return Ok(());
    };
    let keys = ctx.config.keys(&topic);
    let cap = ctx.config.max_len.map_or(10_000, |n| n + 256);
    let local_last = hub.get_topic(&topic).map_or(0, |t| t.last_seq());
    let mut pipe = redis::pipe();
    pipe.cmd("EXISTS").arg(&keys.seq);
    if local_last == 0 {
        // New here: the newest retained events (the history, and the snapshot's source).
        pipe.cmd("XREVRANGE")
            .arg(&keys.log)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(cap);
    } else {
        pipe.cmd("XRANGE")
            .arg(&keys.log)
            .arg(format!("{}-0", local_last + 1))
            .arg("+")
            .arg("COUNT")
            .arg(cap);
        if let Some(k) = after.filter(|&k| k < local_last) {
            // What a resuming client needs that this node may no longer (or never) hold.
            pipe.cmd("XRANGE")
                .arg(&keys.log)
                .arg(format!("{}-0", k + 1))
                .arg(format!("{local_last}-0"))
                .arg("COUNT")
                .arg(cap);
        }
    }
    let mut conn = control.conn().await?;
    let r = pipe.query_async::<Vec<Value>>(&mut conn).await;
    let mut replies = control.check(r).await?.into_iter();
    if !matches!(replies.next(), Some(Value::Int(1))) {
        // Unknown to the cluster (or expired): the hub decides (404, or a lazy topic).
        return Ok(());
    }
    let local = hub
        .topic(&topic)
        .map_err(|e| BackplaneError::new(format!("cannot create the local topic: {e}")))?;
    let mut page = replies.next().map(parse_entries).unwrap_or_default();
    let mut older = replies.next().map(parse_entries).unwrap_or_default();
    if local_last == 0 {
        page.reverse();
    } else if let (Some(first), Some(inc)) = (page.first(), local.incarnation()) {
        if first.incarnation != inc && local.last_seq() > 0 {
            // Redis holds a new life of the topic (it lost the one this node had): read it from
            // its start, or the events up to this node's last sequence would be skipped.
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(&keys.log).arg("-").arg("+").arg("COUNT").arg(cap);
            page = control.range(cmd).await?;
            older.clear();
        }
    }
    count_read(&ctx, page.len() + older.len());
    if !older.is_empty() {
        let events: Vec<_> = older.iter().map(RawEntry::injected).collect();
        local.backfill(&events);
    }
    // Apply what this node has not applied, up to now (more pages if it was far behind), so
    // that a client resuming with any id Redis issued is served here.
    for _ in 0..64 {
        let full = page.len() >= cap;
        for e in &page {
            // Redeliveries (the reader applied them meanwhile) are ignored.
            let _ = local.inject(e.injected());
        }
        if !full {
            break;
        }
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&keys.log)
            .arg(format!("{}-0", local.last_seq() + 1))
            .arg("+")
            .arg("COUNT")
            .arg(cap);
        page = control.range(cmd).await?;
        count_read(&ctx, page.len());
    }
    Ok(())
}

fn count_read(ctx: &Ctx, n: usize) {
    ctx.stats.events_read.fetch_add(n as u64, Ordering::Relaxed);
}

impl Backplane for RedisBackplane {
    fn attach(&self, hub: WeakHub) {
        if self.hub.set(hub.clone()).is_ok() {
            self.runtime.spawn(reader::run(
                Arc::clone(&self.ctx),
                Arc::clone(&self.reader),
                hub,
            ));
        }
    }

    fn publish(&self, out: Outgoing) -> BackplaneFuture<u64> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        out.topic.hash(&mut h);
        let idx = usize::try_from(h.finish() % self.writers.len() as u64).unwrap_or(0);
        let (ack, rx) = tokio::sync::oneshot::channel();
        let sent = match self.writers.get(idx) {
            Some(w) => w.try_send(Job { out, ack }),
            None => {
                return Box::pin(std::future::ready(Err(BackplaneError::new(
                    "no connection",
                ))))
            }
        };
        match sent {
            Ok(()) => Box::pin(async move {
                rx.await
                    .unwrap_or_else(|_| Err(BackplaneError::new("redis backplane stopped")))
            }),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ctx.stats.publish_error();
                Box::pin(std::future::ready(Err(BackplaneError::new(
                    "too many publishes waiting for redis",
                ))))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Box::pin(std::future::ready(Err(
                BackplaneError::new("redis backplane stopped"),
            ))),
        }
    }

    fn interest_changed(&self, topic: &str) {
        self.reader.mark(topic);
    }

    fn prepare(&self, topic: &str, after: Option<u64>) -> BackplaneFuture<()> {
        Box::pin(prepare(
            Arc::clone(&self.ctx),
            Arc::clone(&self.control),
            self.hub.get().cloned(),
            topic.to_owned(),
            after,
        ))
    }
}

impl Drop for RedisBackplane {
    fn drop(&mut self) {
        self.reader.shut();
    }
}
