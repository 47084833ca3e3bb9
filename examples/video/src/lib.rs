//! Video transcoding with live progress over SSE, on hyper: the service of the video-transcoding report, with what
//! that report learned in production built in (`X-Accel-Buffering: no`, the first byte sent at
//! once, 15 s heartbeat comments, a per-client cursor instead of a small buffer that blocks the
//! emitter, and a final event that always reaches the client before the stream ends).
//!
//! ```text
//! pub async fn serve(listener: std::net::TcpListener, config: Config) -> std::io::Result<()>
//! pub async fn serve_with_shutdown(listener, config, signal: impl Future<Output = ()>) -> std::io::Result<()>
//! ```
//!
//! Call either inside a Tokio runtime. `serve` runs until the process exits;
//! `serve_with_shutdown` ends every event stream and closes the connections when `signal`
//! resolves.
//!
//! With `BACKPLANE=redis://HOST:PORT` in the environment ([`sse_redis::hub_builder_from_env`]),
//! the app connects to that Redis first and is a node of a cluster: progress is published
//! through the backplane and every subscribe first brings the node's copy of the topic up to
//! date, so a job created on one node can be streamed on any other (with `Last-Event-ID`, or from now), with the same ids. The
//! job store (`GET /jobs/{id}`, the first `status` event, the files) stays on the node that ran
//! the job.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use sse_example_video::{serve, Config};
//! let listener = std::net::TcpListener::bind("127.0.0.1:8089")?;
//! serve(listener, Config::default()).await
//! # }
//! ```
//!
//! # Endpoints
//!
//! | method and path | what |
//! |---|---|
//! | `GET /` | the HTML page |
//! | `POST /jobs` with a video body (`video/*`, `application/octet-stream`) or multipart `file` | upload → 202 `{jobId, streamUrl, …}` |
//! | `POST /jobs?generate=1[&duration=3&size=640x360&rate=25]`, or JSON `{"generate": true \| {…}}` | synthesize a test clip with ffmpeg's `testsrc` → 202 |
//! | `GET /jobs/{id}` | the job as JSON |
//! | `GET /jobs/{id}/stream` | the job's event stream |
//! | `GET /files/{id}/{360p.mp4 \| …}` | an output (or `source.mp4`, a generated clip) |
//!
//! # Limits and files
//!
//! At most [`Config::max_jobs_per_client`] jobs queued or running per client (429 beyond) and
//! [`Config::max_jobs`] in all (503 beyond), both with `Retry-After`; the data directory holds at
//! most [`Config::max_disk_bytes`] (503 beyond). A finished job's files and record are removed
//! after [`Config::retention`], and the whole data directory when the server shuts down.
//!
//! # Tokens
//!
//! With [`Config::api_tokens`] set, every request but the page needs
//! `Authorization: Bearer <token>`, a client sees only its own jobs, and the stream accepts the
//! short-lived stream token (`sse-token`) that `POST /jobs` returns in `streamToken` and
//! `streamUrl`, so an `EventSource` never carries the API token.
//!
//! Bad input answers a 4xx with `{"error": "…"}` that says what is wrong: 400 (bad JSON, bad
//! parameters, empty upload, multipart without a file), 413 (over
//! [`Config::max_upload_bytes`]), 415 (another content type), 422 (a file ffprobe cannot read
//! as a video), 404 (unknown job).
//!
//! # Events
//!
//! As in the video-transcoding report, every payload has `jobId`, `status`, `stage`, `progress` (overall, 0–100),
//! `message` and `details`:
//!
//! * `status`: the job's state when the client connected (no `id:`; not on a resume).
//! * `progress`: `stage` is `generating`, `probing` or `transcoding`; for transcoding,
//!   `details.resolution` (`360p`, …) and `details.resolutionProgress`, plus ffmpeg's
//!   `outTimeMs`, `durationMs`, `frame`, `fps`, `speed`. Conflated per stage and resolution:
//!   a slow client skips intermediate steps, never a resolution's last one.
//! * `complete`: `details.outputs` with each file's resolution, size and URL; the stream ends.
//! * `error`: `message` says why (ffmpeg missing, a bad input, a failed encode); the stream ends.
//!
//! Progress comes from ffmpeg's `-progress pipe:1` (`out_time_us` against the duration that
//! ffprobe reports). Without ffmpeg the job fails with an `error` event that says so.

pub mod ffmpeg;
mod http;
pub mod jobs;

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sse_core::Hub;
use sse_examples_support::files;
use sse_examples_support::{Admission, DiskBudget, StreamAuth};
use tokio::sync::Semaphore;

