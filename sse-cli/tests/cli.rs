//! End-to-end tests of the `sse` binary: every test runs the real executable, and the `watch`
//! tests serve it hand-written HTTP/1.1 responses over a real socket (over TLS for https://).
//!
//! Every wait is bounded: the binary is killed after [`CLI_TIMEOUT`], and every server step
//! (accept, read, write) times out after [`SERVER_TIMEOUT`].
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Accepts one connection and reads its request (head, and a body of `Content-Length` bytes).
async fn accept(listener: &TcpListener) -> Result<(TcpStream, Request), String> {
    let (mut socket, _) = timeout(SERVER_TIMEOUT, listener.accept())
        .await
        .map_err(|_| "no connection within the timeout".to_owned())?
        .map_err(|e| format!("accept: {e}"))?;
    let request = read_request(&mut socket).await?;
    Ok((socket, request))
}

/// Reads one request from `socket`.
async fn read_request(socket: &mut (impl AsyncRead + Unpin)) -> Result<Request, String> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if bytes.len() > 64 * 1024 {
            return Err("request head too large".to_owned());
        }
        let n = timeout(SERVER_TIMEOUT, socket.read(&mut buf))
            .await
            .map_err(|_| "request head not received within the timeout".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the end of the request head".to_owned());
        }
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).map_err(|e| e.to_string())?;
    let mut head_lines = head.split("\r\n").filter(|l| !l.is_empty());
    let line = head_lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(Ok(0), |(_, v)| v.parse())
        .map_err(|e| format!("content-length: {e}"))?;
    let mut body = bytes[head_end..].to_vec();
    while body.len() < length {
        let n = timeout(SERVER_TIMEOUT, socket.read(&mut buf))
            .await
            .map_err(|_| "request body not received within the timeout".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the end of the request body".to_owned());
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(Request {
        line,
        headers,
        body,
    })
}

/// Accepts one connection, answers `response`, and closes it.
async fn serve_once(listener: &TcpListener, response: &str) -> Result<Request, String> {
    let (mut socket, request) = accept(listener).await?;
    respond(&mut socket, response).await?;
    Ok(request)
}

/// Writes `response` and closes the connection.
async fn respond(socket: &mut (impl AsyncWrite + Unpin), response: &str) -> Result<(), String> {
    timeout(SERVER_TIMEOUT, async {
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await
    })
    .await
    .map_err(|_| "response not written within the timeout".to_owned())?
    .map_err(|e| format!("write: {e}"))
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
fn watch_rejects_unsupported_schemes_as_invalid_input() {
    let run = sse(&["watch", "ftp://example.invalid/events"], b"");
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr.contains("expected an http:// or https:// URL"),
        "{}",
        run.stderr
    );
}

#[test]
fn watch_rejects_bad_durations_and_methods_as_invalid_input() {
    for args in [
        ["--idle-timeout", "soon"],
        ["--retry", "5"],
        ["--method", "NOT A METHOD"],
        ["--data", "@/nonexistent/body.json"],
    ] {
        let mut all = vec!["watch", "http://127.0.0.1:9/events"];
        all.extend(args);
        let run = sse(&all, b"");
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
    }
}

/// Serves two connections: `first` (a full response), then 204. Returns both requests.
fn two_connections(args: &[&str], first: &'static str) -> (Run, Request, Request) {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    let server = rt.spawn(async move {
        let first = serve_once(&listener, first).await?;
        let second = serve_once(
            &listener,
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        )
        .await?;
        Ok::<_, String>((first, second))
    });
    let mut all = vec!["watch", url.as_str()];
    all.extend_from_slice(args);
    let run = sse(&all, b"");
    let (first, second) = rt.block_on(server).unwrap().unwrap();
    (run, first, second)
}

const ONE_EVENT: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nretry: 20\nid: 7\ndata: one\n\n";

