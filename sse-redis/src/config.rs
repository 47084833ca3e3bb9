//! [`RedisConfig`]: key prefix, history bounds, TTLs, pool size and timeouts.

use std::time::Duration;

/// Settings of a [`RedisBackplane`](crate::RedisBackplane). Every node of a cluster must use
/// the same `prefix` and history bounds.
///
/// ```
/// use std::time::Duration;
/// use sse_redis::RedisConfig;
///
/// let config = RedisConfig::default()
///     .prefix("myapp:sse:")
///     .max_len(Some(1024))
///     .max_age(Some(Duration::from_secs(3600)))
///     .pool_size(2);
/// # drop(config);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Prefix of every key (default `sse:`). A topic `T` uses `{prefix}{T}:seq` (its sequence),
    /// `{prefix}{T}:fin` (the finished marker) and `{prefix}{T}:log` (the stream), with `{T}` a
    /// hash tag so that a topic's keys share one Redis Cluster slot; and `{prefix}epoch`, a
    /// marker the nodes set once and watch, so that they notice when Redis lost its data.
    pub prefix: String,
    /// Events kept per topic in Redis (`XADD MAXLEN ~`, so at least this many; `None`:
    /// unbounded; default 100,000). It bounds two things: a client resuming on any node finds
    /// what the node that served it could replay only if this is at least the hubs'
    /// [`TopicConfig::history_len`](sse_core::hub::TopicConfig); and a node that reads a burst
    /// published on another node more slowly than it was published (its subscribers set its
    /// pace, as they set an in-memory publisher's) catches up without loss only while Redis
    /// still holds what it has not read. Size it for the longest burst a topic gets.
    pub max_len: Option<usize>,
    /// Oldest event kept per topic in Redis (`None`: no age bound). Trimmed on publish.
    pub max_age: Option<Duration>,
    /// A topic's keys expire this long after its last publish (`None`: never). Must exceed the
    /// longest pause between two publishes of a live topic: an expired topic starts again at 1.
    pub idle_ttl: Option<Duration>,
    /// A finished topic's keys expire this long after its terminal event.
    pub finished_ttl: Duration,
    /// Connections that publish (each pipelines the publishes of the topics it serves; a
    /// topic always uses the same one, so its publishes keep their order). At least 1.
    pub pool_size: usize,
    /// Publishes waiting for a connection, per connection, before a publish fails at once.
    pub queue: usize,
    /// Largest pipeline of publishes sent at once.
    pub max_batch: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for an answer to a publish or a read of history.
    pub response_timeout: Duration,
    /// How long one blocking read (`XREAD BLOCK`) waits for new events before it is renewed.
    pub read_block: Duration,
    /// Most entries one read returns per topic.
    pub read_count: usize,
    /// Longest wait between two reconnection attempts (the wait starts at 50 ms and doubles).
    pub max_backoff: Duration,
    /// For `rediss://` URLs: a PEM certificate (or bundle) to trust in addition to the
    /// operating system's roots, for a Redis whose certificate a private CA signed (`None`: the
    /// system's roots only).
    pub tls_root_certificate: Option<Vec<u8>>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: "sse:".into(),
            max_len: Some(100_000),
            max_age: Some(Duration::from_secs(3600)),
            idle_ttl: Some(Duration::from_secs(24 * 3600)),
            finished_ttl: Duration::from_secs(300),
            pool_size: 2,
            queue: 65_536,
            max_batch: 512,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            read_block: Duration::from_secs(2),
            read_count: 1024,
            max_backoff: Duration::from_secs(1),
            tls_root_certificate: None,
        }
    }
}

impl RedisConfig {
    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the events kept per topic.
    pub fn max_len(mut self, events: Option<usize>) -> Self {
        self.max_len = events.map(|n| n.max(1));
        self
    }

    /// Sets the oldest event kept per topic.
    pub fn max_age(mut self, age: Option<Duration>) -> Self {
        self.max_age = age;
        self
    }

    /// Sets when an idle topic's keys expire.
    pub fn idle_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// Sets when a finished topic's keys expire.
    pub fn finished_ttl(mut self, ttl: Duration) -> Self {
        self.finished_ttl = ttl;
        self
    }

    /// Sets the number of publishing connections (at least 1).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Sets the connect and response timeouts.
    pub fn timeouts(mut self, connect: Duration, response: Duration) -> Self {
        self.connect_timeout = connect;
        self.response_timeout = response;
        self
    }

    /// Sets the longest wait between reconnection attempts.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Trusts the PEM certificate(s) `pem` for `rediss://` connections (a private CA), in
    /// addition to the operating system's roots.
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate = Some(pem.into());
        self
    }

    pub(crate) fn keys(&self, topic: &str) -> Keys {
        let p = &self.prefix;
        Keys {
            seq: format!("{p}{{{topic}}}:seq"),
            fin: format!("{p}{{{topic}}}:fin"),
            log: format!("{p}{{{topic}}}:log"),
        }
    }
}

/// The Redis keys of one topic.
pub(crate) struct Keys {
    pub(crate) seq: String,
    pub(crate) fin: String,
    pub(crate) log: String,
}

pub(crate) fn millis(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}
