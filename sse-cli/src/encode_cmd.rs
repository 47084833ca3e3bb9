//! `sse encode`: JSON lines on stdin → event-stream frames on stdout.
//!
//! Each non-blank input line is one JSON object with the optional fields `event`, `data`, `id`,
//! `retry` (milliseconds) and `comment` (a string or an array of strings). `data` that is a JSON
//! string is sent as text; any other JSON value is sent as its compact JSON serialization.
//!
//! An event is validated completely before anything is written, so an invalid line writes
//! nothing; the events before it have already been written (and flushed).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

use serde_json::{Map, Value};
use sse_core::{Event, EventError};

/// The fields an input object may have.
const FIELDS: &str = "event, data, id, retry, comment";

/// Why `sse encode` stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// An input line is not a valid event description.
    #[error("line {line}: {error}")]
    Input {
        /// 1-based input line number.
        line: u64,
        /// What is wrong with it.
        error: InputError,
    },
    /// Reading stdin failed.
    #[error("reading stdin: {0}")]
    Read(#[source] io::Error),
    /// Writing stdout failed.
    #[error("writing stdout: {0}")]
    Write(#[source] io::Error),
}

/// What is wrong with one input line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// The line is not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The line is not JSON.
    #[error("invalid JSON: {}", JsonMessage(.0))]
    Json(#[source] serde_json::Error),
    /// The line is JSON, but not an object.
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    /// The object has a field this tool does not know.
    #[error("unknown field \"{0}\" (expected {FIELDS})")]
    UnknownField(String),
    /// A known field has the wrong JSON type.
    #[error("field \"{field}\": expected {expected}, found {found}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
        /// What it is (a JSON type name).
        found: &'static str,
    },
    /// The encoder rejected the event (for example a line break in the id).
    #[error(transparent)]
    Event(EventError),
}

/// Formats a serde_json error as `column N: message` (the input is always a single line, so
/// serde_json's "at line 1" is noise next to our own line number).
struct JsonMessage<'a>(&'a serde_json::Error);

impl fmt::Display for JsonMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.0.to_string();
        let suffix = format!(" at line {} column {}", self.0.line(), self.0.column());
        match full.strip_suffix(&suffix) {
            Some(message) => write!(f, "{message} (column {})", self.0.column()),
            None => f.write_str(&full),
        }
    }
}

/// One input line, parsed and type-checked, ready to become an [`Event`].
#[derive(Debug, Default, PartialEq)]
struct EventSpec {
    event: Option<String>,
    data: Option<Value>,
    id: Option<String>,
    retry: Option<u64>,
    comments: Vec<String>,
}

impl EventSpec {
    /// Parses one (non-blank) input line.
    fn parse(line: &[u8]) -> Result<Self, InputError> {
        let text = std::str::from_utf8(line).map_err(|_| InputError::NotUtf8)?;
        let value: Value = serde_json::from_str(text).map_err(InputError::Json)?;
        let Value::Object(map) = value else {
            return Err(InputError::NotObject(type_name(&value)));
        };
        Self::from_map(map)
    }

    fn from_map(map: Map<String, Value>) -> Result<Self, InputError> {
        let mut spec = EventSpec::default();
        for (key, value) in map {
            match key.as_str() {
                "event" => spec.event = Some(expect_string("event", value)?),
                "id" => spec.id = Some(expect_string("id", value)?),
                "data" => spec.data = Some(value),
                "retry" => {
                    spec.retry = Some(value.as_u64().ok_or_else(|| InputError::WrongType {
                        field: "retry",
                        expected: "a non-negative integer (milliseconds)",
                        found: type_name(&value),
                    })?);
                }
                "comment" => spec.comments = comments(value)?,
                _ => return Err(InputError::UnknownField(key)),
            }
        }
        Ok(spec)
    }

    /// Builds the encoder's [`Event`], borrowing from `self`.
    fn to_event(&self) -> Event<'_> {
        let mut event = Event::new();
        for comment in &self.comments {
            event = event.comment(comment.as_str());
        }
        if let Some(name) = &self.event {
            event = event.event(name.as_str());
        }
        if let Some(ms) = self.retry {
            event = event.retry(Duration::from_millis(ms));
        }
        match &self.data {
            None => {}
            Some(Value::String(text)) => event = event.data(text.as_str()),
            Some(json) => event = event.json(json),
        }
        if let Some(id) = &self.id {
            event = event.id(id.as_str());
        }
        event
    }
}

fn expect_string(field: &'static str, value: Value) -> Result<String, InputError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(InputError::WrongType {
            field,
            expected: "a string",
            found: type_name(&other),
        }),
    }
}