#[test]
fn watch_posts_data_with_headers_on_every_connection() {
    let (run, first, second) = two_connections(
        &[
            "--data",
            r#"{"prompt":"résumé"}"#,
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-A: 1",
            "-H",
            "X-A: 2",
            "-H",
            "Accept: application/x-ndjson, text/event-stream",
            "--json",
        ],
        ONE_EVENT,
    );
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_eq!(
        lines(&run.stdout),
        [r#"{"type":"message","data":"one","last_event_id":"7"}"#]
    );
    for request in [&first, &second] {
        assert_eq!(request.line, "POST /events HTTP/1.1");
        assert_eq!(request.body, r#"{"prompt":"résumé"}"#.as_bytes());
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header_values("x-a"), ["1", "2"]);
        assert_eq!(
            request.header_values("accept"),
            ["application/x-ndjson, text/event-stream"]
        );
    }
    assert_eq!(first.header("last-event-id"), None);
    assert_eq!(second.header("last-event-id"), Some("7"));
}

#[test]
fn watch_method_flag_and_data_from_a_file() {
    let path = std::env::temp_dir().join(format!("sse-cli-test-{}-body.txt", std::process::id()));
    std::fs::write(&path, b"line one\nline two\n").unwrap();
    let data = format!("@{}", path.display());
    let (run, first, second) =
        two_connections(&["-X", "PUT", "--data", &data, "--quiet"], ONE_EVENT);
    std::fs::remove_file(&path).unwrap();
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_eq!(run.stdout, "[message] id=7 one\n");
    for request in [&first, &second] {
        assert_eq!(request.line, "PUT /events HTTP/1.1");
        assert_eq!(request.body, b"line one\nline two\n");
    }
}

#[test]
fn watch_idle_timeout_reconnects_a_silent_stream() {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    let server = rt.spawn(async move {
        // Headers, a comment, then silence with the connection open (until the client leaves).
        let (mut socket, first) = accept(&listener).await?;
        let silent_from = Instant::now();
        socket
            .write_all(format!("{EVENT_STREAM_HEAD}: hello\n\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let (mut second_socket, second) = accept(&listener).await?;
        let closed_after = silent_from.elapsed();
        drop(socket);
        // The second request gets no answer: wait (bounded) until the client gives up on it.
        let mut buf = [0u8; 64];
        let _ = timeout(SERVER_TIMEOUT, second_socket.read(&mut buf)).await;
        let _ = (first, second);
        Ok::<_, String>(closed_after)
    });
    // The second connection is not answered within the client's idle timeout either.
    let run = sse(
        &[
            "watch",
            &url,
            "--idle-timeout",
            "300ms",
            "--retry",
            "10ms",
            "--max-retries",
            "1",
        ],
        b"",
    );
    let reconnected_after = rt.block_on(server).unwrap().unwrap();
    assert!(
        reconnected_after >= Duration::from_millis(300),
        "{reconnected_after:?}"
    );
    assert!(
        reconnected_after < Duration::from_secs(5),
        "{reconnected_after:?}"
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("nothing received for 300ms (idle timeout); reconnecting in 10ms"),
        "{}",
        run.stderr
    );
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.ends_with(
            "nothing received for 300ms (idle timeout) (giving up: --max-retries 1 reached)"
        ),
        "{error}"
    );
}

/// The delays of the "reconnecting in …ms" notes.
fn reconnect_delays_ms(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|l| l.split("reconnecting in ").nth(1))
        .map(|rest| rest.split("ms").next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn watch_backs_off_with_jitter_while_reconnections_fail() {
    let rt = runtime();
    let (listener, url) = listen(&rt);
    drop(listener);
    let run = sse(
        &[
            "watch",
            &url,
            "--retry",
            "100ms",
            "--max-backoff",
            "500ms",
            "--max-retries",
            "4",
        ],
        b"",
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    // The reconnection time, then doubling with up to 50 % jitter, capped.
    let delays = reconnect_delays_ms(&run.stderr);
    assert_eq!(delays.len(), 4, "{}", run.stderr);
    assert_eq!(delays[0], 100);
    assert!((200..300).contains(&delays[1]), "{delays:?}");
    assert!((400..=500).contains(&delays[2]), "{delays:?}");
    assert_eq!(delays[3], 500, "capped: {delays:?}");

    let run = sse(
        &[
            "watch",
            &url,
            "--retry",
            "20ms",
            "--no-backoff",
            "--max-retries",
            "3",
        ],
        b"",
    );
    assert_eq!(reconnect_delays_ms(&run.stderr), [20, 20, 20]);
}

/// A self-signed certificate for 127.0.0.1 (PEM) and a TLS acceptor serving it.
fn self_signed() -> (String, tokio_rustls::TlsAcceptor) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    (
        certified.cert.pem(),
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    )
}

/// Accepts one TLS connection, reads its request and answers `response`.
async fn serve_tls_once(
    listener: &TcpListener,
    acceptor: &tokio_rustls::TlsAcceptor,
    response: &str,
) -> Result<Request, String> {
    let (tcp, _) = timeout(SERVER_TIMEOUT, listener.accept())
        .await
        .map_err(|_| "no connection within the timeout".to_owned())?
        .map_err(|e| format!("accept: {e}"))?;
    let mut tls = timeout(SERVER_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| "no TLS handshake within the timeout".to_owned())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let request = read_request(&mut tls).await?;
    respond(&mut tls, response).await?;
    Ok(request)
}

#[test]
fn watch_over_https_trusting_a_self_signed_certificate_with_cacert() {
    let (pem, acceptor) = self_signed();
    let path = std::env::temp_dir().join(format!("sse-cli-test-{}-ca.pem", std::process::id()));
    std::fs::write(&path, pem).unwrap();
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("https://{}/events", listener.local_addr().unwrap());
    let server = rt.spawn(async move {
        let first = serve_tls_once(&listener, &acceptor, ONE_EVENT).await?;
        let second = serve_tls_once(
            &listener,
            &acceptor,
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        )
        .await?;
        Ok::<_, String>((first, second))
    });
    let cacert = path.display().to_string();
    let run = sse(&["watch", &url, "--cacert", &cacert, "--json"], b"");
    std::fs::remove_file(&path).unwrap();
    let (first, second) = rt.block_on(server).unwrap().unwrap();
    assert!(run.status.success(), "{:?} {}", run.status, run.stderr);
    assert_eq!(
        lines(&run.stdout),
        [r#"{"type":"message","data":"one","last_event_id":"7"}"#]
    );
    assert!(
        run.stderr.contains(&format!("connected to {url}")),
        "{}",
        run.stderr
    );
    assert_eq!(first.line, "GET /events HTTP/1.1");
    assert_eq!(second.header("last-event-id"), Some("7"));
}

#[test]
fn watch_over_https_fails_on_an_untrusted_certificate() {
    let (_pem, acceptor) = self_signed();
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("https://{}/events", listener.local_addr().unwrap());
    let server = rt.spawn(async move {
        let (tcp, _) = timeout(SERVER_TIMEOUT, listener.accept())
            .await
            .map_err(|_| "no connection".to_owned())?
            .map_err(|e| e.to_string())?;
        // The handshake fails on the client's side.
        Ok::<_, String>(acceptor.accept(tcp).await.is_err())
    });
    let run = sse(&["watch", &url, "--max-retries", "0"], b"");
    assert!(
        rt.block_on(server).unwrap().unwrap(),
        "the handshake must fail"
    );
    assert_eq!(run.status.code(), Some(1));
    let error = run.stderr.lines().last().unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(
        error.ends_with("(giving up: --max-retries 0 reached)"),
        "{error}"
    );
}

#[test]
fn watch_rejects_a_cacert_file_without_certificates() {
    let path = std::env::temp_dir().join(format!("sse-cli-test-{}-empty.pem", std::process::id()));
    std::fs::write(&path, "not a certificate\n").unwrap();
    let cacert = path.display().to_string();
    let run = sse(
        &["watch", "https://127.0.0.1:9/events", "--cacert", &cacert],
        b"",
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("no certificate"), "{}", run.stderr);
    let run = sse(
        &[
            "watch",
            "https://127.0.0.1:9/events",
            "--cacert",
            "/nonexistent/ca.pem",
        ],
        b"",
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
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
        "--idle-timeout",
        "--max-backoff",
        "--method",
        "--data",
        "--cacert",
        "https://",
        "Last-Event-ID",
        "204",
        "Exit status:",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
}
