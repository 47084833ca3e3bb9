//! Incremental, spec-conformant event-stream decoder.
//!
//! [`Decoder`] implements the WHATWG HTML algorithms "Parsing an event stream" and "Interpreting
//! an event stream" exactly, over bytes pushed in chunks of any size:
//!
//! * One leading UTF-8 byte order mark is stripped, at the start of the stream only (also when it
//!   arrives split over several chunks).
//! * Lines end with CR, LF or CRLF — also when the CR ends one chunk and the LF starts the next,
//!   which is one line break, not two.
//! * A line starting with `:` is a comment. A line without a colon is a field name with an empty
//!   value. One leading space of a value is stripped.
//! * `event` sets the event type; `data` appends its value and a LF to the data; `id` sets the
//!   last event id, unless the value contains NUL (then the line is ignored), and an empty `id`
//!   resets it; `retry` sets the reconnection time in milliseconds when its value is a non-empty
//!   run of ASCII digits (otherwise, or when it overflows, the line is ignored). Other fields
//!   are ignored.
//! * A blank line dispatches the event: the last event id is committed; if no data was received
//!   nothing is dispatched; otherwise one trailing LF is removed from the data and the event is
//!   queued, typed `message` unless an `event` field said otherwise. The type, data, comments and
//!   block `retry` are then reset, while the last event id persists across events.
//! * At the end of the stream ([`Decoder::finish`]) an unterminated event is dropped.
//! * Invalid UTF-8 is replaced with U+FFFD, one complete line at a time, so a broken line never
//!   holds back the events after it.
//!
//! # Cost
//!
//! Decoding is linear in the input size whatever the chunking: every byte is scanned for a line
//! break exactly once. Complete lines are parsed straight out of the pushed chunk; only the tail
//! of a line cut by a chunk boundary is copied into an internal buffer, and new bytes are
//! appended to it without rescanning what it already holds.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use sse_core::Decoder;
//!
//! let mut decoder = Decoder::new();
//! // Chunks may cut lines anywhere, even between the CR and the LF of a CRLF.
//! decoder.feed(b"retry: 3000\r");
//! decoder.feed(b"\nevent: progress\r\nid: 7\r\nda");
//! decoder.feed(b"ta: {\"page\":3}\r\n\r\ndata: unterminated");
//! decoder.finish();
//!
//! let event = decoder.next_event().expect("one complete event");
//! assert_eq!(event.event, "progress");
//! assert_eq!(event.data, "{\"page\":3}");
//! assert_eq!(event.last_event_id, "7");
//! assert_eq!(event.retry, Some(Duration::from_millis(3000)));
//! // The event without its blank line is dropped at the end of the stream.
//! assert_eq!(decoder.next_event(), None);
//! assert_eq!(decoder.retry(), Some(Duration::from_secs(3)));
//! ```
//!
//! # Borrowed events
//!
//! [`Decoder::next_event_ref`] lends the next event as an [`EventRef`] of `&str` views into the
//! decoder's own buffers instead of handing over owned strings. The buffers of a taken event are
//! recycled for the events after it, so once they have grown to the stream's event size a
//! client that reads every event this way allocates nothing per event.
//!
//! ```
//! use sse_core::Decoder;
//!
//! let mut decoder = Decoder::new();
//! decoder.feed(b"event: tick\nid: 1\ndata: 41\n\ndata: 42\n\n");
//! let mut sum = 0;
//! while let Some(event) = decoder.next_event_ref() {
//!     sum += event.data.parse::<u32>().expect("a number");
//!     assert_eq!(event.last_event_id, "1");
//! }
//! assert_eq!(sum, 83);
//! ```
//!
//! Over a stream of byte chunks (an HTTP response body, for example), use [`DecodeStream`]:
//!
//! ```
//! use futures_util::{stream, StreamExt};
//! use sse_core::decode::DecodeStream;
//!
//! # futures_util::FutureExt::now_or_never(async {
//! let chunks = stream::iter([Ok::<_, std::io::Error>(&b"data: a\n\nda"[..]), Ok(&b"ta: b\n\n"[..])]);
//! let events: Vec<_> = DecodeStream::new(chunks).map(|e| e.expect("no error").data).collect().await;
//! assert_eq!(events, ["a", "b"]);
//! # }).expect("ready");
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_core::{FusedStream, Stream};

