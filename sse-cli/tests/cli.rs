//! End-to-end tests of the `sse` binary: every test runs the real executable, and the `watch`
//! tests serve it hand-written HTTP/1.1 responses over a real socket.
//!
//! Every wait is bounded: the binary is killed after [`CLI_TIMEOUT`], and every server step
//! (accept, read, write) times out after [`SERVER_TIMEOUT`].
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const CLI_TIMEOUT: Duration = Duration::from_secs(20);
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sse"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `sse ARGS` with `input` on stdin, killing it if it outlives [`CLI_TIMEOUT`].
fn sse(args: &[&str], input: &[u8]) -> Run {
    let mut child = command(args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A separate thread, so that a large input cannot deadlock against a full stdout pipe; a
    // write error (the tool exited early) is expected in some tests.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = read_in_thread(child.stdout.take().unwrap());
    let stderr = read_in_thread(child.stderr.take().unwrap());
    let status = wait(&mut child);
    writer.join().unwrap();
    Run {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn read_in_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).unwrap();
        String::from_utf8(bytes).unwrap()
    })
}

fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + CLI_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("sse did not exit within {CLI_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

// ---------------------------------------------------------------------------------------------
// sse encode
// ---------------------------------------------------------------------------------------------

#[test]
fn encode_writes_exact_frames() {
    let input = concat!(
        r#"{"event":"greeting","id":"1","retry":2500,"data":"hello"}"#,
        "\n\n   \n",
        r#"{"comment":["keep-alive","two"],"data":{"n":1,"s":"a\nb"}}"#,
        "\r\n",
        r#"{"data":""}"#,
        "\n",
        r#"{"comment":"only a comment"}"#,
        "\n",
        r#"{"id":""}"#, // no trailing newline on the last line
    );
    let run = sse(&["encode"], input.as_bytes());
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        concat!(
            "event: greeting\nretry: 2500\ndata: hello\nid: 1\n\n",
            ": keep-alive\n: two\ndata: {\"n\":1,\"s\":\"a\\nb\"}\n\n",
            "data: \n\n",
            ": only a comment\n\n",
            "id: \n\n",
        )
    );
}

#[test]
fn encode_splits_crlf_data_into_lines() {
    let run = sse(&["encode"], br#"{"data":"one\r\ntwo\rthree\nfour\r\n"}"#);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "data: one\ndata: two\ndata: three\ndata: four\ndata: \n\n"
    );
}

#[test]
fn encode_rejects_newline_in_id_after_writing_earlier_events() {
    let input = concat!(
        r#"{"data":"first"}"#,
        "\n",
        r#"{"id":"2","data":"second"}"#,
        "\n",
        r#"{"id":"3\nevent: evil","data":"third"}"#,
        "\n",
        r#"{"data":"never read"}"#,
        "\n",
    );
    let run = sse(&["encode"], input.as_bytes());
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        run.stderr,
        "sse encode: line 3: invalid event id: contains LF (U+000A LINE FEED)\n"
    );
    assert_eq!(run.stdout, "data: first\n\ndata: second\nid: 2\n\n");
}

#[test]
fn encode_reports_bad_input_with_line_and_field() {
    for (input, message) in [
        (
            "{\"data\":\"ok\"}\n{\"data\":\"x\",\"retry\":\"50\"}\n",
            "line 2: field \"retry\": expected a non-negative integer (milliseconds), found a string",
        ),
        (
            "{\"event\":\"a\\rb\",\"data\":\"x\"}",
            "line 1: invalid event name: contains CR (U+000D CARRIAGE RETURN)",
        ),
        (
            "\n{\"data\":\"x\",\"extra\":1}",
            "line 2: unknown field \"extra\" (expected event, data, id, retry, comment)",
        ),
        ("{\"data\":\"x\"", "line 1: invalid JSON: EOF while parsing an object (column 11)"),
        ("{\"comment\":7}", "line 1: field \"comment\": expected a string or an array of strings, found a number"),
        ("42", "line 1: expected a JSON object, found a number"),
    ] {
        let run = sse(&["encode"], input.as_bytes());
        assert_eq!(run.status.code(), Some(2), "{input}");
        assert_eq!(run.stderr, format!("sse encode: {message}\n"), "{input}");
    }
}

// ---------------------------------------------------------------------------------------------
// sse decode
// ---------------------------------------------------------------------------------------------

#[test]
fn decode_known_stream() {
    let stream = concat!(
        "\u{FEFF}: a comment\r\n",
        "retry: 1500\r\n",
        "\r\n",
        "id: 1\r\n",
        "event: greeting\r\n",
        "data: hello\r\n",
        "data:  world\r\n",
        "\r\n",
        ": between events\n",
        "data: no id, so the last id carries over\r",
        "\r",
        "retry: not a number\n",
        "id\n",
        "data\n",
        "\n",
        "data: unterminated event is dropped\n",
    );
    let run = sse(&["decode"], stream.as_bytes());
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        lines(&run.stdout),
        [
            r#"{"type":"greeting","data":"hello\n world","last_event_id":"1"}"#,
            r#"{"type":"message","data":"no id, so the last id carries over","last_event_id":"1"}"#,
            r#"{"type":"message","data":"","last_event_id":""}"#,
            r#"{"retry":1500}"#,
        ]
    );
}

