//! End-to-end tests of the video app (the video-transcoding report): real servers on 127.0.0.1:0, reqwest, and
//! `sse_core::Decoder` for the streams.
//!
//! With ffmpeg installed, generated and uploaded clips are really transcoded and the outputs
//! checked with ffprobe. Without it, jobs must fail with an `error` event naming ffmpeg; under
//! CI (`CI=true`, where `.ci/run` installs ffmpeg) its absence is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sse_core::{DecodedEvent, Decoder};
use sse_example_video::{serve, Config};
use sse_testkit::tools::{self, Tool};

fn temp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "sse-video-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn config() -> Config {
    Config {
        data_dir: temp("data"),
        workers: 2,
        ..Config::default()
    }
}

/// Whether ffmpeg and ffprobe can run here. In CI they must (`sse_testkit::tools`).
fn have_ffmpeg() -> bool {
    tools::available_or_fallback(
        "the video tests",
        &[Tool::Ffmpeg, Tool::Ffprobe],
        "that jobs fail with an error naming ffmpeg",
    )
}

/// Removes a test's files when the test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a server; returns its base URL, and the guard of its files.
async fn start(config: Config) -> (String, Cleanup) {
    let cleanup = Cleanup(config.data_dir.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, config).await.unwrap() });
    (format!("http://{addr}"), cleanup)
}

struct Sse {
    resp: reqwest::Response,
    dec: Decoder,
    raw: Vec<u8>,
    ended: bool,
}

impl Sse {
    async fn open(req: RequestBuilder) -> Sse {
        let resp = req.send().await.unwrap();
        if resp.status() != StatusCode::OK {
            panic!("{}: {:?}", resp.status(), resp.text().await);
        }
        let h = resp.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(h["x-accel-buffering"], "no");
        Sse {
            resp,
            dec: Decoder::new(),
            raw: Vec::new(),
            ended: false,
        }
    }

    async fn next(&mut self) -> Option<DecodedEvent> {
        loop {
            if let Some(e) = self.dec.next_event() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(Duration::from_secs(30), self.resp.chunk()).await {
                Ok(Ok(Some(c))) => {
                    self.raw.extend_from_slice(&c);
                    self.dec.feed(&c);
                }
                Ok(Ok(None)) => {
                    self.ended = true;
                    self.dec.finish();
                }
                // A stream cut before its end (the video-transcoding report's ERR_INCOMPLETE_CHUNKED_ENCODING) fails.
                Ok(Err(e)) => panic!("stream failed: {e}"),
                Err(_) => panic!("no event within 30 s"),
            }
        }
    }

    async fn rest(&mut self) -> Vec<DecodedEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.next().await {
            v.push(e);
        }
        v
    }
}

fn data(e: &DecodedEvent) -> Value {
    let v: Value = serde_json::from_str(&e.data).unwrap();
    for k in ["jobId", "status", "stage", "progress", "message", "details"] {
        assert!(v.get(k).is_some(), "{k} missing from {} {v}", e.event);
    }
    v
}

async fn post(req: RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn create(req: RequestBuilder) -> String {
    let (status, v) = post(req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "queued");
    let id = v["jobId"].as_str().unwrap().to_owned();
    assert_eq!(v["streamUrl"], format!("/jobs/{id}/stream"));
    id
}

/// The sequence of an SSE id `INCARNATION:SEQ` (the hub's id format).
fn seq_of(id: &str) -> u64 {
    let (inc, seq) = id
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("id {id:?} is not INCARNATION:SEQ"));
    assert!(!inc.is_empty(), "no incarnation in {id:?}");
    seq.parse()
        .unwrap_or_else(|_| panic!("no sequence in id {id:?}"))
}

/// Checks a whole stream: `status` first, `progress` with contiguous ids and monotone overall
/// progress, exactly one terminal event last. Returns the terminal event.
fn check_stream(events: &[DecodedEvent], id: &str) -> DecodedEvent {
    assert_eq!(events[0].event, "status", "{events:?}");
    assert_eq!(events[0].last_event_id, "", "status carries no id");
    let first = data(&events[0]);
    assert_eq!(first["jobId"], id);
    assert!(first["details"]["renditions"].is_array());
    let mut prev_id: Option<u64> = None;
    let mut prev_progress = 0;
    for (i, e) in events[1..].iter().enumerate() {
        let v = data(e);
        assert_eq!(v["jobId"], id);
        let n = seq_of(&e.last_event_id);
        if let Some(p) = prev_id {
            assert_eq!(n, p + 1, "ids are contiguous");
        }
        prev_id = Some(n);
        let p = v["progress"].as_u64().unwrap();
        assert!(p >= prev_progress, "progress went back: {v}");
        prev_progress = p;
        let last = i == events.len() - 2;
        match e.event.as_str() {
            "progress" => assert!(!last, "the stream must end with complete or error"),
            "complete" | "error" => assert!(last, "nothing after the terminal event"),
            other => panic!("unexpected event {other}"),
        }
    }
    events.last().unwrap().clone()
}

