//! [`EventSource`]: one reconnecting event stream, read as [`Update`]s or [`Event`]s.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use sse_core::{DecodedEvent, Decoder, EventRef};
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::request::LAST_EVENT_ID;

/// One event, borrowed from its [`EventSource`] until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a>(EventRef<'a>);

impl<'a> Event<'a> {
    /// The event type: the `event` field, or `"message"` when there was none.
    pub fn event_type(&self) -> &'a str {
        self.0.event
    }

    /// The data: the event's `data` lines joined by LF.
    pub fn data(&self) -> &'a str {
        self.0.data
    }

    /// The last event id when this event arrived: its own `id` field, or else the latest one
    /// before it (empty if none). This is what a reconnection sends as `Last-Event-ID`.
    pub fn id(&self) -> &'a str {
        self.0.last_event_id
    }

    /// The reconnection time set by a `retry` field in this event's block of lines, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.0.retry
    }

    /// The comment lines of this event's block of lines.
    pub fn comments(&self) -> &'a [String] {
        self.0.comments
    }

    /// The data deserialized from JSON. `T` may borrow from the data (`&'a str` fields, for
    /// strings without escapes).
    pub fn json<T: Deserialize<'a>>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.data)
    }

    /// The decoder's view of the event.
    pub fn as_event_ref(&self) -> EventRef<'a> {
        self.0
    }

    /// An owned copy of the event, to keep past the next read.
    pub fn to_decoded(&self) -> DecodedEvent {
        self.0.to_decoded()
    }
}

/// What reading an [`EventSource`] brings: a connection opened, an event, or a reconnection
/// about to be made.
#[derive(Debug)]
pub enum Update<'a> {
    /// A response `200 OK` with `Content-Type: text/event-stream` arrived: the stream is open.
    Connected(Connected<'a>),
    /// An event.
    Event(Event<'a>),
    /// The connection ended, cleanly or not; the next read waits [`Reconnect::delay`], then
    /// reconnects.
    Reconnecting(Reconnect<'a>),
}

/// An open connection ([`Update::Connected`]).
#[derive(Debug, Clone, Copy)]
pub struct Connected<'a> {
    /// The URL that answered (after redirects).
    pub url: &'a Url,
    /// The response headers.
    pub headers: &'a HeaderMap,
}

/// A reconnection about to be made ([`Update::Reconnecting`]).
#[derive(Debug, Clone, Copy)]
pub struct Reconnect<'a> {
    /// How long the client waits before reconnecting (see [`Backoff`]).
    pub delay: Duration,
    /// Why the connection ended: `None` when the stream ended cleanly, else the connection
    /// failure ([`Error::Request`], [`Error::Stream`] or [`Error::IdleTimeout`]).
    pub cause: Option<&'a Error>,
    /// The `Last-Event-ID` the reconnection sends (empty: none).
    pub last_event_id: &'a str,
    /// Reconnections in a row without an event, this one included (1 after a connection that
    /// delivered events).
    pub attempt: u64,
}

/// Everything an event source needs to (re)connect.
pub(crate) struct Settings {
    pub(crate) http: reqwest::Client,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) retry: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_retries: Option<u64>,
}

/// The idle timer of an open connection: a deadline pushed back by every byte received. The
/// timer is moved only when it fires early, not at every chunk.
struct Idle {
    timer: Pin<Box<Sleep>>,
    last_byte: Instant,
    timeout: Duration,
}

enum State {
    /// The next read sends the request.
    Connect,
    /// The stream is open.
    Open {
        response: reqwest::Response,
        idle: Option<Idle>,
    },
    /// The next read waits until then, and reconnects.
    Wait(Instant),
    /// Stopped for good: 204, an error returned, or closed by the user.
    Closed,
}

/// What one read of the body gave.
enum Read {
    Chunk(Bytes),
    End,
    Failed(reqwest::Error),
    Idle,
}

/// What [`EventSource::advance`] came to.
enum Step {
    Event,
    Connected,
    Reconnecting(Duration),
    Stopped,
}

/// What a request got.
enum Answer {
    Stream(reqwest::Response),
    NoContent,
}

