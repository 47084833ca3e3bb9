//! The node's reader: one task, one connection, one blocking `XREAD` over every topic this node
//! has subscribers for; what it reads is injected into the local hub.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::Value;
use sse_core::hub::{Incarnation, WeakHub};
use sse_core::Hub;
use tokio::sync::Notify;

use crate::script::{parse_entries, parse_xread};
use crate::writer::{connect, MIN_BACKOFF};
use crate::Ctx;

/// What the hub's interest notifications and the reader share.
#[derive(Default)]
pub(crate) struct ReaderState {
    /// Topics whose local subscriber count may have crossed zero.
    dirty: Mutex<HashSet<Arc<str>>>,
    /// Bumped on every notification; `seen` is the value the reader last acted on.
    dirty_gen: AtomicU64,
    seen_gen: AtomicU64,
    /// Wakes the reader when it has nothing to read.
    wake: Notify,
    /// Wakes the unblocker.
    unblock: Notify,
    /// `CLIENT ID` of the reader's connection (0: none).
    client_id: AtomicI64,
    pub(crate) closed: AtomicBool,
    pub(crate) close: Notify,
    /// Topics being read now.
    pub(crate) reading: AtomicU64,
}

impl ReaderState {
    /// A topic's interest may have changed: the reader re-reads its subscriber count.
    pub(crate) fn mark(&self, topic: &str) {
        self.dirty.lock().insert(Arc::from(topic));
        self.dirty_gen.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        self.unblock.notify_one();
    }

