//! Shared helpers for the sse benches: a typical progress payload and a typical event stream.

use std::fmt::Write as _;

use bytes::Bytes;
use serde::Serialize;

/// A typical job-progress payload; its compact JSON is about 100 bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// The job this progress belongs to.
    pub job: &'static str,
    /// Current step.
    pub page: u32,
    /// Total steps.
    pub of: u32,
    /// Bytes processed so far.
    pub bytes_done: u64,
    /// Bytes to process in all.
    pub bytes_total: u64,
    /// A human-readable status line.
    pub message: &'static str,
}

impl Progress {
    /// The payload the encode benches use.
    pub fn typical() -> Self {
        Progress {
            job: "import-2024-06-17",
            page: 3,
            of: 10,
            bytes_done: 3_145_728,
            bytes_total: 10_485_760,
            message: "parsing page 3",
        }
    }
}

/// At least `min_len` bytes of a typical event stream, and the number of events it dispatches.
///
/// A mix of what servers send: named events with an id and ~100-byte JSON data (most of them),
/// unnamed events, multi-line data, `retry` lines, heartbeat comments (not dispatched) and some
/// CRLF line endings.
pub fn typical_stream(min_len: usize) -> (Vec<u8>, usize) {
    let mut out = String::with_capacity(min_len + 512);
    let mut events = 0;
    let mut i: u64 = 0;
    while out.len() < min_len {
        let p = Progress {
            page: (i % 97) as u32,
            bytes_done: i * 4096,
            ..Progress::typical()
        };
        let json = serde_json::to_string(&p).unwrap_or_default();
        match i % 16 {
            // A heartbeat: a comment-only block, never dispatched.
            7 => out.push_str(": keep-alive\n\n"),
            // Unnamed event with multi-line data.
            11 => {
                let _ = write!(out, "id: {i}\ndata: line one of {i}\ndata: {json}\n\n");
                events += 1;
            }
            // CRLF line endings and a retry.
            13 => {
                let _ = write!(
                    out,
                    "retry: 5000\r\nevent: progress\r\nid: {i}\r\ndata: {json}\r\n\r\n"
                );
                events += 1;
            }
            _ => {
                let _ = write!(out, "event: progress\nid: {i}\ndata: {json}\n\n");
                events += 1;
            }
        }
        i += 1;
    }
    (out.into_bytes(), events)
}

/// `bytes` cut into `size`-byte chunks sharing one buffer, as an HTTP client would deliver them.
pub fn chunked(bytes: Vec<u8>, size: usize) -> Vec<Bytes> {
    let all = Bytes::from(bytes);
    (0..all.len())
        .step_by(size)
        .map(|start| all.slice(start..(start + size).min(all.len())))
        .collect()
}
