//! The raw front end: a minimal HTTP/1.1 server on Tokio's `TcpStream`.
//!
//! * The request head is read into a heap buffer and parsed with `httparse`; the buffer is freed
//!   before a response starts streaming, so an idle stream holds no read buffer.
//! * A stream is `HTTP/1.1 200` with `Transfer-Encoding: chunked` (close-delimited for HTTP/1.0
//!   clients). Each chunk that [`SseBody::poll_chunk`] coalesces leaves with one `writev`: the
//!   chunk-size line, the data, the CRLF. The response head leaves with the first chunk (the
//!   `: ok` frame). Nothing is buffered on top of the chunk in flight: while the socket is full
//!   the body is not polled, so a slow client falls behind in the hub, where its policy applies.
//! * While streaming, the read side is watched (with a small stack buffer) so that a client that
//!   goes away is dropped, and its subscription with it, at once.
//! * Keep-alive and pipelining for ordinary responses; request bodies (`Content-Length` or
//!   chunked) are read and discarded; `Expect: 100-continue` is answered.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::app::{App, Body as StreamBody, Reply, Request, CORS, PREFLIGHT};

/// Largest request head accepted.
const MAX_HEAD: usize = 16 << 10;
/// Most request header fields accepted.
const MAX_HEADERS: usize = 48;

pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, Arc::clone(&app)));
            }
            Err(e) => accept_error(e).await?,
        }
    }
}

