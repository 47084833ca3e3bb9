//! The decoder against the WHATWG HTML "Parsing an event stream" and "Interpreting an event
//! stream" rules, one rule (or edge of a rule) per test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{stream, FutureExt, StreamExt};
use sse_core::{DecodeStream, DecodedEvent, Decoder};

/// Decodes `chunks` as one whole stream (finished at the end).
fn decode(chunks: &[&[u8]]) -> (Vec<DecodedEvent>, Decoder) {
    let mut d = Decoder::new();
    for c in chunks {
        d.feed(c);
    }
    d.finish();
    let events = std::iter::from_fn(|| d.next_event()).collect();
    (events, d)
}

fn events(input: &[u8]) -> Vec<DecodedEvent> {
    decode(&[input]).0
}

/// Decodes `input` whole, byte by byte, and cut at every single point; all must agree.
fn events_any_chunking(input: &[u8]) -> Vec<DecodedEvent> {
    let whole = events(input);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode(&bytes).0, whole, "byte by byte");
    for i in 0..=input.len() {
        assert_eq!(decode(&[&input[..i], &input[i..]]).0, whole, "cut at {i}");
    }
    whole
}

fn datas(input: &[u8]) -> Vec<String> {
    events_any_chunking(input)
        .into_iter()
        .map(|e| e.data)
        .collect()
}

fn ev(event: &str, data: &str, id: &str) -> DecodedEvent {
    DecodedEvent {
        event: event.into(),
        data: data.into(),
        last_event_id: id.into(),
        ..DecodedEvent::default()
    }
}

// --- Byte order mark -------------------------------------------------------------------------

#[test]
fn leading_bom_is_stripped() {
    assert_eq!(datas(b"\xEF\xBB\xBFdata: x\n\n"), ["x"]);
}

#[test]
fn bom_split_across_chunks_is_stripped() {
    let (evs, _) = decode(&[b"\xEF", b"\xBB", b"\xBF", b"data: x\n\n"]);
    assert_eq!(evs, [ev("message", "x", "")]);
    let (evs, _) = decode(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]);
    assert_eq!(evs, [ev("message", "x", "")]);
    let (evs, _) = decode(&[b"", b"\xEF", b"", b"\xBB\xBF", b"data: x\n\n"]);
    assert_eq!(evs, [ev("message", "x", "")]);
}

