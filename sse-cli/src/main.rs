//! `sse`: decode, encode and watch Server-Sent Events streams from the command line.
//!
//! * `sse decode` — raw event-stream bytes on stdin → one JSON line per event.
//! * `sse encode` — JSON lines on stdin → event-stream frames on stdout.
//! * `sse watch URL` — connect to an endpoint and print its events, reconnecting like a browser.

mod decode_cmd;
mod encode_cmd;
mod output;
mod watch;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status: network or HTTP error, or stdin/stdout failure.
const EXIT_FAILURE: u8 = 1;
/// Exit status: invalid input (also used by the argument parser for usage errors).
const EXIT_INVALID_INPUT: u8 = 2;

const EXIT_CODES: &str = "\
Exit status:
  0  success (for watch: HTTP 204, --max-events reached, or --max-retries reached after a clean end)
  1  network or HTTP error (non-200 status, wrong Content-Type, connection failures beyond
     --max-retries), or an I/O error on stdin/stdout
  2  invalid input (a bad `sse encode` line) or invalid arguments";

/// Decode, encode and watch Server-Sent Events (text/event-stream) streams.
#[derive(Debug, Parser)]
#[command(name = "sse", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a raw event stream on stdin into JSON lines.
    ///
    /// Reads stdin as it arrives and prints one line per dispatched event, as soon as it is
    /// dispatched: {"type":…,"data":…,"last_event_id":…}. At the end of the input prints
    /// {"retry":MS} with the reconnection time the stream left set, or {"retry":null}.
    ///
    /// Decoding follows the WHATWG HTML event-stream rules exactly (leading BOM stripped, CR / LF
    /// / CRLF line ends, comments ignored, an unterminated last event dropped, invalid UTF-8
    /// replaced by U+FFFD), so the output is what a browser's EventSource would see.
    ///
    /// Example: curl -sN http://localhost:8080/events | sse decode
    #[command(after_help = EXIT_CODES)]
    Decode,

    /// Encode JSON lines on stdin into event-stream frames on stdout
    ///
    /// Each line is a JSON object with the optional fields
    ///   "event"   the event type (string)
    ///   "data"    a string is sent as text (line breaks become several data lines);
    ///             any other JSON value is sent as compact JSON
    ///   "id"      the event id (string)
    ///   "retry"   the reconnection time, in milliseconds (integer)
    ///   "comment" a comment, or an array of comments
    /// Blank lines are skipped.
    ///
    /// The first invalid line (bad JSON, unknown field, wrong type, or an event the encoder
    /// rejects, such as a line break in "id") stops the tool with exit status 2 and one line on
    /// stderr naming the line number and the field. Nothing is written for that line; the events
    /// before it have been written.
    ///
    /// Example: echo '{"event":"tick","data":{"n":1},"id":"1"}' | sse encode
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Encode,

    /// Connect to an SSE endpoint and print its events as they arrive.
    ///
    /// Sends GET (or --method; POST with a --data body) with Accept: text/event-stream, to an
    /// http:// or https:// URL (rustls; --cacert trusts a private CA or a self-signed
    /// certificate). Events are printed readably, one per line, as `[type] id=ID data` (further
    /// data lines indented), or with --json as the JSON lines of `sse decode`. Connection notes
    /// go to stderr (silence them with --quiet).
    ///
    /// Like a browser's EventSource, sse reconnects when the stream ends or the connection
    /// fails, after the server's `retry:` time (--retry, 3s, until the server sets one), sending
    /// Last-Event-ID with the last event id and the same method, headers and body. While
    /// reconnections keep failing the wait doubles, with random jitter, up to --max-backoff.
    /// With --idle-timeout it also reconnects when nothing arrives for that long (heartbeat
    /// comments count). It stops with status 0 when the server answers 204 No Content, and with
    /// status 1 on any other non-200 status or a Content-Type other than text/event-stream.
    ///
    /// Example: sse watch https://localhost:8443/events -H 'Authorization: Bearer t' --max-events 5
    #[command(after_help = EXIT_CODES)]
    Watch(Box<watch::WatchArgs>),
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Encode(#[from] encode_cmd::EncodeError),
    #[error(transparent)]
    Decode(#[from] decode_cmd::DecodeError),
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Encode(encode_cmd::EncodeError::Input { .. }) => EXIT_INVALID_INPUT,
            CliError::Watch(e) if e.is_invalid_input() => EXIT_INVALID_INPUT,
            _ => EXIT_FAILURE,
        }
    }

    /// Whether the error is stdout being closed by the reader (`sse … | head`), which ends the
    /// tool quietly and successfully, as it would with the default SIGPIPE handling.
    fn is_broken_pipe(&self) -> bool {
        let io_error = match self {
            CliError::Encode(encode_cmd::EncodeError::Write(e))
            | CliError::Decode(decode_cmd::DecodeError::Write(e))
            | CliError::Watch(watch::WatchError::Write(e)) => e,
            _ => return false,
        };
        io_error.kind() == io::ErrorKind::BrokenPipe
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result): (&str, Result<(), CliError>) = match cli.command {
        Command::Decode => (
            "decode",
            decode_cmd::run(io::stdin().lock(), io::stdout().lock()).map_err(Into::into),
        ),
        Command::Encode => (
            "encode",
            encode_cmd::run(io::stdin().lock(), io::stdout().lock()).map_err(Into::into),
        ),
        Command::Watch(args) => ("watch", watch::run(*args).map_err(Into::into)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sse {name}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
