//! Property tests: whatever the encoder accepts, the decoder gives back — however the encoded
//! bytes are cut into chunks — and the encoder rejects exactly the invalid inputs.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use sse_core::{DecodedEvent, Decoder, Event, EventError, Field, ForbiddenChar};

/// Text pieces heavy in what matters to the wire format: line breaks (CR, LF, CRLF), NUL, spaces,
/// colons, a BOM character, multi-byte characters, and anything else.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("\r\n".to_owned()),
        3 => Just("\r".to_owned()),
        3 => Just("\n".to_owned()),
        2 => Just("\0".to_owned()),
        3 => Just(" ".to_owned()),
        2 => Just(":".to_owned()),
        1 => Just(": ".to_owned()),
        1 => Just("\u{FEFF}".to_owned()),
        1 => Just("data".to_owned()),
        1 => Just("id".to_owned()),
        2 => prop::sample::select(vec!["é", "✓", "🎉", "\u{FFFD}", "\t", "\u{85}", "\u{2028}"])
            .prop_map(str::to_owned),
        4 => "[a-z0-9]{1,4}",
        2 => any::<char>().prop_map(String::from),
    ]
}

/// Any text, heavy in special characters.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|p| p.concat())
}

/// Text without the given characters (they are dropped from [`text`]).
fn text_without(forbidden: &'static [char]) -> impl Strategy<Value = String> {
    text().prop_map(move |t| t.chars().filter(|c| !forbidden.contains(c)).collect())
}

fn retry() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => (0u64..100_000, 0u32..1_000_000_000).prop_map(|(ms, ns)| {
            Duration::from_millis(ms) + Duration::from_nanos(u64::from(ns % 1_000_000))
        }),
        1 => (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, ns)| Duration::new(s, ns)),
        1 => Just(Duration::MAX),
        1 => Just(Duration::ZERO),
    ]
}

/// The inputs of one event.
#[derive(Debug, Clone)]
struct Spec {
    name: Option<String>,
    id: Option<String>,
    data: Option<String>,
    retry: Option<Duration>,
    comments: Vec<String>,
}

/// Inputs the encoder must accept.
fn valid_spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(text_without(&['\r', '\n'])),
        prop::option::of(text_without(&['\r', '\n', '\0'])),
        prop::option::weighted(0.9, text()),
        prop::option::of(retry()),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(|(name, id, data, retry, comments)| Spec {
            name,
            id,
            data,
            retry,
            comments,
        })
}

/// Any inputs, valid or not.
fn any_spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::weighted(0.9, text()),
        prop::option::of(retry()),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(|(name, id, data, retry, comments)| Spec {
            name,
            id,
            data,
            retry,
            comments,
        })
}

fn encode(spec: &Spec) -> Result<Vec<u8>, EventError> {
    let mut e = Event::new();
    if let Some(n) = &spec.name {
        e = e.event(n.as_str());
    }
    if let Some(i) = &spec.id {
        e = e.id(i.as_str());
    }
    if let Some(d) = &spec.data {
        e = e.data(d.as_str());
    }
    if let Some(r) = spec.retry {
        e = e.retry(r);
    }
    for c in &spec.comments {
        e = e.comment(c.as_str());
    }
    Ok(e.encode()?.as_bytes().to_vec())
}

/// Splits on CR, LF and CRLF (CRLF being one break).
fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(str::to_owned)
        .collect()
}

fn millis(d: Duration) -> Duration {
    Duration::new(d.as_secs(), d.subsec_millis() * 1_000_000)
}

/// What a client must decode from `spec`, given the last event id before it; `None` when no
/// event is dispatched (no data).
fn expected(spec: &Spec, last_id: &str) -> Option<DecodedEvent> {
    let data = spec.data.as_ref()?;
    Some(DecodedEvent {
        event: match spec.name.as_deref() {
            None | Some("") => "message".to_owned(),
            Some(n) => n.to_owned(),
        },
        data: lines(data).join("\n"),
        last_event_id: spec.id.clone().unwrap_or_else(|| last_id.to_owned()),
        retry: spec.retry.map(millis),
        comments: spec.comments.iter().flat_map(|c| lines(c)).collect(),
    })
}

/// Cut points into a buffer of `len` bytes, sorted.
fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..16)
}

/// Decodes `bytes` cut at `cuts`, finishing the stream at the end.
fn decode_chunked(bytes: &[u8], cuts: &[Index]) -> (Vec<DecodedEvent>, Decoder) {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut d = Decoder::new();
    let mut start = 0;
    for p in points {
        d.feed(&bytes[start..p]);
        start = p;
    }
    d.finish();
    let events = std::iter::from_fn(|| d.next_event()).collect();
    (events, d)
}

