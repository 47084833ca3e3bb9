//! Event ids, incarnations and resume cursors.
//!
//! * A subscription to **one topic** sends `INCARNATION:SEQ` as the SSE id, for example
//!   `k3f9x2:12`. `SEQ` is the topic's sequence number (1, 2, 3, …), assigned by whoever orders
//!   the topic (this hub in memory, or a backplane), so it means the same thing on every node.
//!   `INCARNATION` names this life of the topic: a server restarted in memory, a topic evicted
//!   and created again, or a backplane that lost its data starts a new incarnation, and an id of
//!   an earlier one is never mistaken for a position in the current one (it gets a `gap`).
//! * A subscription to **several topics** sends a composite cursor as the id: each topic with
//!   its position, `topic=INCARNATION:SEQ` pairs joined by `,`, for example
//!   `job-1=k3f9x2:12,job-2=z81pq0:7`. In topic names, `%`, `,`, `=`, control characters and
//!   non-ASCII bytes are percent-encoded, so the id never contains CR, LF or NUL and always
//!   parses back.
//!
//! A client sends the id back as `Last-Event-ID`; [`Cursor::parse`] turns it into per-topic
//! positions. A bare number `K` (no incarnation) means position `K` of the topic's current
//! incarnation, for clients that build ids by hand.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BufMut;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// One life of a topic: the part of its ids before the `:`.
///
/// Written as up to 12 lowercase base-36 characters (six for the ones this hub makes). In
/// memory the hub draws a fresh one whenever it creates a topic; with a
/// [`Backplane`](super::Backplane) the backplane assigns it, so that every node agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Incarnation(u64);

/// Base-36 digits of an incarnation.
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// `36^6`: incarnations made here are below it, so they print in at most six characters.
const SIX_DIGITS: u64 = 2_176_782_336;
/// The longest incarnation text accepted (`36^12 < 2^63`).
const MAX_LEN: usize = 12;

impl Incarnation {
    /// A new incarnation, different from the previous ones of this process and, with
    /// overwhelming probability, from those of earlier runs.
    ///
    /// Drawn from the process's random hashing keys (seeded from the OS by the standard
    /// library) mixed with a counter, so making one costs a hash, not a system call.
    pub fn new() -> Incarnation {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let h = KEYS
            .get_or_init(std::collections::hash_map::RandomState::new)
            .hash_one(n);
        // Never 0: zero marks "not known yet" in a topic.
        Incarnation(h % (SIX_DIGITS - 1) + 1)
    }

    /// Parses the text form (1 to 12 characters `0-9a-z`, not all zero).
    ///
    /// ```
    /// use sse_core::hub::Incarnation;
    /// let inc = Incarnation::parse("k3f9x2").unwrap();
    /// assert_eq!(inc.to_string(), "k3f9x2");
    /// assert!(Incarnation::parse("K3F9").is_none());
    /// assert!(Incarnation::parse("").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Incarnation> {
        if text.is_empty() || text.len() > MAX_LEN {
            return None;
        }
        let mut v: u64 = 0;
        for b in text.bytes() {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'z' => b - b'a' + 10,
                _ => return None,
            };
            v = v * 36 + u64::from(d);
        }
        (v != 0).then_some(Incarnation(v))
    }

    pub(crate) fn from_raw(v: u64) -> Option<Incarnation> {
        (v != 0).then_some(Incarnation(v))
    }

    pub(crate) fn raw(self) -> u64 {
        self.0
    }

    /// Writes the text form into `buf`; returns the used tail.
    fn encode(self, buf: &mut [u8; MAX_LEN]) -> &[u8] {
        let mut v = self.0;
        let mut i = MAX_LEN;
        while v > 0 && i > 0 {
            i -= 1;
            buf[i] = DIGITS[(v % 36) as usize];
            v /= 36;
        }
        &buf[i..]
    }
}

impl Default for Incarnation {
    fn default() -> Self {
        Incarnation::new()
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; MAX_LEN];
        let text = self.encode(&mut buf);
        // Only ASCII digits and letters were written.
        f.write_str(std::str::from_utf8(text).unwrap_or("0"))
    }
}

/// A topic's incarnation as it can change under a running topic: unknown until a backplane
/// names it. Lock-free, so that composite ids can read other topics' incarnations while one
/// topic's lock is held.
#[derive(Debug, Default)]
pub(crate) struct IncarnationCell(AtomicU64);

