//! The demo: every example app on one port, with an index page.
//!
//! `cargo run -p sse-example-demo --release`, then open <http://127.0.0.1:3000/>.
//!
//! | path on the demo port | app |
//! |---|---|
//! | `/` | the index page, linking the apps |
//! | `/pdf/` and `/api/books/…` | PDF OCR (axum, mounted in-process) |
//! | `/characters/` and `/api/v1/{auth,characters,media,sse}/…` | character and media jobs (actix-web, proxied) |
//! | `/video/` and `/jobs…`, `/files/…` | video transcoding (hyper, proxied) |
//! | `/resumes/` and `/api/v1/sse/progress/…`, `/api/v1/resumes/…` | resume screening (axum, proxied) |
//! | `/3d/` and `/api/v1/upload/batch`, `/api/v1/stream-tokens`, `/api/v1/status/tasks/{id}`, `/api/v1/download/…` | image to 3D (hyper, proxied, its `base_path` set to `/3d`) |
//!
//! Each app's page uses relative URLs, so it works under its prefix (`/pdf/api/books/upload/`);
//! the field reports' absolute API paths are routed to their app as well, so every report's
//! frontend and curl commands work unchanged on the demo port. The proxied apps listen on
//! loopback ports of their own; [`proxy::Upstream`] forwards each response body frame by frame,
//! so event streams pass through unbuffered.
//!
//! `BACKPLANE=redis://HOST:PORT` in the environment reaches every app: each connects to that
//! Redis at startup (the `sse_redis::hub_builder_from_env` rule), so several demos on one Redis
//! share their event streams.
//!
//! Two absolute paths are claimed by two apps each; the demo asks who owns the request:
//!
//! * `/api/v1/status/tasks/{id}/stream` (reports 004 of both the PDF and the image-to-3D app):
//!   the PDF app's if it knows the task id ([`PdfOcr::knows_task`]), the image-to-3D app's
//!   otherwise (which answers 404 for ids it does not know either).
//! * `/api/v1/sse/connections/status` (the characters and the resume-screener reports): the
//!   resume screener's if the request's token (`Authorization: Bearer` or `?token=`) is one of
//!   its tokens ([`ResumeScreener::knows_token`]), the characters app's otherwise. The demo
//!   gives the two apps different preset tokens (see [`DemoConfig::from_env`]) so that a token
//!   names one app.

pub mod proxy;

use std::future::Future;
use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse as _, Redirect, Response};
use axum::routing::{any, get};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sse_examples_support::{request_token, TokenSources};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use proxy::Upstream;
use sse_example_characters as characters;
use sse_example_image_to_3d as image_to_3d;
use sse_example_pdf_ocr::{self as pdf_ocr, PdfOcr};
use sse_example_resume_screener::{self as resume_screener, ResumeScreener};
use sse_example_video as video;

/// The index page.
const INDEX: &str = include_str!("../static/index.html");

/// The settings of the apps the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The PDF OCR app.
    pub pdf: pdf_ocr::Config,
    /// The characters app (its `base_path` is set to `/characters`; demo tokens
    /// `chars-alice-token`, `chars-bob-token`).
    pub characters: characters::Config,
    /// The video app (its `base_path` is set to `/video`).
    pub video: video::Config,
    /// The resume screener (demo tokens `alice-token`, `bob-token`).
    pub resumes: resume_screener::Config,
    /// The image-to-3d app (its `base_path` is set to `/3d`; API key `demo-key`).
    pub image_to_3d: image_to_3d::Config,
}

impl DemoConfig {
    /// Each app's defaults (the PDF app's and the resume screener's from their environment
    /// variables), with the characters app's insecure demo login on and its preset tokens
    /// `chars-alice-token` and `chars-bob-token`: different from the resume screener's `alice-token` and `bob-token`, so
    /// that a token tells which app `/api/v1/sse/connections/status` is asked.
    pub fn from_env() -> Self {
        DemoConfig {
            pdf: pdf_ocr::Config::from_env(),
            characters: characters::Config {
                tokens: vec![
                    ("chars-alice-token".into(), "alice".into()),
                    ("chars-bob-token".into(), "bob".into()),
                ],
                // The demo turns the characters app's insecure demo login on (anyone can sign
                // in as anyone, no password), and its index page says so.
                insecure_demo_login: true,
                ..characters::Config::default()
            },
            video: video::Config::default(),
            resumes: resume_screener::Config::from_env(),
            image_to_3d: image_to_3d::Config::default(),
        }
    }
}

