#![allow(clippy::unwrap_used)]
//! The demo: every app on one port, the index page, path routing, event streams through the
//! proxy without buffering, and a graceful shutdown with streams open.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{header, redirect, StatusCode};
use serde_json::Value;
use sse_core::Decoder;
use sse_example_demo::{self as demo, DemoConfig};
use sse_example_resume_screener::samples::{sample_file, SAMPLES, SAMPLE_DESCRIPTION};
use sse_examples_support::pdf::SamplePdf;

const TEST_TIMEOUT: Duration = Duration::from_secs(40);

/// Reads an event stream to its end: (arrival time, event name, JSON data) per event.
async fn timed_events(res: reqwest::Response) -> Vec<(Instant, String, Value)> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        dec.feed(&chunk.unwrap());
        let now = Instant::now();
        while let Some(e) = dec.next_event() {
            let data = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            out.push((now, e.event, data));
        }
    }
    out
}

/// Reads an event stream until an event's data satisfies `done` (the resume screener's progress
/// stream stays open after a batch): every event up to that one, as (event name, JSON data).
async fn events_until(
    res: reqwest::Response,
    done: impl Fn(&Value) -> bool,
) -> Vec<(String, Value)> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        dec.feed(&chunk.unwrap());
        while let Some(e) = dec.next_event() {
            let data = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            let stop = done(&data);
            out.push((e.event, data));
            if stop {
                return out;
            }
        }
    }
    panic!("the stream ended first: {out:?}");
}

