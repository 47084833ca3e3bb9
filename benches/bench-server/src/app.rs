//! The protocol, independent of the HTTP front end: a request in, a [`Reply`] out.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use sse_core::http::{publish_status, query_param};
use sse_core::hub::{PublishAck, PublishError, SubscribeOptions, Topic};
use sse_core::{Event, Hub, SseBody, Subscription};
use sse_hyper::SseResponseBody;
use sse_redis::RedisBackplane;

use super::{policy_name, Config};

/// Most events one `POST /pub` may ask for.
pub const MAX_N: u64 = 10_000_000;
/// Largest payload one `POST /pub` may ask for, in bytes.
pub const MAX_SIZE: usize = 1 << 20;
/// A publisher yields to the runtime at least every this many events, so that one huge
/// `POST /pub` cannot starve the other connections of a single-threaded server.
const MAX_STRIDE: usize = 4096;
/// Publishes of one `POST /pub` in flight to the backplane at once (pipelined; far below the
/// backplane's queue, so that one big POST does not make other publishes fail).
const BACKPLANE_WINDOW: usize = 1024;

/// Sent with every response, so that pages from any origin (a browser test page) can read
/// the streams and the replies.
pub(crate) const CORS: (&str, &str) = ("access-control-allow-origin", "*");

/// Sent with the answer to a CORS preflight (`OPTIONS`).
pub(crate) const PREFLIGHT: [(&str, &str); 3] = [
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    (
        "access-control-allow-headers",
        "last-event-id, cache-control, content-type",
    ),
    ("access-control-max-age", "86400"),
];

/// What a front end hands to [`App::handle`].
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    /// The `Last-Event-ID` header, else the `lastEventId` query parameter.
    pub(crate) last_event_id: Option<String>,
}

/// What a front end sends back.
pub(crate) enum Reply {
    /// `200`, [`sse_core::http::stream_headers`], and the body (boxed: a body is several
    /// hundred bytes, the other replies a few dozen).
    Stream(Box<Body>),
    /// `204` to a CORS preflight: [`CORS`] and [`PREFLIGHT`] headers.
    Preflight,
    /// A complete response (`content_type` is ignored when `body` is empty).
    Full {
        status: StatusCode,
        content_type: &'static str,
        body: Bytes,
    },
}

impl Reply {
    fn text(status: StatusCode, msg: impl Into<String>) -> Reply {
        let mut s: String = msg.into();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        Reply::Full {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(s),
        }
    }

    fn bad(msg: impl Into<String>) -> Reply {
        Reply::text(StatusCode::BAD_REQUEST, msg)
    }
}

/// The response body of a stream.
pub(crate) type Body = SseBody<Subscription>;

/// The shared state of a server: the hub and the settings /stats reports.
pub(crate) struct App {
    hub: Hub,
    /// The Redis backplane, when this server is a node of a cluster.
    backplane: Option<Arc<RedisBackplane>>,
    policy: &'static str,
    queue: usize,
    history: usize,
    frontend: &'static str,
    stride: usize,
}

