//! The borrowing decoder API ([`Decoder::next_event_ref`], [`EventRef`],
//! [`Decoder::with_last_event_id`]): it gives exactly the events of the owned API, under any
//! chunking, while reusing the buffers of events already taken.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use sse_core::{DecodedEvent, Decoder, EventRef};

/// Decodes `chunks` as one whole stream, taking each event as soon as it is dispatched, with the
/// borrowing API; returns owned copies to compare.
fn decode_by_ref(chunks: &[&[u8]]) -> Vec<DecodedEvent> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c);
        while let Some(event) = d.next_event_ref() {
            out.push(event.to_decoded());
        }
    }
    d.finish();
    while let Some(event) = d.next_event_ref() {
        out.push(DecodedEvent::from(event));
    }
    out
}

/// The same with the owned API, all events taken at the end.
fn decode_owned(chunks: &[&[u8]]) -> Vec<DecodedEvent> {
    let mut d = Decoder::new();
    for c in chunks {
        d.feed(c);
    }
    d.finish();
    std::iter::from_fn(|| d.next_event()).collect()
}

/// A stream exercising every rule: BOM, all line ends, comments, type, multi-line data, ids
/// (set, reset, with NUL), retry (valid and not), unknown fields, invalid UTF-8, and an
/// unterminated last event.
const EVERYTHING: &[u8] = b"\xEF\xBB\xBF: first comment\r\n: second\r\nretry: 25\r\n\r\n\
    event: one\nid: 1\ndata: a\ndata:b\n\n\
    : only one comment now\ndata: no type, so message\r\r\
    id\ndata\n\n\
    id: 2\0\nevent: ignored-id\ndata: \xFF\xFE\n\n\
    retry: x\nfoo: bar\ndata:  two spaces\n\n\
    event: long\ndata: tail is dropped";

#[test]
fn borrowed_events_equal_owned_events_at_every_cut() {
    let whole = decode_owned(&[EVERYTHING]);
    assert_eq!(whole.len(), 5, "{whole:#?}");
    assert_eq!(decode_by_ref(&[EVERYTHING]), whole);
    for i in 0..=EVERYTHING.len() {
        assert_eq!(
            decode_by_ref(&[&EVERYTHING[..i], &EVERYTHING[i..]]),
            whole,
            "cut at {i}"
        );
    }
    let bytes: Vec<&[u8]> = EVERYTHING.chunks(1).collect();
    assert_eq!(decode_by_ref(&bytes), whole, "byte by byte");
}

#[test]
fn borrowed_event_has_every_field() {
    let mut d = Decoder::new();
    d.feed(b": c1\n:  c2\nretry: 1500\nevent: update\nid: 9\ndata: x\ndata: y\n\n");
    let event = d.next_event_ref().unwrap();
    assert_eq!(
        event,
        EventRef {
            event: "update",
            data: "x\ny",
            last_event_id: "9",
            retry: Some(Duration::from_millis(1500)),
            comments: &["c1".to_owned(), " c2".to_owned()],
        }
    );
    assert!(d.next_event_ref().is_none());
}

#[test]
fn reused_buffers_never_leak_into_later_events() {
    let mut d = Decoder::new();
    // A long event with a type, two comments and a retry, then short plain events: none of the
    // first event's text may show through the reused buffers.
    d.feed(
        b": one\n: two\nretry: 5\nevent: special\nid: long-id-0001\ndata: a long first payload\n\n",
    );
    let first = d.next_event_ref().unwrap();
    assert_eq!(first.comments.len(), 2);
    for round in 0..50 {
        let input = format!(": only\ndata: {round}\n\n");
        d.feed(input.as_bytes());
        let e = d.next_event_ref().unwrap();
        assert_eq!(e.event, "message", "round {round}");
        assert_eq!(e.data, round.to_string());
        assert_eq!(e.last_event_id, "long-id-0001");
        assert_eq!(e.retry, None);
        assert_eq!(e.comments, ["only"]);
        d.feed(b"data: x\n\n");
        let e = d.next_event_ref().unwrap();
        assert!(e.comments.is_empty(), "round {round}: {:?}", e.comments);
    }
}

#[test]
fn owned_and_borrowed_takes_mix_in_stream_order() {
    let mut d = Decoder::new();
    d.feed(b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
    assert_eq!(d.queued_events(), 4);
    assert_eq!(d.next_event_ref().unwrap().data, "1");
    assert_eq!(d.next_event().unwrap().data, "2");
    assert_eq!(d.next_event_ref().unwrap().data, "3");
    assert_eq!(d.queued_events(), 1);
    d.feed(b"data: 5\n\n");
    assert_eq!(d.next_event().unwrap().data, "4");
    assert_eq!(d.next_event_ref().unwrap().data, "5");
    assert_eq!(d.queued_events(), 0);
    assert!(d.next_event_ref().is_none());
    assert!(d.next_event().is_none());
}

#[test]
fn comments_of_a_block_cut_by_finish_do_not_reach_the_next_stream() {
    let mut d = Decoder::new();
    d.feed(b": stale\nevent: stale\ndata: dropped");
    d.finish();
    d.feed(b"data: fresh\n\n");
    let e = d.next_event_ref().unwrap();
    assert_eq!((e.event, e.data), ("message", "fresh"));
    assert!(e.comments.is_empty());
}

#[test]
fn with_last_event_id_resumes_like_an_earlier_stream() {
    let mut d = Decoder::with_last_event_id("k3f9x2:12");
    assert_eq!(d.last_event_id(), "k3f9x2:12");
    // A new stream: the BOM is stripped, events without an id carry the seed.
    d.feed(b"\xEF\xBB\xBFdata: a\n\nid: k3f9x2:13\ndata: b\n\n");
    assert_eq!(d.next_event_ref().unwrap().last_event_id, "k3f9x2:12");
    assert_eq!(d.next_event_ref().unwrap().last_event_id, "k3f9x2:13");
    assert_eq!(d.last_event_id(), "k3f9x2:13");
    // An empty id field resets it, as usual.
    d.feed(b"id\ndata: c\n\n");
    assert_eq!(d.next_event_ref().unwrap().last_event_id, "");
}

#[test]
fn with_last_event_id_ignores_an_id_with_nul() {
    let d = Decoder::with_last_event_id("a\0b");
    assert_eq!(d.last_event_id(), "");
}

#[test]
fn a_huge_event_then_small_ones_decode_correctly() {
    let mut d = Decoder::new();
    let big = "x".repeat(200_000);
    d.feed(format!("data: {big}\n\n").as_bytes());
    assert_eq!(d.next_event_ref().unwrap().data.len(), big.len());
    for i in 0..10 {
        d.feed(format!("data: {i}\n\n").as_bytes());
        assert_eq!(d.next_event_ref().unwrap().data, i.to_string());
    }
}

proptest! {
    #[test]
    fn borrowed_and_owned_agree_on_any_bytes_and_chunking(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"dataeventidretry: \r\n\r\n\n\xFF\x00x".to_vec()),
                1 => any::<u8>(),
            ],
            0..300,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&bytes[start..p]);
            start = p;
        }
        chunks.push(&bytes[start..]);
        prop_assert_eq!(decode_by_ref(&chunks), decode_owned(&[&bytes]));
    }
}
