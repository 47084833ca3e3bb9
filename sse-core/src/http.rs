//! Framework-neutral HTTP helpers over the [`http`] crate's types, shared by the adapters.
//!
//! * [`stream_headers`]: the response headers of an event stream.
//! * [`last_event_id`]: the `Last-Event-ID` header, with a `lastEventId` query-parameter fallback
//!   (plain `EventSource` cannot set headers on its first request).
//! * [`negotiate`]: `Accept` negotiation between `text/event-stream` and JSON.
//! * [`status_for`] / [`error_response_parts`]: the HTTP status each subscribe outcome maps to.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use crate::hub::{PublishError, SubscribeError};

/// `text/event-stream`.
pub const EVENT_STREAM: &str = "text/event-stream";

/// Options for the headers of an event-stream response.
#[derive(Debug, Clone)]
#[must_use]
pub struct StreamHeaders {
    cache_control: HeaderValue,
    identity_encoding: bool,
}

impl Default for StreamHeaders {
    fn default() -> Self {
        StreamHeaders {
            cache_control: HeaderValue::from_static("no-cache"),
            identity_encoding: true,
        }
    }
}

impl StreamHeaders {
    /// Replaces the `Cache-Control` value (default `no-cache`).
    pub fn cache_control(mut self, value: HeaderValue) -> Self {
        self.cache_control = value;
        self
    }

    /// Whether to send `Content-Encoding: identity` (default: yes). Compression middleware
    /// (tower-http's `CompressionLayer`, actix's `Compress`) leaves a response alone that
    /// already declares an encoding; a compressor would otherwise hold events back in its
    /// buffer. Turn it off only if nothing between the server and the client compresses.
    pub fn identity_encoding(mut self, send: bool) -> Self {
        self.identity_encoding = send;
        self
    }

    /// The headers, as name/value pairs.
    pub fn pairs(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut pairs = vec![
            (header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM)),
            (header::CACHE_CONTROL, self.cache_control.clone()),
            // nginx and similar proxies buffer responses unless told not to.
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ];
        if self.identity_encoding {
            pairs.push((
                header::CONTENT_ENCODING,
                HeaderValue::from_static("identity"),
            ));
        }
        pairs
    }

    /// Inserts the headers into `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (k, v) in self.pairs() {
            headers.insert(k, v);
        }
    }
}

/// The default event-stream headers: `Content-Type: text/event-stream`, `Cache-Control:
/// no-cache`, `X-Accel-Buffering: no`, `Content-Encoding: identity`.
pub fn stream_headers() -> Vec<(HeaderName, HeaderValue)> {
    StreamHeaders::default().pairs()
}

/// The client's last event id: the `Last-Event-ID` header, else the `lastEventId` query
/// parameter (percent-decoded as a form value by the `form_urlencoded` crate: malformed
/// escapes are kept literally, as browsers do). Empty values count as absent.
///
/// Bytes that are not UTF-8 are replaced with U+FFFD rather than dropped, so that a mangled id
/// is answered like any unknown id (with a `gap`), never as a fresh subscribe.
///
/// ```
/// use http::HeaderMap;
/// use sse_core::http::last_event_id;
///
/// let mut h = HeaderMap::new();
/// assert_eq!(last_event_id(&h, Some("a=1&lastEventId=job%3D7")), Some("job=7".to_owned()));
/// h.insert("last-event-id", "42".parse().unwrap());
/// assert_eq!(last_event_id(&h, Some("lastEventId=7")), Some("42".to_owned()));
/// ```
pub fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(header::HeaderName::from_static("last-event-id")) {
        if !v.is_empty() {
            return Some(String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
    }
    query_param(query?, "lastEventId").filter(|s| !s.is_empty())
}

/// The first value of query parameter `name`, percent-decoded as a form value (`+` as space;
/// malformed escapes kept literally; invalid UTF-8 replaced with U+FFFD).
///
/// ```
/// use sse_core::http::query_param;
/// assert_eq!(query_param("a=%zz&b=x+y", "a").as_deref(), Some("%zz"));
/// assert_eq!(query_param("a=%zz&b=x+y", "b").as_deref(), Some("x y"));
/// assert_eq!(query_param("a=%2B1", "a").as_deref(), Some("+1"));
/// ```
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What a client asked for in its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// `text/event-stream` is preferred.
    EventStream,
    /// JSON (or anything else) is preferred.
    Json,
}