/// Accept errors (out of file descriptors, a connection reset before it was accepted) concern
/// one connection or are transient: report, pause briefly, go on.
pub(crate) async fn accept_error(e: io::Error) -> io::Result<()> {
    eprintln!("bench-server: accept: {e}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(())
}

/// What the server needs from a request head, owned so that the read buffer can go.
struct Head {
    method: String,
    target: String,
    last_event_id: Option<Vec<u8>>,
    http10: bool,
    /// The connection must close after this response.
    close: bool,
    body: BodyLen,
    expect_continue: bool,
}

#[derive(Debug, Clone, Copy)]
enum BodyLen {
    None,
    Length(u64),
    Chunked,
}

enum HeadError {
    /// The peer went away, cleanly or not.
    Gone,
    TooLarge,
    Bad(String),
}

async fn connection(mut io: TcpStream, app: Arc<App>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head = match read_head(&mut io, &mut buf).await {
            Ok(h) => h,
            Err(HeadError::Gone) => return,
            Err(HeadError::TooLarge) => {
                let msg = "request head too large";
                let resp = full_response(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    TEXT,
                    msg.as_bytes(),
                    true,
                    false,
                    &[],
                );
                let _ = io.write_all(&resp).await;
                return;
            }
            Err(HeadError::Bad(msg)) => {
                let msg = format!("bad request: {msg}\n");
                let resp = full_response(
                    StatusCode::BAD_REQUEST,
                    TEXT,
                    msg.as_bytes(),
                    true,
                    false,
                    &[],
                );
                let _ = io.write_all(&resp).await;
                return;
            }
        };
        if head.expect_continue
            && !matches!(head.body, BodyLen::None)
            && io
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
        if discard_body(&mut io, &mut buf, head.body).await.is_err() {
            return;
        }
        let reply = {
            let (path, query) = split_target(&head.target);
            let last_event_id = last_event_id(head.last_event_id.as_deref(), query);
            app.handle(Request {
                method: &head.method,
                path,
                query,
                last_event_id,
            })
            .await
        };
        let is_head = head.method == "HEAD";
        let http10 = head.http10;
        let mut close = head.close;
        drop(head);
        match reply {
            Reply::Full {
                status,
                content_type,
                body,
            } => {
                let resp = full_response(status, content_type, &body, close, is_head, &[]);
                if io.write_all(&resp).await.is_err() || close {
                    return;
                }
                if buf.is_empty() && buf.capacity() > 4096 {
                    buf = Vec::new();
                }
            }
            Reply::Preflight => {
                let resp =
                    full_response(StatusCode::NO_CONTENT, TEXT, b"", close, false, &PREFLIGHT);
                if io.write_all(&resp).await.is_err() || close {
                    return;
                }
            }
            Reply::Stream(body) => {
                // Bytes pipelined behind a stream request cannot be answered in order with
                // the stream still open; close after it instead.
                close |= !buf.is_empty() || http10;
                buf = Vec::new();
                let chunked = !http10;
                let clean = Streaming::new(&mut io, *body, stream_head(chunked), chunked).await;
                if !clean || close {
                    return;
                }
            }
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Reads until `buf` holds a complete request head, parses it and removes it from `buf`
/// (pipelined bytes after it stay).
async fn read_head(io: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Head, HeadError> {
    loop {
        if !buf.is_empty() {
            if let Some((head, n)) = parse_head(buf)? {
                buf.drain(..n);
                return Ok(head);
            }
            if buf.len() >= MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
        }
        read_more(io, buf, 1024)
            .await
            .map_err(|_| HeadError::Gone)?;
    }
}

/// Reads at least one byte into `buf`; EOF is an error.
async fn read_more(io: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    if buf.capacity() - buf.len() < want {
        buf.reserve(want.max(1024));
    }
    loop {
        io.readable().await?;
        match io.try_read_buf(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Bad(e.to_string())),
    };
    let http10 = req.version == Some(0);
    let mut head = Head {
        method: req.method.unwrap_or("GET").to_owned(),
        target: req.path.unwrap_or("/").to_owned(),
        last_event_id: None,
        http10,
        close: http10,
        body: BodyLen::None,
        expect_continue: false,
    };
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| HeadError::Bad("invalid content-length".into()))?;
            match head.body {
                BodyLen::Length(l) if l != len => {
                    return Err(HeadError::Bad("conflicting content-length".into()))
                }
                BodyLen::Chunked => {}
                _ => head.body = BodyLen::Length(len),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                head.body = BodyLen::Chunked;
            } else {
                return Err(HeadError::Bad("unsupported transfer-encoding".into()));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    head.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    // HTTP/1.0 keep-alive is not supported: the response says `close`.
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("last-event-id") {
            head.last_event_id = Some(h.value.to_vec());
        }
    }
    Ok(Some((head, n)))
}

/// Path and query of a request target (origin form, or absolute form).
fn split_target(target: &str) -> (&str, Option<&str>) {
    let rest = match target.find("://") {
        Some(i) if !target.starts_with('/') => {
            let after = &target[i + 3..];
            after.find('/').map_or("/", |j| &after[j..])
        }
        _ => target,
    };
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

fn last_event_id(header: Option<&[u8]>, query: Option<&str>) -> Option<String> {
    let mut map = HeaderMap::new();
    if let Some(v) = header.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        map.insert("last-event-id", v);
    }
    sse_core::http::last_event_id(&map, query)
}

/// Reads and drops a request body; pipelined bytes after it stay in `buf`.
async fn discard_body(io: &mut TcpStream, buf: &mut Vec<u8>, len: BodyLen) -> io::Result<()> {
    match len {
        BodyLen::None => Ok(()),
        BodyLen::Length(mut left) => loop {
            let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            buf.drain(..take);
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
            read_more(io, buf, 4096).await?;
        },
        BodyLen::Chunked => {
            let mut st = Skip::Size(0);
            loop {
                let used = st
                    .feed(buf)
                    .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
                buf.drain(..used);
                if matches!(st, Skip::Done) {
                    return Ok(());
                }
                read_more(io, buf, 4096).await?;
            }
        }
    }
}

/// Where a chunked-body skipper stands.
#[derive(Debug, Clone, Copy)]
enum Skip {
    Size(u64),
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf { empty: bool },
    Done,
}

impl Skip {
    /// Consumes what it can of `b`; returns how many bytes it used.
    fn feed(&mut self, b: &[u8]) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            *self = match *self {
                Skip::Size(v) => match c {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = u64::from((c as char).to_digit(16).unwrap_or(0));
                        Skip::Size(
                            v.checked_mul(16)
                                .and_then(|v| v.checked_add(d))
                                .ok_or("chunk size overflow")?,
                        )
                    }
                    b';' | b' ' | b'\t' => Skip::Ext(v),
                    b'\r' => Skip::SizeLf(v),
                    _ => return Err("invalid chunk size"),
                },
                Skip::Ext(v) => match c {
                    b'\r' => Skip::SizeLf(v),
                    _ => Skip::Ext(v),
                },
                Skip::SizeLf(v) => match (c, v) {
                    (b'\n', 0) => Skip::TrailerStart,
                    (b'\n', v) => Skip::Data(v),
                    _ => return Err("invalid chunk size line"),
                },
                Skip::Data(v) => {
                    let take = usize::try_from(v).unwrap_or(usize::MAX).min(b.len() - i);
                    i += take;
                    let left = v - take as u64;
                    *self = if left == 0 {
                        Skip::DataCr
                    } else {
                        Skip::Data(left)
                    };
                    continue;
                }
                Skip::DataCr if c == b'\r' => Skip::DataLf,
                Skip::DataLf if c == b'\n' => Skip::Size(0),
                Skip::DataCr | Skip::DataLf => return Err("missing CRLF after chunk"),
                Skip::TrailerStart if c == b'\r' => Skip::TrailerLf { empty: true },
                Skip::TrailerStart | Skip::Trailer if c != b'\r' => Skip::Trailer,
                Skip::TrailerStart | Skip::Trailer => Skip::TrailerLf { empty: false },
                Skip::TrailerLf { empty } if c == b'\n' => {
                    if empty {
                        *self = Skip::Done;
                        return Ok(i + 1);
                    }
                    Skip::TrailerStart
                }
                Skip::TrailerLf { .. } => return Err("invalid trailer"),
                Skip::Done => return Ok(i),
            };
            i += 1;
        }
        Ok(i)
    }
}

