//! The [`Event`] builder: one Server-Sent Event, validated and encoded once into a [`Frame`].
//!
//! # Wire rules
//!
//! Encoding follows the WHATWG HTML "event stream" grammar exactly, so that any conforming
//! client (a browser's `EventSource`, this crate's [`Decoder`](crate::Decoder)) reads back
//! precisely what was built:
//!
//! * Fields are written in the order comments, `event`, `retry`, `data`, `id`, then the blank
//!   line that dispatches the event. Every field is written as `name: value` — one space after
//!   the colon, because a client strips exactly one leading space, so a value that itself starts
//!   with spaces survives.
//! * **data** is split into lines on CR, LF **and CRLF** (CRLF is one line break, not two), and
//!   each line is written as its own `data:` line. Empty data still writes one `data: ` line, so
//!   the client dispatches an event with empty data (an event with *no* `data` line at all is
//!   never dispatched by clients). An event without any data set writes no `data` line.
//! * **JSON data** ([`Event::json`], [`Event::json_owned`]) is serialized straight into the frame
//!   buffer. serde_json's compact output escapes line breaks inside strings, so JSON is always a
//!   single `data:` line.
//! * **event** (the event type) may not contain CR or LF: such a name is rejected with
//!   [`EventError::InvalidField`]. An empty name writes no `event` line, since clients treat an
//!   empty type as the default `message`.
//! * **id** may not contain CR, LF or NUL (clients ignore ids containing NUL): such an id is
//!   rejected with [`EventError::InvalidField`]. An empty id is written (`id: `) and resets the
//!   client's last event id.
//! * **retry** is written in whole milliseconds; sub-millisecond precision is truncated.
//! * **comments** are written as `: text` lines; a comment containing line breaks becomes several
//!   comment lines, so a comment can never end the event early or inject a field.
//!
//! Invalid input never panics and never reaches the wire: [`Event::encode`] returns a typed error
//! and writes nothing.
//!
//! # Cost
//!
//! Encoding sizes the buffer up front and performs one allocation per event (for JSON data, the
//! estimate includes room for a typical small payload; larger payloads grow the buffer). The
//! resulting [`Frame`] is an immutable [`bytes::Bytes`], shared by reference count with every
//! subscriber that receives it.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::frame::Frame;
use crate::hub::cursor::{put_id_line, IdLine};

/// Room reserved for JSON data before it is serialized. Typical progress payloads fit, so
/// encoding them takes exactly one allocation.
const JSON_RESERVE: usize = 192;

/// One Server-Sent Event under construction.
///
/// Build it with the chained setters, then call [`Event::encode`] to validate it and produce the
/// immutable wire [`Frame`]. The wire rules are listed in the [module docs](self).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sse_core::Event;
///
/// let frame = Event::new()
///     .event("progress")
///     .id("7")
///     .retry(Duration::from_secs(3))
///     .data("line one\r\nline two")
///     .encode()?;
/// assert_eq!(
///     frame.as_bytes(),
///     &b"event: progress\nretry: 3000\ndata: line one\ndata: line two\nid: 7\n\n"[..]
/// );
///
/// // A newline in the id cannot inject a frame: it is a typed error.
/// let err = Event::new().id("1\nevent: evil").data("x").encode().unwrap_err();
/// assert_eq!(err.to_string(), "invalid event id: contains LF (U+000A LINE FEED)");
/// # Ok::<(), sse_core::EventError>(())
/// ```
///
/// JSON payloads are serialized directly into the frame:
///
/// ```
/// use sse_core::Event;
///
/// #[derive(serde::Serialize)]
/// struct Progress { page: u32, of: u32 }
///
/// let frame = Event::new().event("page_progress").json(&Progress { page: 3, of: 10 }).encode()?;
/// assert_eq!(frame.as_bytes(), &b"event: page_progress\ndata: {\"page\":3,\"of\":10}\n\n"[..]);
/// # Ok::<(), sse_core::EventError>(())
/// ```
#[derive(Default)]
#[must_use = "an Event does nothing until it is encoded or published"]
pub struct Event<'a> {
    name: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    retry: Option<Duration>,
    comments: Vec<Cow<'a, str>>,
    data: Data<'a>,
}

