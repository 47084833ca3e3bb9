//! Arbitrary bytes, cut into arbitrary chunks: the decoder never panics, and the chunking never
//! changes what it decodes.
//!
//! Input layout: the first two bytes seed the chunking, the rest is the event stream. So a
//! hand-written seed is two bytes followed by plain event-stream text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_core::{DecodedEvent, Decoder};

/// Everything a stream decodes to: its events, its last event id and its reconnection time.
type Outcome = (Vec<DecodedEvent>, String, Option<std::time::Duration>);

fn decode<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut d = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        d.feed(chunk);
        // Take events as they come, like a live client.
        events.extend(std::iter::from_fn(|| d.next_event()));
    }
    d.finish();
    events.extend(std::iter::from_fn(|| d.next_event()));
    (events, d.last_event_id().to_owned(), d.retry())
}

/// Cuts `bytes` into chunks of pseudo-random lengths in `1..=max` (xorshift from `seed`).
fn chunks(bytes: &[u8], seed: u16) -> Vec<&[u8]> {
    let max = usize::from(seed & 0x1F) + 1; // byte by byte up to 32-byte chunks
    let mut state = u32::from(seed) | 0x1_0000;
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % max + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        // Empty chunks are legal input too.
        if state & 0x100 == 0 {
            out.push(&[][..]);
        }
        out.push(head);
        rest = tail;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let (seed, bytes) = match input {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (0, input),
    };
    let whole = decode(std::iter::once(bytes));
    let chunked = decode(chunks(bytes, seed).into_iter());
    assert_eq!(whole, chunked, "chunking changed the result");
    let bytewise = decode(bytes.chunks(1));
    assert_eq!(whole, bytewise, "byte-by-byte feeding changed the result");

    // Every dispatched event is well formed.
    for e in &whole.0 {
        assert!(!e.event.is_empty(), "the type defaults to message");
        assert!(!e.last_event_id.contains(['\0', '\r', '\n']));
        assert!(!e.event.contains(['\r', '\n']));
        assert!(e.comments.iter().all(|c| !c.contains(['\r', '\n'])));
        assert!(!e.data.contains('\r'));
    }
});