/// A complete response: head and body in one buffer, for one write.
fn full_response(
    status: StatusCode,
    content_type: &str,
    body: &[u8],
    close: bool,
    head_only: bool,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(192 + body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n{}: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        CORS.0,
        CORS.1
    );
    for (k, v) in extra {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    let no_body = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    if !no_body {
        if !body.is_empty() {
            let _ = write!(out, "content-type: {content_type}\r\n");
        }
        let _ = write!(out, "content-length: {}\r\n", body.len());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !no_body && !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// The head of a stream response.
fn stream_head(chunked: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    out.extend_from_slice(format!("{}: {}\r\n", CORS.0, CORS.1).as_bytes());
    for (k, v) in sse_core::http::stream_headers() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    } else {
        out.extend_from_slice(b"connection: close\r\n\r\n");
    }
    out.freeze()
}

/// Bytes in flight: an optional chunk-size line, the data, an optional CRLF.
struct Out {
    pre: [u8; 18],
    pre_at: u8,
    pre_end: u8,
    data: Bytes,
    post: &'static [u8],
}

impl Out {
    const EMPTY: Out = Out {
        pre: [0; 18],
        pre_at: 0,
        pre_end: 0,
        data: Bytes::new(),
        post: b"",
    };

    fn raw(data: Bytes) -> Out {
        Out { data, ..Out::EMPTY }
    }

    fn chunk(data: Bytes) -> Out {
        let mut out = Out {
            data,
            post: b"\r\n",
            ..Out::EMPTY
        };
        out.pre_end = write_chunk_size(&mut out.pre, out.data.len()) as u8;
        out
    }

    fn is_empty(&self) -> bool {
        self.pre_at == self.pre_end && self.data.is_empty() && self.post.is_empty()
    }

    fn slices(&self) -> ([IoSlice<'_>; 3], usize) {
        let mut s = [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
        let mut n = 0;
        for part in [
            &self.pre[usize::from(self.pre_at)..usize::from(self.pre_end)],
            &self.data[..],
            self.post,
        ] {
            if !part.is_empty() {
                s[n] = IoSlice::new(part);
                n += 1;
            }
        }
        (s, n)
    }

    fn advance(&mut self, mut n: usize) {
        let pre = usize::from(self.pre_end - self.pre_at).min(n);
        self.pre_at += pre as u8;
        n -= pre;
        let data = self.data.len().min(n);
        self.data.advance(data);
        n -= data;
        self.post = &self.post[n.min(self.post.len())..];
    }
}

/// Writes `{len:x}\r\n` into `out`; returns its length.
fn write_chunk_size(out: &mut [u8; 18], len: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = 0;
    let mut v = len;
    loop {
        digits[n] = HEX[v & 15];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    out[n] = b'\r';
    out[n + 1] = b'\n';
    n + 2
}

/// Streams one response body; resolves to whether the response ended cleanly (the connection
/// may serve another request).
struct Streaming<'a> {
    io: &'a mut TcpStream,
    body: StreamBody,
    head: Option<Bytes>,
    chunked: bool,
    out: Out,
    ended: bool,
}

impl<'a> Streaming<'a> {
    fn new(io: &'a mut TcpStream, body: StreamBody, head: Bytes, chunked: bool) -> Self {
        Streaming {
            io,
            body,
            head: Some(head),
            chunked,
            out: Out::EMPTY,
            ended: false,
        }
    }
}

/// Whether the peer closed its side (or the socket failed). Reads and drops anything it sent.
fn peer_gone(io: &TcpStream, cx: &mut Context<'_>) -> bool {
    for _ in 0..16 {
        match io.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {
                let mut scratch = [0u8; 256];
                match io.try_read(&mut scratch) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return true,
                }
            }
            Poll::Ready(Err(_)) => return true,
            Poll::Pending => return false,
        }
    }
    // The client keeps sending: look again on the next turn.
    cx.waker().wake_by_ref();
    false
}

impl Future for Streaming<'_> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        if peer_gone(this.io, cx) {
            return Poll::Ready(false);
        }
        loop {
            while !this.out.is_empty() {
                let (slices, n) = this.out.slices();
                match Pin::new(&mut *this.io).poll_write_vectored(cx, &slices[..n]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(false),
                    Poll::Ready(Ok(k)) => this.out.advance(k),
                    Poll::Pending => return Poll::Pending,
                }
            }
            // An empty `Bytes` still holds its allocation: let the written chunk go.
            this.out = Out::EMPTY;
            if this.ended {
                return Poll::Ready(this.chunked);
            }
            let next = this.body.poll_chunk(cx);
            if let Some(head) = this.head.take() {
                // The head leaves with the first chunk (normally the `: ok` frame, which is
                // ready at once).
                let mut b = BytesMut::with_capacity(head.len() + 64);
                b.extend_from_slice(&head);
                match next {
                    Poll::Ready(Some(chunk)) => {
                        b.reserve(chunk.len() + 20);
                        if this.chunked {
                            let mut size = [0u8; 18];
                            let k = write_chunk_size(&mut size, chunk.len());
                            b.extend_from_slice(&size[..k]);
                            b.extend_from_slice(&chunk);
                            b.extend_from_slice(b"\r\n");
                        } else {
                            b.extend_from_slice(&chunk);
                        }
                    }
                    Poll::Ready(None) => {
                        this.ended = true;
                        if this.chunked {
                            b.extend_from_slice(b"0\r\n\r\n");
                        }
                    }
                    Poll::Pending => {}
                }
                this.out = Out::raw(b.freeze());
                continue;
            }
            match next {
                Poll::Ready(Some(chunk)) => {
                    this.out = if this.chunked {
                        Out::chunk(chunk)
                    } else {
                        Out::raw(chunk)
                    };
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    if this.chunked {
                        this.out = Out::raw(Bytes::from_static(b"0\r\n\r\n"));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_line() {
        let mut b = [0u8; 18];
        let n = write_chunk_size(&mut b, 0x1a2f);
        assert_eq!(&b[..n], b"1a2f\r\n");
        let n = write_chunk_size(&mut b, 0);
        assert_eq!(&b[..n], b"0\r\n");
        let n = write_chunk_size(&mut b, usize::MAX);
        assert_eq!(n, usize::BITS as usize / 4 + 2);
    }

    #[test]
    fn out_advances_across_parts() {
        let mut o = Out::chunk(Bytes::from_static(b"hello"));
        let (_, n) = o.slices();
        assert_eq!(n, 3);
        o.advance(2);
        assert_eq!(&o.pre[usize::from(o.pre_at)..usize::from(o.pre_end)], b"\n");
        o.advance(4);
        assert_eq!(&o.data[..], b"lo");
        o.advance(3);
        assert_eq!(o.post, b"\n");
        o.advance(1);
        assert!(o.is_empty());
    }

    #[test]
    fn chunked_skip() {
        let body = b"5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /next";
        for split in 0..body.len() {
            let mut st = Skip::Size(0);
            let mut used = st.feed(&body[..split]).unwrap();
            let mut rest = body[used..].to_vec();
            if !matches!(st, Skip::Done) {
                used += st.feed(&rest).unwrap();
                rest = body[used..].to_vec();
            }
            assert!(matches!(st, Skip::Done), "split {split}");
            assert_eq!(rest, b"GET /next");
        }
        assert!(Skip::Size(0).feed(b"zz\r\n").is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(split_target("/a?b=1"), ("/a", Some("b=1")));
        assert_eq!(split_target("/a"), ("/a", None));
        assert_eq!(
            split_target("http://h:1/sub/x?lastEventId=3"),
            ("/sub/x", Some("lastEventId=3"))
        );
    }
}
