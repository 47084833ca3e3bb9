//! `sse decode`: raw event-stream bytes on stdin → one JSON line per dispatched event.
//!
//! Input is read in chunks as it arrives, and every event is printed (and stdout flushed) as soon
//! as the chunk completing it has been read, so `curl -N … | sse decode` shows events live. At
//! the end of the input a last line `{"retry": <ms or null>}` reports the reconnection time the
//! stream left set.

use std::io::{self, Read, Write};

use sse_core::Decoder;

use crate::output;

/// Size of each read from stdin.
const CHUNK: usize = 16 * 1024;

/// Why `sse decode` stopped. Decoding itself cannot fail: the decoder is as lenient as a
/// browser (invalid UTF-8 becomes U+FFFD, unknown fields are ignored).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Reading stdin failed.
    #[error("reading stdin: {0}")]
    Read(#[source] io::Error),
    /// Writing stdout failed.
    #[error("writing stdout: {0}")]
    Write(#[source] io::Error),
}

/// Runs `sse decode` from `input` to `output`.
pub(crate) fn run(mut input: impl Read, output: impl Write) -> Result<(), DecodeError> {
    let mut output = io::BufWriter::new(output);
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DecodeError::Read(e)),
        };
        decoder.feed(&buf[..n]);
        drain(&mut decoder, &mut output)?;
        output.flush().map_err(DecodeError::Write)?;
    }
    decoder.finish();
    drain(&mut decoder, &mut output)?;
    output::write_json_retry(&mut output, decoder.retry()).map_err(DecodeError::Write)?;
    output.flush().map_err(DecodeError::Write)
}

/// Prints every event the decoder has dispatched.
fn drain(decoder: &mut Decoder, output: &mut impl Write) -> Result<(), DecodeError> {
    while let Some(event) = decoder.next_event_ref() {
        output::write_json_event(output, event).map_err(DecodeError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns one byte per read, to exercise chunk boundaries.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn same_output_whatever_the_chunking() {
        let input = b"\xEF\xBB\xBFretry: 10\r\n: c\r\nid: 1\r\ndata: a\r\n\r\ndata: b\n\ndata: cut";
        let expected = "{\"type\":\"message\",\"data\":\"a\",\"last_event_id\":\"1\"}\n\
                        {\"type\":\"message\",\"data\":\"b\",\"last_event_id\":\"1\"}\n\
                        {\"retry\":10}\n";
        let mut whole = Vec::new();
        run(&input[..], &mut whole).unwrap();
        assert_eq!(String::from_utf8(whole).unwrap(), expected);
        let mut trickled = Vec::new();
        run(Trickle(input), &mut trickled).unwrap();
        assert_eq!(String::from_utf8(trickled).unwrap(), expected);
    }

    #[test]
    fn empty_input() {
        let mut out = Vec::new();
        run(&b""[..], &mut out).unwrap();
        assert_eq!(out, b"{\"retry\":null}\n");
    }
}
