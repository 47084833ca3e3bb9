//! `sse watch URL`: connect to an SSE endpoint and print its events, reconnecting the way a
//! browser's `EventSource` does.
//!
//! * Every request is a GET with `Accept: text/event-stream` and `Cache-Control: no-cache`, plus
//!   the `-H` headers; after the first event with an id, `Last-Event-ID` carries the last id.
//! * A 200 response must have `Content-Type: text/event-stream`; any other status except 204,
//!   or another content type, is fatal (exit 1), as it is for `EventSource`.
//! * 204 No Content means "do not reconnect": exit 0.
//! * When the stream ends or the connection fails, reconnect after the reconnection time (the
//!   stream's latest `retry:`, 3 s by default). One [`Decoder`] lives across all connections, so
//!   the last event id and the reconnection time carry over while a half-received event is
//!   dropped.
//! * `--max-retries N` stops after N reconnections in a row that delivered no event.

use std::error::Error as _;
use std::io::{self, Write};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use sse_core::Decoder;

use crate::output;

/// The reconnection time until the server sets one with `retry:` (the browser default).
const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// How long establishing a TCP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Last-Event-ID` request header.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Arguments of `sse watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// The endpoint, an http:// URL.
    #[arg(value_parser = parse_url)]
    url: Url,

    /// Adds a request header; repeat for several. `-H 'Last-Event-ID: 41'` resumes after event
    /// 41.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<Header>,

    /// Prints the same JSON lines as `sse decode` instead of the readable form.
    #[arg(long)]
    json: bool,

    /// Exits (status 0) after printing N events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,

    /// Gives up after N reconnections in a row that delivered no event. When it gives up, the
    /// exit status is 0 if the last connection ended cleanly and 1 if it failed. `0` means never
    /// reconnect. Default: reconnect forever, like a browser.
    #[arg(long, value_name = "N")]
    max_retries: Option<u64>,

    /// Prints no connection notes on stderr (errors are still printed).
    #[arg(short, long)]
    quiet: bool,
}

/// One `-H` header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    name: HeaderName,
    value: HeaderValue,
}

/// Why a `-H` argument is not a header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderArgError {
    /// There is no colon.
    #[error("expected `Name: value`")]
    NoColon,
    /// The part before the colon is not a header name.
    #[error("invalid header name {0:?}")]
    Name(String),
    /// The part after the colon is not a header value.
    #[error("invalid header value {0:?}")]
    Value(String),
}

fn parse_header(arg: &str) -> Result<Header, HeaderArgError> {
    let (name, value) = arg.split_once(':').ok_or(HeaderArgError::NoColon)?;
    let value = value.trim_matches([' ', '\t']);
    Ok(Header {
        name: HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| HeaderArgError::Name(name.to_owned()))?,
        value: HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| HeaderArgError::Value(value.to_owned()))?,
    })
}

/// `url::ParseError`, named through reqwest's re-exported [`Url`].
type UrlParseError = <Url as std::str::FromStr>::Err;

/// Why a URL argument cannot be watched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UrlArgError {
    /// Not a URL.
    #[error(transparent)]
    Parse(UrlParseError),
    /// https (this build has no TLS).
    #[error("https:// is not supported: sse was built without TLS; use an http:// URL")]
    Https,
    /// Neither http nor https.
    #[error("unsupported scheme {0:?}: expected an http:// URL")]
    Scheme(String),
}

fn parse_url(arg: &str) -> Result<Url, UrlArgError> {
    let url = Url::parse(arg).map_err(UrlArgError::Parse)?;
    match url.scheme() {
        "http" => Ok(url),
        "https" => Err(UrlArgError::Https),
        other => Err(UrlArgError::Scheme(other.to_owned())),
    }
}

/// Why `sse watch` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
    /// The server answered a status other than 200 and 204.
    #[error("{url}: server answered HTTP {status}, expected 200 OK")]
    Status {
        /// The URL that answered (after redirects).
        url: Url,
        /// Its status.
        status: StatusCode,
    },
    /// A 200 response that is not an event stream.
    #[error("{url}: server answered Content-Type {found}, expected text/event-stream")]
    ContentType {
        /// The URL that answered (after redirects).
        url: Url,
        /// The content type, quoted, or "(none)".
        found: String,
    },
    /// `--max-retries` reconnections in a row failed to deliver an event, the last one failing.
    #[error("{last} (giving up: --max-retries {retries} reached)")]
    GaveUp {
        /// How many reconnections were made.
        retries: u64,
        /// The last connection error.
        last: String,
    },
    /// Writing stdout failed.
    #[error("writing stdout: {0}")]
    Write(#[source] io::Error),
    /// The HTTP client could not be built.
    #[error("starting the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The async runtime could not be started.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Runs `sse watch`, printing to stdout and notes to stderr.
pub(crate) fn run(args: WatchArgs) -> Result<(), WatchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WatchError::Runtime)?;
    let mut watcher = Watcher::new(args, io::stdout())?;
    runtime.block_on(watcher.run())
}

