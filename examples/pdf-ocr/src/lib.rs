//! PDF upload with per-page OCR, streamed as Server-Sent Events (the PDF OCR report and 004).
//!
//! `cargo run -p sse-example-pdf-ocr`, then open <http://127.0.0.1:3001/>.
//!
//! # Endpoints
//!
//! | method and path | what |
//! |---|---|
//! | `GET /` | the upload page (form, progress bar, per-page log) |
//! | `GET /sample.pdf?pages=N` | a generated PDF with text on each page, to try the app with |
//! | `POST /api/books/upload/` | multipart `pdf_file`, `title` (required), `author` (optional); `Authorization: Bearer <token>` |
//! | `GET /api/books/jobs/{job_id}/events` | the job's events again: re-attach with `Last-Event-ID` (header or `lastEventId` query) |
//! | `GET /api/v1/status/tasks/{job_id}/stream` | the same job as the image-to-3D report's task stream (`task_progress`, `file_update`, `task_completed`, `task_failed`) |
//! | `GET /api/books/{book_id}/` | a processed book with each page's text (JSON) |
//!
//! Stream endpoints also take the token as a `token` (or `access_token`, `api_key`) query
//! parameter, since `EventSource` cannot set headers. Demo tokens: [`DEMO_TOKENS`].
//!
//! # The upload
//!
//! With `Accept: text/event-stream`, the upload's response is the job's event stream:
//!
//! 1. `status` `{message, stage, job_id, task_id, events_url}`: the first event names the job
//!    (also in the `X-Job-Id` response header); later `status` events say what happens next
//!    (`parsing`, `queued`).
//! 2. `processing_started` `{total_pages, message, engine, job_id}`.
//! 3. one `page_progress` `{current_page, total_pages, progress, message, extracted_chars, engine,
//!    preview, job_id}` per page (`progress` is the whole-number percentage).
//! 4. `completed` `{book_id, title, author, total_pages, message, engine, extracted_chars,
//!    job_id}` or `error` `{error, details, job_id}`; the stream ends after it.
//!
//! Every event has an SSE `id`, so a client whose stream broke re-attaches to
//! `/api/books/jobs/{job_id}/events` with the last id it saw and gets exactly the events after it.
//! Without an id that endpoint replays the job from its first event.
//!
//! Without the `Accept` header the same endpoint answers once the job is done, with the field
//! report's JSON envelope `{"data": {...}, "status": "PASS", "message": ...}` (`201`), or
//! `{"data": null, "status": "FAIL", "message", "error", "details"}` with a 4xx/5xx status.
//!
//! Requests refused before a job starts (bad token, missing field, empty file, not a PDF, too
//! large) get a 4xx status whose body follows the negotiated format: one SSE `error` event for
//! event-stream clients (so a `fetch` reader shows the reason), the JSON envelope otherwise.
//!
//! # Engines
//!
//! Where `pdftoppm` and `tesseract` are on the `PATH`, each page is rendered at 150 dpi and
//! OCRed by tesseract (as pytesseract does), with a per-page timeout; otherwise each page's text
//! layer is extracted with `lopdf`. Events name the engine (`"tesseract"` or `"text-layer"`).
//! `PDF_OCR_ENGINE=text-layer|tesseract|auto` overrides the choice. The work runs on a blocking
//! thread, at most [`Config::max_concurrent_jobs`] jobs at a time (later uploads wait, and say
//! so); beyond [`Config::max_pending_jobs`] jobs running or waiting, uploads get `503`, and
//! beyond [`Config::max_jobs_per_user`] of one user's, `429`, both with `Retry-After`. The
//! uploaded PDF is written to a private scratch directory only while its job runs (for the
//! external tools), and removed when the job ends.

mod auth;
mod engine;
mod error;
mod job;
mod routes;
mod sample;
mod upload;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use sse_core::hub::{Access, TopicConfig};
use sse_core::Hub;
use sse_examples_support::Admission;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use engine::{Engine, EngineChoice};

/// The demo bearer tokens and the users they stand for. The page's token field is prefilled
/// with the first one. `PDF_OCR_TOKENS=token=user,token2=user2` replaces them.
pub const DEMO_TOKENS: &[(&str, &str)] = &[("demo-token", "demo"), ("demo-token-2", "demo2")];

/// The default largest accepted PDF: 20 MiB.
pub const DEFAULT_MAX_UPLOAD: usize = 20 << 20;