/// The UTF-8 byte order mark.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// The default event type.
const MESSAGE: &str = "message";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedEvent {
    /// The event type: the last `event` field of the event, or `"message"` when there was none or
    /// it was empty.
    pub event: String,
    /// The `data` lines of the event joined by LF (the final LF removed).
    pub data: String,
    /// The decoder's last event id when the event was dispatched (set by the latest `id` field of
    /// this or an earlier event; empty if none).
    pub last_event_id: String,
    /// The reconnection time set by a valid `retry` field in this event's block of lines, if any.
    pub retry: Option<Duration>,
    /// The comment lines of this event's block of lines, without the `:` and with one leading
    /// space stripped.
    pub comments: Vec<String>,
}

impl From<EventRef<'_>> for DecodedEvent {
    fn from(event: EventRef<'_>) -> Self {
        event.to_decoded()
    }
}

/// One dispatched event, borrowed from the [`Decoder`] that decoded it
/// ([`Decoder::next_event_ref`]): the same fields as [`DecodedEvent`], without owning them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type: the last `event` field of the event, or `"message"` when there was none or
    /// it was empty.
    pub event: &'a str,
    /// The `data` lines of the event joined by LF (the final LF removed).
    pub data: &'a str,
    /// The decoder's last event id when the event was dispatched (set by the latest `id` field of
    /// this or an earlier event; empty if none).
    pub last_event_id: &'a str,
    /// The reconnection time set by a valid `retry` field in this event's block of lines, if any.
    pub retry: Option<Duration>,
    /// The comment lines of this event's block of lines, without the `:` and with one leading
    /// space stripped.
    pub comments: &'a [String],
}

impl EventRef<'_> {
    /// An owned copy of the event.
    pub fn to_decoded(&self) -> DecodedEvent {
        DecodedEvent {
            event: self.event.to_owned(),
            data: self.data.to_owned(),
            last_event_id: self.last_event_id.to_owned(),
            retry: self.retry,
            comments: self.comments.to_vec(),
        }
    }
}

impl PartialEq<DecodedEvent> for EventRef<'_> {
    fn eq(&self, other: &DecodedEvent) -> bool {
        self.event == other.event
            && self.data == other.data
            && self.last_event_id == other.last_event_id
            && self.retry == other.retry
            && self.comments == other.comments.as_slice()
    }
}

impl PartialEq<EventRef<'_>> for DecodedEvent {
    fn eq(&self, other: &EventRef<'_>) -> bool {
        other == self
    }
}

/// A taken event whose buffers hold more than this is not kept for reuse, so that one huge event
/// does not pin its memory for the rest of the stream.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The buffers of taken events are kept for reuse up to this many bytes of capacity in all.
const SPARE_BYTES: usize = 1 << 20;

/// A dispatched event in the decoder's queue. Its buffers are reused: when an event borrowed
/// with [`Decoder::next_event_ref`] is done with, its slot goes back to the spare list and the
/// next dispatch fills it again.
#[derive(Debug, Clone, Default)]
struct Slot {
    event: String,
    data: String,
    last_event_id: String,
    retry: Option<Duration>,
    /// Comment buffers; the first `comment_count` are this event's.
    comments: Vec<String>,
    comment_count: usize,
}