#[test]
fn decode_without_retry_ends_with_null() {
    let run = sse(&["decode"], b"data: x\n\n");
    assert_eq!(
        lines(&run.stdout),
        [
            r#"{"type":"message","data":"x","last_event_id":""}"#,
            r#"{"retry":null}"#
        ]
    );
}

#[test]
fn encode_then_decode_round_trips() {
    let input = concat!(
        r#"{"event":"update","id":"a-1","retry":50,"data":"line one\r\nline two"}"#,
        "\n",
        r#"{"comment":"ignored by the decoder","data":{"nested":["json",1]}}"#,
        "\n",
        r#"{"id":"é ü","data":"  leading spaces"}"#,
        "\n",
    );
    let encoded = sse(&["encode"], input.as_bytes());
    assert!(encoded.status.success(), "{}", encoded.stderr);
    let decoded = sse(&["decode"], encoded.stdout.as_bytes());
    assert!(decoded.status.success(), "{}", decoded.stderr);
    assert_eq!(
        lines(&decoded.stdout),
        [
            r#"{"type":"update","data":"line one\nline two","last_event_id":"a-1"}"#,
            r#"{"type":"message","data":"{\"nested\":[\"json\",1]}","last_event_id":"a-1"}"#,
            r#"{"type":"message","data":"  leading spaces","last_event_id":"é ü"}"#,
            r#"{"retry":50}"#,
        ]
    );
}

