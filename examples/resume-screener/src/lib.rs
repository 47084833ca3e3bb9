//! Resume screening with a per-user progress stream (the resume-screener report), on axum.
//!
//! A user submits a job description and a batch of resumes (PDF or plain text). A bounded pool
//! of workers extracts each file's text; the batch is then ranked with BM25 over the
//! description's terms (see [`rank`]). Every step is published to the user's progress stream,
//! which every open tab of that user receives.
//!
//! `cargo run -p sse-example-resume-screener`, then open <http://127.0.0.1:3004/> (`PORT` and
//! `HOST` change the address).
//!
//! # Mounting or starting it
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use sse_example_resume_screener::{router, serve, Config, ResumeScreener};
//!
//! // Start it on a listener of your own…
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3004").await?;
//! serve(listener).await?;
//!
//! // …or mount its router (page and API) in another axum app, under a prefix ending in `/`
//! // (the page's URLs are relative to it):
//! let app = ResumeScreener::new(Config::default());
//! let demo: axum::Router = axum::Router::new().nest("/resumes/", router(app.clone()));
//! // On shutdown, `app.hub().begin_shutdown()` ends its open streams.
//! # drop(demo);
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! | method and path | what |
//! |---|---|
//! | `GET /` | the page: form, per-file progress, ranked results (`EventSource`) |
//! | `POST /api/v1/resumes/screen` | multipart: `job_description` (text) and one or more files (any field name; `files` on the page); `202` `{batch_id, total, files, stream_url, status_url}` |
//! | `GET /api/v1/sse/progress/stream/{user_id}` | the user's progress stream (every tab of the user receives every update) |
//! | `GET /api/v1/sse/progress/status/{user_id}` | the current progress as JSON, or `null` |
//! | `DELETE /api/v1/sse/progress/{user_id}` | clears the user's progress, stops a running batch, ends the user's streams |
//! | `GET /api/v1/sse/connections/status` | connection counts (with a token, also the caller's own) |
//! | `GET /api/v1/resumes/me` | `{user_id}` of the token |
//! | `GET /samples`, `GET /samples/{name}` | the sample description and resumes ([`samples`]) |
//!
//! # Users and tokens
//!
//! Every request except the page, the samples and the connection counts needs a bearer token:
//! `Authorization: Bearer <token>`, or `?token=<token>` (a plain `EventSource` cannot set
//! headers; a query token can end up in access logs, so use short-lived tokens in production).
//! The token alone decides the user; a `{user_id}` in a path that is not the token's user gets
//! `403` and no data, whether or not that user exists. No token: `401`. Demo tokens:
//! [`DEMO_TOKENS`] (`alice-token` → `alice`, `bob-token` → `bob`).
//!
//! # The stream
//!
//! Progress updates are unnamed SSE events (type `message`, so `EventSource.onmessage` gets
//! them, as in the field report's frontend); their data is the same JSON object that the status
//! endpoint returns:
//!
//! * while running: `{completed, total, status: "processing", message, batch_id, files}`;
//!   `files` lists every file with `{index, filename, kind, size, status, words, error}`, its
//!   `status` one of `queued`, `processing`, `done`, `failed`. An update is sent when the batch
//!   is accepted, when a file starts and when it ends; `completed` counts ended files.
//! * at the end: `{completed, total, status: "completed", message, batch_id, files, results,
//!   successful_files, failed_files, errors, query_terms}`, `results` ranked best first, each
//!   `{rank, filename, file_index, score, matched_terms, coverage, words}`; `errors` names each
//!   failed file and why.
//! * `DELETE` sends a terminal `cleared` event (`{status: "cleared", message}`), then the stream
//!   ends. A client that reconnects gets a fresh stream.
//!
//! A newly connected tab first receives the current state (the latest update, if any). Event
//! ids are `<stream generation>-<sequence>`; a client that reconnects with `Last-Event-ID`
//! (EventSource does so by itself) receives exactly the updates it missed. A keep-alive comment
//! is sent after 30 s without events ([`Config::heartbeat`]).
//!
//! # Limits and errors
//!
//! Refused uploads get a JSON `{"error": "..."}` and a 4xx status, and change nothing: `400`
//! (missing or empty description, a description without searchable words, no files, too many
//! files, not multipart), `413` (a file or the description over its limit, or the request over
//! [`Config::max_request_bytes`]), `415` (a file that is neither a PDF nor plain text), `409`
//! (a batch of this user is still running); `503` with `Retry-After` when
//! [`Config::max_batches`] batches of all users are running. Uploads are kept in memory only
//! (no files are written). Inside an accepted batch, a file whose text cannot
//! be read (a corrupt PDF, a scan without text) fails alone: it is listed in `errors` and
//! `failed_files`, and the rest of the batch is ranked.

