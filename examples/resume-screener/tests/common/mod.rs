//! Shared helpers of the integration tests: a real server on 127.0.0.1:0, PDFs from the shared
//! generator, uploads, and an SSE reader built on `sse_core::Decoder`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;
use sse_core::{DecodedEvent, Decoder};
use sse_example_resume_screener::{serve_with_shutdown, Config, ResumeScreener};
use sse_examples_support::pdf::SamplePdf;

/// Every test finishes well within this, or fails.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(25);
/// The longest wait for one event.
pub const STEP: Duration = Duration::from_secs(10);

pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";

/// A running server.
pub struct Server {
    pub base: String,
    pub app: ResumeScreener,
    pub client: reqwest::Client,
}

pub async fn start(config: Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = ResumeScreener::new(config);
    tokio::spawn(serve_with_shutdown(
        listener,
        app.clone(),
        std::future::pending(),
    ));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Server { base, app, client }
}

/// A PDF with one page per entry, each line drawn as real text (made by the shared generator,
/// not by the app).
pub fn make_pdf(pages: &[&str]) -> Vec<u8> {
    SamplePdf::new().font_size(12).build(pages).unwrap()
}

/// A file part: name, bytes, MIME type.
pub type File = (&'static str, Vec<u8>, &'static str);

pub fn text(name: &'static str, body: &str) -> File {
    (name, body.as_bytes().to_vec(), "text/plain")
}

pub fn pdf(name: &'static str, body: &str) -> File {
    (name, make_pdf(&[body]), "application/pdf")
}

/// `POST /api/v1/resumes/screen`.
pub async fn upload(
    s: &Server,
    token: &str,
    description: Option<&str>,
    files: Vec<File>,
) -> (StatusCode, Value) {
    let mut form = Form::new();
    if let Some(d) = description {
        form = form.text("job_description", d.to_owned());
    }
    for (name, bytes, mime) in files {
        form = form.part(
            "files",
            Part::bytes(bytes).file_name(name).mime_str(mime).unwrap(),
        );
    }
    let res = s
        .client
        .post(format!("{}/api/v1/resumes/screen", s.base))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

pub async fn get_json(s: &Server, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = s.client.get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

pub async fn delete(s: &Server, user: &str, token: &str) -> (StatusCode, Value) {
    let res = s
        .client
        .delete(format!("{}/api/v1/sse/progress/{user}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open event stream, decoded with `sse_core::Decoder`.
pub struct Sse {
    body: Body,
    decoder: Decoder,
    /// Every byte received, for comments (heartbeats).
    pub raw: Vec<u8>,
    ended: bool,
}

/// Opens the stream of `user` with `token` (in the header); panics unless it is a 200 event
/// stream.
pub async fn open(s: &Server, user: &str, token: &str, last_event_id: Option<&str>) -> Sse {
    let mut req = s
        .client
        .get(format!("{}/api/v1/sse/progress/stream/{user}", s.base))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    Sse {
        body: Box::pin(res.bytes_stream()),
        decoder: Decoder::new(),
        raw: Vec::new(),
        ended: false,
    }
}

impl Sse {
    /// The next event; `None` when the stream has ended. Panics after `wait` without one.
    pub async fn next_within(&mut self, wait: Duration) -> Option<DecodedEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(e) = self.decoder.next_event() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.raw.extend_from_slice(&chunk);
                    self.decoder.feed(&chunk);
                }
                Ok(Some(Err(_)) | None) => {
                    self.decoder.finish();
                    self.ended = true;
                }
                Err(_) => panic!("no event within {wait:?}"),
            }
        }
    }

    pub async fn next(&mut self) -> Option<DecodedEvent> {
        self.next_within(STEP).await
    }

    /// Whether an event arrives within `wait` (`false`: silence; the stream stays usable).
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.decoder.next_event().is_some() {
                return false;
            }
            if self.ended {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.raw.extend_from_slice(&chunk);
                    self.decoder.feed(&chunk);
                }
                Ok(Some(Err(_)) | None) => {
                    self.decoder.finish();
                    self.ended = true;
                }
                Err(_) => return true,
            }
        }
    }

    /// Events up to and including the one whose data has `status: "completed"`.
    pub async fn until_completed(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for _ in 0..500 {
            let e = self
                .next()
                .await
                .expect("the stream ended before `completed`");
            assert_eq!(e.event, "message", "progress updates are unnamed events");
            let v: Value = serde_json::from_str(&e.data).unwrap();
            let done = v["status"] == "completed";
            out.push((e.last_event_id.clone(), v));
            if done {
                return out;
            }
        }
        panic!("no `completed` within 500 events");
    }
}

/// Waits (bounded) until `f` holds.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}
