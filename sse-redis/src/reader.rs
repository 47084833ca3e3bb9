//! The node's reader: one task, one connection, one blocking `XREAD` over every topic this node
//! has subscribers for; what it reads is injected into the local hub.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::Value;
use sse_core::hub::WeakHub;
use tokio::sync::Notify;

use crate::script::parse_xread;
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

/// The reader loop. Ends when the backplane or the hub is dropped.
pub(crate) async fn run(ctx: Arc<Ctx>, state: Arc<ReaderState>, hub: WeakHub) {
    // Topic → stream key, and back.
    let mut topics: HashMap<Arc<str>, String> = HashMap::new();
    let mut by_key: HashMap<Vec<u8>, Arc<str>> = HashMap::new();
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    let block_ms = u64::try_from(ctx.config.read_block.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
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
                    let key = ctx.config.keys(&t).log;
                    by_key.insert(key.clone().into_bytes(), Arc::clone(&t));
                    topics.insert(t, key);
                } else if let Some(key) = topics.remove(&t) {
                    by_key.remove(key.as_bytes());
                }
            }
            state.seen_gen.store(gen, Ordering::SeqCst);
            topics.retain(|name, key| {
                let keep = hub.get_topic(name).is_some_and(|t| {
                    if t.is_finished() {
                        return false;
                    }
                    streams.push((key.clone(), format!("{}-0", t.last_seq())));
                    true
                });
                if !keep {
                    by_key.remove(key.as_bytes());
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
                    conn.insert(c)
                }
                Err(_) => {
                    if pause(&state, &mut backoff, ctx.config.max_backoff).await {
                        return;
                    }
                    continue;
                }
            },
        };
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
                for (key, entries) in parse_xread(v) {
                    let Some(name) = by_key.get(&key) else {
                        continue;
                    };
                    let Some(topic) = hub.get_topic(name) else {
                        continue;
                    };
                    ctx.stats
                        .events_read
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    for e in &entries {
                        // Redeliveries are ignored by the hub; an invalid entry is skipped.
                        let _ = topic.inject(e.injected());
                    }
                }
            }
            Ok(Err(_)) | Err(_) => {
                // Lost, or silent too long: reconnect, then resume every topic from its last
                // applied sequence (no duplicate, nothing lost that Redis kept).
                conn = None;
                state.client_id.store(0, Ordering::SeqCst);
                if pause(&state, &mut backoff, ctx.config.max_backoff).await {
                    return;
                }
            }
        }
    }
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