impl App {
    pub(crate) fn new(hub: Hub, backplane: Option<Arc<RedisBackplane>>, config: &Config) -> App {
        App {
            hub,
            backplane,
            policy: policy_name(config.policy),
            queue: config.queue,
            history: config.history,
            frontend: config.frontend.as_str(),
            // Half the smaller of the subscriber bound and the history: subscribers that keep
            // up get to run before they could fall behind (the publisher never waits for them:
            // it only lets the runtime run once).
            stride: (config.queue.min(config.history) / 2).clamp(1, MAX_STRIDE),
        }
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(crate) async fn handle(&self, req: Request<'_>) -> Reply {
        let path = req.path;
        if let Some(topic) = path.strip_prefix("/sub/") {
            return match (req.method, topic_name(topic)) {
                (_, None) => not_found(path),
                ("GET", Some(t)) => self.subscribe(t, req.last_event_id).await,
                ("OPTIONS", Some(_)) => Reply::Preflight,
                _ => method_not_allowed(req.method, path),
            };
        }
        if let Some(topic) = path.strip_prefix("/pub/") {
            return match (req.method, topic_name(topic)) {
                (_, None) => not_found(path),
                ("POST", Some(t)) => self.publish(t, req.query).await,
                ("OPTIONS", Some(_)) => Reply::Preflight,
                _ => method_not_allowed(req.method, path),
            };
        }
        if let Some(topic) = path.strip_prefix("/finish/") {
            return match (req.method, topic_name(topic)) {
                (_, None) => not_found(path),
                ("POST", Some(t)) => self.finish(t, req.query).await,
                ("OPTIONS", Some(_)) => Reply::Preflight,
                _ => method_not_allowed(req.method, path),
            };
        }
        if path == "/stats" {
            return match req.method {
                "GET" => self.stats(),
                "OPTIONS" => Reply::Preflight,
                _ => method_not_allowed(req.method, path),
            };
        }
        not_found(path)
    }

    /// What `GET /sub/{topic}` subscribes with; `None` for a topic path segment that is not a
    /// topic name (the front ends then answer through [`App::handle`]).
    pub(crate) fn subscribe_options(
        &self,
        topic: &str,
        last_event_id: Option<String>,
    ) -> Option<SubscribeOptions> {
        let topic = topic_name(topic)?;
        Some(
            SubscribeOptions::topic(topic)
                .last_event_id(last_event_id)
                .create_if_missing(true),
        )
    }

    async fn subscribe(&self, topic: &str, last_event_id: Option<String>) -> Reply {
        let Some(opts) = self.subscribe_options(topic, last_event_id) else {
            return not_found(topic);
        };
        // With a backplane, the subscribe first loads what this node lacks (503 when Redis is
        // down and this node cannot serve the client's position).
        let (parts, body) = sse_hyper::subscribe(&self.hub, opts).await.into_parts();
        match body {
            SseResponseBody::Stream(body) => Reply::Stream(Box::new(body)),
            SseResponseBody::Full(full) => {
                let body = match full.collect().await {
                    Ok(c) => c.to_bytes(),
                    Err(never) => match never {},
                };
                Reply::text_or_empty(parts.status, String::from_utf8_lossy(&body).into_owned())
            }
        }
    }

    async fn publish(&self, name: &str, query: Option<&str>) -> Reply {
        let n = match number(query, "n", MAX_N) {
            Ok(n) => n,
            Err(msg) => return Reply::bad(msg),
        };
        let size = match number(query, "size", MAX_SIZE as u64) {
            // At most MAX_SIZE, so it fits.
            Ok(s) => s as usize,
            Err(msg) => return Reply::bad(msg),
        };
        let event = query.and_then(|q| query_param(q, "event"));
        let event = event.as_deref().filter(|e| !e.is_empty());
        let key = query.and_then(|q| query_param(q, "key"));
        let key = key.as_deref().filter(|k| !k.is_empty());
        let topic = match self.hub.topic(name) {
            Ok(t) => t,
            Err(e) => return publish_error(&e, 0, n),
        };
        if topic.is_finished() {
            return publish_error(&PublishError::Finished, 0, n);
        }
        let pad = "x".repeat(size);
        let pad = pad.as_str();
        if self.backplane.is_some() {
            return publish_through_backplane(&topic, n, size, pad, event, key).await;
        }
        let mut payload = String::with_capacity(size.max(64));
        for i in 0..n {
            if i > 0 && i % self.stride as u64 == 0 {
                tokio::task::yield_now().await;
            }
            let buf = &mut payload;
            let res = topic.publish_with(key, move |seq| {
                // Moving the borrow in makes the closure FnOnce, so the event may borrow it.
                let buf: &mut String = buf;
                write_payload(buf, seq, size, pad);
                let buf: &String = buf;
                let e = Event::new().data(buf.as_str());
                match event {
                    Some(name) => e.event(name),
                    None => e,
                }
            });
            // In memory the ack is ready at once.
            if let Err(e) = res.await {
                return publish_error(&e, i, n);
            }
        }
        Reply::text(StatusCode::OK, n.to_string())
    }

    async fn finish(&self, name: &str, query: Option<&str>) -> Reply {
        let status = query.and_then(|q| query_param(q, "status"));
        let status = match status.as_deref() {
            Some(s @ ("completed" | "failed")) => s,
            Some(other) => {
                return Reply::bad(format!(
                    "unknown status {other:?}: expected completed or failed"
                ))
            }
            None => return Reply::bad("missing status: expected status=completed or failed"),
        };
        let topic = match self.hub.topic(name) {
            Ok(t) => t,
            Err(e) => return publish_error(&e, 0, 1),
        };
        let data = format!("{{\"status\":\"{status}\"}}");
        let ev = Event::new().event(status).data(data);
        // With a backplane: stored in Redis (on every node's streams) before the answer.
        match topic.finish(ev).await {
            Ok(id) => Reply::text(StatusCode::OK, id.to_string()),
            Err(PublishError::Finished) => Reply::text(
                StatusCode::CONFLICT,
                "topic is already finished: no more events can be published",
            ),
            Err(e) => publish_error(&e, 0, 1),
        }
    }

    fn stats(&self) -> Reply {
        let m = self.hub.metrics();
        let mut v = match serde_json::to_value(&m) {
            Ok(v) => v,
            Err(e) => {
                return Reply::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot serialize metrics: {e}"),
                )
            }
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("frontend".into(), self.frontend.into());
            o.insert("policy".into(), self.policy.into());
            o.insert("queue".into(), self.queue.into());
            o.insert("history".into(), self.history.into());
            if let Some(bp) = &self.backplane {
                let b = bp.stats();
                // Per node: `published` counts what this node published (stored in Redis),
                // `applied` what it applied to its own rings (read from Redis, whoever
                // published it), `delivered` what it wrote to its own subscribers.
                o.insert("applied".into(), m.published.into());
                o.insert("published".into(), b.published.into());
                o.insert("read_from_backplane".into(), b.events_read.into());
                o.insert(
                    "backplane".into(),
                    serde_json::json!({
                        "kind": "redis",
                        "published": b.published,
                        "publish_errors": b.publish_errors,
                        "events_read": b.events_read,
                        "reads": b.reads,
                        "connects": b.connects,
                        "topics_read": b.topics_read,
                    }),
                );
            }
        }
        let mut body = v.to_string();
        body.push('\n');
        Reply::Full {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(body),
        }
    }
}