/// How one connection ended, when `sse watch` goes on.
enum Outcome {
    /// `--max-events` events were printed.
    MaxEvents,
    /// HTTP 204: the server asks not to reconnect.
    NoContent,
    /// The response body ended.
    EndOfStream,
    /// The request or the body failed; the error chain.
    Failed(String),
}

struct Watcher<W> {
    client: reqwest::Client,
    url: Url,
    /// Request headers, except `Last-Event-ID`.
    headers: HeaderMap,
    /// Lives across connections: keeps the last event id and the reconnection time.
    decoder: Decoder,
    json: bool,
    max_events: Option<u64>,
    max_retries: Option<u64>,
    quiet: bool,
    printed: u64,
    out: W,
}

impl<W: Write> Watcher<W> {
    fn new(args: WatchArgs, out: W) -> Result<Self, WatchError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let mut decoder = Decoder::new();
        let mut user_set = Vec::new();
        for Header { name, value } in args.headers {
            if name == LAST_EVENT_ID {
                // Start from this id, as if an earlier connection had ended with it.
                let id = String::from_utf8_lossy(value.as_bytes());
                decoder.feed(format!("id: {id}\n\n").as_bytes());
                decoder.finish();
            } else if user_set.contains(&name) {
                headers.append(name, value);
            } else {
                // The first -H of a name replaces the default, the next ones add values.
                user_set.push(name.clone());
                headers.insert(name, value);
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("sse-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WatchError::Client)?;
        Ok(Watcher {
            client,
            url: args.url,
            headers,
            decoder,
            json: args.json,
            max_events: args.max_events,
            max_retries: args.max_retries,
            quiet: args.quiet,
            printed: 0,
            out,
        })
    }

    async fn run(&mut self) -> Result<(), WatchError> {
        // Reconnections since the last event.
        let mut retries = 0u64;
        loop {
            let printed_before = self.printed;
            let why = match self.connect().await? {
                Outcome::MaxEvents => return Ok(()),
                Outcome::NoContent => {
                    self.note(format_args!(
                        "server answered HTTP 204 No Content: not reconnecting"
                    ));
                    return Ok(());
                }
                Outcome::EndOfStream => None,
                Outcome::Failed(error) => Some(error),
            };
            if self.printed > printed_before {
                retries = 0;
            }
            if let Some(max) = self.max_retries.filter(|&max| retries >= max) {
                return match why {
                    None => {
                        self.note(format_args!(
                            "stream ended; not reconnecting (--max-retries {max})"
                        ));
                        Ok(())
                    }
                    Some(last) => Err(WatchError::GaveUp { retries, last }),
                };
            }
            retries += 1;
            let delay = self.decoder.retry().unwrap_or(DEFAULT_RETRY);
            let id = match self.decoder.last_event_id() {
                "" => String::new(),
                id => format!(" with Last-Event-ID {id:?}"),
            };
            let what = match &why {
                None => "stream ended".to_owned(),
                Some(error) => format!("connection failed: {error}"),
            };
            self.note(format_args!(
                "{what}; reconnecting in {}{id}",
                output::human_duration(delay)
            ));
            tokio::time::sleep(delay).await;
        }
    }

    /// Makes one request and prints its events until the stream ends.
    async fn connect(&mut self) -> Result<Outcome, WatchError> {
        let mut request = self
            .client
            .get(self.url.clone())
            .headers(self.headers.clone());
        let id = self.decoder.last_event_id();
        if !id.is_empty() {
            match HeaderValue::from_bytes(id.as_bytes()) {
                Ok(value) => request = request.header(LAST_EVENT_ID, value),
                Err(_) => self.note(format_args!(
                    "not sending Last-Event-ID: the id {id:?} cannot be a header value"
                )),
            }
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Ok(Outcome::Failed(error_chain(&e))),
        };
        let url = response.url().clone();
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NO_CONTENT => return Ok(Outcome::NoContent),
            status => return Err(WatchError::Status { url, status }),
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_event_stream) {
            let found = content_type.map_or_else(
                || "(none)".to_owned(),
                |v| format!("{:?}", String::from_utf8_lossy(v.as_bytes())),
            );
            return Err(WatchError::ContentType { url, found });
        }
        self.note(format_args!("connected to {url}"));
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.decoder.feed(&chunk);
                    if self.print_events()? {
                        return Ok(Outcome::MaxEvents);
                    }
                }
                Ok(None) => {
                    self.decoder.finish();
                    return Ok(Outcome::EndOfStream);
                }
                Err(e) => {
                    self.decoder.finish();
                    return Ok(Outcome::Failed(error_chain(&e)));
                }
            }
        }
    }

    /// Prints the events dispatched so far. Returns whether `--max-events` is reached.
    fn print_events(&mut self) -> Result<bool, WatchError> {
        let mut done = false;
        while let Some(event) = self.decoder.next_event() {
            if self.json {
                output::write_json_event(&mut self.out, &event)
            } else {
                output::write_readable_event(&mut self.out, &event)
            }
            .map_err(WatchError::Write)?;
            self.printed += 1;
            if self.max_events.is_some_and(|max| self.printed >= max) {
                done = true;
                break;
            }
        }
        self.out.flush().map_err(WatchError::Write)?;
        Ok(done)
    }

    /// A connection note on stderr, unless `--quiet`.
    fn note(&self, message: std::fmt::Arguments<'_>) {
        if !self.quiet {
            // Nothing useful can be done when stderr is gone.
            let _ = writeln!(io::stderr(), "sse watch: {message}");
        }
    }
}