impl IncarnationCell {
    pub(crate) fn new(inc: Option<Incarnation>) -> Self {
        IncarnationCell(AtomicU64::new(inc.map_or(0, Incarnation::raw)))
    }
    pub(crate) fn get(&self) -> Option<Incarnation> {
        Incarnation::from_raw(self.0.load(Ordering::Acquire))
    }
    pub(crate) fn set(&self, inc: Incarnation) {
        self.0.store(inc.raw(), Ordering::Release);
    }
}

/// Writes the position `INCARNATION:SEQ` (`SEQ` alone while the incarnation is unknown).
pub(crate) fn put_position<B: BufMut>(buf: &mut B, inc: Option<Incarnation>, seq: u64) {
    if let Some(inc) = inc {
        let mut tmp = [0u8; MAX_LEN];
        buf.put_slice(inc.encode(&mut tmp));
        buf.put_u8(b':');
    }
    let mut num = itoa::Buffer::new();
    buf.put_slice(num.format(seq).as_bytes());
}

/// Writes the `id:` line of an event and the blank line that ends it: the one place that
/// writes the end of a frame.
pub(crate) fn put_id_line<B: BufMut>(buf: &mut B, id: IdLine<'_>) {
    buf.put_slice(b"id: ");
    match id {
        IdLine::Text(text) => buf.put_slice(text),
        IdLine::Position(inc, seq) => put_position(buf, inc, seq),
    }
    buf.put_slice(b"\n\n");
}

/// The value of an `id:` line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdLine<'a> {
    /// Verbatim text (a caller's own id, or a composite cursor).
    Text(&'a [u8]),
    /// A topic position.
    Position(Option<Incarnation>, u64),
}

/// The longest `id: …\n\n` suffix of a single-topic position.
pub(crate) const MAX_POSITION_LINE: usize = 4 + MAX_LEN + 1 + 20 + 2;

/// A parsed `Last-Event-ID`: the position of the client in each topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// A position in a single topic (single-topic subscriptions).
    Seq(Seq),
    /// Per-topic positions (multi-topic subscriptions).
    Composite(Vec<(String, Seq)>),
    /// An id this hub did not issue (for example a caller-supplied id); matched against the
    /// history's ids as text.
    Other(String),
}

/// A position in one topic: after `seq` of `incarnation` (of the current one when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq {
    /// The incarnation the position belongs to; `None` for a bare number.
    pub incarnation: Option<Incarnation>,
    /// The sequence number of the last event seen.
    pub seq: u64,
}

impl Seq {
    fn parse(text: &str) -> Option<Seq> {
        let (incarnation, num) = match text.split_once(':') {
            Some((inc, num)) => (Some(Incarnation::parse(inc)?), num),
            None => (None, text),
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Seq {
            incarnation,
            seq: num.parse().ok()?,
        })
    }
}

/// Characters percent-encoded in topic names inside composite ids.
const TOPIC_SET: &AsciiSet = &CONTROLS.add(b'%').add(b',').add(b'=').add(b' ');

impl Cursor {
    /// Parses a `Last-Event-ID` value.
    ///
    /// ```
    /// use sse_core::hub::{Cursor, Incarnation, Seq};
    /// let inc = Incarnation::parse("k3f9").unwrap();
    /// assert_eq!(Cursor::parse("42"), Cursor::Seq(Seq { incarnation: None, seq: 42 }));
    /// assert_eq!(Cursor::parse("k3f9:42"), Cursor::Seq(Seq { incarnation: Some(inc), seq: 42 }));
    /// assert_eq!(
    ///     Cursor::parse("a=k3f9:1,b%2Cc=2"),
    ///     Cursor::Composite(vec![
    ///         ("a".into(), Seq { incarnation: Some(inc), seq: 1 }),
    ///         ("b,c".into(), Seq { incarnation: None, seq: 2 }),
    ///     ])
    /// );
    /// assert_eq!(Cursor::parse("row-7"), Cursor::Other("row-7".into()));
    /// ```
    pub fn parse(id: &str) -> Cursor {
        if let Some(seq) = Seq::parse(id) {
            return Cursor::Seq(seq);
        }
        if id.contains('=') {
            let mut out = Vec::new();
            for part in id.split(',') {
                let Some((t, s)) = part.split_once('=') else {
                    return Cursor::Other(id.to_owned());
                };
                let topic = percent_decode_str(t).decode_utf8();
                let (Ok(topic), Some(seq)) = (topic, Seq::parse(s)) else {
                    return Cursor::Other(id.to_owned());
                };
                out.push((topic.into_owned(), seq));
            }
            return Cursor::Composite(out);
        }
        Cursor::Other(id.to_owned())
    }