#[test]
fn decode_prints_each_event_as_soon_as_it_is_dispatched() {
    let mut child = command(&["decode"]).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // stdin stays open: the event must come out before the end of the input.
    stdin.write_all(b"data: live\n\ndata: partial").unwrap();
    stdin.flush().unwrap();
    let first = rx.recv_timeout(CLI_TIMEOUT);
    drop(stdin);
    let status = wait(&mut child);
    reader.join().unwrap();
    assert_eq!(
        first.unwrap(),
        r#"{"type":"message","data":"live","last_event_id":""}"#
    );
    assert_eq!(rx.recv_timeout(CLI_TIMEOUT).unwrap(), r#"{"retry":null}"#);
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------------
// sse watch, against a hand-written HTTP/1.1 server
// ---------------------------------------------------------------------------------------------

const EVENT_STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A listener on 127.0.0.1 and its URL.
fn listen(rt: &tokio::runtime::Runtime) -> (TcpListener, String) {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    (listener, url)
}

/// A request as the server saw it.
#[derive(Debug)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Accepts one connection and reads its request head.
async fn accept(listener: &TcpListener) -> Result<(TcpStream, Request), String> {
    let (mut socket, _) = timeout(SERVER_TIMEOUT, listener.accept())
        .await
        .map_err(|_| "no connection within the timeout".to_owned())?
        .map_err(|e| format!("accept: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err("request head too large".to_owned());
        }
        let n = timeout(SERVER_TIMEOUT, socket.read(&mut buf))
            .await
            .map_err(|_| "request head not received within the timeout".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the end of the request head".to_owned());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8(head).map_err(|e| e.to_string())?;
    let mut head_lines = head.split("\r\n").filter(|l| !l.is_empty());
    let line = head_lines.next().unwrap_or_default().to_owned();
    let headers = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((socket, Request { line, headers }))
}

/// Accepts one connection, answers `response`, and closes it.
async fn serve_once(listener: &TcpListener, response: &str) -> Result<Request, String> {
    let (mut socket, request) = accept(listener).await?;
    timeout(SERVER_TIMEOUT, async {
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await
    })
    .await
    .map_err(|_| "response not written within the timeout".to_owned())?
    .map_err(|e| format!("write: {e}"))?;
    Ok(request)
}

/// The two-connection scenario: two events with ids and `retry: 50`, close; then, on the
/// reconnection, 204. Returns the CLI run and both requests.
fn reconnect_scenario(extra_args: &[&str]) -> (Run, Request, Request) {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    let server = rt.spawn(async move {
        let first = serve_once(
            &listener,
            &format!(
                "{EVENT_STREAM_HEAD}retry: 50\n\n\
                 id: 1\ndata: first\n\n\
                 : comment\nid: 2\nevent: update\ndata: second\ndata: line\n\n\
                 data: cut off by the end of the stream"
            ),
        )
        .await?;
        let second = serve_once(
            &listener,
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        )
        .await?;
        Ok::<_, String>((first, second))
    });
    let mut args = vec!["watch", url.as_str(), "-H", "X-Test: yes"];
    args.extend_from_slice(extra_args);
    let run = sse(&args, b"");
    let (first, second) = rt.block_on(server).unwrap().unwrap();
    (run, first, second)
}

fn assert_requests(first: &Request, second: &Request) {
    for request in [first, second] {
        assert_eq!(request.line, "GET /events HTTP/1.1");
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("x-test"), Some("yes"));
    }
    assert_eq!(first.header("last-event-id"), None);
    assert_eq!(second.header("last-event-id"), Some("2"));
}

#[test]
fn watch_json_reconnects_with_last_event_id_and_stops_on_204() {
    let (run, first, second) = reconnect_scenario(&["--json"]);
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_requests(&first, &second);
    assert_eq!(
        lines(&run.stdout),
        [
            r#"{"type":"message","data":"first","last_event_id":"1"}"#,
            r#"{"type":"update","data":"second\nline","last_event_id":"2"}"#,
        ]
    );
    assert!(
        run.stderr
            .contains("stream ended; reconnecting in 50ms with Last-Event-ID \"2\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("204 No Content"), "{}", run.stderr);
}

#[test]
fn watch_readable_output() {
    let (run, first, second) = reconnect_scenario(&["--quiet"]);
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_requests(&first, &second);
    assert_eq!(
        run.stdout,
        "[message] id=1 first\n[update] id=2 second\n              line\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn watch_max_events_exits_while_the_stream_is_open() {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    let server = rt.spawn(async move {
        let (mut socket, request) = accept(&listener).await?;
        let body =
            format!("{EVENT_STREAM_HEAD}id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n");
        socket
            .write_all(body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // Keep the stream open until the client goes away (bounded).
        let mut buf = [0u8; 64];
        let closed = matches!(
            timeout(SERVER_TIMEOUT, socket.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        );
        Ok::<_, String>((request, closed))
    });
    let run = sse(&["watch", &url, "--max-events", "2", "--json"], b"");
    let (request, closed) = rt.block_on(server).unwrap().unwrap();
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_eq!(request.header("last-event-id"), None);
    assert!(
        closed,
        "the client should close the connection when it exits"
    );
    assert_eq!(
        lines(&run.stdout),
        [
            r#"{"type":"message","data":"a","last_event_id":"1"}"#,
            r#"{"type":"message","data":"b","last_event_id":"2"}"#,
        ]
    );
}

#[test]
fn watch_sends_a_last_event_id_given_with_h() {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    let server = rt.spawn(async move {
        serve_once(
            &listener,
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        )
        .await
    });
    let run = sse(&["watch", &url, "-H", "Last-Event-ID: 41"], b"");
    let request = rt.block_on(server).unwrap().unwrap();
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_eq!(request.header("last-event-id"), Some("41"));
}

/// Runs `sse watch` against a server that answers `response` once.
fn watch_single_response(response: &'static str) -> Run {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    let server = rt.spawn(async move { serve_once(&listener, response).await });
    let run = sse(&["watch", &url], b"");
    rt.block_on(server).unwrap().unwrap();
    run
}

#[test]
fn watch_fails_clearly_on_http_error() {
    let run = watch_single_response(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
    );
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stdout, "");
    let error = run.stderr.lines().last().unwrap();
    assert!(error.starts_with("sse watch: http://127.0.0.1:"), "{error}");
    assert!(
        error.ends_with("/events: server answered HTTP 500 Internal Server Error, expected 200 OK"),
        "{error}"
    );
}

#[test]
fn watch_fails_clearly_on_wrong_content_type() {
    let run = watch_single_response(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<html></html>",
    );
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stdout, "");
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.ends_with(
            "/events: server answered Content-Type \"text/html\", expected text/event-stream"
        ),
        "{error}"
    );
}

#[test]
fn watch_gives_up_on_connection_failure_with_max_retries() {
    // A port nobody listens on: bind one, then free it.
    let rt = runtime();
    let (listener, url) = listen(&rt);
    drop(listener);
    let run = sse(&["watch", &url, "--max-retries", "0"], b"");
    assert_eq!(run.status.code(), Some(1));
    let error = run.stderr.lines().last().unwrap();
    assert!(error.starts_with("sse watch: "), "{error}");
    assert!(
        error.ends_with("(giving up: --max-retries 0 reached)"),
        "{error}"
    );
}

#[test]
fn watch_rejects_https_as_invalid_input() {
    let run = sse(&["watch", "https://example.invalid/events"], b"");
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.contains("built without TLS"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------------------------

#[test]
fn help_documents_exit_codes_and_reconnection() {
    let run = sse(&["--help"], b"");
    assert!(run.status.success());
    for needle in ["Exit status:", "network or HTTP error", "invalid input"] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
    let run = sse(&["watch", "--help"], b"");
    assert!(run.status.success());
    for needle in [
        "--max-retries",
        "--max-events",
        "Last-Event-ID",
        "204",
        "Exit status:",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
}