fn comments(value: Value) -> Result<Vec<String>, InputError> {
    let wrong = |found: &Value| InputError::WrongType {
        field: "comment",
        expected: "a string or an array of strings",
        found: type_name(found),
    };
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong(&other)),
            })
            .collect(),
        other => Err(wrong(&other)),
    }
}

/// The JSON type of `value`, for error messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(n) if n.is_i64() && n.as_i64().is_some_and(|i| i < 0) => "a negative number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Encodes one input line into `out`. Returns `Ok(false)` for a blank line.
fn encode_line(line: &[u8], out: &mut impl Write) -> Result<bool, LineError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let spec = EventSpec::parse(line).map_err(LineError::Input)?;
    let frame = spec
        .to_event()
        .encode()
        .map_err(|e| LineError::Input(InputError::Event(e)))?;
    out.write_all(frame.as_bytes()).map_err(LineError::Write)?;
    Ok(true)
}

enum LineError {
    Input(InputError),
    Write(io::Error),
}

/// Runs `sse encode`: reads JSON lines from `input` until EOF and writes frames to `output`.
///
/// Output is flushed whenever no more input is buffered, so frames leave as soon as their line
/// arrives when the input is a live pipe, and in large batches when it is a file.
pub(crate) fn run(input: impl Read, output: impl Write) -> Result<(), EncodeError> {
    let mut input = BufReader::new(input);
    let mut output = io::BufWriter::new(output);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(EncodeError::Read)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        match encode_line(&line, &mut output) {
            Ok(_) => {}
            Err(LineError::Write(e)) => return Err(EncodeError::Write(e)),
            Err(LineError::Input(error)) => {
                output.flush().map_err(EncodeError::Write)?;
                return Err(EncodeError::Input {
                    line: line_no,
                    error,
                });
            }
        }
        if input.buffer().is_empty() {
            output.flush().map_err(EncodeError::Write)?;
        }
    }
    output.flush().map_err(EncodeError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(input: &str) -> (String, Result<(), EncodeError>) {
        let mut out = Vec::new();
        let result = run(input.as_bytes(), &mut out);
        (String::from_utf8(out).unwrap(), result)
    }

    fn error(input: &str) -> String {
        encode(input).1.unwrap_err().to_string()
    }

    #[test]
    fn all_fields() {
        let (out, result) =
            encode(r#"{"comment":["a","b"],"event":"e","id":"7","retry":1500,"data":"x\ny"}"#);
        result.unwrap();
        assert_eq!(
            out,
            ": a\n: b\nevent: e\nretry: 1500\ndata: x\ndata: y\nid: 7\n\n"
        );
    }

    #[test]
    fn json_data_and_blank_lines() {
        let (out, result) = encode("\n  \r\n{\"data\":{\"k\":[1,null]}}\n{\"data\":null}\n\n");
        result.unwrap();
        assert_eq!(out, "data: {\"k\":[1,null]}\n\ndata: null\n\n");
    }

    #[test]
    fn errors_name_line_and_field() {
        assert_eq!(
            error("{\"data\":\"a\"}\n\n{\"id\":\"1\\n2\",\"data\":\"x\"}\n"),
            "line 3: invalid event id: contains LF (U+000A LINE FEED)"
        );
        assert_eq!(
            error("{\"retry\":-1}"),
            "line 1: field \"retry\": expected a non-negative integer (milliseconds), found a negative number"
        );
        assert_eq!(
            error("{\"retry\":1.5}"),
            "line 1: field \"retry\": expected a non-negative integer (milliseconds), found a fractional number"
        );
        assert_eq!(
            error("{\"id\":3}"),
            "line 1: field \"id\": expected a string, found a number"
        );
        assert_eq!(
            error("{\"comment\":[\"ok\",false]}"),
            "line 1: field \"comment\": expected a string or an array of strings, found a boolean"
        );
        assert_eq!(
            error("{\"dat\":\"x\"}"),
            "line 1: unknown field \"dat\" (expected event, data, id, retry, comment)"
        );
        assert_eq!(
            error("[1]"),
            "line 1: expected a JSON object, found an array"
        );
        assert_eq!(
            error("{\"data\": }"),
            "line 1: invalid JSON: expected value (column 10)"
        );
        let mut out = Vec::new();
        let err = run(&b"{\"data\":\"\xff\"}"[..], &mut out).unwrap_err();
        assert_eq!(err.to_string(), "line 1: not valid UTF-8");
    }

    #[test]
    fn earlier_events_stay_written() {
        let (out, result) = encode(
            "{\"data\":\"ok\"}\n{\"event\":\"a\\rb\",\"data\":\"no\"}\n{\"data\":\"never\"}\n",
        );
        assert_eq!(out, "data: ok\n\n");
        assert!(matches!(result, Err(EncodeError::Input { line: 2, .. })));
    }
}