/// Whether a Content-Type is `text/event-stream` (parameters allowed, case-insensitive).
fn is_event_stream(value: &HeaderValue) -> bool {
    let essence = value.as_bytes().split(|&b| b == b';').next().unwrap_or(&[]);
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}

/// An error and its sources, `outer: inner: root`, since reqwest's own message is terse.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = parse_header("X-Token:  a b ").unwrap();
        assert_eq!(
            (h.name.as_str(), h.value.as_bytes()),
            ("x-token", &b"a b"[..])
        );
        let h = parse_header("Last-Event-ID: é").unwrap();
        assert_eq!(h.value.as_bytes(), "é".as_bytes());
        assert!(matches!(parse_header("nope"), Err(HeaderArgError::NoColon)));
        assert!(matches!(
            parse_header("a b: c"),
            Err(HeaderArgError::Name(_))
        ));
        assert!(matches!(
            parse_header("a: \u{1}"),
            Err(HeaderArgError::Value(_))
        ));
    }

    #[test]
    fn urls() {
        assert!(parse_url("http://127.0.0.1:8080/events").is_ok());
        assert!(matches!(parse_url("https://x/"), Err(UrlArgError::Https)));
        assert!(matches!(parse_url("ftp://x/"), Err(UrlArgError::Scheme(_))));
        assert!(matches!(parse_url("x"), Err(UrlArgError::Parse(_))));
    }

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

    #[test]
    fn last_event_id_header_seeds_the_decoder() {
        let args = WatchArgs {
            url: parse_url("http://127.0.0.1/").unwrap(),
            headers: vec![
                parse_header("Last-Event-ID: 41").unwrap(),
                parse_header("X-A: 1").unwrap(),
                parse_header("X-A: 2").unwrap(),
                parse_header("Accept: */*").unwrap(),
            ],
            json: false,
            max_events: None,
            max_retries: None,
            quiet: true,
        };
        let mut watcher = Watcher::new(args, Vec::new()).unwrap();
        assert_eq!(watcher.decoder.last_event_id(), "41");
        assert!(!watcher.headers.contains_key(LAST_EVENT_ID));
        assert_eq!(watcher.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(watcher.headers[ACCEPT], "*/*");
        // The seed leaves the decoder at the start of a stream: a BOM is still stripped, and
        // events without an id carry the seeded one.
        watcher.decoder.feed(b"\xEF\xBB\xBFdata: x\n\n");
        let event = watcher.decoder.next_event().unwrap();
        assert_eq!(
            (event.data.as_str(), event.last_event_id.as_str()),
            ("x", "41")
        );
    }
}