/// Chooses between an event stream and JSON from an `Accept` header, honouring q-values.
/// No header, or one that prefers neither, means JSON; a tie prefers the event stream.
///
/// ```
/// use sse_core::http::{negotiate, Negotiated};
/// assert_eq!(negotiate(Some("text/event-stream")), Negotiated::EventStream);
/// assert_eq!(negotiate(Some("application/json, text/event-stream;q=0.5")), Negotiated::Json);
/// assert_eq!(negotiate(Some("*/*")), Negotiated::Json);
/// assert_eq!(negotiate(None), Negotiated::Json);
/// ```
pub fn negotiate(accept: Option<&str>) -> Negotiated {
    let Some(accept) = accept else {
        return Negotiated::Json;
    };
    let mut sse_q: f32 = 0.0;
    let mut json_q: f32 = 0.0;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            EVENT_STREAM => sse_q = sse_q.max(q),
            "application/json" | "application/*" | "*/*" => json_q = json_q.max(q),
            _ => {}
        }
    }
    if sse_q > 0.0 && sse_q >= json_q {
        Negotiated::EventStream
    } else {
        Negotiated::Json
    }
}

/// Negotiates from a header map (see [`negotiate`]).
pub fn negotiate_headers(headers: &HeaderMap) -> Negotiated {
    negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// The HTTP status a refused subscribe maps to.
pub fn status_for(err: &SubscribeError) -> StatusCode {
    match err {
        SubscribeError::NotFound => StatusCode::NOT_FOUND,
        SubscribeError::Finished => StatusCode::NO_CONTENT,
        SubscribeError::TopicFull { .. }
        | SubscribeError::UserLimit { .. }
        | SubscribeError::TooManyTopics => StatusCode::TOO_MANY_REQUESTS,
        SubscribeError::Unauthenticated => StatusCode::UNAUTHORIZED,
        SubscribeError::Forbidden => StatusCode::FORBIDDEN,
        SubscribeError::NoTopics => StatusCode::BAD_REQUEST,
        SubscribeError::WouldBlock => StatusCode::INTERNAL_SERVER_ERROR,
        SubscribeError::ShuttingDown | SubscribeError::Unavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The HTTP status a failed publish maps to.
pub fn publish_status(err: &PublishError) -> StatusCode {
    match err {
        PublishError::Finished => StatusCode::CONFLICT,
        PublishError::NotFound => StatusCode::NOT_FOUND,
        PublishError::SequenceExhausted => StatusCode::INTERNAL_SERVER_ERROR,
        PublishError::Event(_) => StatusCode::BAD_REQUEST,
        PublishError::TooManyTopics { .. } => StatusCode::TOO_MANY_REQUESTS,
        PublishError::Backplane(_) => StatusCode::SERVICE_UNAVAILABLE,
        PublishError::WouldBlock | PublishError::AckConsumed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs a refused subscribe once, where an adapter turns it into a response: a `tracing`
/// event `subscribe refused` with the fields `status` (the HTTP status) and `reason` (the
/// error's message; never a user key, a token or a client's `Last-Event-ID`). At `info` for
/// 429 and 5xx (limits reached, overload, shutdown, backplane outage), at `debug` for the
/// others (204 finished, 404, 401, 403, 400), which are a client's business.
///
/// `sse-axum`, `sse-actix` and `sse-hyper` call it as they build a refusal's response;
/// call it yourself if you build one by other means.
pub fn log_refusal(err: &SubscribeError, status: StatusCode) {
    let code = status.as_u16();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        tracing::info!(status = code, reason = %err, "subscribe refused");
    } else {
        tracing::debug!(status = code, reason = %err, "subscribe refused");
    }
}

/// Status, headers and a one-line plain-text body for a refused subscribe. A 204 has no body;
/// a 401 carries `WWW-Authenticate: Bearer`.
pub fn error_response_parts(
    err: &SubscribeError,
) -> (StatusCode, Vec<(HeaderName, HeaderValue)>, String) {
    let status = status_for(err);
    let mut headers = Vec::new();
    if status == StatusCode::NO_CONTENT {
        return (status, headers, String::new());
    }
    headers.push((
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    ));
    if status == StatusCode::UNAUTHORIZED {
        headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")));
    }
    (status, headers, format!("{err}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_fallback_and_empty_header() {
        let mut h = HeaderMap::new();
        h.insert("last-event-id", HeaderValue::from_static(""));
        assert_eq!(last_event_id(&h, Some("lastEventId=5")), Some("5".into()));
        assert_eq!(last_event_id(&h, Some("x=1")), None);
        assert_eq!(last_event_id(&h, None), None);
    }

    #[test]
    fn negotiation_q_values() {
        assert_eq!(
            negotiate(Some("text/event-stream;q=0.9, application/json;q=0.8")),
            Negotiated::EventStream
        );
        assert_eq!(negotiate(Some("text/event-stream;q=0")), Negotiated::Json);
        assert_eq!(negotiate(Some("text/html")), Negotiated::Json);
    }

    #[test]
    fn statuses() {
        assert_eq!(
            status_for(&SubscribeError::Finished),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            status_for(&SubscribeError::UserLimit { limit: 1 }),
            StatusCode::TOO_MANY_REQUESTS
        );
        let (s, h, b) = error_response_parts(&SubscribeError::Unauthenticated);
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(h.iter().any(|(k, _)| k == header::WWW_AUTHENTICATE));
        assert_eq!(b, "authentication required\n");
    }
}