/// A reconnecting stream of events from one endpoint, made by
/// [`RequestBuilder::open`](crate::RequestBuilder::open).
///
/// Read it with [`EventSource::next_event`] (events only) or [`EventSource::next`] (also
/// connections and reconnections). Reading connects, decodes the `text/event-stream` body with
/// [`sse_core::Decoder`] and, when the stream ends or the connection fails, waits and
/// reconnects with `Last-Event-ID`, as a browser's `EventSource` does:
///
/// * `204 No Content` stops the source for good (`Ok(None)`).
/// * Another status than 200, or a `Content-Type` other than `text/event-stream`, stops it with
///   [`Error::Status`] or [`Error::ContentType`].
/// * The wait is the server's latest `retry:` (the request's default until then), grown with
///   [`Backoff`] while reconnections deliver no event.
/// * With [`RequestBuilder::max_retries`](crate::RequestBuilder::max_retries), it stops with [`Error::RetriesExhausted`] when that
///   many reconnections in a row brought no event.
///
/// After `Ok(None)` or an error, every read returns `Ok(None)`. Reads are cancel-safe: a read
/// dropped before it completes (in a `select!`, or under a timeout) loses no event. Dropping the
/// event source closes its connection.
pub struct EventSource {
    settings: Settings,
    decoder: Decoder,
    state: State,
    /// Reconnections since the last event delivered.
    retries: u64,
    /// The URL and headers of the open connection's response.
    connected_url: Url,
    connected_headers: HeaderMap,
    /// The cause of the latest reconnection.
    cause: Option<Error>,
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Connect => "connect",
            State::Open { .. } => "open",
            State::Wait(_) => "waiting to reconnect",
            State::Closed => "closed",
        };
        f.debug_struct("EventSource")
            .field("method", &self.settings.method)
            .field("url", &self.settings.url)
            .field("state", &state)
            .field("last_event_id", &self.decoder.last_event_id())
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl EventSource {
    pub(crate) fn new(settings: Settings, last_event_id: Option<&str>) -> Self {
        let decoder = match last_event_id {
            Some(id) => Decoder::with_last_event_id(id),
            None => Decoder::new(),
        };
        EventSource {
            connected_url: settings.url.clone(),
            settings,
            decoder,
            state: State::Connect,
            retries: 0,
            connected_headers: HeaderMap::new(),
            cause: None,
        }
    }

    /// The next event, connecting and reconnecting as needed; `Ok(None)` once the server
    /// answered `204 No Content`.
    pub async fn next_event(&mut self) -> Result<Option<Event<'_>>, Error> {
        loop {
            match self.advance().await? {
                Step::Stopped => return Ok(None),
                Step::Event => return Ok(self.take_event()),
                Step::Connected | Step::Reconnecting(_) => {}
            }
        }
    }

    /// The next update: a connection opened, an event, or a reconnection about to be made;
    /// `Ok(None)` once the server answered `204 No Content`.
    pub async fn next(&mut self) -> Result<Option<Update<'_>>, Error> {
        Ok(match self.advance().await? {
            Step::Stopped => None,
            Step::Event => self.take_event().map(Update::Event),
            Step::Connected => Some(Update::Connected(Connected {
                url: &self.connected_url,
                headers: &self.connected_headers,
            })),
            Step::Reconnecting(delay) => Some(Update::Reconnecting(Reconnect {
                delay,
                cause: self.cause.as_ref(),
                last_event_id: self.decoder.last_event_id(),
                attempt: self.retries,
            })),
        })
    }

    /// Lends the event that [`EventSource::advance`] found queued.
    fn take_event(&mut self) -> Option<Event<'_>> {
        self.retries = 0;
        self.decoder.next_event_ref().map(Event)
    }

    /// Connects, reads and reconnects until something happens. On [`Step::Event`] an event is
    /// queued in the decoder.
    async fn advance(&mut self) -> Result<Step, Error> {
        loop {
            if self.decoder.queued_events() > 0 {
                return Ok(Step::Event);
            }
            let read = match &mut self.state {
                State::Closed => return Ok(Step::Stopped),
                State::Wait(until) => {
                    tokio::time::sleep_until(*until).await;
                    self.state = State::Connect;
                    continue;
                }
                State::Connect => {
                    return match self.connect().await {
                        Ok(Answer::Stream(response)) => {
                            self.connected_url.clone_from(response.url());
                            self.connected_headers.clone_from(response.headers());
                            let idle = self.settings.idle_timeout.map(|timeout| Idle {
                                timer: Box::pin(tokio::time::sleep(timeout)),
                                last_byte: Instant::now(),
                                timeout,
                            });
                            self.state = State::Open { response, idle };
                            Ok(Step::Connected)
                        }
                        Ok(Answer::NoContent) => {
                            self.state = State::Closed;
                            Ok(Step::Stopped)
                        }
                        Err(e) if e.is_connection() => self.reconnect(Some(e)),
                        Err(e) => {
                            self.state = State::Closed;
                            Err(e)
                        }
                    };
                }
                State::Open { response, idle } => read_chunk(response, idle).await,
            };
            match read {
                Read::Chunk(chunk) => self.decoder.feed(&chunk),
                Read::End => {
                    self.decoder.finish();
                    return self.reconnect(None);
                }
                Read::Failed(source) => {
                    self.decoder.finish();
                    let url = self.connected_url.clone();
                    return self.reconnect(Some(Error::Stream { url, source }));
                }
                Read::Idle => {
                    self.decoder.finish();
                    let error = Error::IdleTimeout {
                        url: self.connected_url.clone(),
                        timeout: self.settings.idle_timeout.unwrap_or_default(),
                    };
                    return self.reconnect(Some(error));
                }
            }
        }
    }

    /// Closes the connection and stops the source: later reads return `Ok(None)`.
    pub fn close(&mut self) {
        self.state = State::Closed;
    }

    /// The last event id: what the next reconnection sends as `Last-Event-ID` (empty: none).
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The reconnection time: the server's latest `retry:`, or the request's default.
    pub fn retry(&self) -> Duration {
        self.decoder.retry().unwrap_or(self.settings.retry)
    }

    /// The URL requested.
    pub fn url(&self) -> &Url {
        &self.settings.url
    }

    /// Sends the request and checks the response head.
    async fn connect(&mut self) -> Result<Answer, Error> {
        let s = &self.settings;
        let mut request = s
            .http
            .request(s.method.clone(), s.url.clone())
            .headers(s.headers.clone());
        if let Some(body) = &s.body {
            request = request.body(body.clone());
        }
        let id = self.decoder.last_event_id();
        if !id.is_empty() {
            // An id with control characters cannot be a header value; it is then not sent,
            // as the stream cannot be resumed by id anyway.
            if let Ok(value) = HeaderValue::from_bytes(id.as_bytes()) {
                request = request.header(LAST_EVENT_ID, value);
            }
        }
        let sent = match s.idle_timeout {
            Some(timeout) => tokio::time::timeout(timeout, request.send())
                .await
                .map_err(|_| Error::IdleTimeout {
                    url: s.url.clone(),
                    timeout,
                })?,
            None => request.send().await,
        };
        let response = sent.map_err(|source| Error::Request {
            url: s.url.clone(),
            source,
        })?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NO_CONTENT => return Ok(Answer::NoContent),
            status => {
                return Err(Error::Status {
                    url: response.url().clone(),
                    status,
                })
            }
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_event_stream) {
            return Err(Error::ContentType {
                url: response.url().clone(),
                content_type: content_type
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            });
        }
        Ok(Answer::Stream(response))
    }

    /// The connection ended: gives up, or schedules the reconnection.
    fn reconnect(&mut self, cause: Option<Error>) -> Result<Step, Error> {
        if self
            .settings
            .max_retries
            .is_some_and(|max| self.retries >= max)
        {
            self.state = State::Closed;
            return Err(Error::RetriesExhausted {
                retries: self.retries,
                last: cause.map(Box::new),
            });
        }
        let failures = u32::try_from(self.retries).unwrap_or(u32::MAX);
        let delay = self.settings.backoff.delay(self.retry(), failures);
        self.retries += 1;
        self.state = State::Wait(Instant::now() + delay);
        self.cause = cause;
        Ok(Step::Reconnecting(delay))
    }
}

