//! Image-to-3D tasks with per-file progress over SSE, on hyper: the app behind the image-to-3D report's
//! SvelteKit frontend, with real work and without the API key in the stream URL.
//!
//! # Starting it
//!
//! ```text
//! pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()>
//! pub async fn serve_with(listener, config: Config, signal: impl Future<Output = ()>) -> std::io::Result<()>
//! ```
//!
//! Call either inside a Tokio runtime (multi-threaded or not). [`serve`] uses
//! [`Config::default`] (the API key `demo-key`) and runs until the process exits; [`serve_with`]
//! ends every event stream and closes the connections when `signal` resolves. The binary
//! `image-to-3d` runs it on `127.0.0.1:8094` (`ADDR` overrides):
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8094").await?;
//! sse_example_image_to_3d::serve(listener).await
//! # }
//! ```
//!
//! With `BACKPLANE=redis://HOST:PORT` in the environment ([`sse_redis::hub_builder_from_env`]),
//! the app connects to that Redis first and publishes and subscribes through it, so a task's
//! events are stored in Redis with cluster-wide ids. Tasks, models
//! and stream tokens stay on the node that ran the task, which serves its stream.
//!
//! The page and every URL the server hands out are relative to the app's root, or prefixed with
//! [`Config::base_path`], so the app also works behind a proxy under a path prefix.
//!
//! # Endpoints
//!
//! | method and path | auth | what |
//! |---|---|---|
//! | `GET /` | – | the web page |
//! | `POST /api/v1/upload/batch` | API key | multipart images (any file fields) → 202 `{task_id, job_id, total_files, files}` |
//! | `POST /api/v1/stream-tokens` | API key | `{"task_id"}` → 201 `{token, expires_in, stream_url}` (see [`auth`]) |
//! | `GET /api/v1/status/tasks/{taskId}` | API key | the task as JSON: counts, every file's state, `last_sequence` |
//! | `GET /api/v1/status/tasks/{taskId}/stream?token=…` | stream token (or API key header) | the task's event stream |
//! | `GET /api/v1/download/{taskId}/{fileId}.glb` | API key | a model, `model/gltf-binary` |
//!
//! "API key" means `Authorization: Bearer <key>` ([`Config::api_keys`]); each key is a user,
//! and a user sees only their own tasks (another user's task is a 404). API keys are refused in
//! URLs (`?api_key=` gets a 400 saying to exchange the key for a stream token).
//!
//! Bad input gets a 4xx with `{"error": "…"}` that says what is wrong: 400 (an empty body, no
//! file fields, too many files, a malformed multipart body, bad JSON), 401 (no or a wrong key;
//! a missing, unknown or expired stream token), 404 (unknown or foreign task, or a token for
//! another task), 413 (a file over [`Config::max_file_bytes`], an upload over
//! [`Config::max_upload_bytes`]), 415 (not `multipart/form-data`). A file that is not an image
//! does not fail the upload: it fails alone, in its `file_update`, and the task goes on.
//!
//! # Events
//!
//! Every payload carries `sequence`, equal to the event's SSE `id:` and increasing, since the
//! seed's client drops events whose sequence is not above the last one it saw.
//!
//! * `file_update`, per file and status change: `{sequence, task_id, file_id, filename, size,
//!   status, progress, message}`; `status` is `queued` (the seed's `pending`), `processing`
//!   (progress 5, 35, 70 as the image is decoded, meshed and written), `completed` (progress
//!   100, with `download_url`, `vertices`, `triangles`, `grid`, `image_size`, `model_bytes`)
//!   or `failed` (with `error`).
//! * `task_progress` after every file update: `{sequence, task_id, job_id, status, progress
//!   (0–100 over all files), current (files finished), total, total_files, completed_files,
//!   failed_files, message}`.
//! * `task_completed` (at least one model made): `{sequence, task_id, job_id, status, result:
//!   {job_id, total_files, completed_files, failed_files, processing_time}, models: [{file_id,
//!   filename, download_url, vertices, triangles, …}], failed: [{file_id, filename, error}]}`.
//! * `task_failed` (no model made): `{sequence, task_id, job_id, status, error, details:
//!   {failed}}`.
//!
//! The stream ends after `task_completed` or `task_failed`. A client that reconnects with
//! `Last-Event-ID` (or `?lastEventId=`, for a new `EventSource`) receives exactly the events
//! after it; one that connects fresh first receives every file's latest `file_update` and the
//! latest `task_progress`, then the live events.
//!
//! # The work
//!
//! Each image becomes a height field of its luminance and then a mesh, written as binary glTF:
//! see [`mesh`]. Models are kept in memory for [`Config::finished_ttl`] after their task ends.