impl Slot {
    fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            event: &self.event,
            data: &self.data,
            last_event_id: &self.last_event_id,
            retry: self.retry,
            comments: &self.comments[..self.comment_count],
        }
    }

    fn into_decoded(mut self) -> DecodedEvent {
        self.comments.truncate(self.comment_count);
        DecodedEvent {
            event: self.event,
            data: self.data,
            last_event_id: self.last_event_id,
            retry: self.retry,
            comments: self.comments,
        }
    }

    /// The memory its buffers hold (roughly: the slot itself and its buffers' capacities).
    fn held_bytes(&self) -> usize {
        mem::size_of::<Slot>()
            + self.data.capacity()
            + self.event.capacity()
            + self.last_event_id.capacity()
            + self.comments.capacity() * mem::size_of::<String>()
            + self.comments.iter().map(String::capacity).sum::<usize>()
    }
}

/// Where the decoder stands on the leading byte order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomState {
    /// At the start of the stream, with this many bytes of a BOM seen so far (0..=2).
    Matching(u8),
    /// Past the start of the stream.
    Done,
}

/// An incremental event-stream parser: push bytes with [`Decoder::feed`], take events with
/// [`Decoder::next_event`] (owned) or [`Decoder::next_event_ref`] (borrowed, no allocation).
///
/// The rules it follows are listed in the [module docs](self).
///
/// # Examples
///
/// ```
/// use sse_core::Decoder;
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b": hello\nid: 1\ndata: a\ndata:b\n\n");
/// let event = decoder.next_event().expect("dispatched");
/// assert_eq!((event.event.as_str(), event.data.as_str()), ("message", "a\nb"));
/// assert_eq!(event.comments, ["hello"]);
/// assert_eq!(decoder.last_event_id(), "1");
/// ```
#[derive(Clone)]
pub struct Decoder {
    /// The start of a line cut by a chunk boundary.
    pending: Vec<u8>,
    /// The last line ended with a CR at the very end of a chunk: a LF at the start of the next
    /// chunk belongs to that line break.
    after_cr: bool,
    bom: BomState,
    /// The event type buffer.
    event_type: String,
    /// The data buffer.
    data: String,
    /// The last event id buffer.
    id_buffer: String,
    /// The last event id string (committed at every blank line).
    last_event_id: String,
    /// The stream's reconnection time.
    retry: Option<Duration>,
    /// A valid `retry` of the current block of lines.
    block_retry: Option<Duration>,
    /// Comment buffers of the current block of lines; the first `comment_count` are in use.
    comments: Vec<String>,
    comment_count: usize,
    /// Dispatched events not taken yet.
    queue: VecDeque<Slot>,
    /// The event lent by the latest [`Decoder::next_event_ref`].
    current: Option<Slot>,
    /// Slots of taken events, for the next dispatches to reuse.
    spare: Vec<Slot>,
    /// The sum of the spare slots' [`Slot::held_bytes`].
    spare_bytes: usize,
    /// Bytes scanned for line breaks, to check linearity in tests.
    #[cfg(test)]
    scanned: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("pending_len", &self.pending.len())
            .field("event_type", &self.event_type)
            .field("data", &self.data)
            .field("last_event_id", &self.last_event_id)
            .field("retry", &self.retry)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder at the start of a stream, with an empty last event id and no reconnection time.
    pub fn new() -> Self {
        Decoder {
            pending: Vec::new(),
            after_cr: false,
            bom: BomState::Matching(0),
            event_type: String::new(),
            data: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            block_retry: None,
            comments: Vec::new(),
            comment_count: 0,
            queue: VecDeque::new(),
            current: None,
            spare: Vec::new(),
            spare_bytes: 0,
            #[cfg(test)]
            scanned: 0,
        }
    }

