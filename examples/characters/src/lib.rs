//! Character-creation and media (image) jobs with live progress over SSE, on actix-web: the app
//! of the character-jobs report (one SSE connection per job instead of polling, plus one for all of a user's
//! jobs) with the connection statistics of the resume-screener report.
//!
//! ```text
//! pub async fn serve(listener: std::net::TcpListener, config: Config) -> std::io::Result<()>
//! pub async fn serve_with_shutdown(listener, config, signal: impl Future<Output = ()>) -> std::io::Result<()>
//! ```
//!
//! Call either from inside a Tokio runtime (jobs run on it; HTTP runs on actix's own worker
//! threads). `serve` runs until the process exits; `serve_with_shutdown` ends every event stream
//! and stops gracefully when `signal` resolves.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use sse_example_characters::{serve, Config};
//! let listener = std::net::TcpListener::bind("127.0.0.1:8088")?;
//! serve(listener, Config::default()).await
//! # }
//! ```
//!
//! # Endpoints
//!
//! | method and path | what |
//! |---|---|
//! | `GET /` | the HTML page |
//! | `POST /api/v1/auth/token` `{"user"}` | insecure demo login, off unless [`Config::insecure_demo_login`]: a token (JSON and `sse_token` cookie) |
//! | `POST /api/v1/characters/jobs` `{"name", "class"?, "race"?, "seed"?}` | queue a character job → 202 |
//! | `POST /api/v1/media/jobs` `{"prompt", "width"?, "height"?, "style"?}` | queue an image job → 202 |
//! | `GET /api/v1/characters/jobs/{jobId}`, `GET /api/v1/media/jobs/{jobId}` | polling (JSON `{success, data}`) |
//! | `GET /api/v1/media/files/{jobId}.png` | a finished job's PNG |
//! | `GET /api/v1/sse/jobs/character/{jobId}`, `…/media/{jobId}` | one job's stream |
//! | `GET /api/v1/sse/jobs/my` | all of the user's jobs on one stream |
//! | `GET /api/v1/sse/connections/status` | connection and job counts |
//!
//! Every endpoint but the page, the login and the status needs a token: `Authorization: Bearer`,
//! the `sse_token` cookie, or `?token=` (a plain `EventSource` cannot send headers). Another
//! user's job answers 404, exactly like a job that does not exist. More than
//! [`Config::max_connections_per_user`] open streams: 429.
//!
//! # The demo login
//!
//! `POST /api/v1/auth/token {"user": "alice"}` gives anyone a token for any user name, with no
//! credentials. It is off unless [`Config::insecure_demo_login`] is set (the binary reads
//! [`INSECURE_DEMO_LOGIN_ENV`]`=1`); while off it answers 403 with a message saying so. Its
//! tokens expire after [`Config::login_token_ttl`] and at most [`Config::max_login_tokens`] are
//! kept (expired ones dropped first, then the oldest). A real deployment replaces it with its
//! own sign-in and sets [`Config::tokens`] or puts the app behind one.
//!
//! # Stream tokens
//!
//! A 202 carries `streamToken`: a signed, expiring token (`sse-token`, through the examples'
//! `stream_auth`) good for that job's stream only, for a client that should not hand its API
//! token to an `EventSource` URL. The stream endpoints accept it, or an API token as before.
//! Set `SSE_STREAM_TOKEN_SECRET` (32 bytes or more) on every node of a cluster so that each
//! accepts the others' stream tokens.
//!
//! # Bounds and files
//!
//! At most [`Config::max_jobs_per_user`] jobs queued or running per user (429 beyond) and
//! [`Config::workers`] + [`Config::max_queued`] in all (503 beyond), both with `Retry-After`.
//! A finished job's image and record are removed after [`Config::retention`]; the whole
//! [`Config::files_dir`] is removed when the server shuts down.
//!
//! # Messages
//!
//! As in the character-jobs report: unnamed events (read with `onmessage`) whose JSON has a `type`:
//! `connected` and `initial_status` (sent once per connection, without `id:`), then
//! `job_update` with `jobId`, `jobType`, `status` (`waiting`, `active`, `completed`,
//! `failed`), `progress`, `step`, `message`, `createdAt`/`startedAt`/`completedAt`/`failedAt`,
//! `timestamp`, and `result` or `failedReason` at the end. A job stream ends after the final
//! `job_update`; the browser's reconnect then gets 204 and stops. `job_update`s carry ids, so a
//! dropped connection resumes with `Last-Event-ID` without loss or duplicates.
//!
//! # One stream for all of a user's jobs
//!
//! `/api/v1/sse/jobs/my` reads a per-user topic (`user:{name}`) that receives a copy of every
//! `job_update` of the user's jobs, conflated per job. A multi-topic subscription over the job
//! topics was the alternative; it was not chosen because its set of topics is fixed when it
//! starts (a job created afterwards would not appear until the client reconnects) and because
//! it ends once every job in it has ended, while a dashboard wants one connection that stays
//! open. The per-user topic costs one extra encoded frame per update and gives plain sequence
//! ids, so `Last-Event-ID` resumes it exactly. A new connection gets `connected` and one
//! `initial_status` per job (oldest first), then live updates.
//!
//! # Jobs
//!
//! Jobs wait for one of [`Config::workers`] permits. A character job derives a sheet (stats by
//! 4d6-drop-lowest, hit points, armor class, a templated backstory) from a hash of the request
//! and renders a PNG portrait; a media job renders seeded artwork. Rendering runs on the
//! blocking pool and reports progress by bands of rows. [`Config::step_delay`] paces the steps
//! so that a person can watch the bars move; it is the only artificial delay.
//!
//! # Several nodes
//!
//! With `BACKPLANE=redis://HOST:PORT` in the environment ([`sse_redis::hub_builder_from_env`]),
//! `serve` connects to that Redis first (and fails if it cannot) and the app is a node of a
//! cluster: updates are published through the backplane and every subscribe first brings the
//! node's copy of the topic up to date, so a job's stream and the `/my` stream can be read on
//! any node, with the same ids everywhere. Job topics are named `{kind}:{owner}/{id}`, so a node that learns of a
//! topic from Redis knows its owner. The job store (polling, `initial_status`, images) and the
//! issued login tokens stay on the node that made them; the preset tokens work everywhere.
//!
//! # Behind a path prefix
//!
//! The page uses relative URLs only. Result URLs (`portraitUrl`, `url`) and the `streamUrl` /
//! `pollUrl` of a 202 start with [`Config::base_path`] (empty by default), so a server that
//! mounts the app under `/characters` sets it to `/characters`.

