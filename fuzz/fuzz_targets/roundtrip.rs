//! Arbitrary event inputs: when the encoder accepts them, decoding the encoded bytes (cut into
//! arbitrary chunks, with arbitrary CR / LF / CRLF line endings and an optional BOM) gives back
//! the same event; when it rejects them, they were invalid and the error names the offending
//! field and character.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sse_core::{DecodedEvent, Decoder, Event, EventError, Field, ForbiddenChar};

#[derive(Debug, Arbitrary)]
struct Input {
    name: Option<String>,
    id: Option<String>,
    data: Option<String>,
    /// Seconds and nanoseconds of the `retry` duration.
    retry: Option<(u64, u32)>,
    comments: Vec<String>,
    /// Prepend a byte order mark.
    bom: bool,
    /// Line ending of each line: LF, CR or CRLF (the encoder writes LF).
    endings: Vec<u8>,
    /// Chunk boundaries, as offsets into the encoded bytes (taken modulo their length + 1).
    cuts: Vec<u16>,
}

/// Splits on CR, LF and CRLF (CRLF being one break).
fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(str::to_owned)
        .collect()
}

/// Rewrites the LF line endings of `lf` as LF, CR or CRLF, as picked by `endings` (cycled), and
/// prepends a BOM if asked: the same event stream in another style.
fn restyle(lf: &[u8], endings: &[u8], bom: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() * 2 + 3);
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let lines: Vec<&[u8]> = lf.split(|&b| b == b'\n').collect();
    let mut prev_cr = false;
    for (i, line) in lines.iter().enumerate() {
        out.extend_from_slice(line);
        if i + 1 == lines.len() {
            break;
        }
        let mut ending = if endings.is_empty() {
            0
        } else {
            endings[i % endings.len()] % 3
        };
        if prev_cr && line.is_empty() && ending == 0 {
            // CR then an empty line ended by LF would read as one CRLF: not the same stream.
            ending = 1;
        }
        prev_cr = ending == 1;
        out.extend_from_slice(match ending {
            0 => &b"\n"[..],
            1 => b"\r",
            _ => b"\r\n",
        });
    }
    out
}

fn forbidden(value: &str, reject_nul: bool) -> Option<char> {
    value
        .chars()
        .find(|&c| c == '\r' || c == '\n' || (reject_nul && c == '\0'))
}

fuzz_target!(|input: Input| {
    let retry = input
        .retry
        .map(|(s, ns)| Duration::new(s, ns % 1_000_000_000));
    let mut e = Event::new();
    if let Some(n) = &input.name {
        e = e.event(n.as_str());
    }
    if let Some(i) = &input.id {
        e = e.id(i.as_str());
    }
    if let Some(d) = &input.data {
        e = e.data(d.as_str());
    }
    if let Some(r) = retry {
        e = e.retry(r);
    }
    for c in &input.comments {
        e = e.comment(c.as_str());
    }

    let bad_name = input.name.as_deref().and_then(|n| forbidden(n, false));
    let bad_id = input.id.as_deref().and_then(|i| forbidden(i, true));
    let want_err = bad_name
        .map(|c| (Field::Event, c))
        .or(bad_id.map(|c| (Field::Id, c)));

    let frame = match (e.encode(), want_err) {
        (Ok(frame), None) => frame,
        (Err(EventError::InvalidField { field, character }), Some((f, c))) => {
            assert_eq!((field, character), (f, ForbiddenChar(c)));
            return;
        }
        (got, want) => panic!("encode gave {got:?}, expected error {want:?}"),
    };

    let bytes = &restyle(frame.as_bytes(), &input.endings, input.bom);
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| usize::from(c) % (bytes.len() + 1))
        .collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut d = Decoder::new();
    let mut start = 0;
    for c in cuts {
        d.feed(&bytes[start..c]);
        start = c;
    }
    d.finish();
    let got: Vec<DecodedEvent> = std::iter::from_fn(|| d.next_event()).collect();

    let millis = retry.map(|r| Duration::new(r.as_secs(), r.subsec_millis() * 1_000_000));
    let want: Vec<DecodedEvent> = input
        .data
        .as_ref()
        .map(|data| DecodedEvent {
            event: match input.name.as_deref() {
                None | Some("") => "message".to_owned(),
                Some(n) => n.to_owned(),
            },
            data: lines(data).join("\n"),
            last_event_id: input.id.clone().unwrap_or_default(),
            retry: millis,
            comments: input.comments.iter().flat_map(|c| lines(c)).collect(),
        })
        .into_iter()
        .collect();
    assert_eq!(got, want, "encoded as {bytes:?}");
    assert_eq!(d.last_event_id(), input.id.as_deref().unwrap_or(""));
    assert_eq!(d.retry(), millis);
});
