//! How decoded events are printed: JSON lines (`sse decode`, `sse watch --json`) or a readable
//! one-event-per-line form (`sse watch`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;
use sse_core::EventRef;

/// The JSON line printed for each event.
#[derive(Serialize)]
struct JsonEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a str,
    last_event_id: &'a str,
}

/// The JSON line printed at the end of a decoded stream.
#[derive(Serialize)]
struct JsonRetry {
    /// The reconnection time in milliseconds, `null` when the stream never set one.
    retry: Option<u128>,
}

/// Writes `{"type":…,"data":…,"last_event_id":…}` and a LF.
pub(crate) fn write_json_event(out: &mut impl Write, event: EventRef<'_>) -> io::Result<()> {
    let line = JsonEvent {
        kind: event.event,
        data: event.data,
        last_event_id: event.last_event_id,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// Writes `{"retry":<ms or null>}` and a LF.
pub(crate) fn write_json_retry(out: &mut impl Write, retry: Option<Duration>) -> io::Result<()> {
    let line = JsonRetry {
        retry: retry.map(|r| r.as_millis()),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// Writes an event for a human: `[type] id=… data`, data lines after the first indented under
/// the first, control characters escaped so they cannot disturb the terminal.
///
/// ```text
/// [message] id=1 hello
/// [update] id=2 line one
///               line two
/// ```
pub(crate) fn write_readable_event(out: &mut impl Write, event: EventRef<'_>) -> io::Result<()> {
    let mut head = String::new();
    head.push('[');
    escape_into(&mut head, event.event);
    head.push(']');
    if !event.last_event_id.is_empty() {
        head.push_str(" id=");
        if event.last_event_id.contains(char::is_whitespace) {
            // Quote it, so that where the id ends and the data starts stays clear.
            let quoted = serde_json::to_string(event.last_event_id)?;
            head.push_str(&quoted);
        } else {
            escape_into(&mut head, event.last_event_id);
        }
    }
    head.push(' ');
    let indent = head.chars().count();
    let mut text = head;
    for (i, line) in event.data.split('\n').enumerate() {
        if i > 0 {
            text.push('\n');
            text.extend(std::iter::repeat_n(' ', indent));
        }
        escape_into(&mut text, line);
    }
    if event.data.is_empty() {
        text.push_str("(empty)");
    }
    text.push('\n');
    out.write_all(text.as_bytes())
}

/// Appends `s`, with control characters (other than tab) written as `\u{…}` escapes.
fn escape_into(buf: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            // Writing to a String cannot fail.
            let _ = write!(buf, "\\u{{{:x}}}", u32::from(c));
        } else {
            buf.push(c);
        }
    }
}

/// A duration for messages: `50ms`, `3s`, `1.5s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(kind: &'a str, data: &'a str, id: &'a str) -> EventRef<'a> {
        EventRef {
            event: kind,
            data,
            last_event_id: id,
            retry: None,
            comments: &[],
        }
    }

    fn readable(e: EventRef<'_>) -> String {
        let mut out = Vec::new();
        write_readable_event(&mut out, e).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_lines() {
        let mut out = Vec::new();
        write_json_event(&mut out, event("message", "a\n\"b\"", "7")).unwrap();
        write_json_retry(&mut out, Some(Duration::from_millis(50))).unwrap();
        write_json_retry(&mut out, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"message\",\"data\":\"a\\n\\\"b\\\"\",\"last_event_id\":\"7\"}\n\
             {\"retry\":50}\n{\"retry\":null}\n"
        );
    }

    #[test]
    fn readable_lines() {
        assert_eq!(readable(event("message", "hi", "")), "[message] hi\n");
        assert_eq!(
            readable(event("update", "one\ntwo", "42")),
            "[update] id=42 one\n               two\n"
        );
        assert_eq!(
            readable(event("message", "", "a b")),
            "[message] id=\"a b\" (empty)\n"
        );
        assert_eq!(
            readable(event("x\u{1b}", "\u{1b}[31mred\r", "")),
            "[x\\u{1b}] \\u{1b}[31mred\\u{d}\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_millis(50)), "50ms");
        assert_eq!(human_duration(Duration::from_secs(3)), "3s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }
}
