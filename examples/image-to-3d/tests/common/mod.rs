//! Shared helpers: a server on a loopback port, sample images, uploads, SSE reading.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::Cursor;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use sse_core::{DecodedEvent, Decoder};
use sse_example_image_to_3d::{serve_with, Config};

pub const ALICE: &str = "alice-key";
pub const BOB: &str = "bob-key";

/// The settings of most tests: no pause between stages, two users.
pub fn config() -> Config {
    Config {
        api_keys: vec![(ALICE.into(), "alice".into()), (BOB.into(), "bob".into())],
        step_delay: Duration::ZERO,
        workers: 2,
        ..Config::default()
    }
}

/// Starts the app on 127.0.0.1:0; returns its base URL. The server lives as long as the test's
/// runtime.
pub async fn start(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve_with(listener, config, std::future::pending()));
    base
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .no_proxy()
        .build()
        .unwrap()
}

/// A `w`×`h` grayscale gradient with a bright disc, as PNG.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| {
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let disc = if d < w.min(h) as f32 / 3.0 {
            120.0
        } else {
            0.0
        };
        image::Luma([((x * 135 / w.max(1)) as f32 + disc).min(255.0) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A `w`×`h` colour image, as JPEG.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A multipart form with one `files` part per `(name, bytes, mime)`.
pub fn form(files: &[(&str, Vec<u8>, &str)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes, mime) in files {
        let part = reqwest::multipart::Part::bytes(bytes.clone())
            .file_name((*name).to_owned())
            .mime_str(mime)
            .unwrap();
        form = form.part("files", part);
    }
    form
}

/// Uploads `files` as `key`.
pub async fn upload(base: &str, key: &str, files: &[(&str, Vec<u8>, &str)]) -> reqwest::Response {
    client()
        .post(format!("{base}/api/v1/upload/batch"))
        .bearer_auth(key)
        .multipart(form(files))
        .send()
        .await
        .unwrap()
}

/// Uploads `files` as `key` and returns the task's JSON (asserting 202).
pub async fn start_task(base: &str, key: &str, files: &[(&str, Vec<u8>, &str)]) -> Value {
    let res = upload(base, key, files).await;
    assert_eq!(
        res.status(),
        202,
        "upload refused: {}",
        res.text().await.unwrap()
    );
    res.json().await.unwrap()
}

/// Exchanges `key` for a stream token of `task`.
pub async fn token_response(base: &str, key: &str, task: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/api/v1/stream-tokens"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "task_id": task }))
        .send()
        .await
        .unwrap()
}

pub async fn token(base: &str, key: &str, task: &str) -> String {
    let res = token_response(base, key, task).await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// Opens the stream of `task` with `token`, resuming after `last` (as `Last-Event-ID`).
pub async fn open_stream(
    base: &str,
    task: &str,
    token: &str,
    last: Option<&str>,
) -> reqwest::Response {
    let mut req = client()
        .get(format!(
            "{base}/api/v1/status/tasks/{task}/stream?token={token}"
        ))
        .header("accept", "text/event-stream");
    if let Some(last) = last {
        req = req.header("last-event-id", last);
    }
    req.send().await.unwrap()
}

/// Decodes a stream's events with [`sse_core::Decoder`] until the stream ends or `max` events
/// arrived (at most 15 s).
pub async fn read_events(res: reqwest::Response, max: usize) -> Vec<DecodedEvent> {
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut body = res.bytes_stream();
    let read = async {
        while let Some(chunk) = body.next().await {
            decoder.feed(&chunk.unwrap());
            while let Some(e) = decoder.next_event() {
                out.push(e);
                if out.len() >= max {
                    return;
                }
            }
        }
        decoder.finish();
        while let Some(e) = decoder.next_event() {
            out.push(e);
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("the stream did not end in time");
    out
}

/// The event's JSON payload.
pub fn payload(e: &DecodedEvent) -> Value {
    serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("bad JSON {:?}: {err}", e.data))
}

/// Checks that every payload's `sequence` equals the sequence of its SSE id (`INCARNATION:SEQ`,
/// one incarnation for the whole task), and that they increase.
pub fn check_sequences(events: &[DecodedEvent]) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut incarnation: Option<&str> = None;
    for e in events {
        let p = payload(e);
        let seq = p["sequence"]
            .as_u64()
            .unwrap_or_else(|| panic!("no sequence in {p}"));
        let (inc, id_seq) = e
            .last_event_id
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("SSE id {:?} is not INCARNATION:SEQ", e.last_event_id));
        assert!(!inc.is_empty(), "an incarnation in {:?}", e.last_event_id);
        assert_eq!(
            *incarnation.get_or_insert(inc),
            inc,
            "one incarnation per task"
        );
        assert_eq!(
            seq.to_string(),
            id_seq,
            "sequence == SSE id's sequence in {}",
            e.event
        );
        if let Some(prev) = seqs.last() {
            assert!(seq > *prev, "sequences increase: {prev} then {seq}");
        }
        seqs.push(seq);
    }
    seqs
}