    /// The position in `topic`, if this cursor names one.
    pub fn position(&self, topic: &str, single: bool) -> Option<Position<'_>> {
        match self {
            Cursor::Seq(n) if single => Some(Position::Seq(*n)),
            Cursor::Seq(_) => None,
            Cursor::Composite(v) => v
                .iter()
                .find(|(t, _)| t == topic)
                .map(|(_, s)| Position::Seq(*s)),
            Cursor::Other(s) if single => Some(Position::Id(s)),
            Cursor::Other(_) => None,
        }
    }
}

/// Where a client stands in one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position<'a> {
    /// After this position.
    Seq(Seq),
    /// After the event with this caller-supplied id.
    Id(&'a str),
}

/// Appends a composite id for `(topic, incarnation, seq)` triples to `out`.
pub(crate) fn write_composite<'a>(
    out: &mut Vec<u8>,
    parts: impl Iterator<Item = (&'a str, Option<Incarnation>, u64)>,
) {
    for (i, (topic, inc, seq)) in parts.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Non-ASCII bytes are always encoded too, so the id stays ASCII.
        for chunk in utf8_percent_encode(topic, TOPIC_SET) {
            out.extend_from_slice(chunk.as_bytes());
        }
        out.push(b'=');
        put_position(out, inc, seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_ids_round_trip_any_topic_name() {
        let topics = ["plain", "a,b=c%d", "line\nbreak", "ünï", "", "sp ace"];
        let inc = Incarnation::new();
        let mut id = Vec::new();
        write_composite(
            &mut id,
            topics
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, (i % 2 == 0).then_some(inc), i as u64)),
        );
        let id = String::from_utf8(id).expect("ascii");
        assert!(id.is_ascii());
        assert!(!id.contains(['\n', '\r', '\0']));
        let Cursor::Composite(parsed) = Cursor::parse(&id) else {
            panic!("not composite: {id}");
        };
        let want: Vec<(String, Seq)> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let seq = Seq {
                    incarnation: (i % 2 == 0).then_some(inc),
                    seq: i as u64,
                };
                ((*t).to_owned(), seq)
            })
            .collect();
        assert_eq!(parsed, want);
    }

    #[test]
    fn ids_the_hub_did_not_issue_are_other() {
        for id in [
            "abc", "+5", "a=x", "K3F:1", ":1", "k3f:", "k3f:+1", "0:5", "a=%zz:1",
        ] {
            assert_eq!(Cursor::parse(id), Cursor::Other(id.into()), "{id}");
        }
    }

    #[test]
    fn malformed_escapes_in_topic_names_are_kept_literally() {
        // As browsers do: `%zz` is not an escape, so it stays as it is.
        let Cursor::Composite(v) = Cursor::parse("a%zz=1") else {
            panic!("not composite");
        };
        assert_eq!(v[0].0, "a%zz");
        // `%+1` is not an escape either (it used to decode to 0x01).
        let Cursor::Composite(v) = Cursor::parse("a%+1=1") else {
            panic!("not composite");
        };
        assert_eq!(v[0].0, "a%+1");
    }

    #[test]
    fn new_incarnations_differ_and_print_in_six_characters() {
        let a = Incarnation::new();
        let b = Incarnation::new();
        assert_ne!(a, b);
        for inc in [a, b] {
            let text = inc.to_string();
            assert!(!text.is_empty() && text.len() <= 6, "{text}");
            assert_eq!(Incarnation::parse(&text), Some(inc));
        }
    }

    #[test]
    fn position_lines_are_written_once_for_every_shape() {
        let inc = Incarnation::parse("k3f9").expect("valid");
        let mut v = Vec::new();
        put_id_line(&mut v, IdLine::Position(Some(inc), 42));
        assert_eq!(v, b"id: k3f9:42\n\n");
        let mut v = bytes::BytesMut::new();
        put_id_line(&mut v, IdLine::Text(b"a=1"));
        assert_eq!(&v[..], b"id: a=1\n\n");
        let mut v = Vec::new();
        put_id_line(&mut v, IdLine::Position(None, 7));
        assert_eq!(v, b"id: 7\n\n");
    }
}
