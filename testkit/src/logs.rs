//! Captures a test binary's `tracing` events as JSON lines, through a real
//! `tracing-subscriber` installed as the global default (so that events from any thread,
//! server tasks and worker threads included, are seen). Tests that read the capture run one
//! at a time: [`start`] holds a lock until the returned [`Capture`] is dropped.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::util::SubscriberInitExt;

/// Where the subscriber writes.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

static BUF: OnceLock<Buf> = OnceLock::new();
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The log lines written since [`start`]; one test at a time.
pub struct Capture {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    buf: Buf,
}

/// Installs the subscriber (once per binary, at `DEBUG`), waits for the other capturing tests
/// to finish, and empties the capture.
pub async fn start() -> Capture {
    let serial = SERIAL.lock().await;
    let buf = BUF
        .get_or_init(|| {
            let buf = Buf::default();
            let writer = buf.clone();
            tracing_subscriber::fmt()
                .json()
                .with_max_level(LevelFilter::DEBUG)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(move || writer.clone())
                .finish()
                .try_init()
                .expect("the only global subscriber of this test binary");
            buf
        })
        .clone();
    buf.0.lock().unwrap().clear();
    Capture {
        _serial: serial,
        buf,
    }
}

impl Capture {
    /// Everything written, as text.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.buf.0.lock().unwrap()).into_owned()
    }

    /// The events of the project's crates (targets `sse_…`), parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.raw()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON log line"))
            .filter(|v| v["target"].as_str().is_some_and(|t| t.starts_with("sse_")))
            .collect()
    }

    /// The events whose message is `message`.
    pub fn with_message(&self, message: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }
}