/// A value that can write itself as JSON. Object safe, so an [`Event`] can hold any
/// `Serialize` value without being generic over it.
trait JsonData {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

impl<T: serde::Serialize + ?Sized> JsonData for T {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

#[derive(Default)]
enum Data<'a> {
    #[default]
    None,
    Text(Cow<'a, str>),
    Json(&'a (dyn JsonData + Sync + 'a)),
    JsonOwned(Box<dyn JsonData + Send + 'a>),
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data: &dyn fmt::Debug = match &self.data {
            Data::None => &"<none>",
            Data::Text(t) => t,
            Data::Json(_) | Data::JsonOwned(_) => &"<json>",
        };
        f.debug_struct("Event")
            .field("event", &self.name)
            .field("id", &self.id)
            .field("retry", &self.retry)
            .field("comments", &self.comments)
            .field("data", data)
            .finish()
    }
}

/// Which field of an [`Event`] an [`EventError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The `event:` field (the event type).
    Event,
    /// The `id:` field.
    Id,
}

impl Field {
    /// The field's name as written in the error message (`"event name"`, `"event id"`).
    pub const fn describe(self) -> &'static str {
        match self {
            Field::Event => "event name",
            Field::Id => "event id",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A character that may not appear in a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ForbiddenChar(pub char);

impl fmt::Display for ForbiddenChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            '\n' => f.write_str("LF (U+000A LINE FEED)"),
            '\r' => f.write_str("CR (U+000D CARRIAGE RETURN)"),
            '\0' => f.write_str("NUL (U+0000 NULL)"),
            c => write!(f, "{c:?} (U+{:04X})", c as u32),
        }
    }
}

