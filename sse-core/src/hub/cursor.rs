//! Event ids and resume cursors.
//!
//! * A subscription to **one topic** uses the topic's sequence number as the SSE id: `1`, `2`,
//!   `3`, … The sequence is assigned by whoever orders the topic (this hub in memory, or a
//!   backplane), so it means the same thing on every node.
//! * A subscription to **several topics** sends a composite cursor as the id: each topic with the
//!   sequence of the last event delivered from it, `topic=seq` pairs joined by `,`, for example
//!   `job-1=12,job-2=7`. In topic names, `%`, `,`, `=`, control characters and non-ASCII bytes are
//!   percent-encoded, so the id never contains CR, LF or NUL and always parses back.
//!
//! A client sends the id back as `Last-Event-ID`; [`Cursor::parse`] turns it into per-topic
//! positions.

use std::fmt::Write as _;

/// A parsed `Last-Event-ID`: the position of the client in each topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// A plain sequence number (single-topic subscriptions).
    Seq(u64),
    /// Per-topic sequence numbers (multi-topic subscriptions).
    Composite(Vec<(String, u64)>),
    /// An id this hub did not issue (for example a caller-supplied id); matched against the
    /// history's ids as text.
    Other(String),
}

impl Cursor {
    /// Parses a `Last-Event-ID` value.
    ///
    /// ```
    /// use sse_core::hub::Cursor;
    /// assert_eq!(Cursor::parse("42"), Cursor::Seq(42));
    /// assert_eq!(
    ///     Cursor::parse("a=1,b%2Cc=2"),
    ///     Cursor::Composite(vec![("a".into(), 1), ("b,c".into(), 2)])
    /// );
    /// ```
    pub fn parse(id: &str) -> Cursor {
        if let Ok(n) = id.parse::<u64>() {
            if !id.starts_with('+') {
                return Cursor::Seq(n);
            }
        }
        if id.contains('=') {
            let mut out = Vec::new();
            for part in id.split(',') {
                let Some((t, s)) = part.split_once('=') else {
                    return Cursor::Other(id.to_owned());
                };
                let (Some(topic), Ok(seq)) = (percent_decode(t), s.parse::<u64>()) else {
                    return Cursor::Other(id.to_owned());
                };
                out.push((topic, seq));
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
    /// After this sequence number.
    Seq(u64),
    /// After the event with this caller-supplied id.
    Id(&'a str),
}

/// Appends a composite id for `(topic, seq)` pairs to `out`.
pub(crate) fn write_composite<'a>(out: &mut String, parts: impl Iterator<Item = (&'a str, u64)>) {
    for (i, (topic, seq)) in parts.enumerate() {
        if i > 0 {
            out.push(',');
        }
        percent_encode(out, topic);
        let _ = write!(out, "={seq}");
    }
}

fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b',' | b'=') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_round_trip() {
        let topics = ["plain", "a,b=c%d", "line\nbreak", "ünï", ""];
        let mut id = String::new();
        write_composite(
            &mut id,
            topics.iter().enumerate().map(|(i, t)| (*t, i as u64)),
        );
        assert!(!id.contains(['\n', '\r', '\0']));
        let Cursor::Composite(parsed) = Cursor::parse(&id) else {
            panic!("not composite: {id}");
        };
        let want: Vec<(String, u64)> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), i as u64))
            .collect();
        assert_eq!(parsed, want);
    }

    #[test]
    fn other_ids() {
        assert_eq!(Cursor::parse("abc"), Cursor::Other("abc".into()));
        assert_eq!(Cursor::parse("+5"), Cursor::Other("+5".into()));
        assert_eq!(Cursor::parse("a=x"), Cursor::Other("a=x".into()));
    }
}
