//! A raw-socket HTTP/1.1 client for servers under test: one-shot requests, and SSE subscribers
//! that de-chunk and decode the body, with every read bounded by [`READ_TIMEOUT`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sse_core::{DecodedEvent, Decoder};

/// The bound on every socket read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A response read to the end.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// The response head, lowercased.
    pub head: String,
    /// The body, as received (not de-chunked).
    pub body: String,
}

/// One request on its own connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8(resp).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    Resp {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// Undoes the chunked transfer coding.
#[derive(Debug, Clone, Copy)]
pub enum Dechunk {
    /// Reading a chunk size.
    Size(u64),
    /// Skipping a chunk extension.
    Ext(u64),
    /// After the size line's CR.
    SizeLf(u64),
    /// Inside chunk data, with this many bytes left.
    Data(u64),
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data, expecting LF.
    DataLf,
    /// The last chunk was read.
    Done,
}

impl Dechunk {
    /// Appends the data in `b` to `out`.
    pub fn feed(&mut self, b: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            *self = match *self {
                Dechunk::Size(v) => match (c as char).to_digit(16) {
                    Some(d) => Dechunk::Size(v * 16 + u64::from(d)),
                    None if c == b'\r' => Dechunk::SizeLf(v),
                    None => Dechunk::Ext(v),
                },
                Dechunk::Ext(v) if c == b'\r' => Dechunk::SizeLf(v),
                Dechunk::Ext(v) => Dechunk::Ext(v),
                Dechunk::SizeLf(0) => Dechunk::Done,
                Dechunk::SizeLf(v) => Dechunk::Data(v),
                Dechunk::Data(v) => {
                    let take = (v as usize).min(b.len() - i);
                    out.extend_from_slice(&b[i..i + take]);
                    i += take;
                    let left = v - take as u64;
                    *self = if left == 0 {
                        Dechunk::DataCr
                    } else {
                        Dechunk::Data(left)
                    };
                    continue;
                }
                Dechunk::DataCr => Dechunk::DataLf,
                Dechunk::DataLf => Dechunk::Size(0),
                Dechunk::Done => return,
            };
            i += 1;
        }
    }
}

/// A subscriber on a raw socket: an HTTP/1.1 GET with `Accept: text/event-stream`, its
/// response decoded with [`Decoder`].
pub struct Sub {
    /// The connection.
    pub sock: TcpStream,
    /// Status code.
    pub status: u16,
    /// The response head, lowercased.
    pub head: String,
    chunked: bool,
    dechunk: Dechunk,
    /// Body bytes not yet given to the decoder (or to `read_body_to_end`).
    body: Vec<u8>,
    /// The first body bytes (up to 64), to check `: ok`.
    pub start: Vec<u8>,
    decoder: Decoder,
    events: VecDeque<DecodedEvent>,
    /// Whether the body has ended.
    pub ended: bool,
}

impl Sub {
    /// Connects and sends the request; returns once the response head is read.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Sub {
        Sub::on(TcpStream::connect(addr).unwrap(), addr, path, headers)
    }

    /// Like [`Sub::open`], on an already connected socket.
    pub fn on(mut sock: TcpStream, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Sub {
        sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = sock.read(&mut buf).expect("response head");
            assert!(n > 0, "connection closed before the response head");
            head.extend_from_slice(&buf[..n]);
        };
        let rest = head.split_off(end + 4);
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        let status = head[9..12].parse().unwrap();
        let chunked = head.contains("transfer-encoding: chunked");
        let mut sub = Sub {
            sock,
            status,
            head,
            chunked,
            dechunk: Dechunk::Size(0),
            body: Vec::new(),
            start: Vec::new(),
            decoder: Decoder::new(),
            events: VecDeque::new(),
            ended: status == 204,
        };
        sub.push(&rest);
        sub
    }

    /// Adds received bytes (de-chunking them).
    pub fn push(&mut self, b: &[u8]) {
        let before = self.body.len();
        if self.chunked {
            self.dechunk.feed(b, &mut self.body);
            self.ended |= matches!(self.dechunk, Dechunk::Done);
        } else {
            self.body.extend_from_slice(b);
        }
        if self.start.len() < 64 {
            let take = (64 - self.start.len()).min(self.body.len() - before);
            self.start
                .extend_from_slice(&self.body[before..before + take]);
        }
    }

    /// Reads once; false at the end of the body.
    pub fn read_some(&mut self) -> bool {
        if self.ended {
            return false;
        }
        let mut buf = vec![0u8; 64 << 10];
        let n = match self.sock.read(&mut buf) {
            // A server killed with SIGKILL may reset the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            r => r.expect("read (timed out?)"),
        };
        if n == 0 {
            self.ended = true;
            return false;
        }
        self.push(&buf[..n]);
        true
    }

    /// The next event, or `None` at the end of the body.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<DecodedEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            self.decoder.feed(&self.body);
            self.body.clear();
            while let Some(e) = self.decoder.next_event() {
                self.events.push_back(e);
            }
            if self.events.is_empty() && !self.read_some() {
                return None;
            }
        }
    }

    /// Reads until the body has started with `: ok`.
    pub fn wait_ok(&mut self) {
        assert_eq!(self.status, 200);
        while self.start.len() < 6 {
            assert!(self.read_some(), "stream ended before `: ok`");
        }
        assert!(
            self.start.starts_with(b": ok\n\n"),
            "the stream starts with {:?}",
            String::from_utf8_lossy(&self.start)
        );
    }

    /// The next `k` events (panics if the stream ends first).
    pub fn take(&mut self, k: usize) -> Vec<DecodedEvent> {
        (0..k)
            .map(|i| {
                self.next()
                    .unwrap_or_else(|| panic!("stream ended after {i} of {k} events"))
            })
            .collect()
    }

    /// Every event up to the end of the body.
    pub fn all(&mut self) -> Vec<DecodedEvent> {
        let out: Vec<_> = std::iter::from_fn(|| self.next()).take(1_000_000).collect();
        assert!(self.ended, "the body ends");
        out
    }

    /// Whether the connection is still open: nothing but heartbeats (or nothing) to read
    /// within `wait`, and no end of stream. Keeps what it reads.
    pub fn still_open(&mut self, wait: Duration) -> bool {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        let open = match self.sock.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.push(&buf[..n]);
                !self.ended
            }
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        open
    }

    /// Reads the whole body without decoding (as fast as the socket goes), then decodes it.
    pub fn read_body_to_end(&mut self) -> Vec<DecodedEvent> {
        while self.read_some() {}
        self.all()
    }
}