pub mod art;
mod auth;
mod handlers;
pub mod jobs;
pub mod sheet;
pub mod util;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use sse_core::hub::Access;
use sse_core::Hub;
use sse_examples_support::{files, Admission, StreamAuth};
use tokio::sync::Semaphore;

pub use auth::COOKIE;

/// Settings of the characters app.
#[derive(Debug, Clone)]
pub struct Config {
    /// Jobs that run at once (the worker pool's size).
    pub workers: usize,
    /// Jobs that may wait for a worker; more answer 503 (with `Retry-After`).
    pub max_queued: usize,
    /// Jobs one user may have queued or running; more answer 429 (with `Retry-After`).
    pub max_jobs_per_user: usize,
    /// How long a finished job's image and record are kept; then both are removed.
    pub retention: Duration,
    /// Open event streams per user; more answer 429.
    pub max_connections_per_user: usize,
    /// Heartbeat comments after this much silence on a stream.
    pub heartbeat: Duration,
    /// Pause between a job's steps, so that progress can be watched (zero: as fast as the work).
    pub step_delay: Duration,
    /// Side of the square portraits, in pixels.
    pub portrait_size: u32,
    /// Where finished images are written. The app owns this directory: it is removed when
    /// the server shuts down.
    pub files_dir: PathBuf,
    /// Tokens accepted besides those issued by `POST /api/v1/auth/token`: `(token, user)`.
    pub tokens: Vec<(String, String)>,
    /// Whether `POST /api/v1/auth/token` hands out a token for any user name, without
    /// credentials. Off by default (the login answers 403); [`Config::from_env`] turns it on
    /// with [`INSECURE_DEMO_LOGIN_ENV`]`=1`. Only for demos: anyone can be anyone.
    pub insecure_demo_login: bool,
    /// How long a token issued by the demo login is valid.
    pub login_token_ttl: Duration,
    /// Most demo-login tokens kept at once: expired ones are dropped first, then the oldest.
    pub max_login_tokens: usize,
    /// How long a stream token (in a 202's `streamToken`) is valid.
    pub stream_token_ttl: Duration,
    /// Prefix of the URLs the server hands out (see the module docs).
    pub base_path: String,
    /// actix-web worker threads.
    pub http_workers: usize,
    /// How long the hub keeps a finished job's stream (replay and final state).
    pub finished_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 2,
            max_queued: 100,
            max_jobs_per_user: 10,
            retention: Duration::from_secs(3600),
            max_connections_per_user: 5,
            heartbeat: Duration::from_secs(15),
            step_delay: Duration::from_millis(500),
            portrait_size: 256,
            files_dir: std::env::temp_dir().join(format!("sse-characters-{}", std::process::id())),
            tokens: Vec::new(),
            insecure_demo_login: false,
            login_token_ttl: Duration::from_secs(3600),
            max_login_tokens: 10_000,
            stream_token_ttl: Duration::from_secs(3600),
            base_path: String::new(),
            http_workers: 2,
            finished_ttl: Duration::from_secs(600),
        }
    }
}

