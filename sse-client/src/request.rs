//! [`RequestBuilder`]: what to request and how to reconnect.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use url::Url;

use crate::backoff::Backoff;
use crate::error::{Error, UrlError};
use crate::source::EventSource;

/// The reconnection time until the server sets one with `retry:` (what browsers use).
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// The `Last-Event-ID` request header.
pub(crate) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// A URL, or text to parse as one: [`Url`], `&str`, `String`, `&String`. Only `http` and
/// `https` URLs are accepted.
pub trait IntoUrl {
    /// The URL, checked.
    fn into_url(self) -> Result<Url, Error>;
}

fn check_scheme(url: Url) -> Result<Url, Error> {
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(Error::Url {
            reason: UrlError::Scheme(other.to_owned()),
            url: url.into(),
        }),
    }
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url, Error> {
        check_scheme(self)
    }
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url, Error> {
        let url = Url::parse(self).map_err(|e| Error::Url {
            url: self.to_owned(),
            reason: UrlError::Parse(e),
        })?;
        check_scheme(url)
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url, Error> {
        self.as_str().into_url()
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url, Error> {
        self.as_str().into_url()
    }
}

/// One event source's request (method, URL, headers, body) and reconnection settings, from
/// [`Client::get`](crate::Client::get), [`Client::post`](crate::Client::post) or
/// [`Client::request`](crate::Client::request). [`RequestBuilder::open`] makes the
/// [`EventSource`].
///
/// Every request carries `Accept: text/event-stream` and `Cache-Control: no-cache` unless a
/// header of the same name replaces them, and `Last-Event-ID` once there is a last event id.
/// The same request (body included) is sent again at every reconnection.
#[derive(Debug)]
#[must_use = "a request does nothing until opened"]
pub struct RequestBuilder {
    http: reqwest::Client,
    method: Method,
    url: Result<Url, Error>,
    headers: HeaderMap,
    /// Header names set through [`RequestBuilder::header`]: the first one of a name replaces a
    /// default, later ones add values.
    user_headers: Vec<HeaderName>,
    body: Option<Bytes>,
    error: Option<Error>,
    last_event_id: Option<String>,
    retry: Duration,
    backoff: Backoff,
    idle_timeout: Option<Duration>,
    max_retries: Option<u64>,
}

impl RequestBuilder {
    pub(crate) fn new(http: reqwest::Client, method: Method, url: Result<Url, Error>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        RequestBuilder {
            http,
            method,
            url,
            headers,
            user_headers: Vec::new(),
            body: None,
            error: None,
            last_event_id: None,
            retry: DEFAULT_RETRY,
            backoff: Backoff::default(),
            idle_timeout: None,
            max_retries: None,
        }
    }

    /// Adds a request header. The first one of a name replaces the default (`Accept`,
    /// `Cache-Control`), the next ones add values. A `Last-Event-ID` header sets
    /// [`RequestBuilder::last_event_id`] instead. An invalid name or value makes
    /// [`RequestBuilder::open`] fail with [`Error::Header`].
    pub fn header<N, V>(mut self, name: N, value: V) -> Self
    where
        N: TryInto<HeaderName> + std::fmt::Debug,
        V: TryInto<HeaderValue>,
    {
        let shown = format!("{name:?}");
        let (Ok(name), Ok(value)) = (name.try_into(), value.try_into()) else {
            self.error.get_or_insert(Error::Header { name: shown });
            return self;
        };
        if name == LAST_EVENT_ID {
            self.last_event_id = Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
        } else if self.user_headers.contains(&name) {
            self.headers.append(name, value);
        } else {
            self.user_headers.push(name.clone());
            self.headers.insert(name, value);
        }
        self
    }

    /// Adds every header of `headers`, as [`RequestBuilder::header`] does one by one.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        for (name, value) in &headers {
            self = self.header(name.clone(), value.clone());
        }
        self
    }

    /// The request body, sent with every (re)connection.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// `value` serialized as the JSON request body, with `Content-Type: application/json`
    /// unless a content type was given.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = Some(body.into());
                if !self.headers.contains_key(CONTENT_TYPE) {
                    self.headers
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
            }
            Err(e) => {
                self.error.get_or_insert(Error::Body(e));
            }
        }
        self
    }

    /// Resumes after the event with this id: the first request already sends it as
    /// `Last-Event-ID`, and events without an `id` field carry it.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }

    /// The reconnection time until the server sets one with `retry:` (default 3 s).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// How the wait grows while reconnections fail (default [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Reconnects when nothing arrives for `timeout`: neither the response head nor any byte
    /// of the body. Heartbeat comments count, so a server that sends them more often than
    /// `timeout` keeps the connection. Default: no idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Gives up after `retries` reconnections in a row that delivered no event, with
    /// [`Error::RetriesExhausted`] (`0`: never reconnect). Default: reconnect forever, as a
    /// browser does.
    pub fn max_retries(mut self, retries: u64) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Checks the request and makes its event source. Nothing is sent until the first
    /// [`EventSource::next`].
    pub fn open(self) -> Result<EventSource, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let url = self.url?;
        Ok(EventSource::new(
            crate::source::Settings {
                http: self.http,
                method: self.method,
                url,
                headers: self.headers,
                body: self.body,
                retry: self.retry,
                backoff: self.backoff,
                idle_timeout: self.idle_timeout,
                max_retries: self.max_retries,
            },
            self.last_event_id.as_deref(),
        ))
    }
}