/// The apps the demo's router sends requests to.
#[derive(Debug, Clone)]
pub struct Apps {
    /// The PDF OCR app, mounted in-process.
    pub pdf: PdfOcr,
    /// The resume screener's server.
    pub resumes: Upstream,
    /// The resume screener itself (its server is [`Apps::resumes`]), asked whether it knows a
    /// token.
    pub resume_screener: ResumeScreener,
    /// The characters app's server.
    pub characters: Upstream,
    /// The video app's server.
    pub video: Upstream,
    /// The image-to-3d app's server.
    pub image_to_3d: Upstream,
}

/// The process's Prometheus recorder: installed once, the first time it is asked for, as the
/// global `metrics` recorder that every hub of the process reports to (their gauges, counters
/// and histograms; see `sse_core::hub` for the names). `None` if another recorder was
/// installed first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .as_ref()
}

/// `GET /metrics`: every hub's metrics in Prometheus' text format.
async fn metrics_text() -> Response {
    match prometheus() {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

/// The demo's router: the index page, `/metrics`, the PDF app in-process, the others through
/// their [`Upstream`]s.
pub fn router(apps: &Apps) -> Router {
    let Apps {
        pdf,
        resumes,
        resume_screener,
        characters,
        video,
        image_to_3d,
    } = apps;
    let stripped = |up: &Upstream| {
        let up = up.clone();
        any(move |req: Request| async move { up.forward_stripped(req).await })
    };
    let direct = |up: &Upstream| {
        let up = up.clone();
        any(move |req: Request| async move { up.forward(req).await })
    };
    let pdf_api = pdf.api_router();
    let to_pdf = {
        let pdf_api = pdf_api.clone();
        any(move |req: Request| in_process(pdf_api.clone(), req))
    };
    let mut router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/metrics", get(metrics_text))
        .route("/pdf", get(|| async { Redirect::temporary("/pdf/") }))
        .nest("/pdf/", pdf.router())
        .route("/api/books/{*rest}", to_pdf);

    router = router
        .route(
            "/characters",
            get(|| async { Redirect::temporary("/characters/") }),
        )
        .route("/characters/", stripped(characters))
        .route("/characters/{*rest}", stripped(characters));
    for prefix in ["auth", "characters", "media", "sse"] {
        router = router.route(&format!("/api/v1/{prefix}/{{*rest}}"), direct(characters));
    }

    router = router
        .route("/video", get(|| async { Redirect::temporary("/video/") }))
        .route("/video/", stripped(video))
        .route("/video/{*rest}", stripped(video))
        .route("/jobs", direct(video))
        .route("/jobs/{*rest}", direct(video))
        .route("/files/{*rest}", direct(video));

    // The resume screener: its page under `/resumes/`, and its absolute API paths (the
    // `stream_url` it hands out is one); `/api/v1/sse/progress/…` takes precedence over the
    // characters app's `/api/v1/sse/…`. (It runs behind the proxy rather than nested: a nested
    // axum router sees the outer route's path parameters as well as its own.)
    router = router
        .route(
            "/resumes",
            get(|| async { Redirect::temporary("/resumes/") }),
        )
        .route("/resumes/", stripped(resumes))
        .route("/resumes/{*rest}", stripped(resumes))
        .route("/api/v1/sse/progress/{*rest}", direct(resumes))
        .route("/api/v1/resumes/{*rest}", direct(resumes));

    // Image to 3D: its page under `/3d/`, and its absolute API paths.
    router = router
        .route("/3d", get(|| async { Redirect::temporary("/3d/") }))
        .route("/3d/", stripped(image_to_3d))
        .route("/3d/{*rest}", stripped(image_to_3d))
        .route("/api/v1/upload/batch", direct(image_to_3d))
        .route("/api/v1/stream-tokens", direct(image_to_3d))
        .route("/api/v1/status/tasks/{task_id}", direct(image_to_3d))
        .route("/api/v1/download/{*rest}", direct(image_to_3d));

    // The two paths two reports share: the app that owns the task id, or the token, answers.
    let task_stream = {
        let (pdf, pdf_api, image_to_3d) = (pdf.clone(), pdf_api.clone(), image_to_3d.clone());
        any(move |req: Request| {
            let (pdf, pdf_api, image_to_3d) = (pdf.clone(), pdf_api.clone(), image_to_3d.clone());
            async move {
                let id = task_id_of(req.uri().path()).unwrap_or_default();
                if pdf.knows_task(id) {
                    in_process(pdf_api, req).await
                } else {
                    image_to_3d.forward(req).await
                }
            }
        })
    };
    let connections = {
        let (screener, resumes, characters) =
            (resume_screener.clone(), resumes.clone(), characters.clone());
        any(move |req: Request| {
            let (screener, resumes, characters) =
                (screener.clone(), resumes.clone(), characters.clone());
            async move {
                let sources = TokenSources::new(
                    req.headers()
                        .get(header::AUTHORIZATION)
                        .map(|v| v.as_bytes()),
                )
                .query(req.uri().query(), &["token"]);
                match request_token(&sources) {
                    Ok(token) if screener.knows_token(&token) => resumes.forward(req).await,
                    _ => characters.forward(req).await,
                }
            }
        })
    };
    router = router
        .route("/api/v1/status/tasks/{task_id}/stream", task_stream)
        .route("/api/v1/sse/connections/status", connections);
    router.fallback(not_found)
}

/// The `{id}` of `/api/v1/status/tasks/{id}/stream`.
fn task_id_of(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/status/tasks/")?
        .strip_suffix("/stream")
}

/// `req` answered by an app's router in this process. The request goes in without its
/// extensions: the demo's own path parameters must not reach the app's extractors.
async fn in_process(app: Router, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut fresh = Request::new(body);
    *fresh.method_mut() = parts.method;
    *fresh.uri_mut() = parts.uri;
    *fresh.version_mut() = parts.version;
    *fresh.headers_mut() = parts.headers;
    match app.oneshot(fresh).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

async fn not_found(uri: Uri) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!(
            "no app serves {}; see / for the apps and their paths\n",
            uri.path()
        ),
    )
}

/// Runs every app: the PDF app in-process, the others on loopback ports behind the proxy; the
/// demo answers on `listener` until `shutdown` completes, then every app shuts down gracefully.
pub async fn run(
    listener: TcpListener,
    config: DemoConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Before any hub exists, so that every hub's gauges start from the recorder's zero.
    let _ = prometheus();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let characters_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let characters_addr = characters_listener.local_addr()?;
    let characters_config = characters::Config {
        base_path: "/characters".into(),
        ..config.characters
    };
    // actix-web's server future is not `Send`: drive it on a thread of its own, on a `LocalSet`,
    // with this runtime's handle (its jobs run on this runtime; its HTTP workers are actix's).
    let runtime = tokio::runtime::Handle::current();
    let characters_signal = stopped(stop_rx.clone());
    let characters_thread = std::thread::Builder::new()
        .name("demo-characters".into())
        .spawn(move || {
            runtime.block_on(tokio::task::LocalSet::new().run_until(
                characters::serve_with_shutdown(
                    characters_listener,
                    characters_config,
                    characters_signal,
                ),
            ))
        })?;

    let video_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let video_addr = video_listener.local_addr()?;
    let video_config = video::Config {
        base_path: "/video".into(),
        ..config.video
    };
    let video_task = tokio::spawn(video::serve_with_shutdown(
        video_listener,
        video_config,
        stopped(stop_rx.clone()),
    ));

    let image_listener = TcpListener::bind("127.0.0.1:0").await?;
    let image_addr = image_listener.local_addr()?;
    let image_config = image_to_3d::Config {
        base_path: "/3d".into(),
        ..config.image_to_3d
    };
    let image_task = tokio::spawn(image_to_3d::serve_with(
        image_listener,
        image_config,
        stopped(stop_rx.clone()),
    ));

    let resumes_listener = TcpListener::bind("127.0.0.1:0").await?;
    let resumes_addr = resumes_listener.local_addr()?;
    let resume_screener = ResumeScreener::from_env(config.resumes).await?;
    let resumes_task = tokio::spawn(resume_screener::serve_with_shutdown(
        resumes_listener,
        resume_screener.clone(),
        stopped(stop_rx.clone()),
    ));

    let apps = Apps {
        pdf: PdfOcr::from_env(config.pdf).await?,
        resume_screener,
        resumes: Upstream::new("resume-screener", resumes_addr, "/resumes"),
        characters: Upstream::new("characters", characters_addr, "/characters"),
        video: Upstream::new("video", video_addr, "/video"),
        image_to_3d: Upstream::new("image-to-3d", image_addr, "/3d"),
    };
    let pdf_hub = apps.pdf.hub().clone();
    let served = axum::serve(listener, router(&apps))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            pdf_hub.begin_shutdown();
        })
        .await;
    let characters_done = tokio::task::spawn_blocking(move || characters_thread.join())
        .await
        .map_err(std::io::Error::other)
        .and_then(|joined| {
            joined.unwrap_or_else(|_| Err(std::io::Error::other("the characters app panicked")))
        });
    let video_done = video_task
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let image_done = image_task
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let resumes_done = resumes_task
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    served
        .and(characters_done)
        .and(video_done)
        .and(resumes_done)
        .and(image_done)
}
