//! Publishing connections: each owns one connection and a queue, and sends what waits in its
//! queue as one pipeline of script calls.

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

/// The loop of one publishing connection. Ends when the backplane is dropped.
pub(crate) async fn run(ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Job>) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    let mut retry_at = Instant::now();
    let max_batch = ctx.config.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let c = match conn.as_mut() {
            Some(c) => c,
            None if Instant::now() < retry_at => {
                fail(&ctx, batch.drain(..), "redis unreachable (reconnecting)");
                continue;
            }
            None => match connect(&ctx, Some(ctx.config.response_timeout)).await {
                Ok(c) => {
                    backoff = MIN_BACKOFF;
                    ctx.stats.reconnect();
                    conn.insert(c)
                }
                Err(e) => {
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(ctx.config.max_backoff.max(MIN_BACKOFF));
                    fail(&ctx, batch.drain(..), &format!("redis unreachable: {e}"));
                    continue;
                }
            },
        };
        if let Err(e) = send(&ctx, c, &mut batch).await {
            // The connection is gone (or timed out): its fate is unknown, so a fresh one next
            // time, at once (Redis restarted) and then with backoff.
            conn = None;
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

fn script_call(ctx: &Ctx, out: &Outgoing) -> redis::Cmd {
    let cfg = &ctx.config;
    let keys = cfg.keys(&out.topic);
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&*ctx.script_sha)
        .arg(3)
        .arg(&keys.seq)
        .arg(&keys.fin)
        .arg(&keys.log)
        .arg(&out.body[..])
        .arg(out.key.as_deref().unwrap_or(""))
        .arg(flag(out.terminal))
        .arg(flag(out.must_exist))
        .arg(flag(out.seq_in_body))
        .arg(cfg.max_len.unwrap_or(0))
        .arg(millis(cfg.max_age))
        .arg(millis(cfg.idle_ttl))
        .arg(millis(Some(cfg.finished_ttl)))
        .arg(flag(out.key.is_some()));
    cmd
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Sends `jobs` as one pipeline and answers each. `Err` (nothing answered) when the
/// connection failed.
async fn send(ctx: &Ctx, conn: &mut MultiplexedConnection, jobs: &mut Vec<Job>) -> RedisResult<()> {
    let results = pipeline(ctx, conn, jobs.iter()).await?;
    let mut retry = Vec::new();
    for (job, r) in jobs.drain(..).zip(results) {
        match r {
            Err(e) if e.code() == Some("NOSCRIPT") => retry.push(job),
            r => answer(ctx, job, r),
        }
    }
    if !retry.is_empty() {
        // The script cache was emptied (SCRIPT FLUSH) under a live connection: load it again.
        // These publishes did not run, so they are sent again, in their order.
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(crate::script::PUBLISH)
            .query_async::<String>(conn)
            .await?;
        let results = pipeline(ctx, conn, retry.iter()).await?;
        for (job, r) in retry.into_iter().zip(results) {
            answer(ctx, job, r);
        }
    }
    Ok(())
}

async fn pipeline<'a>(
    ctx: &Ctx,
    conn: &mut MultiplexedConnection,
    jobs: impl Iterator<Item = &'a Job>,
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    for job in jobs {
        pipe.add_command(script_call(ctx, &job.out));
    }
    pipe.ignore_errors().query_async(conn).await
}

fn answer(ctx: &Ctx, job: Job, r: Result<Value, RedisError>) {
    let res = match r {
        Ok(Value::Int(n)) if n > 0 => Ok(n.unsigned_abs()),
        Ok(Value::Int(-1)) => Err(BackplaneError::finished()),
        Ok(Value::Int(-2)) => Err(BackplaneError::not_found()),
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