fn forbidden(value: &str, reject_nul: bool) -> Option<char> {
    value
        .chars()
        .find(|&c| c == '\r' || c == '\n' || (reject_nul && c == '\0'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn valid_event_round_trips(spec in valid_spec(), cuts in cuts()) {
        let bytes = encode(&spec).unwrap();
        let (events, d) = decode_chunked(&bytes, &cuts);
        let want: Vec<_> = expected(&spec, "").into_iter().collect();
        prop_assert_eq!(events, want);
        prop_assert_eq!(d.last_event_id(), spec.id.as_deref().unwrap_or(""));
        prop_assert_eq!(d.retry(), spec.retry.map(millis));
    }

    #[test]
    fn stream_of_events_round_trips(
        specs in prop::collection::vec(valid_spec(), 1..6),
        cuts in cuts(),
    ) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        let mut last_id = String::new();
        let mut last_retry = None;
        for spec in &specs {
            bytes.extend_from_slice(&encode(spec).unwrap());
            want.extend(expected(spec, &last_id));
            if let Some(id) = &spec.id {
                last_id.clone_from(id);
            }
            last_retry = spec.retry.map(millis).or(last_retry);
        }
        let (events, d) = decode_chunked(&bytes, &cuts);
        prop_assert_eq!(events, want);
        prop_assert_eq!(d.last_event_id(), last_id.as_str());
        prop_assert_eq!(d.retry(), last_retry);
    }

    #[test]
    fn encoder_rejects_exactly_the_invalid_inputs(spec in any_spec(), cuts in cuts()) {
        let bad_name = spec.name.as_deref().and_then(|n| forbidden(n, false));
        let bad_id = spec.id.as_deref().and_then(|i| forbidden(i, true));
        let want_err = bad_name
            .map(|c| (Field::Event, c))
            .or(bad_id.map(|c| (Field::Id, c)));
        match (encode(&spec), want_err) {
            (Ok(bytes), None) => {
                let (events, _) = decode_chunked(&bytes, &cuts);
                let want: Vec<_> = expected(&spec, "").into_iter().collect();
                prop_assert_eq!(events, want);
            }
            (Err(EventError::InvalidField { field, character }), Some((want_field, want_char))) => {
                prop_assert_eq!(field, want_field);
                prop_assert_eq!(character, ForbiddenChar(want_char));
            }
            (got, want) => prop_assert!(false, "encode gave {:?}, expected error {:?}", got, want),
        }
    }

    #[test]
    fn json_data_round_trips(value in text(), name in text_without(&['\r', '\n']), cuts in cuts()) {
        let frame = Event::new().event(name.as_str()).json(&value).encode().unwrap();
        let (events, _) = decode_chunked(frame.as_bytes(), &cuts);
        prop_assert_eq!(events.len(), 1);
        let back: String = serde_json::from_str(&events[0].data).unwrap();
        prop_assert_eq!(back, value);
    }

    #[test]
    fn any_line_ending_style_round_trips(
        specs in prop::collection::vec(valid_spec(), 1..4),
        endings in prop::collection::vec(0u8..3, 1..64),
        bom in any::<bool>(),
        cuts in cuts(),
    ) {
        // The encoder ends lines with LF; a server may use CR or CRLF instead, line by line.
        let mut lf = Vec::new();
        let mut want = Vec::new();
        let mut last_id = String::new();
        for spec in &specs {
            lf.extend_from_slice(&encode(spec).unwrap());
            want.extend(expected(spec, &last_id));
            if let Some(id) = &spec.id {
                last_id.clone_from(id);
            }
        }
        let mut bytes = Vec::with_capacity(lf.len() * 2 + 3);
        if bom {
            bytes.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let lines: Vec<&[u8]> = lf.split(|&b| b == b'\n').collect();
        let mut prev_cr = false;
        for (i, line) in lines.iter().enumerate() {
            bytes.extend_from_slice(line);
            if i + 1 == lines.len() {
                break; // after the last LF
            }
            let mut ending = endings[i % endings.len()];
            if prev_cr && line.is_empty() && ending == 0 {
                // CR then an empty line ended by LF would read as one CRLF: not the same stream.
                ending = 1;
            }
            prev_cr = ending == 1;
            bytes.extend_from_slice(match ending {
                0 => &b"\n"[..],
                1 => b"\r",
                _ => b"\r\n",
            });
        }
        let (events, d) = decode_chunked(&bytes, &cuts);
        prop_assert_eq!(events, want);
        prop_assert_eq!(d.last_event_id(), last_id.as_str());
    }

    #[test]
    fn chunking_never_changes_the_result(tokens in prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec![
                &b"\r"[..], b"\n", b"\r\n", b":", b" ", b"\0", b"\xEF\xBB\xBF", b"\xEF", b"\xFF",
                b"\xE2\x9C", b"data", b"data:", b"data: ", b"event:", b"id:", b"id: \0", b"retry:",
                b"12", b"9", "✓".as_bytes(),
            ]).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 1..4),
        ],
        0..96,
    ), cuts in cuts()) {
        let bytes = tokens.concat();
        let whole = decode_chunked(&bytes, &[]);
        let chunked = decode_chunked(&bytes, &cuts);
        prop_assert_eq!(&whole.0, &chunked.0);
        prop_assert_eq!(whole.1.last_event_id(), chunked.1.last_event_id());
        prop_assert_eq!(whole.1.retry(), chunked.1.retry());
        // Byte by byte too.
        let mut d = Decoder::new();
        for b in bytes.chunks(1) {
            d.feed(b);
        }
        d.finish();
        let bytewise: Vec<_> = std::iter::from_fn(|| d.next_event()).collect();
        prop_assert_eq!(whole.0, bytewise);
    }
}
