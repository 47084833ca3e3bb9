//! Reading events as borrowed views allocates nothing per event, counted by a real allocator
//! (dhat's, in testing mode). Alone in its test binary, since the allocator is global.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use sse_core::Decoder;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// 200 events of every shape: typed, with ids, comments, multi-line data, retry.
fn chunk() -> Vec<u8> {
    let mut out = Vec::new();
    for n in 0..200 {
        out.extend_from_slice(
            format!(
                "event: tick\nid: k3f9x2:{n}\n: note\ndata: {{\"n\":{n}}}\ndata: second line\n\n\
                 retry: 1000\ndata: plain {n}\n\n"
            )
            .as_bytes(),
        );
    }
    out
}

/// Feeds `chunk` to `decoder` `rounds` times, cut in two at a different point each round, reading every
/// event with `read`; returns how many events were read.
fn feed_rounds(
    chunk: &[u8],
    decoder: &mut Decoder,
    rounds: usize,
    read: &mut impl FnMut(&mut Decoder) -> usize,
) -> usize {
    let mut events = 0;
    for round in 0..rounds {
        let cut = (round * 37) % chunk.len();
        decoder.feed(&chunk[..cut]);
        events += read(decoder);
        decoder.feed(&chunk[cut..]);
        events += read(decoder);
    }
    events
}

/// Runs the rounds four times on one decoder: three times for its buffers to grow to the
/// stream's sizes (buffers circulate between events, so a few rounds pass before each has met
/// the largest event), then once more counting the heap blocks allocated. Returns the count and
/// the events read.
fn blocks_allocated(rounds: usize, mut read: impl FnMut(&mut Decoder) -> usize) -> (u64, usize) {
    let chunk = chunk();
    let mut decoder = Decoder::new();
    for _ in 0..3 {
        feed_rounds(&chunk, &mut decoder, rounds, &mut read);
    }
    let before = dhat::HeapStats::get().total_blocks;
    let events = feed_rounds(&chunk, &mut decoder, rounds, &mut read);
    (dhat::HeapStats::get().total_blocks - before, events)
}

#[test]
fn borrowed_events_allocate_nothing_once_the_buffers_have_grown() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let (blocks, events) = blocks_allocated(20, |d| {
        let mut n = 0;
        while let Some(event) = d.next_event_ref() {
            black_box((event.event, event.data, event.last_event_id, event.comments));
            n += 1;
        }
        n
    });
    assert_eq!(events, 20 * 400);
    assert_eq!(
        blocks, 0,
        "{blocks} allocations for {events} borrowed events"
    );

    // The owned API, on the same input, allocates for every event: the count above is real.
    let (blocks, events) = blocks_allocated(20, |d| {
        let mut n = 0;
        while let Some(event) = d.next_event() {
            black_box(event);
            n += 1;
        }
        n
    });
    assert!(
        blocks >= events as u64,
        "{blocks} allocations for {events} owned events"
    );
}
