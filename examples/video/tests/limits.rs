//! The video app's bounds (jobs per client and overall, with `Retry-After`), its files' removal
//! (after the retention, and at shutdown) and its optional token check: real servers on
//! 127.0.0.1:0, reqwest clients. A fake ffmpeg (a shell script that sleeps, then fails) keeps
//! jobs in flight without depending on the real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::Value;
use sse_example_video::{serve_with_shutdown, Config};

fn temp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "sse-video-limits-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// An "ffmpeg" that runs for `seconds`, then fails.
fn sleeping_ffmpeg(seconds: f32) -> PathBuf {
    let path = temp("fake-ffmpeg.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nPATH=/usr/bin:/bin:$PATH\nsleep {seconds}\necho 'synthetic failure' >&2\nexit 3\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

struct Server {
    base: String,
    data_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(config: Config) -> Server {
        let data_dir = config.data_dir.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            serve_with_shutdown(listener, config, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server {
            base: format!("http://{addr}"),
            data_dir,
            stop: Some(tx),
            done,
        }
    }

    /// Shuts the server down and waits (at most 20 s) for `serve_with_shutdown` to return.
    async fn stop(mut self) -> PathBuf {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.done)
            .await
            .expect("the server stops in time")
            .expect("the server task");
        self.data_dir.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn config(ffmpeg: PathBuf) -> Config {
    Config {
        data_dir: temp("data"),
        ffmpeg,
        // No ffprobe: uploads are queued without a probe, whatever their bytes.
        ffprobe: "/nonexistent/bin/ffprobe".into(),
        workers: 1,
        ..Config::default()
    }
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_job_requests_on_one_connection_is_bounded_with_429_and_retry_after() {
    let fake = sleeping_ffmpeg(10.0);
    let server = Server::start(Config {
        max_jobs_per_client: 4,
        max_jobs: 16,
        ..config(fake.clone())
    })
    .await;
    // One client, one connection: the probe of the field report (2,000 large clips).
    let c = Client::builder()
        .pool_max_idle_per_host(1)
        .http1_only()
        .build()
        .unwrap();
    let url = format!(
        "{}/jobs?generate=1&duration=30&size=1920x1080&rate=60",
        server.base
    );
    let started = Instant::now();
    let (mut accepted, mut refused) = (0, 0);
    let mut retry_after = None;
    for _ in 0..2000 {
        let res = c.post(&url).send().await.unwrap();
        match res.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                retry_after = res.headers().get("retry-after").cloned();
            }
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    eprintln!(
        "2000 POSTs on one connection: {accepted} x 202, {refused} x 429 in {:?}",
        started.elapsed()
    );
    assert_eq!(accepted, 4);
    assert_eq!(refused, 1996);
    let retry: u64 = retry_after
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Another client's slots are not taken by the first one's flood; the overall bound still
    // holds (the anonymous client counts as one, so the overall bound is checked with tokens).
    server.stop().await;
    let _ = std::fs::remove_file(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overall_bound_answers_503_with_retry_after_when_every_client_is_within_its_share() {
    let fake = sleeping_ffmpeg(10.0);
    let tokens: Vec<(String, String)> =
        (0..4).map(|i| (format!("t{i}"), format!("u{i}"))).collect();
    let server = Server::start(Config {
        max_jobs_per_client: 2,
        max_jobs: 5,
        api_tokens: tokens.clone(),
        ..config(fake.clone())
    })
    .await;
    let c = Client::new();
    let mut statuses = Vec::new();
    for (t, _) in &tokens {
        for _ in 0..2 {
            let res = c
                .post(format!("{}/jobs?generate=1", server.base))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                assert!(res.headers().contains_key("retry-after"));
            }
            statuses.push(res.status().as_u16());
        }
    }
    assert_eq!(statuses, [202, 202, 202, 202, 202, 503, 503, 503]);
    server.stop().await;
    let _ = std::fs::remove_file(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_jobs_files_and_record_are_removed_when_its_retention_ends() {
    let server = Server::start(Config {
        retention: Duration::from_millis(300),
        ..config("/nonexistent/bin/ffmpeg".into())
    })
    .await;
    let c = Client::new();
    let res = c
        .post(format!("{}/jobs", server.base))
        .header("Content-Type", "video/mp4")
        .body(vec![7u8; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job: Value = res.json().await.unwrap();
    let id = job["jobId"].as_str().unwrap().to_owned();
    assert!(server.data_dir.join(&id).join("upload").exists());
    // The job fails at once (no ffmpeg); 300 ms later its directory and record are gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.data_dir.join(&id).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !server.data_dir.join(&id).exists(),
        "the job directory is removed"
    );
    assert_eq!(entries(&server.data_dir), 0);
    let res = c
        .get(format!("{}/jobs/{id}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_jobs_files_are_removed_at_shutdown() {
    let fake = sleeping_ffmpeg(30.0);
    let server = Server::start(config(fake.clone())).await;
    let c = Client::new();
    for _ in 0..2 {
        let res = c
            .post(format!("{}/jobs", server.base))
            .header("Content-Type", "application/octet-stream")
            .body(vec![1u8; 50_000])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(entries(&server.data_dir), 2);
    let dir = server.stop().await;
    assert!(!dir.exists(), "the data directory is removed at shutdown");
    let _ = std::fs::remove_file(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_on_jobs_are_private_and_the_stream_takes_a_job_scoped_stream_token() {
    let fake = sleeping_ffmpeg(5.0);
    let server = Server::start(Config {
        api_tokens: vec![
            ("alice-key".into(), "alice".into()),
            ("bob-key".into(), "bob".into()),
        ],
        ..config(fake.clone())
    })
    .await;
    let c = Client::new();
    let base = &server.base;
    let res = c
        .post(format!("{base}/jobs?generate=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = c
        .post(format!("{base}/jobs?generate=1"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let res = c
            .post(format!("{base}/jobs?generate=1"))
            .bearer_auth("alice-key")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        jobs.push(res.json::<Value>().await.unwrap());
    }
    let (a, b) = (&jobs[0], &jobs[1]);
    let id = a["jobId"].as_str().unwrap();
    let token = a["streamToken"].as_str().unwrap();
    assert!(a["streamUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!("?token={token}")));
    // The stream URL as handed out opens the stream.
    let res = c
        .get(format!("{base}{}", a["streamUrl"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(res);
    // Job a's token does not open job b: 403.
    let res = c
        .get(format!(
            "{base}/jobs/{}/stream?token={token}",
            b["jobId"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // No token, or an altered one: 401.
    for q in ["", "?token=v1.e30.AAAA"] {
        let res = c
            .get(format!("{base}/jobs/{id}/stream{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{q}");
    }
    // The owner's API token still works in the header; another user sees no such job.
    let res = c
        .get(format!("{base}/jobs/{id}"))
        .bearer_auth("alice-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for url in [
        format!("{base}/jobs/{id}"),
        format!("{base}/jobs/{id}/stream"),
    ] {
        let res = c.get(&url).bearer_auth("bob-key").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{url}");
    }
    server.stop().await;
    let _ = std::fs::remove_file(fake);
}