#[test]
fn only_one_bom_is_stripped() {
    // The second BOM becomes part of the field name "\u{FEFF}data", an unknown field.
    assert!(events(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n").is_empty());
    assert!(decode(&[b"\xEF\xBB\xBF", b"\xEF\xBB\xBF", b"data: x\n\n"])
        .0
        .is_empty());
}

#[test]
fn bom_later_in_the_stream_is_not_stripped() {
    assert_eq!(
        datas(b"data: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n"),
        ["a", "c"]
    );
    assert_eq!(datas(b"data: \xEF\xBB\xBFx\n\n"), ["\u{FEFF}x"]);
}

#[test]
fn partial_bom_is_ordinary_input() {
    // "\xEF\xBB" followed by a line break: a line of invalid UTF-8, an unknown field.
    assert_eq!(datas(b"\xEF\xBB\ndata: x\n\n"), ["x"]);
    let (evs, _) = decode(&[b"\xEF", b"data: x\n\n"]);
    assert!(evs.is_empty(), "the EF byte is part of the field name");
}

// --- Line endings ----------------------------------------------------------------------------

#[test]
fn lf_cr_and_crlf_all_end_lines() {
    assert_eq!(datas(b"data: a\ndata: b\n\n"), ["a\nb"]);
    assert_eq!(datas(b"data: a\rdata: b\r\r"), ["a\nb"]);
    assert_eq!(datas(b"data: a\r\ndata: b\r\n\r\n"), ["a\nb"]);
    assert_eq!(datas(b"data: a\r\ndata: b\rdata: c\n\r\n"), ["a\nb\nc"]);
}

#[test]
fn crlf_is_one_break_not_two() {
    // Were CRLF two breaks, "data: a\r\n" would dispatch on its own.
    assert_eq!(datas(b"data: a\r\ndata: b\r\n\r\n"), ["a\nb"]);
    // LF CR is two breaks.
    assert_eq!(datas(b"data: a\n\rdata: b\n\n"), ["a", "b"]);
}

#[test]
fn crlf_split_across_chunks_is_one_break() {
    let (evs, _) = decode(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(evs, [ev("message", "a\nb", "")]);
    // Even with empty chunks between the CR and the LF.
    let (evs, _) = decode(&[b"data: a\r", b"", b"", b"\n", b"\r", b"", b"\n"]);
    assert_eq!(evs, [ev("message", "a", "")]);
}

#[test]
fn cr_at_chunk_end_then_cr_is_a_blank_line() {
    let (evs, _) = decode(&[b"data: a\r", b"\r"]);
    assert_eq!(evs, [ev("message", "a", "")]);
}

// --- Comments, fields and values --------------------------------------------------------------

#[test]
fn comment_lines_are_not_fields() {
    let evs = events_any_chunking(b": data: no\n:\n:  two spaces\ndata: x\n\n");
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data, "x");
    assert_eq!(evs[0].comments, ["data: no", "", " two spaces"]);
}

#[test]
fn comment_only_block_dispatches_nothing() {
    assert!(events_any_chunking(b":\n\n: heartbeat\n\n").is_empty());
}

#[test]
fn comments_belong_to_their_block() {
    let evs = events_any_chunking(b": lost\n\n: kept\ndata: x\n\ndata: y\n\n");
    assert_eq!(evs[0].comments, ["kept"]);
    assert!(evs[1].comments.is_empty());
}

#[test]
fn line_without_colon_is_a_field_with_empty_value() {
    // "data" alone appends an empty line.
    assert_eq!(datas(b"data\n\n"), [""]);
    assert_eq!(datas(b"data\ndata\n\n"), ["\n"]);
    // "event" alone resets the type buffer to empty, so the type is "message".
    let evs = events_any_chunking(b"event: x\nevent\ndata: y\n\n");
    assert_eq!(evs, [ev("message", "y", "")]);
}

#[test]
fn one_leading_space_is_stripped() {
    assert_eq!(datas(b"data:x\n\n"), ["x"]);
    assert_eq!(datas(b"data: x\n\n"), ["x"]);
    assert_eq!(datas(b"data:  x\n\n"), [" x"]);
    assert_eq!(datas(b"data:\tx\n\n"), ["\tx"]);
    assert_eq!(datas(b"data: x \n\n"), ["x "]);
}

#[test]
fn value_is_everything_after_the_first_colon() {
    assert_eq!(datas(b"data: a: b:c\n\n"), ["a: b:c"]);
}

#[test]
fn field_names_are_exact_and_case_sensitive() {
    assert!(events_any_chunking(b"Data: x\n\n").is_empty());
    assert!(events_any_chunking(b"data : x\n\n").is_empty());
    assert!(events_any_chunking(b" data: x\n\n").is_empty());
    assert!(events_any_chunking(b"datax: x\n\n").is_empty());
}

#[test]
fn unknown_fields_are_ignored() {
    let evs = events_any_chunking(b"foo: bar\ndata: x\nbaz\n\n");
    assert_eq!(evs, [ev("message", "x", "")]);
}

// --- event --------------------------------------------------------------------------------------

#[test]
fn event_sets_the_type_and_last_one_wins() {
    let evs = events_any_chunking(b"event: a\nevent: b\ndata: x\n\n");
    assert_eq!(evs, [ev("b", "x", "")]);
}

#[test]
fn type_defaults_to_message_and_resets_after_dispatch() {
    let evs = events_any_chunking(b"event: a\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n");
    assert_eq!(
        evs,
        [
            ev("a", "1", ""),
            ev("message", "2", ""),
            ev("message", "3", "")
        ]
    );
}

#[test]
fn type_is_reset_by_a_blank_line_without_data() {
    let evs = events_any_chunking(b"event: a\n\ndata: x\n\n");
    assert_eq!(evs, [ev("message", "x", "")]);
}

// --- data ---------------------------------------------------------------------------------------

#[test]
fn data_lines_join_with_lf_and_one_trailing_lf_is_removed() {
    assert_eq!(datas(b"data: a\ndata: b\ndata: c\n\n"), ["a\nb\nc"]);
    assert_eq!(datas(b"data: a\ndata:\n\n"), ["a\n"]);
    assert_eq!(datas(b"data:\ndata:\ndata:\n\n"), ["\n\n"]);
}

#[test]
fn empty_data_line_still_dispatches() {
    assert_eq!(datas(b"data:\n\n"), [""]);
    assert_eq!(datas(b"data: \n\n"), [""]);
}

#[test]
fn no_data_no_dispatch() {
    assert!(events_any_chunking(b"event: x\nid: 1\nretry: 5\n\n").is_empty());
    assert!(events_any_chunking(b"\n\n\n\n").is_empty());
}

// --- id -----------------------------------------------------------------------------------------

#[test]
fn id_sets_last_event_id_and_persists() {
    let (evs, d) = decode(&[b"id: 1\ndata: a\n\ndata: b\n\n"]);
    assert_eq!(evs, [ev("message", "a", "1"), ev("message", "b", "1")]);
    assert_eq!(d.last_event_id(), "1");
}

#[test]
fn id_after_data_in_the_same_block_applies_to_that_event() {
    let evs = events_any_chunking(b"data: a\nid: 7\n\n");
    assert_eq!(evs, [ev("message", "a", "7")]);
}

#[test]
fn id_is_committed_by_a_blank_line_without_data() {
    let (evs, d) = decode(&[b"id: 3\n\ndata: a\n\n"]);
    assert_eq!(evs, [ev("message", "a", "3")]);
    assert_eq!(d.last_event_id(), "3");
}

#[test]
fn empty_id_resets_last_event_id() {
    let evs = events_any_chunking(b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\n\nid:\ndata: c\n\n");
    assert_eq!(
        evs,
        [
            ev("message", "a", "1"),
            ev("message", "b", ""),
            ev("message", "c", "")
        ]
    );
}

#[test]
fn id_containing_nul_is_ignored() {
    let (evs, d) = decode(&[b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"]);
    assert_eq!(evs, [ev("message", "a", "1"), ev("message", "b", "1")]);
    assert_eq!(d.last_event_id(), "1");
    let evs = events_any_chunking(b"id: \0\ndata: a\n\n");
    assert_eq!(evs, [ev("message", "a", "")]);
}

#[test]
fn nul_elsewhere_is_kept() {
    let evs = events_any_chunking(b"event: a\0b\ndata: \0\n\n");
    assert_eq!(evs, [ev("a\0b", "\0", "")]);
}

#[test]
fn id_of_unterminated_event_is_not_committed() {
    let (evs, d) = decode(&[b"id: 1\ndata: a\n\nid: 2\ndata: b\n"]);
    assert_eq!(evs, [ev("message", "a", "1")]);
    assert_eq!(d.last_event_id(), "1");
}

// --- retry --------------------------------------------------------------------------------------

#[test]
fn retry_with_digits_sets_reconnection_time() {
    let (evs, d) = decode(&[b"retry: 2500\ndata: a\n\n"]);
    assert_eq!(evs[0].retry, Some(Duration::from_millis(2500)));
    assert_eq!(d.retry(), Some(Duration::from_millis(2500)));
    assert_eq!(decode(&[b"retry: 0\n"]).1.retry(), Some(Duration::ZERO));
    // Leading zeros are digits too.
    assert_eq!(
        decode(&[b"retry: 007\n"]).1.retry(),
        Some(Duration::from_millis(7))
    );
}

#[test]
fn retry_is_stream_state_even_without_dispatch() {
    // A retry line applies as soon as it is read, even if its event is never dispatched.
    let (evs, d) = decode(&[b"retry: 10\n\nretry: 20\ndata: never terminated\n"]);
    assert!(evs.is_empty());
    assert_eq!(d.retry(), Some(Duration::from_millis(20)));
}

#[test]
fn invalid_retry_is_ignored() {
    for bad in [
        &b"retry: 12a\n"[..],
        b"retry: a12\n",
        b"retry: \n",
        b"retry\n",
        b"retry:  12\n",
        b"retry: 12 \n",
        b"retry: -12\n",
        b"retry: +12\n",
        b"retry: 1.5\n",
        b"retry: 1_000\n",
        b"retry: \xD9\xA1\n", // ARABIC-INDIC DIGIT ONE is not an ASCII digit
        b"retry: 999999999999999999999999999999999999999999\n", // overflow
    ] {
        let mut input = b"retry: 5\n\n".to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice(b"data: x\n\n");
        let (evs, d) = decode(&[&input]);
        assert_eq!(
            d.retry(),
            Some(Duration::from_millis(5)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(evs[0].retry, None);
    }
}

#[test]
fn retry_is_reported_only_on_its_own_block() {
    let evs = events_any_chunking(b"retry: 1\ndata: a\n\ndata: b\n\n");
    assert_eq!(evs[0].retry, Some(Duration::from_millis(1)));
    assert_eq!(evs[1].retry, None);
}

// --- End of stream ------------------------------------------------------------------------------

#[test]
fn unterminated_event_is_dropped_at_finish() {
    assert!(decode(&[b"data: x"]).0.is_empty());
    assert!(decode(&[b"data: x\n"]).0.is_empty());
    assert!(decode(&[b"data: x\r"]).0.is_empty());
    assert!(decode(&[b"data: x\r\n"]).0.is_empty());
    assert_eq!(
        decode(&[b"data: a\n\ndata: b\n"]).0,
        [ev("message", "a", "")]
    );
}

#[test]
fn events_are_available_before_finish() {
    let mut d = Decoder::new();
    d.feed(b"data: a\n\ndata: b");
    assert_eq!(d.next_event(), Some(ev("message", "a", "")));
    assert_eq!(d.next_event(), None);
    d.feed(b"\n\n");
    assert_eq!(d.next_event(), Some(ev("message", "b", "")));
}

#[test]
fn finish_keeps_state_for_a_reconnection() {
    let mut d = Decoder::new();
    d.feed(b"retry: 9\nid: 4\ndata: a\n\nevent: half\ndata: dropped");
    d.finish();
    let a = DecodedEvent {
        retry: Some(Duration::from_millis(9)),
        ..ev("message", "a", "4")
    };
    assert_eq!(d.next_event(), Some(a));
    assert_eq!(d.next_event(), None);
    // A new stream: its BOM is stripped, the dropped event's type does not leak, the id persists.
    d.feed(b"\xEF\xBB\xBFdata: b\n\n");
    assert_eq!(d.next_event(), Some(ev("message", "b", "4")));
    assert_eq!(d.retry(), Some(Duration::from_millis(9)));
}

// --- UTF-8 --------------------------------------------------------------------------------------

#[test]
fn non_ascii_is_kept() {
    assert_eq!(datas("data: héllo ✓ 🎉\n\n".as_bytes()), ["héllo ✓ 🎉"]);
    let evs = events_any_chunking("event: ünï\nid: ✓\ndata: x\n\n".as_bytes());
    assert_eq!(evs, [ev("ünï", "x", "✓")]);
}

#[test]
fn invalid_utf8_becomes_replacement_and_later_events_flow() {
    let mut d = Decoder::new();
    d.feed(b"data: a\xFFb\xE2\x82\n\n");
    // The valid event right after is dispatched as soon as its blank line arrives.
    d.feed(b"data: ok\n\n");
    assert_eq!(
        d.next_event(),
        Some(ev("message", "a\u{FFFD}b\u{FFFD}", ""))
    );
    assert_eq!(d.next_event(), Some(ev("message", "ok", "")));
    // A truncated multi-byte sequence at a line end does not swallow the line break or the next
    // line.
    assert_eq!(datas(b"data: \xF0\x9F\x8E\ndata: y\n\n"), ["\u{FFFD}\ny"]);
    assert_eq!(datas(b"event: \xC3\nid: \xFF\ndata: \xC3\xA9\n\n"), ["é"]);
    let evs = events(b"event: \xC3\nid: \xFF\ndata: z\n\n");
    assert_eq!(evs, [ev("\u{FFFD}", "z", "\u{FFFD}")]);
}

#[test]
fn multibyte_characters_split_across_chunks_survive() {
    let input = "data: 🎉é\n\n".as_bytes();
    for i in 0..input.len() {
        let (evs, _) = decode(&[&input[..i], &input[i..]]);
        assert_eq!(evs, [ev("message", "🎉é", "")]);
    }
}

// --- Linear time ---------------------------------------------------------------------------------

#[test]
fn one_mib_line_fed_one_byte_at_a_time_completes() {
    const LEN: usize = 1 << 20;
    let started = Instant::now();
    let mut d = Decoder::new();
    d.feed(b"data: ");
    let mut byte = [0u8; 1];
    for i in 0..LEN {
        byte[0] = b'a' + (i % 26) as u8;
        d.feed(&byte);
    }
    d.feed(b"\r");
    d.feed(b"\n");
    d.feed(b"\r");
    d.feed(b"\n");
    let e = d.next_event().unwrap();
    assert_eq!(e.data.len(), LEN);
    assert!(e.data.starts_with("abcdefghijklmnopqrstuvwxyzab"));
    assert_eq!(d.next_event(), None);
    // Not a timing assertion (a quadratic decoder would take hours); printed for the curious.
    eprintln!("1 MiB line, byte by byte: {:?}", started.elapsed());
}

#[test]
fn many_small_events_one_byte_at_a_time() {
    let one = b"event: e\nid: 1\ndata: x\n\n";
    let input = one.repeat(10_000);
    let mut d = Decoder::new();
    let mut n = 0;
    for b in input.chunks(1) {
        d.feed(b);
        while d.next_event().is_some() {
            n += 1;
        }
    }
    assert_eq!(n, 10_000);
}

// --- Stream adapter ------------------------------------------------------------------------------

#[test]
fn decode_stream_over_bytes() {
    let body = stream::iter(
        [
            &b"\xEF\xBB"[..],
            b"\xBFid: 1\r",
            b"\nevent: a\r\ndata: x\r",
            b"\n\r",
            b"\ndata: y\n\ndata: dropped",
        ]
        .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
    );
    let mut s = DecodeStream::new(body);
    let got: Vec<_> = (&mut s)
        .map(|r| r.unwrap())
        .collect::<Vec<_>>()
        .now_or_never()
        .unwrap();
    assert_eq!(got, [ev("a", "x", "1"), ev("message", "y", "1")]);
    assert_eq!(s.decoder().last_event_id(), "1");
}

#[test]
fn decode_stream_passes_errors_through() {
    let body = stream::iter([
        Ok(Bytes::from_static(b"data: a\n\n")),
        Err("transport"),
        Ok(Bytes::from_static(b"data: b\n\n")),
    ]);
    let got: Vec<_> = DecodeStream::new(body)
        .collect::<Vec<_>>()
        .now_or_never()
        .unwrap();
    assert_eq!(
        got,
        [
            Ok(ev("message", "a", "")),
            Err("transport"),
            Ok(ev("message", "b", ""))
        ]
    );
}