impl Reply {
    fn text_or_empty(status: StatusCode, body: String) -> Reply {
        if body.is_empty() {
            Reply::Full {
                status,
                content_type: "text/plain; charset=utf-8",
                body: Bytes::new(),
            }
        } else {
            Reply::text(status, body)
        }
    }
}

/// `POST /pub` on a node of a cluster: the events go to the backplane pipelined (at most
/// [`BACKPLANE_WINDOW`] in flight), and the answer is `200` only once every one is stored.
async fn publish_through_backplane(
    topic: &Topic,
    n: u64,
    size: usize,
    pad: &str,
    event: Option<&str>,
    key: Option<&str>,
) -> Reply {
    let mut payload = String::with_capacity(size.max(64));
    let mut acks: VecDeque<PublishAck> = VecDeque::with_capacity(BACKPLANE_WINDOW.min(n as usize));
    let mut stored = 0u64;
    for _ in 0..n {
        if acks.len() >= BACKPLANE_WINDOW {
            if let Some(ack) = acks.pop_front() {
                if let Err(e) = ack.await {
                    return backplane_publish_error(&e, stored, n);
                }
                stored += 1;
            }
        }
        let buf = &mut payload;
        // `seq` is the backplane's placeholder: the sequence Redis assigns replaces it, so the
        // payload's `seq` equals the id here too.
        acks.push_back(topic.publish_with(key, move |seq| {
            let buf: &mut String = buf;
            write_payload(buf, seq, size, pad);
            let buf: &String = buf;
            let e = Event::new().data(buf.as_str());
            match event {
                Some(name) => e.event(name),
                None => e,
            }
        }));
    }
    while let Some(ack) = acks.pop_front() {
        if let Err(e) = ack.await {
            return backplane_publish_error(&e, stored, n);
        }
        stored += 1;
    }
    Reply::text(StatusCode::OK, n.to_string())
}