pub mod auth;
mod http;
pub mod mesh;
mod tasks;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sse_core::Hub;
use tokio::sync::Semaphore;

/// Settings of the app.
#[derive(Debug, Clone)]
pub struct Config {
    /// API keys and the user each one stands for.
    pub api_keys: Vec<(String, String)>,
    /// How long a stream token stays valid (for opening streams).
    pub stream_token_ttl: Duration,
    /// Most files in one upload.
    pub max_files: usize,
    /// Largest file.
    pub max_file_bytes: usize,
    /// Largest upload (the whole multipart body).
    pub max_upload_bytes: usize,
    /// Widest or tallest image decoded, in pixels.
    pub max_image_side: u32,
    /// Most grid points along the longer side of a model.
    pub max_grid: u32,
    /// Height of white above black, in mesh units (the longer side is 1).
    pub relief: f32,
    /// A pause between the stages of each image, so that people can watch the progress (zero in
    /// tests).
    pub step_delay: Duration,
    /// Images processed at once, over all tasks.
    pub workers: usize,
    /// Heartbeat comments after this much silence on a stream.
    pub heartbeat: Duration,
    /// How long a finished task, its models and its event history are kept.
    pub finished_ttl: Duration,
    /// Most tasks kept at once (finished ones included, until their TTL).
    pub max_tasks: usize,
    /// Memory for decoded images, over all workers together: a decode waits until its pixels
    /// (at the file's own bit depth, plus the luminance copy) fit, and an image that could never
    /// fit fails with a message that says so.
    pub max_decode_bytes: u64,
    /// Prefix of the URLs the server hands out (`download_url`, `stream_url`).
    pub base_path: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_keys: vec![("demo-key".into(), "demo".into())],
            stream_token_ttl: Duration::from_secs(60),
            max_files: 16,
            max_file_bytes: 10 << 20,
            max_upload_bytes: 40 << 20,
            max_image_side: 8192,
            max_grid: mesh::DEFAULT_MAX_GRID,
            relief: mesh::DEFAULT_RELIEF,
            step_delay: Duration::from_millis(150),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            heartbeat: Duration::from_secs(15),
            finished_ttl: Duration::from_secs(600),
            max_tasks: 100,
            max_decode_bytes: 384 << 20,
            base_path: String::new(),
        }
    }
}

/// State shared by the handlers and the workers.
pub(crate) struct App {
    pub(crate) hub: Hub,
    pub(crate) config: Config,
    pub(crate) keys: auth::ApiKeys,
    pub(crate) tokens: auth::StreamTokens,
    pub(crate) tasks: tasks::Tasks,
    pub(crate) permits: Semaphore,
    /// [`Config::max_decode_bytes`] in KiB permits.
    pub(crate) decode_budget: Semaphore,
}

/// Serves the app with [`Config::default`] on `listener` until the process exits.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_with(listener, Config::default(), std::future::pending()).await
}

/// Serves the app on `listener` until `signal` resolves; then every event stream ends (after a
/// final frame) and connections still open after 5 s are closed.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    config: Config,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let owner_only = |req: &sse_core::hub::AccessRequest<'_>| match (req.owner, req.user) {
        (Some(owner), Some(user)) if owner == user => sse_core::hub::Access::Allow,
        _ => sse_core::hub::Access::Hidden,
    };
    // `BACKPLANE=redis://HOST:PORT`: a node of a cluster sharing that Redis.
    let builder = sse_redis::hub_builder_from_env_with(
        sse_redis::RedisConfig::default().finished_ttl(config.finished_ttl),
    )
    .await
    .map_err(std::io::Error::other)?;
    let hub = builder
        .heartbeat(config.heartbeat)
        .finished_ttl(config.finished_ttl)
        .authorize(owner_only)
        .build();
    let app = Arc::new(App {
        hub: hub.clone(),
        keys: auth::ApiKeys::new(config.api_keys.clone()),
        tokens: auth::StreamTokens::default(),
        tasks: tasks::Tasks::default(),
        permits: Semaphore::new(config.workers.max(1)),
        decode_budget: Semaphore::new(
            usize::try_from(config.max_decode_bytes / 1024)
                .unwrap_or(usize::MAX)
                .clamp(1, Semaphore::MAX_PERMITS),
        ),
        config,
    });
    let sweeper = tokio::spawn({
        let app = Arc::clone(&app);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                app.hub.evict_expired();
                app.tasks.sweep(app.config.finished_ttl);
                app.tokens.sweep();
            }
        }
    });
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(http::handle(app, req).await) }
    });
    sse_hyper::serve(listener, service, hub, signal, Duration::from_secs(5)).await;
    sweeper.abort();
    Ok(())
}