fn ffprobe_size(path: &Path) -> (u32, u32) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (w, h) = text.trim().split_once(',').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

async fn download(c: &Client, url: &str) -> PathBuf {
    let res = c.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    assert_eq!(res.headers()["content-type"], "video/mp4");
    let bytes = res.bytes().await.unwrap();
    let path = temp("download.mp4");
    std::fs::write(&path, &bytes).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_clip_is_transcoded_to_every_resolution() {
    let ffmpeg = have_ffmpeg();
    let (base, _files) = start(config()).await;
    let c = Client::new();
    let id = create(c.post(format!("{base}/jobs?generate=1"))).await;
    let url = format!("{base}/jobs/{id}/stream");
    let mut s = Sse::open(c.get(&url)).await;
    let events = s.rest().await;
    assert!(
        s.raw.starts_with(b": ok\n\n"),
        "the first byte leaves at once"
    );
    let end = check_stream(&events, &id);
    let end_data = data(&end);

    if !ffmpeg {
        assert_eq!(end.event, "error");
        let m = end_data["message"].as_str().unwrap();
        assert!(m.contains("ffmpeg is not installed"), "{m}");
        return;
    }
    assert_eq!(end.event, "complete", "{end_data}");
    assert_eq!(end_data["status"], "completed");
    assert_eq!(end_data["progress"], 100);

    // Every stage shows up, each resolution in order, each ending at 100 %.
    let progress: Vec<Value> = events[1..events.len() - 1].iter().map(data).collect();
    // The last `progress` event says 100 % overall (a tracker that moves only on `progress`
    // events must see it before the terminal event), and nothing before it does.
    let final_progress = progress.last().unwrap();
    assert_eq!(final_progress["progress"], 100, "{final_progress}");
    assert_eq!(final_progress["details"]["resolutionProgress"], 100);
    assert!(
        progress[..progress.len() - 1]
            .iter()
            .all(|v| v["progress"].as_u64().unwrap() < 100),
        "100 % only once every rendition is done"
    );
    assert!(
        progress.iter().any(|v| v["stage"] == "generating")
            || data(&events[0])["stage"] == "generating"
    );
    let probing = progress.iter().find(|v| v["stage"] == "probing").unwrap();
    assert_eq!(probing["details"]["source"]["width"], 640);
    assert_eq!(probing["details"]["source"]["height"], 360);
    assert_eq!(probing["details"]["source"]["durationUs"], 3_000_000);
    let mut order = Vec::new();
    for v in progress.iter().filter(|v| v["stage"] == "transcoding") {
        let r = v["details"]["resolution"].as_str().unwrap().to_owned();
        assert!(v["details"]["resolutionProgress"].as_u64().unwrap() <= 100);
        assert_eq!(v["status"], "processing");
        if order.last() != Some(&r) {
            order.push(r);
        }
    }
    assert_eq!(order, ["360p", "240p", "144p"]);
    for r in &order {
        assert!(
            progress
                .iter()
                .any(|v| v["details"]["resolution"] == r.as_str()
                    && v["details"]["resolutionProgress"] == 100),
            "{r} never reached 100 %"
        );
    }

    // The outputs exist, with the right sizes (checked by ffprobe on the downloaded files).
    let outputs = end_data["details"]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 3);
    for (o, (res, h)) in outputs
        .iter()
        .zip([("360p", 360), ("240p", 240), ("144p", 144)])
    {
        assert_eq!(o["resolution"], res);
        let file = download(&c, &format!("{base}{}", o["url"].as_str().unwrap())).await;
        let (width, height) = ffprobe_size(&file);
        assert_eq!(height, h, "{res}");
        assert_eq!(width % 2, 0);
        let want = f64::from(h) * 16.0 / 9.0;
        assert!(
            (f64::from(width) - want).abs() <= 2.0,
            "{res}: {width}x{height}"
        );
        assert_eq!(
            (o["width"].as_u64(), o["height"].as_u64()),
            (Some(u64::from(width)), Some(u64::from(h)))
        );
        assert_eq!(o["bytes"], std::fs::metadata(&file).unwrap().len());
        assert!((o["durationSec"].as_f64().unwrap() - 3.0).abs() < 0.2);
        let _ = std::fs::remove_file(file);
    }

    // The job as JSON, and the end of the story for a reconnecting browser: 204.
    let job: Value = c
        .get(format!("{base}/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "completed");
    assert_eq!(job["outputs"].as_array().unwrap().len(), 3);
    let res = c
        .get(&url)
        .header("Last-Event-ID", &end.last_event_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // A late client gets the state and the final event, then the end.
    let late = Sse::open(c.get(&url)).await.rest().await;
    assert_eq!(late.len(), 2);
    assert_eq!(late[0].event, "status");
    assert_eq!(data(&late[0])["status"], "completed");
    assert_eq!(late[1].data, end.data);
}

fn multipart(boundary: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_raw_and_multipart_are_transcoded() {
    if !have_ffmpeg() {
        return; // the missing-ffmpeg test covers this machine
    }
    let (base, _files) = start(config()).await;
    let c = Client::new();
    // A small clip to upload: the app's own generator, 320x180 for 1 s (JSON form).
    let gen = create(
        c.post(format!("{base}/jobs"))
            .json(&json!({"generate": {"duration": 1, "size": "320x180", "rate": 10}})),
    )
    .await;
    let events = Sse::open(c.get(format!("{base}/jobs/{gen}/stream")))
        .await
        .rest()
        .await;
    assert_eq!(check_stream(&events, &gen).event, "complete");
    let clip_path = download(&c, &format!("{base}/files/{gen}/source.mp4")).await;
    let clip = std::fs::read(&clip_path).unwrap();
    let _ = std::fs::remove_file(clip_path);

    let boundary = "sse-test-boundary-7f3a";
    let uploads = [
        c.post(format!("{base}/jobs"))
            .header("Content-Type", "video/mp4")
            .body(clip.clone()),
        c.post(format!("{base}/jobs"))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(multipart(boundary, &clip)),
    ];
    for req in uploads {
        let (status, v) = post(req).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        // Probed at upload time.
        assert_eq!(v["source"]["width"], 320);
        assert_eq!(v["source"]["height"], 180);
        let id = v["jobId"].as_str().unwrap().to_owned();
        let events = Sse::open(c.get(format!("{base}/jobs/{id}/stream")))
            .await
            .rest()
            .await;
        let end = check_stream(&events, &id);
        assert_eq!(end.event, "complete", "{}", end.data);
        // Only the renditions that fit the 180-line source.
        let outputs = data(&end)["details"]["outputs"].clone();
        assert_eq!(outputs.as_array().unwrap().len(), 1, "{outputs}");
        assert_eq!(outputs[0]["resolution"], "144p");
        let file = download(
            &c,
            &format!("{base}{}", outputs[0]["url"].as_str().unwrap()),
        )
        .await;
        assert_eq!(ffprobe_size(&file), (256, 144));
        let _ = std::fs::remove_file(file);
        let job: Value = c
            .get(format!("{base}/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let states: Vec<&str> = job["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["skipped", "skipped", "done"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ffmpeg_jobs_fail_with_an_error_event_naming_it() {
    let (base, _files) = start(Config {
        ffmpeg: "/nonexistent/bin/ffmpeg".into(),
        ffprobe: "/nonexistent/bin/ffprobe".into(),
        ..config()
    })
    .await;
    let c = Client::new();
    let id = create(c.post(format!("{base}/jobs?generate=1"))).await;
    let events = Sse::open(c.get(format!("{base}/jobs/{id}/stream")))
        .await
        .rest()
        .await;
    let end = check_stream(&events, &id);
    assert_eq!(end.event, "error");
    let v = data(&end);
    assert_eq!(v["status"], "failed");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("ffmpeg is not installed"), "{m}");
    assert!(m.contains("/nonexistent/bin/ffmpeg"), "{m}");
    assert_eq!(v["details"]["error"], m);

    // An upload cannot be probed either: accepted, then failed by the job, naming ffmpeg.
    let (status, v) = post(
        c.post(format!("{base}/jobs"))
            .header("Content-Type", "application/octet-stream")
            .body(vec![0u8; 1000]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let id = v["jobId"].as_str().unwrap().to_owned();
    let events = Sse::open(c.get(format!("{base}/jobs/{id}/stream")))
        .await
        .rest()
        .await;
    let end = check_stream(&events, &id);
    assert_eq!(end.event, "error");
    let m = data(&end)["message"].as_str().unwrap().to_owned();
    assert!(
        m.contains("ffprobe (part of ffmpeg) is not installed"),
        "{m}"
    );
    let job: Value = c
        .get(format!("{base}/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], m.as_str());
}

/// A stand-in for ffmpeg that reports progress slowly, complains on stderr and fails: a job
/// that runs long enough to drop and resume its stream, and to see heartbeats.
fn slow_failing_ffmpeg() -> PathBuf {
    let path = temp("fake-ffmpeg.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         PATH=/usr/bin:/bin:$PATH\n\
         for t in 500000 1000000 1500000 2000000 2500000; do\n\
           printf 'frame=1\\nout_time_us=%s\\nspeed=1x\\nprogress=continue\\n' \"$t\"\n\
           sleep 0.25\n\
         done\n\
         echo 'synthetic encoder failure' >&2\n\
         exit 3\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_drop_loses_and_repeats_nothing_and_idle_streams_get_heartbeats() {
    let fake = slow_failing_ffmpeg();
    let (base, _files) = start(Config {
        ffmpeg: fake.clone(),
        heartbeat: Duration::from_millis(150),
        ..config()
    })
    .await;
    let c = Client::new();
    let id = create(c.post(format!("{base}/jobs?generate=1"))).await;
    let url = format!("{base}/jobs/{id}/stream");
    let mut full = Sse::open(c.get(&url)).await;
    let mut part = Sse::open(c.get(&url)).await;
    let mut first = vec![part.next().await.unwrap()];
    while first.iter().filter(|e| e.event == "progress").count() < 2 {
        first.push(part.next().await.unwrap());
    }
    drop(part);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let last = first.last().unwrap().last_event_id.clone();
    let mut resumed = Sse::open(c.get(&url).header("Last-Event-ID", &last)).await;
    let rest = resumed.rest().await;
    assert!(
        rest.iter().all(|e| e.event != "status"),
        "a resume gets only what it missed"
    );

    let all = full.rest().await;
    let end = check_stream(&all, &id);
    assert_eq!(end.event, "error");
    let m = data(&end)["message"].as_str().unwrap().to_owned();
    assert!(
        m.contains("ffmpeg failed") && m.contains("synthetic encoder failure"),
        "{m}"
    );
    let generating: Vec<u64> = all
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| data(e)["details"]["resolutionProgress"].as_u64().unwrap())
        .collect();
    assert!(
        generating.len() >= 5,
        "progress parsed from -progress: {generating:?}"
    );

    let pairs = |v: &[DecodedEvent]| -> Vec<(String, String, String)> {
        v.iter()
            .filter(|e| e.event != "status")
            .map(|e| (e.event.clone(), e.last_event_id.clone(), e.data.clone()))
            .collect()
    };
    let mut stitched = pairs(&first);
    stitched.extend(pairs(&rest));
    // Both clients started "now" when they connected (their `status` event covering what came
    // before), so compare from the first event the dropped client saw.
    let from = stitched[0].1.clone();
    let expected: Vec<_> = pairs(&all)
        .into_iter()
        .skip_while(|p| p.1 != from)
        .collect();
    assert!(expected.len() > pairs(&first).len());
    assert_eq!(stitched, expected, "no loss, no duplicate");

    // 250 ms between progress lines, 150 ms heartbeat interval: comments in between.
    let text = String::from_utf8(full.raw.clone()).unwrap();
    assert!(text.matches("\n:\n\n").count() >= 2, "heartbeats in {text}");
    let _ = std::fs::remove_file(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx() {
    let ffmpeg = have_ffmpeg();
    let (base, _files) = start(Config {
        max_upload_bytes: 4096,
        ..config()
    })
    .await;
    let c = Client::new();
    let jobs = format!("{base}/jobs");
    let boundary = "b0undary";
    let cases: Vec<(RequestBuilder, StatusCode, &str)> = vec![
        (c.post(&jobs), StatusCode::BAD_REQUEST, "send a video"),
        (
            c.post(&jobs).header("Content-Type", "text/plain").body("hi"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type \"text/plain\"",
        ),
        (
            c.post(&jobs).header("Content-Type", "application/json").body("{\"generate\":"),
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            c.post(&jobs).json(&json!({"generate": false})),
            StatusCode::BAD_REQUEST,
            "a JSON body must ask for a generated clip",
        ),
        (
            c.post(&jobs).json(&json!({"generate": true, "speed": 2})),
            StatusCode::BAD_REQUEST,
            "unknown field `speed`",
        ),
        (
            c.post(&jobs).json(&json!({"generate": {"size": "huge"}})),
            StatusCode::BAD_REQUEST,
            "`generate.size` must be a string like",
        ),
        (
            c.post(format!("{jobs}?generate=1&duration=99")),
            StatusCode::BAD_REQUEST,
            "`duration` must be 1 to 30 seconds",
        ),
        (
            c.post(format!("{jobs}?generate=1&size=641x360")),
            StatusCode::BAD_REQUEST,
            "even width and height",
        ),
        (
            c.post(&jobs).header("Content-Type", "video/mp4"),
            StatusCode::BAD_REQUEST,
            "the upload is empty",
        ),
        (
            c.post(&jobs)
                .header("Content-Type", "video/mp4")
                .body(vec![1u8; 10_000]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 4096 bytes",
        ),
        (
            c.post(&jobs)
                .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
                .body(format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}--\r\n"
                )),
            StatusCode::BAD_REQUEST,
            "no `file` field",
        ),
        (
            c.post(&jobs)
                .header("Content-Type", "multipart/form-data")
                .body("x"),
            StatusCode::BAD_REQUEST,
            "bad multipart Content-Type",
        ),
        (c.get(format!("{jobs}/0123456789abcdef")), StatusCode::NOT_FOUND, "job not found"),
        (
            c.get(format!("{jobs}/0123456789abcdef/stream")),
            StatusCode::NOT_FOUND,
            "job not found",
        ),
        (c.get(format!("{jobs}/nope/stream")), StatusCode::NOT_FOUND, "job not found"),
        (c.get(format!("{base}/files/0123456789abcdef/360p.mp4")), StatusCode::NOT_FOUND, "file not found"),
        (c.delete(&jobs), StatusCode::METHOD_NOT_ALLOWED, "DELETE is not allowed"),
        (c.get(format!("{base}/elsewhere")), StatusCode::NOT_FOUND, "no route"),
    ];
    for (req, want, text) in cases {
        let (got, v) = post(req).await;
        assert_eq!(got, want, "{v}");
        let m = v["error"].as_str().unwrap();
        assert!(m.contains(text), "{m:?} should mention {text:?}");
    }
    // A file that is not a video: refused at once when ffprobe can tell.
    let (status, v) = post(
        c.post(&jobs)
            .header("Content-Type", "video/mp4")
            .body(b"this is not a video at all".to_vec()),
    )
    .await;
    if ffmpeg {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let m = v["error"].as_str().unwrap();
        assert!(m.contains("not a usable video"), "{v}");
        // No server paths in the message: neither the data directory nor any absolute path.
        assert!(!m.contains(&*std::env::temp_dir().to_string_lossy()), "{m}");
        assert!(!m.contains("sse-video-test"), "{m}");
    } else {
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    }
    // The page is served, with relative URLs only.
    let page = c
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("new EventSource(`jobs/${jobId}/stream`)"));
    assert!(!page.contains("\"/jobs") && !page.contains("`/jobs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_evicted_from_the_hub_still_answers_with_its_final_state() {
    let (base, _files) = start(Config {
        ffmpeg: "/nonexistent/bin/ffmpeg".into(),
        finished_ttl: Duration::from_millis(100),
        ..config()
    })
    .await;
    let c = Client::new();
    let id = create(c.post(format!("{base}/jobs?generate=1"))).await;
    let url = format!("{base}/jobs/{id}/stream");
    let live = Sse::open(c.get(&url)).await.rest().await;
    let end = check_stream(&live, &id);
    assert_eq!(end.event, "error");
    // The hub sweeps at most once a second, on a subscribe.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = Sse::open(c.get(&url)).await.rest().await;
    let names: Vec<&str> = late.iter().map(|e| e.event.as_str()).collect();
    // The job's state, then the hub's final state of the evicted topic (its latest progress,
    // then the terminal event, with the id it had).
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    assert_eq!(names.last(), Some(&"error"), "{names:?}");
    assert!(
        names[1..names.len() - 1].iter().all(|n| *n == "progress"),
        "{names:?}"
    );
    let last = late.last().unwrap();
    assert_eq!(
        last.last_event_id, end.last_event_id,
        "the terminal event's id"
    );
    assert_eq!(data(last)["message"], data(&end)["message"]);
    let res = c
        .get(&url)
        .header("Last-Event-ID", &end.last_event_id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Unknown jobs are still the app's JSON 404.
    let res = c
        .get(format!("{base}/jobs/0123456789abcdef/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