/// Settings of the video app.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where uploads and outputs go, one directory per job.
    pub data_dir: PathBuf,
    /// The ffmpeg program.
    pub ffmpeg: PathBuf,
    /// The ffprobe program.
    pub ffprobe: PathBuf,
    /// Jobs transcoding at once.
    pub workers: usize,
    /// Largest upload accepted.
    pub max_upload_bytes: u64,
    /// Output resolutions: name and height. Those taller than the source are skipped.
    pub renditions: Vec<(String, u32)>,
    /// Heartbeat comments after this much silence on a stream.
    pub heartbeat: Duration,
    /// Prefix of the URLs the server hands out (`streamUrl`, output URLs); the page itself uses
    /// relative URLs.
    pub base_path: String,
    /// How long the hub keeps a finished job's stream (replay and final state).
    pub finished_ttl: Duration,
    /// How long a finished job's files (upload, outputs) and its record are kept; then they
    /// are removed. Everything left is removed at shutdown.
    pub retention: Duration,
    /// Jobs queued or running per client (the token's user, or every anonymous request
    /// together); more answer 429 with `Retry-After`.
    pub max_jobs_per_client: usize,
    /// Jobs queued or running in all; more answer 503 with `Retry-After`.
    pub max_jobs: usize,
    /// Bytes the data directory may hold; beyond that uploads and new jobs answer 503.
    pub max_disk_bytes: u64,
    /// API tokens and their users. Empty (the default): the app is open. Otherwise every
    /// request but the page needs `Authorization: Bearer <token>`; a stream also accepts the
    /// short-lived stream token handed out with the job (`streamToken`, and in `streamUrl`).
    pub api_tokens: Vec<(String, String)>,
    /// How long a stream token is valid.
    pub stream_token_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: std::env::temp_dir().join(format!("sse-video-{}", std::process::id())),
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            workers: 1,
            max_upload_bytes: 512 << 20,
            renditions: vec![
                ("360p".into(), 360),
                ("240p".into(), 240),
                ("144p".into(), 144),
            ],
            heartbeat: Duration::from_secs(15),
            base_path: String::new(),
            finished_ttl: Duration::from_secs(600),
            retention: Duration::from_secs(600),
            max_jobs_per_client: 4,
            max_jobs: 16,
            max_disk_bytes: 4 << 30,
            api_tokens: Vec::new(),
            stream_token_ttl: Duration::from_secs(600),
        }
    }
}

/// State shared by the handlers and the workers.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    pub(crate) jobs: jobs::Jobs,
    pub(crate) config: Config,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) admission: Arc<Admission>,
    pub(crate) disk: DiskBudget,
    pub(crate) stream_auth: StreamAuth,
}

/// Serves the app on `listener` until the process exits.
pub async fn serve(listener: std::net::TcpListener, config: Config) -> std::io::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the app on `listener` until `signal` resolves; then every event stream ends (after a
/// final frame) and connections still open after 5 s are closed.
pub async fn serve_with_shutdown(
    listener: std::net::TcpListener,
    config: Config,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::fs::create_dir_all(&config.data_dir).await?;
    // `BACKPLANE=redis://HOST:PORT`: a node of a cluster sharing that Redis.
    let builder = sse_redis::hub_builder_from_env_with(
        sse_redis::RedisConfig::default().finished_ttl(config.finished_ttl),
    )
    .await
    .map_err(std::io::Error::other)?;
    let hub = builder
        .heartbeat(config.heartbeat)
        .finished_ttl(config.finished_ttl)
        .build();
    let stream_auth =
        StreamAuth::from_env(config.stream_token_ttl).map_err(std::io::Error::other)?;
    let data_dir = config.data_dir.clone();
    let shared = Arc::new(Shared {
        hub: hub.clone(),
        jobs: jobs::Jobs::default(),
        permits: Arc::new(Semaphore::new(config.workers.max(1))),
        admission: Admission::new(config.max_jobs_per_client, config.max_jobs),
        disk: DiskBudget::new(&config.data_dir, config.max_disk_bytes),
        stream_auth,
        config,
        runtime: tokio::runtime::Handle::current(),
    });
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(http::handle(shared, req).await) }
    });
    sse_hyper::serve(listener, service, hub, signal, Duration::from_secs(5)).await;
    // Every job's files go with the server.
    files::remove_all(&data_dir).await;
    Ok(())
}