/// Why an [`Event`] could not be encoded. Nothing is written when encoding fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A field contains a character that would break the frame (CR or LF in the event name or id,
    /// NUL in the id).
    #[error("invalid {field}: contains {character}")]
    InvalidField {
        /// The offending field.
        field: Field,
        /// The offending character.
        character: ForbiddenChar,
    },
    /// The JSON data could not be serialized.
    #[error("event data could not be serialized as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl<'a> Event<'a> {
    /// An empty event: no type (clients dispatch it as `message`), no id, no data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the event type (`event:`). Must not contain CR or LF; checked by [`Event::encode`].
    pub fn event(mut self, name: impl Into<Cow<'a, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the event id (`id:`). Must not contain CR, LF or NUL; checked by [`Event::encode`].
    ///
    /// When the event is published through a [`Hub`](crate::Hub) the hub assigns the id, and an
    /// id set here is ignored.
    pub fn id(mut self, id: impl Into<Cow<'a, str>>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the client's reconnection delay (`retry:`), written in whole milliseconds.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Adds a comment line (`: text`). Line breaks in `text` produce several comment lines.
    pub fn comment(mut self, text: impl Into<Cow<'a, str>>) -> Self {
        self.comments.push(text.into());
        self
    }

    /// Sets text data. Line breaks (CR, LF, CRLF) split it into several `data:` lines, which the
    /// client joins back with LF.
    pub fn data(mut self, data: impl Into<Cow<'a, str>>) -> Self {
        self.data = Data::Text(data.into());
        self
    }

    /// Sets data to the JSON serialization of `value`, written straight into the frame when the
    /// event is encoded.
    pub fn json<T: serde::Serialize + Sync>(mut self, value: &'a T) -> Self {
        self.data = Data::Json(value);
        self
    }

    /// Like [`Event::json`], but takes the value by ownership, for events built where the value
    /// cannot outlive the call (for example inside [`Topic::publish_with`](crate::Topic::publish_with)).
    pub fn json_owned<T: serde::Serialize + Send + 'a>(mut self, value: T) -> Self {
        self.data = Data::JsonOwned(Box::new(value));
        self
    }

    /// The event type, if set.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The id, if set.
    pub fn id_ref(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether data (text or JSON) is set, that is, whether a client will dispatch this event.
    pub fn has_data(&self) -> bool {
        !matches!(self.data, Data::None)
    }

    /// Checks every field against the wire rules without encoding.
    pub fn validate(&self) -> Result<(), EventError> {
        if let Some(name) = &self.name {
            check(Field::Event, name, false)?;
        }
        if let Some(id) = &self.id {
            check(Field::Id, id, true)?;
        }
        Ok(())
    }

    /// Validates the event and encodes it into an immutable [`Frame`].
    pub fn encode(&self) -> Result<Frame, EventError> {
        let id = self.id.as_deref();
        let encoded = self.encode_parts(id.map(IdText::Str))?;
        Ok(encoded.frame)
    }

    /// Encodes the event with `id` (overriding any id set on the event) and reports where the
    /// id line starts, so that the hub can reuse the body with another id
    /// (multi-topic cursors) without re-encoding.
    pub(crate) fn encode_parts(&self, id: Option<IdText<'_>>) -> Result<Encoded, EventError> {
        self.validate()?;
        if let Some(IdText::Str(id)) = id {
            check(Field::Id, id, true)?;
        }

        let mut cap = 1; // final blank line
        for c in &self.comments {
            cap += line_count_len(c, 2);
        }
        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) {
            cap += 8 + name.len();
        }
        if self.retry.is_some() {
            cap += 8 + 20;
        }
        match &self.data {
            Data::None => {}
            Data::Text(t) => cap += line_count_len(t, 6),
            Data::Json(_) | Data::JsonOwned(_) => cap += 7 + JSON_RESERVE,
        }
        let id_len = match id {
            None => 0,
            Some(IdText::Str(s)) => 5 + s.len(),
            Some(IdText::Seq(..)) => crate::hub::cursor::MAX_POSITION_LINE,
        };
        cap += id_len;

        let mut buf = Vec::with_capacity(cap);
        for c in &self.comments {
            write_lines(&mut buf, b":", c);
        }
        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) {
            buf.extend_from_slice(b"event: ");
            buf.extend_from_slice(name.as_bytes());
            buf.push(b'\n');
        }
        if let Some(retry) = self.retry {
            buf.extend_from_slice(b"retry: ");
            write_u128(&mut buf, retry.as_millis());
            buf.push(b'\n');
        }
        match &self.data {
            Data::None => {}
            Data::Text(t) => write_lines(&mut buf, b"data:", t),
            Data::Json(v) => write_json(&mut buf, *v)?,
            Data::JsonOwned(v) => write_json(&mut buf, v.as_ref())?,
        }
        let body_len = buf.len();
        match id {
            None => buf.push(b'\n'),
            Some(IdText::Str(s)) => put_id_line(&mut buf, IdLine::Text(s.as_bytes())),
            Some(IdText::Seq(inc, n)) => put_id_line(&mut buf, IdLine::Position(inc, n)),
        }
        Ok(Encoded {
            frame: Frame::from_vec(buf),
            body_len,
        })
    }
}

/// The id the hub writes into a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdText<'a> {
    /// A caller's own id.
    Str(&'a str),
    /// A topic position: incarnation (if known) and sequence.
    Seq(Option<crate::hub::Incarnation>, u64),
}

/// An encoded event and the length of its body (everything before the `id:` line).
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) frame: Frame,
    pub(crate) body_len: usize,
}

fn check(field: Field, value: &str, reject_nul: bool) -> Result<(), EventError> {
    let bad = value
        .bytes()
        .find(|&b| b == b'\n' || b == b'\r' || (reject_nul && b == 0));
    match bad {
        None => Ok(()),
        Some(b) => Err(EventError::InvalidField {
            field,
            character: ForbiddenChar(char::from(b)),
        }),
    }
}