    /// Pushes the next bytes of the stream. Events they complete are queued for
    /// [`Decoder::next_event`].
    ///
    /// Runs in time linear in `chunk.len()` (plus the size of the events it dispatches),
    /// however the stream is cut into chunks.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        if let BomState::Matching(seen) = self.bom {
            let seen = usize::from(seen);
            let n = chunk.len().min(BOM.len() - seen);
            if chunk[..n] == BOM[seen..seen + n] {
                chunk = &chunk[n..];
                if seen + n < BOM.len() {
                    // Still a prefix of a BOM, and the chunk is used up.
                    self.bom = BomState::Matching((seen + n) as u8);
                    return;
                }
                self.bom = BomState::Done;
            } else {
                self.bom = BomState::Done;
                // Not a BOM after all: the bytes held back are ordinary input.
                self.feed_lines(&BOM[..seen]);
            }
        }
        self.feed_lines(chunk);
    }

    /// A decoder at the start of a stream that resumes after the event with id `id`, as if an
    /// earlier stream had ended with it: [`Decoder::last_event_id`] is `id` (what a client sends
    /// as `Last-Event-ID`) and events without an `id` field carry it. An `id` containing NUL is
    /// ignored, as an `id` field with NUL would be.
    pub fn with_last_event_id(id: &str) -> Self {
        let mut decoder = Decoder::new();
        if memchr::memchr(0, id.as_bytes()).is_none() {
            decoder.last_event_id.push_str(id);
            decoder.id_buffer.push_str(id);
        }
        decoder
    }

    /// Takes the next dispatched event, in stream order.
    pub fn next_event(&mut self) -> Option<DecodedEvent> {
        self.recycle_current();
        self.queue.pop_front().map(Slot::into_decoded)
    }

    /// Lends the next dispatched event, in stream order, as views into the decoder's buffers.
    ///
    /// Mixes freely with [`Decoder::next_event`]: both take from the same queue. The buffers of
    /// the event lent last are reused by later events, so reading a stream with this method
    /// allocates nothing per event once the buffers have grown to the stream's event size.
    ///
    /// ```
    /// use sse_core::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.feed(b": note\nevent: update\nid: 7\ndata: a\ndata: b\n\n");
    /// let event = decoder.next_event_ref().expect("dispatched");
    /// assert_eq!((event.event, event.data, event.last_event_id), ("update", "a\nb", "7"));
    /// assert_eq!(event.comments, ["note"]);
    /// assert!(decoder.next_event_ref().is_none());
    /// ```
    pub fn next_event_ref(&mut self) -> Option<EventRef<'_>> {
        self.recycle_current();
        self.current = self.queue.pop_front();
        self.current.as_ref().map(Slot::as_ref)
    }

    /// How many dispatched events wait to be taken.
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }

    /// Puts the buffers of the event lent last back for reuse.
    fn recycle_current(&mut self) {
        if let Some(slot) = self.current.take() {
            let held = slot.held_bytes();
            if held <= KEEP_CAPACITY && self.spare_bytes + held <= SPARE_BYTES {
                self.spare_bytes += held;
                self.spare.push(slot);
            }
        }
    }

    /// Signals the end of the stream: an unterminated line and an event that was not ended by a
    /// blank line are dropped, as the specification requires. Events already dispatched can
    /// still be taken with [`Decoder::next_event`].
    ///
    /// The last event id and the reconnection time are kept, and the decoder is ready for the
    /// start of a new stream (a reconnection): a leading BOM is stripped again, and the new
    /// stream's last event id buffer starts out as the last event id.
    pub fn finish(&mut self) {
        self.pending.clear();
        self.after_cr = false;
        self.bom = BomState::Matching(0);
        self.event_type.clear();
        self.data.clear();
        self.id_buffer.clone_from(&self.last_event_id);
        self.block_retry = None;
        self.comment_count = 0;
    }

    /// The last event id: the value of the latest `id` field (not containing NUL) of an event
    /// ended by a blank line, empty if none. This is what a client sends as `Last-Event-ID` when
    /// it reconnects.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time set by the latest valid `retry` field so far, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Splits `buf` into lines, continuing a line cut by the previous chunk.
    fn feed_lines(&mut self, mut buf: &[u8]) {
        if buf.is_empty() {
            return;
        }
        if mem::take(&mut self.after_cr) && buf[0] == b'\n' {
            // The LF of a CRLF whose CR ended the previous chunk.
            buf = &buf[1..];
        }
        #[cfg(test)]
        {
            self.scanned += buf.len();
        }
        let mut start = 0;
        let mut breaks = memchr::memchr2_iter(b'\r', b'\n', buf);
        while let Some(end) = breaks.next() {
            if self.pending.is_empty() {
                self.line(&buf[start..end]);
            } else {
                let mut line = mem::take(&mut self.pending);
                line.extend_from_slice(&buf[start..end]);
                self.line(&line);
                line.clear();
                self.pending = line;
            }
            start = end + 1;
            if buf[end] == b'\r' {
                match buf.get(end + 1) {
                    Some(b'\n') => {
                        breaks.next();
                        start = end + 2;
                    }
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.pending.extend_from_slice(&buf[start..]);
    }

    /// Interprets one complete line (without its line break).
    fn line(&mut self, line: &[u8]) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"" => self.push_comment(value),
            b"data" => {
                // Room for the value and its LF: a single-line event allocates once.
                self.data.reserve(value.len() + 1);
                push_lossy(&mut self.data, value);
                self.data.push('\n');
            }
            b"event" => {
                self.event_type.clear();
                push_lossy(&mut self.event_type, value);
            }
            // An id containing NUL is ignored.
            b"id" if memchr::memchr(0, value).is_none() => {
                self.id_buffer.clear();
                push_lossy(&mut self.id_buffer, value);
            }
            b"retry" => {
                if let Some(retry) = parse_retry(value) {
                    self.retry = Some(retry);
                    self.block_retry = Some(retry);
                }
            }
            _ => {}
        }
    }

    /// A comment line of the current block, in a reused buffer when there is one.
    fn push_comment(&mut self, value: &[u8]) {
        match self.comments.get_mut(self.comment_count) {
            Some(buffer) => {
                buffer.clear();
                push_lossy(buffer, value);
            }
            None => {
                let mut buffer = String::with_capacity(value.len());
                push_lossy(&mut buffer, value);
                self.comments.push(buffer);
            }
        }
        self.comment_count += 1;
    }

    /// A blank line: dispatches the event, if it has data.
    fn dispatch(&mut self) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let retry = self.block_retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            self.comment_count = 0;
            return;
        }
        // The slot's buffers and the block's trade places: the event keeps the block's, and the
        // next block fills the (cleared) buffers of an event taken earlier.
        let mut slot = match self.spare.pop() {
            Some(slot) => {
                self.spare_bytes -= slot.held_bytes();
                slot
            }
            None => Slot::default(),
        };
        mem::swap(&mut slot.data, &mut self.data);
        self.data.clear();
        slot.data.pop(); // the data buffer always ends with the LF appended after each line
        if self.event_type.is_empty() {
            slot.event.clear();
            slot.event.push_str(MESSAGE);
        } else {
            mem::swap(&mut slot.event, &mut self.event_type);
            self.event_type.clear();
        }
        slot.last_event_id.clone_from(&self.last_event_id);
        slot.retry = retry;
        mem::swap(&mut slot.comments, &mut self.comments);
        slot.comment_count = mem::replace(&mut self.comment_count, 0);
        self.queue.push_back(slot);
    }
}