pub mod extract;
pub mod rank;
pub mod samples;

mod auth;
mod batch;
mod routes;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use parking_lot::Mutex;
use sse_core::hub::{Access, TopicOptions};
use sse_core::{Event, Hub, Topic};
use sse_examples_support::Admission;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use batch::{BatchCtl, Progress};

/// The demo tokens: `(token, user)`.
pub const DEMO_TOKENS: &[(&str, &str)] = &[("alice-token", "alice"), ("bob-token", "bob")];

/// Settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bearer tokens and their users.
    pub tokens: Vec<(String, String)>,
    /// Files extracted at the same time, over all batches.
    pub workers: usize,
    /// Most files in one batch.
    pub max_files: usize,
    /// Most bytes of one file.
    pub max_file_bytes: usize,
    /// Most bytes of the job description.
    pub max_description_bytes: usize,
    /// Most bytes of a whole upload request.
    pub max_request_bytes: usize,
    /// Most open streams per user (more get `429`).
    pub max_streams_per_user: usize,
    /// Most batches running at once over all users (one per user at most, `409` beyond);
    /// more get `503` with `Retry-After`.
    pub max_batches: usize,
    /// Keep-alive comment after this long without events.
    pub heartbeat: Duration,
    /// An extra pause per file while it is processed, to make progress visible in a demo
    /// (zero by default: the extraction itself takes milliseconds).
    pub file_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tokens: DEMO_TOKENS
                .iter()
                .map(|(t, u)| ((*t).to_owned(), (*u).to_owned()))
                .collect(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4)),
            max_files: 50,
            max_file_bytes: 5 << 20,
            max_description_bytes: 20_000,
            max_request_bytes: 32 << 20,
            max_streams_per_user: 16,
            max_batches: 16,
            heartbeat: Duration::from_secs(30),
            file_delay: Duration::ZERO,
        }
    }
}

impl Config {
    /// The defaults, with `RESUME_SCREENER_WORKERS` and `RESUME_SCREENER_FILE_DELAY_MS` applied
    /// when set.
    pub fn from_env() -> Self {
        let mut c = Config::default();
        let num = |name: &str| std::env::var(name).ok()?.trim().parse::<u64>().ok();
        if let Some(n) = num("RESUME_SCREENER_WORKERS") {
            c.workers = usize::try_from(n).unwrap_or(1).max(1);
        }
        if let Some(ms) = num("RESUME_SCREENER_FILE_DELAY_MS") {
            c.file_delay = Duration::from_millis(ms);
        }
        c
    }
}

/// The app: its settings, hub, worker pool and each user's progress. Cheap to clone.
#[derive(Clone)]
pub struct ResumeScreener {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ResumeScreener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeScreener")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    hub: Hub,
    pool: Semaphore,
    users: Mutex<HashMap<String, UserSlot>>,
    next_generation: AtomicU64,
    next_batch: AtomicU64,
    admission: Arc<Admission>,
}

/// One user's progress. The user's stream is the hub topic `progress/<user>/<generation>`; a
/// `DELETE` finishes that topic and forgets the slot, so the next stream gets a new generation.
struct UserSlot {
    generation: u64,
    progress: Option<Progress>,
    running: Option<Arc<BatchCtl>>,
}

/// How long a cleared stream stays readable.
const FINISHED_TTL: Duration = Duration::from_secs(60);

/// The conflation key of progress updates: a new subscriber first gets the latest one.
const PROGRESS_KEY: &str = "progress";

fn topic_name(user: &str, generation: u64) -> String {
    format!("progress/{user}/{generation}")
}

impl ResumeScreener {
    /// The app with `config`, on a single in-memory node.
    pub fn new(config: Config) -> Self {
        Self::with_hub_builder(config, Hub::builder())
    }

    /// The app with `config`, a node of the cluster named by `BACKPLANE=redis://HOST:PORT` if
    /// that variable is set (see [`sse_redis::hub_builder_from_env`]), in memory otherwise.
    /// Call it from within the Tokio runtime the app runs on.
    pub async fn from_env(config: Config) -> std::io::Result<Self> {
        let builder = sse_redis::hub_builder_from_env_with(
            sse_redis::RedisConfig::default().finished_ttl(FINISHED_TTL),
        )
        .await
        .map_err(std::io::Error::other)?;
        let app = Self::with_hub_builder(config, builder);
        if app.inner.hub.backplane().is_some() {
            // Topic names carry the generation, and every node shares the topics: start this
            // node's generations where no other node's are (microseconds since the epoch).
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
            app.inner.next_generation.store(start, Ordering::Relaxed);
        }
        Ok(app)
    }