fn write_json(buf: &mut Vec<u8>, value: &(dyn JsonData + '_)) -> Result<(), EventError> {
    let start = buf.len();
    buf.extend_from_slice(b"data: ");
    if let Err(e) = value.write_json(buf) {
        buf.truncate(start);
        return Err(e.into());
    }
    buf.push(b'\n');
    Ok(())
}

/// Bytes needed to write `text` as `prefix` lines: each line gets the prefix (with its space) and
/// a LF.
fn line_count_len(text: &str, prefix_with_space: usize) -> usize {
    let breaks = memchr::memchr2_iter(b'\r', b'\n', text.as_bytes()).count();
    // A CRLF counts two breaks here, which only over-reserves.
    text.len() + (breaks + 1) * (prefix_with_space + 1)
}

/// Writes `text` as `prefix: line\n` lines, splitting on CR, LF and CRLF.
fn write_lines(buf: &mut Vec<u8>, prefix: &[u8], text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut iter = memchr::memchr2_iter(b'\r', b'\n', bytes);
    while let Some(pos) = iter.next() {
        write_line(buf, prefix, &bytes[start..pos]);
        start = pos + 1;
        if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
            // CRLF is one line break: skip the LF.
            iter.next();
            start = pos + 2;
        }
    }
    write_line(buf, prefix, &bytes[start..]);
}

fn write_line(buf: &mut Vec<u8>, prefix: &[u8], line: &[u8]) {
    buf.extend_from_slice(prefix);
    buf.push(b' ');
    buf.extend_from_slice(line);
    buf.push(b'\n');
}

fn write_u128(buf: &mut Vec<u8>, mut n: u128) {
    let mut tmp = [0u8; 40];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(e: Event<'_>) -> String {
        String::from_utf8(e.encode().expect("valid").as_bytes().to_vec()).expect("utf8")
    }

    #[test]
    fn crlf_is_one_line_break() {
        assert_eq!(
            enc(Event::new().data("a\r\nb\rc\nd")),
            "data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
    }

    #[test]
    fn empty_data_still_writes_a_data_line() {
        assert_eq!(enc(Event::new().data("")), "data: \n\n");
        assert_eq!(enc(Event::new().data("\n")), "data: \ndata: \n\n");
    }

    #[test]
    fn leading_spaces_survive() {
        assert_eq!(enc(Event::new().data("  x")), "data:   x\n\n");
    }

    #[test]
    fn comments_split_into_lines() {
        assert_eq!(
            enc(Event::new().comment("a\nb").comment("c")),
            ": a\n: b\n: c\n\n"
        );
    }

    #[test]
    fn rejects_newlines_and_nul() {
        for (e, msg) in [
            (
                Event::new().event("a\rb"),
                "invalid event name: contains CR (U+000D CARRIAGE RETURN)",
            ),
            (
                Event::new().id("a\0"),
                "invalid event id: contains NUL (U+0000 NULL)",
            ),
            (
                Event::new().id("\n"),
                "invalid event id: contains LF (U+000A LINE FEED)",
            ),
        ] {
            assert_eq!(e.encode().unwrap_err().to_string(), msg);
        }
        // NUL is fine in an event name.
        assert!(Event::new().event("a\0").data("x").encode().is_ok());
    }

    #[test]
    fn retry_in_millis() {
        assert_eq!(
            enc(Event::new().retry(Duration::from_micros(1500)).data("x")),
            "retry: 1\ndata: x\n\n"
        );
    }

    #[test]
    fn json_is_one_line_and_one_allocation() {
        #[derive(serde::Serialize)]
        struct P<'s> {
            text: &'s str,
        }
        let p = P { text: "a\nb" };
        let frame = Event::new()
            .event("e")
            .id("1")
            .json(&p)
            .encode()
            .expect("ok");
        assert_eq!(
            frame.as_bytes(),
            &b"event: e\ndata: {\"text\":\"a\\nb\"}\nid: 1\n\n"[..]
        );
    }

    #[test]
    fn json_error_is_typed() {
        struct Bad;
        impl serde::Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("nope"))
            }
        }
        assert!(matches!(
            Event::new().json(&Bad).encode(),
            Err(EventError::Json(_))
        ));
    }

    #[test]
    fn body_len_points_at_id() {
        let e = Event::new().event("x").data("y");
        let enc = e.encode_parts(Some(IdText::Seq(None, 42))).expect("ok");
        let bytes = enc.frame.as_bytes();
        assert_eq!(&bytes[..enc.body_len], b"event: x\ndata: y\n");
        assert_eq!(&bytes[enc.body_len..], b"id: 42\n\n");
    }
}
