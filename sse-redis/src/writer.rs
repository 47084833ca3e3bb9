//! Publishing connections: each owns one connection and a queue, and sends what waits in its
//! queue as one pipeline of script calls, one per topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, RedisResult, Value};
use sse_core::hub::{BackplaneError, Outgoing};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::millis;
use crate::Ctx;

pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// One publish waiting for its connection.
pub(crate) struct Job {
    pub(crate) out: Outgoing,
    pub(crate) ack: oneshot::Sender<Result<u64, BackplaneError>>,
}

/// Connects, and loads the publish script (so that `EVALSHA` finds it, also after a restart).
pub(crate) async fn connect(
    ctx: &Ctx,
    response_timeout: Option<Duration>,
) -> RedisResult<MultiplexedConnection> {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(ctx.config.connect_timeout))
        .set_response_timeout(response_timeout);
    let mut conn = ctx
        .client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    if response_timeout.is_some() {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(crate::script::PUBLISH)
            .query_async::<String>(&mut conn)
            .await?;
    }
    Ok(conn)
}

/// An outage of one connection, logged once when it starts and once when it ends.
#[derive(Debug, Default)]
pub(crate) struct Outage {
    /// Since when, while it lasts.
    since: Option<Instant>,
    /// Publishes (or reads) failed meanwhile.
    failed: u64,
}

impl Outage {
    /// Something failed; logs a warning if that starts an outage.
    pub(crate) fn failed(
        &mut self,
        what: &'static str,
        index: usize,
        error: &dyn std::fmt::Display,
        n: u64,
    ) {
        self.failed += n;
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(
                connection = what,
                index,
                %error,
                "redis unavailable: reconnecting with backoff"
            );
        }
    }

    /// Connected; logs the end of the outage, if there was one.
    pub(crate) fn connected(&mut self, what: &'static str, index: usize) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                connection = what,
                index,
                outage_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                failed = self.failed,
                "redis reachable again"
            );
        }
        self.failed = 0;
    }
}

/// The loop of one publishing connection (`index` of the pool). Ends when the backplane is
/// dropped.
pub(crate) async fn run(ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Job>, index: usize) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    let mut retry_at = Instant::now();
    let mut outage = Outage::default();
    let max_batch = ctx.config.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let c = match conn.as_mut() {
            Some(c) => c,
            None if Instant::now() < retry_at => {
                outage.failed("publish", index, &"still reconnecting", batch.len() as u64);
                fail(&ctx, batch.drain(..), "redis unreachable (reconnecting)");
                continue;
            }
            None => match connect(&ctx, Some(ctx.config.response_timeout)).await {
                Ok(c) => {
                    backoff = MIN_BACKOFF;
                    ctx.stats.reconnect();
                    outage.connected("publish", index);
                    conn.insert(c)
                }
                Err(e) => {
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(ctx.config.max_backoff.max(MIN_BACKOFF));
                    outage.failed("publish", index, &e, batch.len() as u64);
                    fail(&ctx, batch.drain(..), &format!("redis unreachable: {e}"));
                    continue;
                }
            },
        };
        if let Err(e) = send(&ctx, c, &mut batch).await {
            // The connection is gone (or timed out): its fate is unknown, so a fresh one next
            // time, at once (Redis restarted) and then with backoff.
            conn = None;
            outage.failed("publish", index, &e, batch.len() as u64);
            fail(&ctx, batch.drain(..), &format!("redis unavailable: {e}"));
        }
        batch.clear();
    }
}

fn fail(ctx: &Ctx, jobs: impl Iterator<Item = Job>, msg: &str) {
    for job in jobs {
        ctx.stats.publish_error();
        let _ = job.ack.send(Err(BackplaneError::new(msg)));
    }
}