/// The environment variable that turns the demo login on ([`Config::from_env`]): `1` (or
/// `true`). Named so that nobody sets it by accident: the login hands out any user's identity.
pub const INSECURE_DEMO_LOGIN_ENV: &str = "CHARACTERS_INSECURE_DEMO_LOGIN";

impl Config {
    /// The defaults, with [`Config::insecure_demo_login`] on when [`INSECURE_DEMO_LOGIN_ENV`]
    /// is `1` or `true`.
    pub fn from_env() -> Config {
        let on =
            std::env::var(INSECURE_DEMO_LOGIN_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true"));
        Config {
            insecure_demo_login: on,
            ..Config::default()
        }
    }
}

/// State shared by the handlers and the workers.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    pub(crate) jobs: jobs::Jobs,
    pub(crate) tokens: auth::Tokens,
    pub(crate) config: Config,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) stream_auth: StreamAuth,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Shared {
    async fn new(config: Config) -> std::io::Result<Shared> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            std::io::Error::other("characters::serve must be called inside a Tokio runtime")
        })?;
        // `BACKPLANE=redis://HOST:PORT`: a node of a cluster sharing that Redis.
        let builder = sse_redis::hub_builder_from_env_with(
            sse_redis::RedisConfig::default().finished_ttl(config.finished_ttl),
        )
        .await
        .map_err(std::io::Error::other)?;
        let hub = builder
            .max_subscriptions_per_user(config.max_connections_per_user)
            .heartbeat(config.heartbeat)
            .finished_ttl(config.finished_ttl)
            // Every topic has an owner (the job's creator, or the user of a per-user topic).
            // Anyone else is told the topic does not exist.
            // A node that learned of a topic from the backplane knows its owner by its name.
            .authorize(|req| {
                match (
                    req.owner.or_else(|| jobs::owner_in_name(req.topic)),
                    req.user,
                ) {
                    (_, None) => Access::Unauthenticated,
                    (Some(owner), Some(user)) if owner == user => Access::Allow,
                    _ => Access::Hidden,
                }
            })
            .build();
        Ok(Shared {
            hub,
            jobs: jobs::Jobs::default(),
            tokens: auth::Tokens::new(
                &config.tokens,
                config.login_token_ttl,
                config.max_login_tokens,
            ),
            permits: Arc::new(Semaphore::new(config.workers.max(1))),
            admission: Admission::new(
                config.max_jobs_per_user,
                config.workers.max(1) + config.max_queued,
            ),
            stream_auth: StreamAuth::from_env(config.stream_token_ttl)
                .map_err(std::io::Error::other)?,
            config,
            runtime,
        })
    }
}

/// Serves the app on `listener` until the process exits.
pub async fn serve(listener: std::net::TcpListener, config: Config) -> std::io::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the app on `listener` until `signal` resolves; then every event stream ends (after a
/// final frame) and the server stops gracefully.
pub async fn serve_with_shutdown(
    listener: std::net::TcpListener,
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(config).await?);
    let hub = shared.hub.clone();
    let http_workers = shared.config.http_workers.max(1);
    let files_dir = shared.config.files_dir.clone();
    let data = web::Data::from(shared);
    // Built in its own statement: the builder is not `Send`, the running server is, and so is
    // this future (the demo spawns it).
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(handlers::routes)
    })
    .workers(http_workers)
    // Notice a client that went away at once, so its connection stops counting against the
    // per-user limit.
    .h1_allow_half_closed(false)
    .shutdown_signal(sse_actix::shutdown_signal(hub, signal))
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let served = server.await;
    // The job files go with the server.
    files::remove_all(&files_dir).await;
    served
}
