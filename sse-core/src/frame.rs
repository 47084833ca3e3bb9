//! [`Frame`]: encoded event-stream bytes, shared by reference count.

use std::fmt;

use bytes::Bytes;

/// Encoded, immutable event-stream bytes: one or more complete SSE frames, each ending with a
/// blank line.
///
/// Cloning a `Frame` clones a [`Bytes`]: a reference-count increment, never a copy. One encoded
/// event is shared this way by every subscriber that receives it.
///
/// # Examples
///
/// ```
/// use sse_core::Frame;
///
/// let hb = Frame::heartbeat();
/// assert_eq!(hb.as_bytes(), &b":\n\n"[..]);
///
/// let c = Frame::comment("ok");
/// assert_eq!(c.as_bytes(), &b": ok\n\n"[..]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame(Bytes);

impl Frame {
    /// A frame from static bytes. The caller guarantees they are complete, well-formed frames.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Frame(Bytes::from_static(bytes))
    }

    pub(crate) fn from_vec(buf: Vec<u8>) -> Self {
        Frame(Bytes::from(buf))
    }

    pub(crate) fn from_bytes(bytes: Bytes) -> Self {
        Frame(bytes)
    }

    /// The heartbeat frame: an empty comment (`:\n\n`). Clients ignore it; proxies and the
    /// server see traffic, so idle connections stay open and dead ones are detected.
    pub const fn heartbeat() -> Self {
        Frame::from_static(b":\n\n")
    }

    /// A comment frame (`: text\n\n`). Line breaks in `text` produce several comment lines, so the
    /// text cannot inject fields.
    pub fn comment(text: &str) -> Self {
        let mut buf = Vec::with_capacity(text.len() + 8);
        for line in split_lines(text) {
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        buf.push(b'\n');
        Frame(Bytes::from(buf))
    }

    /// A frame that only sets the client's reconnection delay (`retry: ms\n\n`). Sending it first
    /// makes the response's first byte leave at once.
    pub fn retry(retry: std::time::Duration) -> Self {
        Frame(Bytes::from(format!("retry: {}\n\n", retry.as_millis())))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The encoded bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never true for frames built by this crate).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Frame> for Bytes {
    fn from(f: Frame) -> Bytes {
        f.0
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// Splits on CR, LF and CRLF (CRLF being one break).
pub(crate) fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(s)
            }
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_lines() {
        assert_eq!(
            Frame::comment("a\r\nb\rc").as_bytes(),
            &b": a\n: b\n: c\n\n"[..]
        );
        assert_eq!(Frame::comment("").as_bytes(), &b": \n\n"[..]);
    }
}