/// One script call for `jobs`, all of one topic, in their order.
fn script_call(ctx: &Ctx, jobs: &[Job]) -> redis::Cmd {
    let cfg = &ctx.config;
    let topic = jobs.first().map_or("", |j| &*j.out.topic);
    let keys = cfg.keys(topic);
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&*ctx.script_sha)
        .arg(3)
        .arg(&keys.seq)
        .arg(&keys.fin)
        .arg(&keys.log)
        .arg(cfg.max_len.unwrap_or(0))
        .arg(millis(cfg.max_age))
        .arg(millis(cfg.idle_ttl))
        .arg(millis(Some(cfg.finished_ttl)))
        // Used only if the topic has no entries: a new life gets a new incarnation.
        .arg(sse_core::hub::Incarnation::new().to_string());
    for job in jobs {
        let out = &job.out;
        cmd.arg(&out.body[..])
            .arg(out.key.as_deref().unwrap_or(""))
            .arg(flag(out.terminal))
            .arg(flag(out.must_exist))
            .arg(flag(out.seq_in_body))
            .arg(flag(out.key.is_some()));
    }
    cmd
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Orders `jobs` by topic (stably: each topic's jobs keep their order; topics in the order of
/// their first job) and returns the length of each topic's run.
fn group_by_topic(jobs: &mut [Job]) -> Vec<usize> {
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut sizes: Vec<usize> = Vec::new();
    for job in jobs.iter() {
        let next = sizes.len();
        let g = *index.entry(Arc::clone(&job.out.topic)).or_insert(next);
        match sizes.get_mut(g) {
            Some(n) => *n += 1,
            None => sizes.push(1),
        }
    }
    if sizes.len() > 1 {
        // A stable sort: each topic's jobs keep their order.
        jobs.sort_by_key(|j| index.get(&j.out.topic).copied().unwrap_or(usize::MAX));
    }
    // One script call blocks Redis while it runs: cap its events so that other nodes' blocking
    // reads never wait long behind a big batch. A topic's chunks follow each other in the same
    // pipeline, so its order is kept.
    sizes
        .into_iter()
        .flat_map(|n| {
            let full = n / MAX_EVENTS_PER_CALL;
            let rest = n % MAX_EVENTS_PER_CALL;
            std::iter::repeat_n(MAX_EVENTS_PER_CALL, full).chain((rest > 0).then_some(rest))
        })
        .collect()
}

/// Most events one script call appends (about 0.5 ms of Redis time).
const MAX_EVENTS_PER_CALL: usize = 128;

/// Sends `jobs` as one pipeline (one script call per topic) and answers each. `Err` (the jobs
/// still in `jobs`, unanswered) when the connection failed.
async fn send(ctx: &Ctx, conn: &mut MultiplexedConnection, jobs: &mut Vec<Job>) -> RedisResult<()> {
    let sizes = group_by_topic(jobs);
    let results = pipeline(ctx, conn, jobs, &sizes).await?;
    let mut retry: Vec<Job> = Vec::new();
    let mut retry_sizes = Vec::new();
    let mut it = jobs.drain(..);
    for (&n, r) in sizes.iter().zip(results) {
        let group = it.by_ref().take(n);
        match r {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                retry.extend(group);
                retry_sizes.push(n);
            }
            r => answer_group(ctx, group, r),
        }
    }
    drop(it);
    if !retry.is_empty() {
        // The script cache was emptied (SCRIPT FLUSH) under a live connection: load it again.
        // These publishes did not run, so they are sent again, in their order.
        let sent = async {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(crate::script::PUBLISH)
                .query_async::<String>(&mut *conn)
                .await?;
            pipeline(ctx, conn, &retry, &retry_sizes).await
        }
        .await;
        let results = match sent {
            Ok(r) => r,
            Err(e) => {
                jobs.append(&mut retry);
                return Err(e);
            }
        };
        let mut it = retry.into_iter();
        for (&n, r) in retry_sizes.iter().zip(results) {
            answer_group(ctx, it.by_ref().take(n), r);
        }
    }
    Ok(())
}

async fn pipeline(
    ctx: &Ctx,
    conn: &mut MultiplexedConnection,
    jobs: &[Job],
    sizes: &[usize],
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    let mut rest = jobs;
    for &n in sizes {
        let (group, tail) = rest.split_at(n.min(rest.len()));
        pipe.add_command(script_call(ctx, group));
        rest = tail;
    }
    pipe.ignore_errors().query_async(conn).await
}

/// Answers the jobs of one script call: one answer each, or the call's error for all.
fn answer_group(ctx: &Ctx, jobs: impl Iterator<Item = Job>, r: Result<Value, RedisError>) {
    match r {
        Ok(Value::Array(answers)) => {
            let mut answers = answers.into_iter();
            for job in jobs {
                let r = answers.next().map_or_else(
                    || {
                        Ok(Value::SimpleString(
                            "no answer for this event from the publish script".into(),
                        ))
                    },
                    Ok,
                );
                answer(ctx, job, r);
            }
        }
        Ok(other) => {
            for job in jobs {
                answer(ctx, job, Ok(other.clone()));
            }
        }
        Err(e) => {
            for job in jobs {
                answer(ctx, job, Err(e.clone()));
            }
        }
    }
}

fn answer(ctx: &Ctx, job: Job, r: Result<Value, RedisError>) {
    let res = match r {
        Ok(Value::Int(n)) if n > 0 => Ok(n.unsigned_abs()),
        Ok(Value::Int(-1)) => Err(BackplaneError::finished()),
        Ok(Value::Int(-2)) => Err(BackplaneError::not_found()),
        Ok(v @ (Value::BulkString(_) | Value::SimpleString(_))) => {
            let msg = crate::script::bytes(v).unwrap_or_default();
            Err(BackplaneError::new(format!(
                "redis refused the publish: {}",
                String::from_utf8_lossy(&msg)
            )))
        }
        Ok(other) => Err(BackplaneError::new(format!(
            "unexpected answer from the publish script: {other:?}"
        ))),
        Err(e) => Err(BackplaneError::new(format!(
            "redis refused the publish: {e}"
        ))),
    };
    match &res {
        Ok(_) => ctx.stats.published(),
        Err(e) if e.is_unavailable() => ctx.stats.publish_error(),
        Err(_) => {}
    }
    let _ = job.ack.send(res);
}