fn backplane_publish_error(e: &PublishError, stored: u64, n: u64) -> Reply {
    match e {
        PublishError::Backplane(b) => Reply::text(
            publish_status(e),
            one_line(&format!(
                "backplane unavailable after {stored} of {n} events were stored: {b}"
            )),
        ),
        e => publish_error(e, stored, n),
    }
}

/// `s` with its line breaks replaced by spaces (error replies are one line).
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Evicts expired topics now and then (the hub also sweeps lazily on subscribe).
pub(crate) async fn sweeper(hub: Hub) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        hub.evict_expired();
    }
}

/// A topic path segment: non-empty, no further `/`.
fn topic_name(s: &str) -> Option<&str> {
    (!s.is_empty() && !s.contains('/')).then_some(s)
}

fn not_found(path: &str) -> Reply {
    Reply::text(
        StatusCode::NOT_FOUND,
        format!(
            "no such path {:?}: expected /sub/TOPIC, /pub/TOPIC, /finish/TOPIC or /stats",
            path.escape_debug().to_string()
        ),
    )
}

fn method_not_allowed(method: &str, path: &str) -> Reply {
    let allowed = if path == "/stats" || path.starts_with("/sub/") {
        "GET"
    } else {
        "POST"
    };
    Reply::text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} not allowed on {}: use {allowed}",
            method.escape_debug(),
            path.escape_debug()
        ),
    )
}

fn publish_error(e: &PublishError, done: u64, n: u64) -> Reply {
    let status = publish_status(e);
    let msg = match e {
        PublishError::Finished if done == 0 => {
            "topic is finished: no more events can be published".to_owned()
        }
        PublishError::Finished => {
            format!(
                "topic was finished after {done} of {n} events: no more events can be published"
            )
        }
        PublishError::Event(ev) => format!("invalid event: {ev}"),
        other => one_line(&other.to_string()),
    };
    Reply::text(status, msg)
}

/// A required non-negative integer query parameter, at most `max`.
fn number(query: Option<&str>, name: &str, max: u64) -> Result<u64, String> {
    let Some(v) = query.and_then(|q| query_param(q, name)) else {
        return Err(format!("missing {name}: expected ?n=COUNT&size=BYTES"));
    };
    match v.parse::<u64>() {
        Ok(x) if x <= max => Ok(x),
        Ok(_) => Err(format!("{name}={v} is too large: at most {max}")),
        Err(_) => Err(format!(
            "{name}={:?} is not a non-negative integer",
            v.escape_debug().to_string()
        )),
    }
}

/// `{"seq":K,"ts":NANOS,"pad":"xxx…"}`, padded to `size` bytes when `size` leaves room.
fn write_payload(out: &mut String, seq: u64, size: usize, pad: &str) {
    out.clear();
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let _ = write!(out, "{{\"seq\":{seq},\"ts\":{ts},\"pad\":\"");
    let fill = size.saturating_sub(out.len() + 2).min(pad.len());
    out.push_str(&pad[..fill]);
    out.push_str("\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_padded_to_size() {
        let mut s = String::new();
        let pad = "x".repeat(1000);
        write_payload(&mut s, 7, 100, &pad);
        assert_eq!(s.len(), 100);
        assert!(s.starts_with("{\"seq\":7,\"ts\":"));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["seq"], 7);
        write_payload(&mut s, 7, 0, &pad);
        assert!(s.ends_with("\"pad\":\"\"}"));
    }
}