/// Appends `bytes` decoded as UTF-8, invalid sequences replaced with U+FFFD.
fn push_lossy(dst: &mut String, bytes: &[u8]) {
    // `from_utf8` validates valid input much faster than the lossy decoder's chunk iterator.
    match std::str::from_utf8(bytes) {
        Ok(s) => dst.push_str(s),
        Err(_) => dst.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// A `retry` value: ASCII digits only, at least one, in milliseconds. `None` when invalid or
/// larger than a [`Duration`] can hold.
fn parse_retry(value: &[u8]) -> Option<Duration> {
    if value.is_empty() {
        return None;
    }
    let mut ms: u128 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        ms = ms.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    let secs = u64::try_from(ms / 1000).ok()?;
    // The remainder is below 1000, so the nanoseconds are below 10^9.
    Some(Duration::new(secs, (ms % 1000) as u32 * 1_000_000))
}

pin_project_lite::pin_project! {
    /// Decodes a stream of byte chunks (for example an HTTP response body of
    /// [`Bytes`](bytes::Bytes)) into a stream of [`DecodedEvent`]s.
    ///
    /// Errors of the inner stream are passed through as they come; the stream goes on afterwards
    /// if the inner stream does. When the inner stream ends, the decoder is
    /// [finished](Decoder::finish): an unterminated last event is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use futures_util::{stream, StreamExt};
    /// use sse_core::decode::DecodeStream;
    ///
    /// # futures_util::FutureExt::now_or_never(async {
    /// let body = stream::iter([
    ///     Ok::<_, std::io::Error>(Bytes::from_static(b"id: 1\nevent: tick\nda")),
    ///     Ok(Bytes::from_static(b"ta: 42\n\n")),
    /// ]);
    /// let mut events = DecodeStream::new(body);
    /// let event = events.next().await.expect("an event").expect("no error");
    /// assert_eq!((event.event.as_str(), event.data.as_str()), ("tick", "42"));
    /// assert!(events.next().await.is_none());
    /// assert_eq!(events.decoder().last_event_id(), "1");
    /// # }).expect("ready");
    /// ```
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct DecodeStream<S> {
        #[pin]
        inner: S,
        decoder: Decoder,
        done: bool,
    }
}

impl<S> DecodeStream<S> {
    /// Decodes the chunks of `inner`.
    pub fn new(inner: S) -> Self {
        DecodeStream {
            inner,
            decoder: Decoder::new(),
            done: false,
        }
    }

    /// The decoder, for its [last event id](Decoder::last_event_id) and
    /// [reconnection time](Decoder::retry).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

impl<S, B, E> Stream for DecodeStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    type Item = Result<DecodedEvent, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(event) = this.decoder.next_event() {
                return Poll::Ready(Some(Ok(event)));
            }
            if *this.done {
                return Poll::Ready(None);
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.decoder.feed(chunk.as_ref()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.decoder.finish();
                    *this.done = true;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let queued = self.decoder.queue.len();
        if self.done {
            (queued, Some(queued))
        } else {
            (queued, None)
        }
    }
}

impl<S, B, E> FusedStream for DecodeStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    fn is_terminated(&self) -> bool {
        self.done && self.decoder.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_chunks(chunks: &[&[u8]]) -> Vec<DecodedEvent> {
        let mut d = Decoder::new();
        for c in chunks {
            d.feed(c);
        }
        d.finish();
        std::iter::from_fn(|| d.next_event()).collect()
    }

    fn data_of(chunks: &[&[u8]]) -> Vec<String> {
        decode_chunks(chunks).into_iter().map(|e| e.data).collect()
    }

    #[test]
    fn simple_event() {
        let evs = decode_chunks(&[b"event: e\nid: 1\nretry: 5\n: c\ndata: x\n\n"]);
        assert_eq!(
            evs,
            [DecodedEvent {
                event: "e".into(),
                data: "x".into(),
                last_event_id: "1".into(),
                retry: Some(Duration::from_millis(5)),
                comments: vec!["c".into()],
            }]
        );
    }

    #[test]
    fn crlf_split_across_chunks_is_one_break() {
        assert_eq!(data_of(&[b"data: a\r", b"\n\r", b"\n"]), ["a"]);
        // A lone CR followed by a non-LF in the next chunk.
        assert_eq!(data_of(&[b"data: a\r", b"data: b\r", b"\r"]), ["a\nb"]);
        // CR, then an empty chunk, then LF.
        assert_eq!(data_of(&[b"data: a\r", b"", b"\n", b"\n"]), ["a"]);
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let input: &[u8] =
            b"\xEF\xBB\xBFretry: 10\r\n: c\r\nevent: t\rdata: a\r\ndata\n\r\nid: 9\n\nid\nx\ndata: \xFF\n\n";
        let whole = decode_chunks(&[input]);
        assert_eq!(whole.len(), 2);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let evs = decode_chunks(&[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(evs, whole, "split at {i},{j}");
            }
        }
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode_chunks(&bytewise), whole);
    }

    #[test]
    fn bom_only_at_start() {
        let b: &[u8] = b"\xEF\xBB\xBF";
        assert_eq!(data_of(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]), ["x"]);
        // A second BOM is part of the field name, so the line is an unknown field.
        assert_eq!(data_of(&[b, b, b"data: x\n\n"]), Vec::<String>::new());
        // A partial BOM is input: it lands in the field name.
        assert_eq!(
            data_of(&[b"\xEF\xBB", b"data: x\n\n"]),
            Vec::<String>::new()
        );
        assert_eq!(data_of(&[b"\xEF", b"\n", b"data: x\n\n"]), ["x"]);
    }

    #[test]
    fn finish_resets_for_a_new_stream() {
        let mut d = Decoder::new();
        d.feed(b"id: 5\ndata: a\n\nid: 6\ndata: dropped\nevent: x");
        d.finish();
        assert_eq!(d.next_event().map(|e| e.data).as_deref(), Some("a"));
        assert_eq!(d.next_event(), None);
        assert_eq!(d.last_event_id(), "5");
        d.feed(b"\xEF\xBB\xBFdata: b\n\n");
        let e = d.next_event().expect("event");
        assert_eq!((e.event.as_str(), e.data.as_str()), ("message", "b"));
        assert_eq!(e.last_event_id, "5");
    }

    #[test]
    fn retry_parsing() {
        assert_eq!(parse_retry(b"0"), Some(Duration::ZERO));
        assert_eq!(parse_retry(b"1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry(b""), None);
        assert_eq!(parse_retry(b"12a"), None);
        assert_eq!(parse_retry(b" 1"), None);
        assert_eq!(parse_retry(b"-1"), None);
        assert_eq!(
            parse_retry(u128::MAX.to_string().as_bytes()),
            None,
            "beyond Duration"
        );
        assert_eq!(
            parse_retry(b"1000000000000000000000000000000000000000000"),
            None
        );
        let max_ms = Duration::MAX.as_millis();
        assert_eq!(
            parse_retry(max_ms.to_string().as_bytes()),
            Some(Duration::new(u64::MAX, 999_000_000))
        );
        assert_eq!(parse_retry((max_ms + 1).to_string().as_bytes()), None);
    }

    #[test]
    fn one_byte_at_a_time_is_linear() {
        const LEN: usize = 1 << 20;
        let mut d = Decoder::new();
        d.feed(b"data: ");
        let big = vec![b'x'; LEN];
        for b in big.chunks(1) {
            d.feed(b);
        }
        d.feed(b"\n\n");
        let e = d.next_event().expect("event");
        assert_eq!(e.data.len(), LEN);
        // Every byte was scanned once.
        assert_eq!(d.scanned, LEN + 6 + 2);
    }

    #[test]
    fn comments_and_retry_are_per_block() {
        let evs = decode_chunks(&[b": a\nretry: 7\n\n:b\n:  c\ndata: x\n\n"]);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].comments, ["b", " c"]);
        assert_eq!(evs[0].retry, None);
        let mut d = Decoder::new();
        d.feed(b"retry: 7\n\n");
        assert_eq!(d.retry(), Some(Duration::from_millis(7)));
    }

    #[test]
    fn stream_adapter() {
        use futures_util::{stream, FutureExt, StreamExt};
        let s = stream::iter(vec![
            Ok::<_, &str>(b"data: a\n\nda".to_vec()),
            Err("boom"),
            Ok(b"ta: b\n\ndata: c".to_vec()),
        ]);
        let mut s = DecodeStream::new(s);
        let out: Vec<_> = async { (&mut s).collect::<Vec<_>>().await }
            .now_or_never()
            .expect("ready");
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().map(|e| e.data.as_str()), Ok("a"));
        assert_eq!(out[1], Err("boom"));
        assert_eq!(out[2].as_ref().map(|e| e.data.as_str()), Ok("b"));
        assert!(s.is_terminated());
    }
}
