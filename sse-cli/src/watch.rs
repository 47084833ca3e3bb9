//! `sse watch URL`: connect to an SSE endpoint and print its events, reconnecting the way a
//! browser's `EventSource` does, on [`sse_client`].
//!
//! * Every request carries `Accept: text/event-stream` and `Cache-Control: no-cache`, plus the
//!   `-H` headers, the `--method` (GET by default, POST with `--data`) and the `--data` body;
//!   after the first event with an id, `Last-Event-ID` carries the last id.
//! * `http://` and `https://` (rustls; `--cacert` adds trusted certificates).
//! * A 200 response must have `Content-Type: text/event-stream`; any other status except 204,
//!   or another content type, is fatal (exit 1), as it is for `EventSource`.
//! * 204 No Content means "do not reconnect": exit 0.
//! * When the stream ends or the connection fails (or, with `--idle-timeout`, nothing arrives
//!   for that long), reconnect after the reconnection time (the stream's latest `retry:`,
//!   `--retry` until then); while reconnections fail the wait grows exponentially with jitter,
//!   up to `--max-backoff`.
//! * `--max-retries N` stops after N reconnections in a row that delivered no event.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use sse_client::{Backoff, BuildError, Client, Update, Url};

use crate::output;

/// Arguments of `sse watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// The endpoint, an http:// or https:// URL.
    #[arg(value_parser = parse_url)]
    url: Url,

    /// Adds a request header; repeat for several. `-H 'Last-Event-ID: 41'` resumes after event
    /// 41.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<Header>,

    /// The request method. Default: GET, or POST with --data.
    #[arg(short = 'X', long, value_name = "METHOD", value_parser = parse_method)]
    method: Option<Method>,

    /// The request body, sent again with every reconnection; `@FILE` reads it from FILE.
    #[arg(short = 'd', long, value_name = "DATA", value_parser = parse_data)]
    data: Option<Body>,

    /// Trusts the certificates of this PEM file for https://, besides the built-in roots (a
    /// private CA, or a server's self-signed certificate).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,

    /// Reconnects when nothing arrives for this long, not even a heartbeat comment (e.g. 45s).
    /// Default: wait forever.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,

    /// The reconnection time until the server sets one with `retry:`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3s")]
    retry: Duration,

    /// The longest wait between reconnections that keep failing (the wait doubles, with random
    /// jitter, after each failed one).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    max_backoff: Duration,

    /// Waits exactly the reconnection time before every reconnection, as a browser does: no
    /// exponential backoff, no jitter.
    #[arg(long)]
    no_backoff: bool,

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

/// Why a `--method` argument is not a method.
#[derive(Debug, thiserror::Error)]
#[error("invalid method {0:?}: expected a token such as GET or POST")]
pub(crate) struct MethodArgError(String);

fn parse_method(arg: &str) -> Result<Method, MethodArgError> {
    Method::from_bytes(arg.as_bytes()).map_err(|_| MethodArgError(arg.to_owned()))
}

/// A `--data` body.
#[derive(Debug, Clone)]
pub(crate) struct Body(Vec<u8>);

/// Why a `--data @FILE` argument cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub(crate) struct DataArgError {
    path: String,
    source: io::Error,
}

fn parse_data(arg: &str) -> Result<Body, DataArgError> {
    match arg.strip_prefix('@') {
        Some(path) => fs::read(path).map(Body).map_err(|source| DataArgError {
            path: path.to_owned(),
            source,
        }),
        None => Ok(Body(arg.as_bytes().to_vec())),
    }
}

/// Why a duration argument is not a duration.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration {arg:?} (expected for example 500ms, 30s or 2m): {source}")]
pub(crate) struct DurationArgError {
    arg: String,
    source: humantime::DurationError,
}

fn parse_duration(arg: &str) -> Result<Duration, DurationArgError> {
    humantime::parse_duration(arg).map_err(|source| DurationArgError {
        arg: arg.to_owned(),
        source,
    })
}

/// Why a URL argument cannot be watched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UrlArgError {
    /// Not a URL.
    #[error(transparent)]
    Parse(sse_client::UrlError),
    /// Neither http nor https.
    #[error("unsupported scheme {0:?}: expected an http:// or https:// URL")]
    Scheme(String),
}

fn parse_url(arg: &str) -> Result<Url, UrlArgError> {
    let url = Url::parse(arg).map_err(|e| UrlArgError::Parse(e.into()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(UrlArgError::Scheme(other.to_owned())),
    }
}

/// Why `sse watch` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
    /// The event source stopped: a status other than 200 and 204, or not an event stream.
    #[error(transparent)]
    Source(sse_client::Error),
    /// `--max-retries` reconnections in a row failed to deliver an event, the last one failing.
    #[error("{last} (giving up: --max-retries {retries} reached)")]
    GaveUp {
        /// How many reconnections were made.
        retries: u64,
        /// The last connection error, with its causes.
        last: String,
    },
    /// `--cacert` could not be read or holds no usable certificate.
    #[error("--cacert {path}: {reason}")]
    CaCert {
        /// The file.
        path: String,
        /// What is wrong, with its causes.
        reason: String,
    },
    /// Writing stdout failed.
    #[error("writing stdout: {0}")]
    Write(#[source] io::Error),
    /// The HTTP client could not be set up.
    #[error("starting the HTTP client: {}", error_chain(.0))]
    Client(#[source] BuildError),
    /// The async runtime could not be started.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] io::Error),
}

impl WatchError {
    /// Whether the error is in the arguments (exit status 2) rather than the network or I/O.
    pub(crate) fn is_invalid_input(&self) -> bool {
        matches!(self, WatchError::CaCert { .. })
    }
}

/// Runs `sse watch`, printing to stdout and notes to stderr.
pub(crate) fn run(args: WatchArgs) -> Result<(), WatchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WatchError::Runtime)?;
    let client = client(&args)?;
    runtime.block_on(watch(&client, args, &mut io::stdout()))
}

