//! Reading an SSE response body in tests: chunks into a [`Decoder`], events out of it.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use sse_core::{DecodedEvent, Decoder, Event};

/// How long [`SseClient::chunk`] waits for the next chunk.
pub const WAIT: Duration = Duration::from_secs(2);

/// A response body read chunk by chunk.
pub trait ChunkSource {
    /// The next chunk of data, `None` at the end; panics on a transport error.
    fn next_chunk(&mut self) -> impl Future<Output = Option<Bytes>>;
}

impl ChunkSource for reqwest::Response {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        self.chunk().await.expect("a body chunk")
    }
}

/// A streaming response body and its decoder.
#[derive(Debug)]
pub struct SseClient<B> {
    /// The body (for a reqwest response: the response, headers included).
    pub body: B,
    /// The decoder, fed every chunk read so far.
    pub dec: Decoder,
    /// Every byte read so far.
    pub raw: Vec<u8>,
    /// How many chunks have been read.
    pub chunks: usize,
    /// Whether the body has ended.
    pub ended: bool,
}

impl<B: ChunkSource> SseClient<B> {
    /// Nothing read yet.
    pub fn new(body: B) -> Self {
        SseClient {
            body,
            dec: Decoder::new(),
            raw: Vec::new(),
            chunks: 0,
            ended: false,
        }
    }

    /// The next body chunk (`None` at the end), within [`WAIT`].
    pub async fn chunk(&mut self) -> Option<Vec<u8>> {
        let c = tokio::time::timeout(WAIT, self.body.next_chunk())
            .await
            .expect("a chunk in time");
        match c {
            Some(c) => {
                self.chunks += 1;
                self.dec.feed(&c);
                self.raw.extend_from_slice(&c);
                Some(c.to_vec())
            }
            None => {
                self.ended = true;
                self.dec.finish();
                None
            }
        }
    }

    /// The next event, or `None` if the body ended first.
    pub async fn event(&mut self) -> Option<DecodedEvent> {
        for _ in 0..1000 {
            if let Some(e) = self.dec.next_event() {
                return Some(e);
            }
            if self.ended || self.chunk().await.is_none() {
                return self.dec.next_event();
            }
        }
        panic!("no event after 1000 chunks");
    }

    /// Every remaining event, until the body ends.
    pub async fn rest(&mut self) -> Vec<DecodedEvent> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match self.event().await {
                Some(e) => out.push(e),
                None => return out,
            }
        }
        panic!("body did not end");
    }

    /// Everything read so far, as text.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Reads until the body holds the retry hint (`retry: 1500`) then `n` heartbeats, and
    /// asserts that it holds nothing else.
    pub async fn heartbeats(&mut self, n: usize) {
        let want = format!("retry: 1500\n\n{}", ":\n\n".repeat(n));
        for _ in 0..100 {
            if self.raw.len() >= want.len() {
                break;
            }
            self.chunk().await.expect("a chunk before the end");
        }
        let raw = self.raw();
        assert!(raw.starts_with(&want), "{raw:?}");
        assert_eq!(
            raw.trim_start_matches("retry: 1500\n\n")
                .replace(":\n\n", ""),
            ""
        );
    }
}

/// `GET url` with `headers` (reqwest, HTTP/1.1); the response head within [`WAIT`].
pub async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    tokio::time::timeout(WAIT, req.send())
        .await
        .expect("response headers in time")
        .expect("a response")
}

/// A response header as text (`None` when absent; panics when it is not visible ASCII).
pub fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("a text header"))
}

/// The events' ids (their `last_event_id`).
pub fn ids(evs: &[DecodedEvent]) -> Vec<String> {
    evs.iter().map(|e| e.last_event_id.clone()).collect()
}

/// The sequence number in an SSE id the hub wrote: the part after the last `:` of
/// `INCARNATION:SEQ` (a bare number is its own sequence). Panics when that part is not a number.
pub fn seq_of(id: &str) -> u64 {
    let tail = id.rsplit(':').next().unwrap_or(id);
    tail.parse()
        .unwrap_or_else(|_| panic!("id {id:?} does not end in a sequence number"))
}

/// The incarnation part of an SSE id the hub wrote (`None` for a bare number).
pub fn incarnation_of(id: &str) -> Option<&str> {
    id.rsplit_once(':').map(|(inc, _)| inc)
}

/// The events' sequence numbers (see [`seq_of`]), skipping events without an id (a `gap`).
pub fn seqs(evs: &[DecodedEvent]) -> Vec<u64> {
    evs.iter()
        .filter(|e| e.event != "gap")
        .map(|e| seq_of(&e.last_event_id))
        .collect()
}

/// Asserts that every id in `ids` has the same incarnation, and returns the sequences.
pub fn same_incarnation_seqs(ids: &[String]) -> Vec<u64> {
    if let Some(first) = ids.first() {
        for id in ids {
            assert_eq!(
                incarnation_of(id),
                incarnation_of(first),
                "ids of two incarnations: {ids:?}"
            );
        }
    }
    ids.iter().map(|id| seq_of(id)).collect()
}

/// An event whose data is `i`.
pub fn data(i: u32) -> Event<'static> {
    Event::new().data(i.to_string())
}

/// Waits (up to about a second, polling every 10 ms) until `cond` holds; panics naming `what`
/// after that.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