/// The app's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted bearer tokens and their users.
    pub tokens: Vec<(String, String)>,
    /// Largest accepted PDF, in bytes.
    pub max_upload_bytes: usize,
    /// Most pages a PDF may have.
    pub max_pages: usize,
    /// Which engine to use.
    pub engine: EngineChoice,
    /// Resolution at which pages are rendered for OCR.
    pub dpi: u32,
    /// Longest time `pdftoppm` or `tesseract` may take on one page.
    pub page_timeout: Duration,
    /// An extra pause after each page (0 by default; lets a demo show the progress bar move).
    pub page_delay: Duration,
    /// Most jobs processed at the same time.
    pub max_concurrent_jobs: usize,
    /// Most jobs running or waiting; more uploads are refused with `503` and `Retry-After`.
    pub max_pending_jobs: usize,
    /// Most jobs one user may have running or waiting; more uploads are refused with `429`
    /// and `Retry-After`.
    pub max_jobs_per_user: usize,
    /// Most open event streams per user.
    pub max_streams_per_user: usize,
    /// How long a finished job's events stay available for re-attaching.
    pub finished_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tokens: DEMO_TOKENS
                .iter()
                .map(|(t, u)| ((*t).to_owned(), (*u).to_owned()))
                .collect(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD,
            max_pages: 2000,
            engine: EngineChoice::Auto,
            dpi: 150,
            page_timeout: Duration::from_secs(120),
            page_delay: Duration::ZERO,
            max_concurrent_jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_pending_jobs: 64,
            max_jobs_per_user: 4,
            max_streams_per_user: 16,
            finished_ttl: Duration::from_secs(30 * 60),
        }
    }
}

impl Config {
    /// The defaults, changed by `PDF_OCR_TOKENS`, `PDF_OCR_ENGINE`, `PDF_OCR_MAX_UPLOAD_MB` and
    /// `PDF_OCR_PAGE_DELAY_MS`. Invalid values are reported on stderr and ignored.
    pub fn from_env() -> Self {
        let mut c = Config::default();
        if let Ok(v) = std::env::var("PDF_OCR_TOKENS") {
            let tokens: Vec<(String, String)> = v
                .split(',')
                .filter_map(|pair| {
                    let (t, u) = pair.split_once('=')?;
                    let (t, u) = (t.trim(), u.trim());
                    (!t.is_empty() && !u.is_empty()).then(|| (t.to_owned(), u.to_owned()))
                })
                .collect();
            if tokens.is_empty() {
                eprintln!(
                    "pdf-ocr: PDF_OCR_TOKENS has no token=user pair; keeping the demo tokens"
                );
            } else {
                c.tokens = tokens;
            }
        }
        if let Ok(v) = std::env::var("PDF_OCR_ENGINE") {
            match v.parse() {
                Ok(e) => c.engine = e,
                Err(e) => eprintln!("pdf-ocr: {e}"),
            }
        }
        if let Ok(v) = std::env::var("PDF_OCR_MAX_UPLOAD_MB") {
            match v.parse::<usize>() {
                Ok(mb) if mb > 0 => c.max_upload_bytes = mb << 20,
                _ => eprintln!("pdf-ocr: PDF_OCR_MAX_UPLOAD_MB must be a positive integer"),
            }
        }
        if let Ok(v) = std::env::var("PDF_OCR_PAGE_DELAY_MS") {
            match v.parse::<u64>() {
                Ok(ms) => c.page_delay = Duration::from_millis(ms),
                Err(_) => eprintln!("pdf-ocr: PDF_OCR_PAGE_DELAY_MS must be an integer"),
            }
        }
        c
    }
}

/// The PDF OCR app: its hub, settings, engine and processed books. Cheap to clone.
#[derive(Clone)]
pub struct PdfOcr {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PdfOcr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfOcr")
            .field("engine", &self.inner.engine)
            .field("config", &self.inner.config)
            .finish()
    }
}

struct Inner {
    hub: Hub,
    config: Config,
    engine: Engine,
    tokens: HashMap<String, String>,
    books: Mutex<BTreeMap<u64, job::Book>>,
    next_book: AtomicU64,
    next_job: AtomicU64,
    admission: Arc<Admission>,
    workers: Arc<Semaphore>,
}

/// Most books kept in memory; the oldest are forgotten first.
const MAX_BOOKS: usize = 500;