/// A small grayscale gradient, as PNG.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y) * 255 / (w + h)) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn pdf_form() -> Form {
    let pdf = SamplePdf::new()
        .build(&["Demo page one", "Demo page two"])
        .unwrap();
    Form::new()
        .part("pdf_file", Part::bytes(pdf).file_name("demo.pdf"))
        .text("title", "Demo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_app_on_one_port() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(demo::run(listener, DemoConfig::from_env(), async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let get = |path: &str| client.get(format!("{base}{path}")).send();

        // The index links every app.
        let index = get("/").await.unwrap().text().await.unwrap();
        for app in ["pdf/", "characters/", "video/", "resumes/", "3d/"] {
            assert!(
                index.contains(&format!("href=\"{app}\"")),
                "index links {app}"
            );
        }
        // Each app's page, under its prefix; the bare prefix redirects to it.
        for app in ["pdf", "characters", "video", "resumes", "3d"] {
            let res = get(&format!("/{app}")).await.unwrap();
            assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT, "/{app}");
            assert_eq!(res.headers()[header::LOCATION], format!("/{app}/").as_str());
            let res = get(&format!("/{app}/")).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "/{app}/");
            assert!(res.text().await.unwrap().contains("<html"), "/{app}/");
        }
        assert_eq!(
            get("/nowhere").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );

        // Prometheus: every hub of the process reports to /metrics.
        let res = get("/metrics").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));

        // PDF: the page's relative path and the field report's absolute one.
        for path in ["/pdf/api/books/upload/", "/api/books/upload/"] {
            let res = client
                .post(format!("{base}{path}"))
                .bearer_auth("demo-token")
                .header(header::ACCEPT, "text/event-stream")
                .multipart(pdf_form())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let events = timed_events(res).await;
            let last = events.last().unwrap();
            assert_eq!(last.1, "completed", "{path}");
            assert_eq!(last.2["total_pages"], 2);
        }

        // The two PDF jobs passed through the hub: its counters and gauges are in the scrape.
        let scrape = get("/metrics").await.unwrap().text().await.unwrap();
        for name in ["sse_published_total", "sse_delivered_total", "sse_topics"] {
            assert!(scrape.contains(name), "{name} in /metrics:\n{scrape}");
        }
        let published: f64 = scrape
            .lines()
            .find_map(|l| l.strip_prefix("sse_published_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("sse_published_total has a value");
        assert!(published >= 2.0, "{published}");

        // Characters, through the proxy: a job's stream arrives event by event, not at the end.
        let res = client
            .post(format!("{base}/api/v1/characters/jobs"))
            .bearer_auth("chars-alice-token")
            .json(&serde_json::json!({ "name": "Aria" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let accepted: Value = res.json().await.unwrap();
        let stream_url = accepted["data"]["streamUrl"].as_str().unwrap().to_owned();
        assert!(stream_url.starts_with("/characters/"), "{stream_url}");
        let res = client
            .get(format!("{base}{stream_url}"))
            .bearer_auth("chars-alice-token")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
        let events = timed_events(res).await;
        let updates: Vec<&(Instant, String, Value)> = events
            .iter()
            .filter(|e| e.2["type"] == "job_update")
            .collect();
        assert!(updates.len() >= 2, "{events:?}");
        let (first, last) = (updates[0], updates[updates.len() - 1]);
        assert_eq!(last.2["status"], "completed");
        assert_ne!(first.2["status"], "completed");
        assert!(
            last.0.duration_since(first.0) >= Duration::from_millis(300),
            "the proxy delivered the stream in one piece: {:?}",
            last.0.duration_since(first.0)
        );

        // Video: the report's absolute path reaches the app (a job that does not exist).
        let res = get("/jobs/0000000000000000").await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap().contains("json")));

        // Resumes, in-process: a batch posted under the page's prefix; its progress stream at the
        // report's absolute path (the `stream_url` it hands out) ends with the ranked results.
        let mut form = Form::new().text("job_description", SAMPLE_DESCRIPTION);
        for sample in SAMPLES {
            let mime = if sample.name.ends_with(".pdf") {
                "application/pdf"
            } else {
                "text/plain"
            };
            let part = Part::bytes(sample_file(sample.name).unwrap())
                .file_name(sample.name)
                .mime_str(mime)
                .unwrap();
            form = form.part("files", part);
        }
        let res = client
            .post(format!("{base}/resumes/api/v1/resumes/screen"))
            .bearer_auth("alice-token")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let accepted: Value = res.json().await.unwrap();
        let stream_url = accepted["stream_url"].as_str().unwrap().to_owned();
        assert!(
            stream_url.starts_with("/api/v1/sse/progress/"),
            "{stream_url}"
        );
        let res = client
            .get(format!("{base}{stream_url}"))
            .bearer_auth("alice-token")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
        let events = tokio::time::timeout(
            Duration::from_secs(10),
            events_until(res, |d| d["status"] == "completed"),
        )
        .await
        .expect("the batch completes");
        let done = &events.last().unwrap().1;
        assert_eq!(done["total"], SAMPLES.len());
        assert_eq!(done["successful_files"], SAMPLES.len());
        assert_eq!(done["results"][0]["filename"], "ada-rust-engineer.pdf");

        // Image to 3D, through the proxy under /3d/: one PNG becomes a model; the stream URL it
        // hands out carries the prefix.
        let png_part = Part::bytes(png(24, 16))
            .file_name("gradient.png")
            .mime_str("image/png")
            .unwrap();
        let res = client
            .post(format!("{base}/3d/api/v1/upload/batch"))
            .bearer_auth("demo-key")
            .multipart(Form::new().part("files", png_part))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let accepted: Value = res.json().await.unwrap();
        let task_id = accepted["task_id"].as_str().unwrap().to_owned();
        let res = client
            .post(format!("{base}/3d/api/v1/stream-tokens"))
            .bearer_auth("demo-key")
            .json(&serde_json::json!({ "task_id": task_id }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let issued: Value = res.json().await.unwrap();
        let stream_url = issued["stream_url"].as_str().unwrap().to_owned();
        assert!(
            stream_url.starts_with("/3d/api/v1/status/tasks/"),
            "{stream_url}"
        );
        let res = get(&stream_url).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
        let events = tokio::time::timeout(Duration::from_secs(15), timed_events(res))
            .await
            .expect("the task completes");
        let last = events.last().unwrap();
        assert_eq!(last.1, "task_completed", "{events:?}");
        assert_eq!(last.2["result"]["completed_files"], 1);
        // The report's absolute paths reach the image-to-3D app too: its status, and its task
        // stream at the path the PDF app's report also uses (the PDF app does not know the id).
        let res = client
            .get(format!("{base}/api/v1/status/tasks/{task_id}"))
            .bearer_auth("demo-key")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let token = issued["token"].as_str().unwrap();
        let res = get(&format!(
            "/api/v1/status/tasks/{task_id}/stream?token={token}"
        ))
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "the image-to-3D app answers");
        let events = tokio::time::timeout(Duration::from_secs(15), timed_events(res))
            .await
            .expect("the finished task's stream ends");
        assert_eq!(events.last().unwrap().1, "task_completed", "{events:?}");

        // Shutdown with a proxied stream open: the stream gets its final frame and ends, and
        // the demo returns.
        let open = client
            .get(format!("{base}/api/v1/sse/jobs/my"))
            .bearer_auth("chars-alice-token")
            .send()
            .await
            .unwrap();
        assert_eq!(open.status(), StatusCode::OK);
        let reader = tokio::spawn(async move {
            let mut body = open.bytes_stream();
            let mut all = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                all.extend_from_slice(&chunk);
            }
            String::from_utf8_lossy(&all).into_owned()
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(()).unwrap();
        let text = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("the open stream ends at shutdown")
            .unwrap();
        assert!(text.contains("server shutting down"), "{text}");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the demo stops")
            .unwrap()
            .unwrap();
    })
    .await
    .expect("test took too long");
}

/// The demo's port, its base URL, a client, and the way to stop it.
async fn start() -> (
    String,
    reqwest::Client,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo::run(listener, DemoConfig::from_env(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (base, client, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_two_reports_share_go_to_the_app_that_owns_the_id_or_the_token() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (base, client, stop, server) = start().await;

        // A PDF job: its task stream at the image-to-3D report's path is the PDF app's.
        let res = client
            .post(format!("{base}/api/books/upload/"))
            .bearer_auth("demo-token")
            .header(header::ACCEPT, "text/event-stream")
            .multipart(pdf_form())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let events = timed_events(res).await;
        let task_id = events[0].2["task_id"].as_str().unwrap().to_owned();
        let res = client
            .get(format!(
                "{base}/api/v1/status/tasks/{task_id}/stream?token=demo-token"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "the PDF app answers its own task {task_id}: {:?}",
            res.text().await
        );
        let events = timed_events(res).await;
        let names: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(names.last(), Some(&"task_completed"), "{names:?}");
        assert!(
            names.contains(&"file_update"),
            "the PDF task's events: {names:?}"
        );

        // An id neither app knows goes to the image-to-3D app, whose JSON 404 names a task.
        let res = client
            .get(format!(
                "{base}/api/v1/status/tasks/0123456789abcdef0123456789abcdef/stream"
            ))
            .bearer_auth("demo-key")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "task not found");

        // Connection counts: the resume screener's for its tokens (header or query), the
        // characters app's for its own, and for none.
        let status = |auth: Option<&'static str>, query: &'static str| {
            let mut req = client.get(format!("{base}/api/v1/sse/connections/status{query}"));
            if let Some(token) = auth {
                req = req.bearer_auth(token);
            }
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let resumes = status(Some("alice-token"), "").await;
        assert!(
            resumes.get("active_users").is_some(),
            "resume screener's: {resumes}"
        );
        assert!(resumes.get("success").is_none(), "{resumes}");
        let resumes = status(None, "?token=bob-token").await;
        assert!(
            resumes.get("active_users").is_some(),
            "resume screener's: {resumes}"
        );
        let characters = status(Some("chars-alice-token"), "").await;
        assert_eq!(
            characters["success"], true,
            "characters app's: {characters}"
        );
        assert_eq!(
            characters["data"]["user"]["userId"], "alice",
            "{characters}"
        );
        let anonymous = status(None, "").await;
        assert_eq!(anonymous["success"], true, "characters app's: {anonymous}");

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    })
    .await
    .expect("the test finishes in time");
}