/// Reads the next chunk of the body, within the idle timeout if there is one.
async fn read_chunk(response: &mut reqwest::Response, idle: &mut Option<Idle>) -> Read {
    let Some(idle) = idle else {
        return read_result(response.chunk().await);
    };
    loop {
        tokio::select! {
            biased;
            chunk = response.chunk() => {
                idle.last_byte = Instant::now();
                return read_result(chunk);
            }
            () = idle.timer.as_mut() => {
                let deadline = idle.last_byte + idle.timeout;
                if Instant::now() >= deadline {
                    return Read::Idle;
                }
                // Bytes came since the timer was set: wait for the rest of the new deadline.
                idle.timer.as_mut().reset(deadline);
            }
        }
    }
}

fn read_result(chunk: Result<Option<Bytes>, reqwest::Error>) -> Read {
    match chunk {
        Ok(Some(chunk)) => Read::Chunk(chunk),
        Ok(None) => Read::End,
        Err(e) => Read::Failed(e),
    }
}

/// Whether a `Content-Type` is `text/event-stream` (parameters allowed, case-insensitive).
pub(crate) fn is_event_stream(value: &HeaderValue) -> bool {
    let essence = value.as_bytes().split(|&b| b == b';').next().unwrap_or(&[]);
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "text/event-stream",
            "Text/Event-Stream; charset=utf-8",
            " text/event-stream ;x",
        ] {
            assert!(is_event_stream(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "text/html",
            "text/event-streams",
            "",
            "text/plain; text/event-stream",
        ] {
            assert!(!is_event_stream(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