impl PdfOcr {
    /// The app with `config` on a single in-memory node; detects the engine now (see
    /// [`Engine::detect`]).
    pub fn new(config: Config) -> Self {
        Self::with_hub_builder(config, Hub::builder())
    }

    /// The app with `config`, a node of the cluster named by `BACKPLANE=redis://HOST:PORT` if
    /// that variable is set (see [`sse_redis::hub_builder_from_env`]), in memory otherwise.
    /// Call it from within the Tokio runtime the app runs on.
    pub async fn from_env(config: Config) -> std::io::Result<Self> {
        let builder = sse_redis::hub_builder_from_env_with(
            sse_redis::RedisConfig::default().finished_ttl(config.finished_ttl),
        )
        .await
        .map_err(std::io::Error::other)?;
        Ok(Self::with_hub_builder(config, builder))
    }

    /// The app with `config`, its hub built from `builder` (`Hub::builder()`, or a backplane's).
    pub fn with_hub_builder(config: Config, builder: sse_core::hub::HubBuilder) -> Self {
        let engine = Engine::detect(config.engine);
        let hub = builder
            .topic_config(TopicConfig::default().history_len(4096))
            .finished_ttl(config.finished_ttl)
            .max_subscriptions_per_user(config.max_streams_per_user)
            .authorize(|req| match (req.owner, req.user) {
                // Every topic of this app is created with its owner; one without is a topic that
                // another node of a cluster created (the backplane carries no owner): its
                // owner is unknown here, so it is served by the node that created it only.
                (None, _) => Access::Hidden,
                (Some(_), None) => Access::Unauthenticated,
                (Some(owner), Some(user)) if owner == user => Access::Allow,
                // Another user's job: answer as if it did not exist.
                (Some(_), Some(_)) => Access::Hidden,
            })
            .build();
        PdfOcr {
            inner: Arc::new(Inner {
                hub,
                tokens: config.tokens.iter().cloned().collect(),
                workers: Arc::new(Semaphore::new(config.max_concurrent_jobs.max(1))),
                admission: Admission::new(config.max_jobs_per_user, config.max_pending_jobs),
                config,
                engine,
                books: Mutex::new(BTreeMap::new()),
                next_book: AtomicU64::new(1),
                next_job: AtomicU64::new(1),
            }),
        }
    }

    /// The app's hub (one topic per job, plus one per job for the task stream).
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The engine in use.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Whether `task_id` is a task (job) of this app on this node: its task stream is here. A
    /// server that mounts several apps asks this to route a path that two apps claim.
    pub fn knows_task(&self, task_id: &str) -> bool {
        self.inner
            .hub
            .get_topic(&job::task_topic(task_id))
            .is_some()
    }

    /// The JSON and event-stream API at the field reports' absolute paths (`/api/...`), without
    /// the page.
    pub fn api_router(&self) -> Router {
        let limit = self.inner.config.max_upload_bytes + upload::FORM_OVERHEAD;
        Router::new()
            .route(
                "/api/books/upload/",
                post(upload::upload).layer(DefaultBodyLimit::max(limit)),
            )
            .route("/api/books/jobs/{job_id}/events", get(routes::job_events))
            .route(
                "/api/v1/status/tasks/{task_id}/stream",
                get(routes::task_stream),
            )
            .route("/api/books/{book_id}/", get(routes::book))
            .with_state(self.clone())
    }

    /// The page (`/`), the sample PDF (`/sample.pdf`) and the API. The page uses relative URLs,
    /// so this router also works nested under a prefix that ends with `/` (as in the demo).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(routes::page))
            .route("/sample.pdf", get(routes::sample))
            .with_state(self.clone())
            .merge(self.api_router())
    }
}

/// Serves the app ([`Config::from_env`], `BACKPLANE` as in [`PdfOcr::from_env`]) on `listener`
/// until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    serve_with_shutdown(
        listener,
        PdfOcr::from_env(Config::from_env()).await?,
        std::future::pending(),
    )
    .await
}

/// Serves `app` on `listener` until `shutdown` completes; then every open event stream gets a
/// final frame and ends, and the server returns once its connections are closed.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    app: PdfOcr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hub = app.hub().clone();
    axum::serve(listener, app.router())
        .with_graceful_shutdown(sse_axum::shutdown_signal(hub, shutdown))
        .await
}
