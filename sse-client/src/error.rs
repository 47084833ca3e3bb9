//! The client's errors.

use std::time::Duration;

use http::StatusCode;
use url::Url;

/// Why an event source stopped, or why one connection failed (then it is the
/// [cause](crate::Reconnect::cause) of a reconnection).
///
/// Which errors end the event source: [`Error::Status`], [`Error::ContentType`],
/// [`Error::RetriesExhausted`] and the request-building ones ([`Error::Url`],
/// [`Error::Header`], [`Error::Body`]), as for a browser's `EventSource`. The others
/// ([`Error::Request`], [`Error::Stream`], [`Error::IdleTimeout`]) are connection failures: the
/// client reconnects, and reports them only as the cause of the reconnection, or as the last
/// cause inside [`Error::RetriesExhausted`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered a status other than `200 OK` and `204 No Content`.
    #[error("{url}: server answered HTTP {status}, expected 200 OK")]
    Status {
        /// The URL that answered (after redirects).
        url: Url,
        /// Its status.
        status: StatusCode,
    },
    /// A `200 OK` whose `Content-Type` is not `text/event-stream`.
    #[error("{url}: server answered Content-Type {}, expected text/event-stream", quoted(.content_type.as_deref()))]
    ContentType {
        /// The URL that answered (after redirects).
        url: Url,
        /// The `Content-Type` it sent (invalid UTF-8 replaced), if any.
        content_type: Option<String>,
    },
    /// The request could not be sent or got no response head: connection refused, DNS, TLS
    /// handshake, too many redirects, and the like.
    #[error("{url}: request failed")]
    Request {
        /// The requested URL.
        url: Url,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// Reading the response body failed (the connection broke, for example).
    #[error("{url}: reading the stream failed")]
    Stream {
        /// The URL that answered.
        url: Url,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// No byte arrived for the idle timeout, neither the response head nor any part of the body
    /// (heartbeat comments count).
    #[error("{url}: nothing received for {timeout:?} (idle timeout)")]
    IdleTimeout {
        /// The requested URL.
        url: Url,
        /// The idle timeout.
        timeout: Duration,
    },
    /// The request's `max_retries` reconnections in a row delivered no event.
    #[error("giving up after {retries} reconnection(s) in a row without an event")]
    RetriesExhausted {
        /// How many reconnections were made since the last event.
        retries: u64,
        /// Why the last connection ended: `None` when its stream ended cleanly.
        #[source]
        last: Option<Box<Error>>,
    },
    /// The URL given is not an `http://` or `https://` URL.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: UrlError,
    },
    /// A header given to the request builder is not a valid header.
    #[error("invalid request header {name}: not a valid header name and value")]
    Header {
        /// The header's name, as given (in `Debug` form).
        name: String,
    },
    /// The request body given as JSON could not be serialized.
    #[error("serializing the JSON request body")]
    Body(#[source] serde_json::Error),
}

/// What is wrong with a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// It does not parse.
    #[error(transparent)]
    Parse(#[from] url::ParseError),
    /// Its scheme is neither `http` nor `https`.
    #[error("unsupported scheme {0:?}, expected http or https")]
    Scheme(String),
}

fn quoted(value: Option<&str>) -> String {
    value.map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"))
}

impl Error {
    /// Whether the server answered a status other than 200 and 204.
    pub fn is_status(&self) -> bool {
        matches!(self, Error::Status { .. })
    }

    /// The status, for [`Error::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a 200 response was not an event stream.
    pub fn is_content_type(&self) -> bool {
        matches!(self, Error::ContentType { .. })
    }

    /// Whether the idle timeout expired.
    pub fn is_idle_timeout(&self) -> bool {
        matches!(self, Error::IdleTimeout { .. })
    }

    /// Whether the reconnection budget (`max_retries`) ran out.
    pub fn is_retries_exhausted(&self) -> bool {
        matches!(self, Error::RetriesExhausted { .. })
    }

    /// Whether the request was invalid before anything was sent (URL, header, body).
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Error::Url { .. } | Error::Header { .. } | Error::Body(_)
        )
    }

    /// Whether this is a connection failure, which the client answers by reconnecting
    /// ([`Error::Request`], [`Error::Stream`], [`Error::IdleTimeout`]).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Request { .. } | Error::Stream { .. } | Error::IdleTimeout { .. }
        )
    }
}

/// Why a [`Client`](crate::Client) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A root certificate given to the builder could not be read.
    #[error("invalid root certificate (#{index}, counting from 0)")]
    Certificate {
        /// Which of the certificates added.
        index: usize,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// PEM input given to the builder holds no certificate.
    #[error("no certificate in PEM input #{index} (counting from 0)")]
    NoCertificate {
        /// Which of the certificates added.
        index: usize,
    },
    /// The HTTP client could not be set up (its TLS configuration, for example).
    #[error("setting up the HTTP client")]
    Http(#[source] reqwest::Error),
}