/// The client, trusting `--cacert` if given.
fn client(args: &WatchArgs) -> Result<Client, WatchError> {
    let mut builder = Client::builder().user_agent(concat!("sse-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &args.cacert {
        let pem = fs::read(path).map_err(|e| WatchError::CaCert {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        builder = builder.add_root_certificates_pem(pem);
    }
    builder.build().map_err(|e| match (&args.cacert, e) {
        (Some(path), e @ (BuildError::Certificate { .. } | BuildError::NoCertificate { .. })) => {
            WatchError::CaCert {
                path: path.display().to_string(),
                reason: error_chain(&e),
            }
        }
        (_, e) => WatchError::Client(e),
    })
}

/// Opens the event source and prints its events until it stops.
async fn watch(client: &Client, args: WatchArgs, out: &mut impl Write) -> Result<(), WatchError> {
    let method = match (args.method, &args.data) {
        (Some(method), _) => method,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let backoff = if args.no_backoff {
        Backoff::constant()
    } else {
        Backoff::default().max_delay(args.max_backoff)
    };
    let mut request = client
        .request(method, args.url)
        .retry(args.retry)
        .backoff(backoff);
    for Header { name, value } in args.headers {
        request = request.header(name, value);
    }
    if let Some(Body(body)) = args.data {
        request = request.body(body);
    }
    if let Some(timeout) = args.idle_timeout {
        request = request.idle_timeout(timeout);
    }
    if let Some(max) = args.max_retries {
        request = request.max_retries(max);
    }
    let mut source = request.open().map_err(WatchError::Source)?;
    let quiet = args.quiet;
    let mut printed = 0u64;
    loop {
        match source.next().await {
            Ok(Some(Update::Event(event))) => {
                let event = event.as_event_ref();
                if args.json {
                    output::write_json_event(out, event)
                } else {
                    output::write_readable_event(out, event)
                }
                .and_then(|()| out.flush())
                .map_err(WatchError::Write)?;
                printed += 1;
                if args.max_events.is_some_and(|max| printed >= max) {
                    return Ok(());
                }
            }
            Ok(Some(Update::Connected(connected))) => {
                note(quiet, format_args!("connected to {}", connected.url));
            }
            Ok(Some(Update::Reconnecting(reconnect))) => {
                let id = match reconnect.last_event_id {
                    "" => String::new(),
                    id if HeaderValue::from_bytes(id.as_bytes()).is_err() => {
                        note(
                            quiet,
                            format_args!(
                                "not sending Last-Event-ID: the id {id:?} cannot be a header value"
                            ),
                        );
                        String::new()
                    }
                    id => format!(" with Last-Event-ID {id:?}"),
                };
                let what = match reconnect.cause {
                    None => "stream ended".to_owned(),
                    Some(error) => format!("connection failed: {}", error_chain(error)),
                };
                note(
                    quiet,
                    format_args!(
                        "{what}; reconnecting in {}{id}",
                        output::human_duration(reconnect.delay)
                    ),
                );
            }
            Ok(None) => {
                note(
                    quiet,
                    format_args!("server answered HTTP 204 No Content: not reconnecting"),
                );
                return Ok(());
            }
            Err(sse_client::Error::RetriesExhausted { retries, last }) => {
                return match last {
                    None => {
                        note(
                            quiet,
                            format_args!(
                                "stream ended; not reconnecting (--max-retries {retries})"
                            ),
                        );
                        Ok(())
                    }
                    Some(last) => Err(WatchError::GaveUp {
                        retries,
                        last: error_chain(&*last),
                    }),
                };
            }
            Err(e) => return Err(WatchError::Source(e)),
        }
    }
}

/// A connection note on stderr, unless `--quiet`.
fn note(quiet: bool, message: std::fmt::Arguments<'_>) {
    if !quiet {
        // Nothing useful can be done when stderr is gone.
        let _ = writeln!(io::stderr(), "sse watch: {message}");
    }
}

/// An error and its sources, `outer: inner: root`, each cause once.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
        assert!(parse_url("https://example.invalid/events").is_ok());
        assert!(matches!(parse_url("ftp://x/"), Err(UrlArgError::Scheme(_))));
        assert!(matches!(parse_url("x"), Err(UrlArgError::Parse(_))));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5").is_err(), "a unit is required");
    }

    #[test]
    fn methods_and_data() {
        assert_eq!(parse_method("PATCH").unwrap(), Method::PATCH);
        assert!(parse_method("NOT A METHOD").is_err());
        assert_eq!(parse_data("{\"a\":1}").unwrap().0, b"{\"a\":1}");
        assert!(parse_data("@/nonexistent/file").is_err());
    }
}