    /// The app with `config`, its hub built from `builder` (`Hub::builder()`, or a backplane's).
    pub fn with_hub_builder(mut config: Config, builder: sse_core::hub::HubBuilder) -> Self {
        config.workers = config.workers.max(1);
        let config_max_batches = config.max_batches;
        let hub = builder
            .heartbeat(config.heartbeat)
            .max_subscriptions_per_user(config.max_streams_per_user.max(1))
            .finished_ttl(FINISHED_TTL)
            // A second line behind the handlers' own check: a stream is only ever read by the
            // user who owns it.
            .authorize(|req| match (req.owner, req.user) {
                (Some(owner), Some(user)) if owner == user => Access::Allow,
                (_, None) => Access::Unauthenticated,
                _ => Access::Forbidden,
            })
            .build();
        ResumeScreener {
            inner: Arc::new(Inner {
                pool: Semaphore::new(config.workers),
                config,
                hub,
                users: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(1),
                next_batch: AtomicU64::new(1),
                admission: Admission::new(1, config_max_batches),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The hub that carries the progress streams.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Whether `token` is one of this app's bearer tokens. A server that mounts several apps
    /// asks this to route a path that two apps claim.
    pub fn knows_token(&self, token: &str) -> bool {
        self.user_of(token).is_some()
    }

    /// The user of `token`, if it is one.
    pub(crate) fn user_of(&self, token: &str) -> Option<&str> {
        self.inner
            .config
            .tokens
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, u)| u.as_str())
    }

    fn new_slot(&self) -> UserSlot {
        UserSlot {
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
            progress: None,
            running: None,
        }
    }

    /// The user's topic of `generation` (created if missing), under the users lock.
    fn topic_of(&self, user: &str, generation: u64) -> Result<Topic, sse_core::hub::PublishError> {
        self.inner.hub.create_topic(
            &topic_name(user, generation),
            TopicOptions::new().owner(user),
        )
    }

    /// Publishes `progress` to the user's stream of `generation`. Called with the users lock
    /// held, so updates leave in the order they were made: `publish_with` hands the event
    /// over at once (to the ring, or to the backplane, which stores a topic's events in call
    /// order), from any thread; nobody waits for the ack, the next update supersedes a lost one.
    /// With a backplane the event's id is the plain sequence (the backplane replaces custom ids),
    /// so a resume there starts from the latest progress rather than exactly where it left.
    fn publish(&self, user: &str, generation: u64, progress: &Progress) {
        let topic = match self.topic_of(user, generation) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("resume-screener: no progress topic for {user}: {e}");
                return;
            }
        };
        drop(topic.publish_with(Some(PROGRESS_KEY), |seq| {
            Event::new()
                .id(format!("{generation}-{seq}"))
                .json(progress)
        }));
    }

    /// The user's current progress, if any.
    pub(crate) fn progress_of(&self, user: &str) -> Option<Progress> {
        self.inner
            .users
            .lock()
            .get(user)
            .and_then(|s| s.progress.clone())
    }

    /// Clears the user's progress: stops a running batch, sends `cleared` to the user's streams
    /// (which then end) and forgets the slot. Returns whether there was progress, and how many
    /// streams were ended.
    pub(crate) fn clear(&self, user: &str) -> (bool, usize) {
        let mut users = self.inner.users.lock();
        let Some(slot) = users.remove(user) else {
            return (false, 0);
        };
        if let Some(ctl) = &slot.running {
            ctl.cancel();
        }
        let mut streams = 0;
        if let Some(topic) = self.inner.hub.get_topic(&topic_name(user, slot.generation)) {
            streams = topic.subscriber_count();
            // Every publish to this topic happens under the users lock: this is its next seq.
            let id = format!("{}-{}", slot.generation, topic.last_seq() + 1);
            let data = serde_json::json!({
                "status": "cleared",
                "message": "Progress data cleared",
                "completed": 0,
                "total": 0,
            });
            // Handed over at once; a finish fails only if the topic is already finished.
            drop(topic.finish(Event::new().event("cleared").id(id).json(&data)));
        }
        (slot.progress.is_some(), streams)
    }
}

/// The app's router: the page, the samples and the API, over `app`.
pub fn router(app: ResumeScreener) -> Router {
    routes::router(app)
}

/// Serves the app (settings from [`Config::from_env`], `BACKPLANE` as in
/// [`ResumeScreener::from_env`]) on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    serve_with_shutdown(
        listener,
        ResumeScreener::from_env(Config::from_env()).await?,
        std::future::pending(),
    )
    .await
}

/// Serves `app` on `listener` until `shutdown` completes; then every open stream gets a final
/// frame and ends, and the server returns once its connections are closed.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    app: ResumeScreener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = app.hub().clone();
    axum::serve(listener, router(app))
        .with_graceful_shutdown(sse_axum::shutdown_signal(hub, shutdown))
        .await
}