    pub(crate) fn shut(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.close.notify_waiters();
        self.wake.notify_one();
        self.unblock.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// One topic the reader follows.
struct Watched {
    /// Its stream's key.
    key: String,
    /// Read it from the start of its stream (`0-0`) instead of after the last sequence applied
    /// here: Redis lost the stream this node was following (see [`verify`]).
    from_start: bool,
    /// Whether a read returned entries of it since the last check (so it needs none).
    heard: bool,
    /// When its stream was last compared with this node's copy.
    checked: Instant,
}

/// Topics compared with Redis per check beyond those a check must cover (see [`verify`]).
const CHECKS_PER_ROUND: usize = 64;
/// Most commands of one check pipeline.
const CHECK_PIPELINE: usize = 512;

/// The reader loop. Ends when the backplane or the hub is dropped.
pub(crate) async fn run(ctx: Arc<Ctx>, state: Arc<ReaderState>, hub: WeakHub) {
    let mut topics: HashMap<Arc<str>, Watched> = HashMap::new();
    // Stream key → topic.
    let mut by_key: HashMap<Vec<u8>, Arc<str>> = HashMap::new();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    let block_ms = u64::try_from(ctx.config.read_block.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    // Data loss in Redis is looked for this often (and at once after a reconnect).
    let check_every = ctx.config.read_block.max(Duration::from_millis(100));
    let mut epoch: Option<Vec<u8>> = None;
    let mut check_all = true;
    let mut last_check = Instant::now();
    let mut outage = crate::writer::Outage::default();
    loop {
        if state.is_closed() {
            return;
        }
        // Which topics to read, and from where: each from the last sequence applied here.
        let mut streams: Vec<(String, String)> = Vec::new();
        {
            let Some(hub) = hub.upgrade() else { return };
            let gen = state.dirty_gen.load(Ordering::SeqCst);
            let dirty: Vec<Arc<str>> = state.dirty.lock().drain().collect();
            for t in dirty {
                if hub.get_topic(&t).is_some_and(|x| x.subscriber_count() > 0) {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        topics.entry(Arc::clone(&t))
                    {
                        let key = ctx.config.keys(&t).log;
                        by_key.insert(key.clone().into_bytes(), t);
                        slot.insert(Watched {
                            key,
                            from_start: false,
                            heard: false,
                            checked: Instant::now(),
                        });
                    }
                } else if let Some(w) = topics.remove(&t) {
                    by_key.remove(w.key.as_bytes());
                }
            }
            state.seen_gen.store(gen, Ordering::SeqCst);
            topics.retain(|name, w| {
                let keep = hub.get_topic(name).is_some_and(|t| {
                    if t.is_finished() {
                        return false;
                    }
                    let from = if w.from_start { 0 } else { t.last_seq() };
                    streams.push((w.key.clone(), format!("{from}-0")));
                    true
                });
                if !keep {
                    by_key.remove(w.key.as_bytes());
                }
                keep
            });
        }
        state.reading.store(topics.len() as u64, Ordering::Relaxed);
        if streams.is_empty() {
            // Nothing to read: no Redis traffic until a subscriber comes.
            tokio::select! {
                _ = state.wake.notified() => {}
                _ = state.close.notified() => return,
            }
            continue;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match open(&ctx).await {
                Ok((c, id)) => {
                    backoff = MIN_BACKOFF;
                    state.client_id.store(id, Ordering::SeqCst);
                    outage.connected("read", 0);
                    // Redis may have restarted without its data, or be another server.
                    check_all = true;
                    conn.insert(c)
                }
                Err(e) => {
                    outage.failed("read", 0, &e, 1);
                    if pause(&state, &mut backoff, ctx.config.max_backoff).await {
                        return;
                    }
                    continue;
                }
            },
        };
        if check_all || last_check.elapsed() >= check_every {
            let Some(hub) = hub.upgrade() else { return };
            match verify(&ctx, c, &hub, &mut topics, &mut epoch, check_all).await {
                Ok(()) => {
                    check_all = false;
                    last_check = Instant::now();
                    // A topic found replaced is read from its start at once.
                    continue;
                }
                Err(e) => {
                    outage.failed("read", 0, &e, 1);
                    conn = None;
                    state.client_id.store(0, Ordering::SeqCst);
                    if pause(&state, &mut backoff, ctx.config.max_backoff).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(ctx.config.read_count.max(1))
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS");
        for (key, _) in &streams {
            cmd.arg(key);
        }
        for (_, id) in &streams {
            cmd.arg(id);
        }
        let limit = ctx.config.read_block + ctx.config.response_timeout;
        let reply = tokio::select! {
            r = tokio::time::timeout(limit, cmd.query_async::<Value>(c)) => r,
            _ = state.close.notified() => return,
        };
        ctx.stats.reads.fetch_add(1, Ordering::Relaxed);
        match reply {
            Ok(Ok(Value::Nil)) => {}
            Ok(Ok(v)) => {
                let Some(hub) = hub.upgrade() else { return };
                // Pacing, as an in-memory publisher gets from its own awaits: after every
                // `pace` events applied, let the runtime run once, so that subscribers that keep
                // up write before a long read could push them past their bound.
                let pace = pace(&hub);
                let mut applied = 0usize;
                for (key, entries) in parse_xread(v) {
                    let Some(name) = by_key.get(&key) else {
                        continue;
                    };
                    let Some(topic) = hub.get_topic(name) else {
                        continue;
                    };
                    let Some(w) = topics.get_mut(name) else {
                        continue;
                    };
                    ctx.stats
                        .events_read
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    if !w.from_start {
                        if let (Some(first), Some(local)) = (entries.first(), topic.incarnation()) {
                            if first.incarnation != local && topic.last_seq() > 0 {
                                // Read after our last sequence, these are the tail of a new
                                // life of the topic: its start would be skipped.
                                replaced(
                                    &ctx,
                                    name,
                                    local,
                                    topic.last_seq(),
                                    Some((first.incarnation, first.seq)),
                                );
                                w.from_start = true;
                                continue;
                            }
                        }
                    }
                    w.from_start = false;
                    w.heard = true;
                    for e in &entries {
                        // Redeliveries are ignored by the hub; an invalid entry is skipped.
                        let _ = topic.inject(e.injected());
                        applied += 1;
                        if applied.is_multiple_of(pace) {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                outage.failed("read", 0, &e, 1);
                // Lost: reconnect, then resume every topic from its last applied sequence (no
                // duplicate, nothing lost that Redis kept).
                conn = None;
                state.client_id.store(0, Ordering::SeqCst);
                if pause(&state, &mut backoff, ctx.config.max_backoff).await {
                    return;
                }
            }
            Err(_) => {
                outage.failed("read", 0, &"no answer in time", 1);
                // Silent too long: as above.
                conn = None;
                state.client_id.store(0, Ordering::SeqCst);
                if pause(&state, &mut backoff, ctx.config.max_backoff).await {
                    return;
                }
            }
        }
    }
}

/// Events applied between two yields to the runtime: half the smaller of the subscriber bound
/// and the history of the hub's topics (at most 4,096), the stride an in-memory publisher that
/// awaits its acks gives its subscribers.
fn pace(hub: &sse_core::Hub) -> usize {
    let t = &hub.config().topic;
    (t.queue.min(t.history_len) / 2).clamp(1, 4096)
}

/// Logs that Redis no longer holds the life of `topic` this node was following, and counts it.
fn replaced(
    ctx: &Ctx,
    topic: &str,
    local: Incarnation,
    last: u64,
    newest: Option<(Incarnation, u64)>,
) {
    ctx.stats.replaced.fetch_add(1, Ordering::Relaxed);
    match newest {
        Some((inc, seq)) => tracing::warn!(
            topic,
            "redis lost topic {topic:?} (this node had {local}:{last}, redis now holds a new \
             life up to {inc}:{seq}): reading the new life from its start; subscribers get a gap"
        ),
        None => tracing::warn!(
            topic,
            "redis lost topic {topic:?} (this node had {local}:{last}, redis holds no stream for \
             it): its next life will be read from its start; subscribers get a gap"
        ),
    }
}

/// Compares this node's copy of topics with their streams in Redis, and marks those whose
/// stream Redis no longer holds (gone, or replaced by a new life: another incarnation) to be
/// read from their start, so that no event of the new life is skipped.
///
/// Checked: every topic when `all` (after a (re)connect), or when Redis's epoch key changed
/// (`FLUSHALL`, `FLUSHDB`: the key is set once and never expires, so only a loss of data
/// removes it); otherwise the [`CHECKS_PER_ROUND`] topics checked longest ago among those no
/// read returned anything for since the last check (a single topic's keys can expire, be
/// deleted or be evicted). One pipeline per [`CHECK_PIPELINE`] topics, `XREVRANGE … COUNT 1`
/// each: Redis traffic per check, never per event.
async fn verify(
    ctx: &Ctx,
    conn: &mut MultiplexedConnection,
    hub: &Hub,
    topics: &mut HashMap<Arc<str>, Watched>,
    epoch: &mut Option<Vec<u8>>,
    all: bool,
) -> redis::RedisResult<()> {
    let epoch_key = format!("{}epoch", ctx.config.prefix);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&epoch_key)
        .arg(sse_core::hub::Incarnation::new().to_string())
        .arg("NX")
        .ignore();
    pipe.cmd("GET").arg(&epoch_key);
    let (now,): (Option<Vec<u8>>,) = timed(ctx, pipe.query_async(&mut *conn)).await?;
    let lost = epoch.is_some() && *epoch != now;
    *epoch = now;
    let mut due: Vec<(&Arc<str>, &mut Watched)> =
        topics.iter_mut().filter(|(_, w)| !w.from_start).collect();
    if !(all || lost) {
        due.retain(|(_, w)| !w.heard);
        due.sort_by_key(|(_, w)| w.checked);
        due.truncate(CHECKS_PER_ROUND);
    }
    for chunk in due.chunks_mut(CHECK_PIPELINE) {
        let mut pipe = redis::pipe();
        for (_, w) in chunk.iter() {
            pipe.cmd("XREVRANGE")
                .arg(&w.key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let replies: Vec<Value> = timed(ctx, pipe.query_async(&mut *conn)).await?;
        for ((name, w), reply) in chunk.iter_mut().zip(replies) {
            w.checked = Instant::now();
            let Some(topic) = hub.get_topic(name) else {
                continue;
            };
            let (Some(local), last) = (topic.incarnation(), topic.last_seq()) else {
                // Nothing applied here yet: it is read from its start anyway.
                continue;
            };
            if last == 0 {
                continue;
            }
            match parse_entries(reply).pop() {
                Some(newest) if newest.incarnation == local => {
                    if newest.seq < last {
                        // Same life, shorter: Redis came back from an older copy of its data.
                        // Its next sequences repeat ones this node applied, and nothing in
                        // them tells the two apart.
                        tracing::error!(
                            topic = &***name,
                            "redis lost the newest events of topic {:?} (this node had \
                             {local}:{last}, redis holds up to {local}:{}): the next events \
                             will reuse sequences this node already applied, and be ignored here",
                            &***name,
                            newest.seq
                        );
                    }
                }
                Some(newest) => {
                    replaced(
                        ctx,
                        name,
                        local,
                        last,
                        Some((newest.incarnation, newest.seq)),
                    );
                    w.from_start = true;
                }
                None => {
                    replaced(ctx, name, local, last, None);
                    w.from_start = true;
                }
            }
        }
    }
    for w in topics.values_mut() {
        w.heard = false;
    }
    Ok(())
}

/// `fut` within the response timeout.
async fn timed<T>(
    ctx: &Ctx,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(ctx.config.response_timeout, fut)
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}

async fn open(ctx: &Ctx) -> redis::RedisResult<(MultiplexedConnection, i64)> {
    let mut c = connect(ctx, None).await?;
    let id = tokio::time::timeout(
        ctx.config.response_timeout,
        redis::cmd("CLIENT").arg("ID").query_async::<i64>(&mut c),
    )
    .await
    .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    ctx.stats.reconnect();
    Ok((c, id))
}

/// Waits `backoff` (doubling it up to `max`); `true` if the backplane closed meanwhile.
async fn pause(state: &ReaderState, backoff: &mut Duration, max: Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(max.max(MIN_BACKOFF));
    tokio::select! {
        _ = tokio::time::sleep(wait) => state.is_closed(),
        _ = state.close.notified() => true,
    }
}

/// Interrupts the reader's blocking read when the set of topics changes, so that a new topic is
/// read at once: `CLIENT UNBLOCK` until the reader has seen the change.
pub(crate) async fn unblocker(ctx: Arc<Ctx>, state: Arc<ReaderState>) {
    let mut conn: Option<MultiplexedConnection> = None;
    loop {
        tokio::select! {
            _ = state.unblock.notified() => {}
            _ = state.close.notified() => return,
        }
        for _ in 0..200 {
            if state.is_closed() {
                return;
            }
            if state.seen_gen.load(Ordering::SeqCst) >= state.dirty_gen.load(Ordering::SeqCst) {
                break;
            }
            let id = state.client_id.load(Ordering::SeqCst);
            if id != 0 {
                if conn.is_none() {
                    conn = connect(&ctx, Some(ctx.config.response_timeout)).await.ok();
                }
                if let Some(c) = conn.as_mut() {
                    let r = redis::cmd("CLIENT")
                        .arg("UNBLOCK")
                        .arg(id)
                        .query_async::<i64>(c)
                        .await;
                    if r.is_err() {
                        conn = None;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
