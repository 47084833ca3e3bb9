//! The demo: every example app on one port, with an index page.
//!
//! `cargo run -p sse-examples --release --bin demo`, then open <http://127.0.0.1:3000/>.
//!
//! | path on the demo port | app |
//! |---|---|
//! | `/` | the index page, linking the apps |
//! | `/pdf/` and `/api/books/…`, `/api/v1/status/tasks/…` | PDF OCR (axum, mounted in-process) |
//! | `/characters/` and `/api/v1/{auth,characters,media,sse}/…` | character and media jobs (actix-web, proxied) |
//! | `/video/` and `/jobs…`, `/files/…` | video transcoding (hyper, proxied) |
//! | `/resumes/` and `/api/v1/sse/progress/…`, `/api/v1/resumes/…` | resume screening (axum, proxied) |
//! | `/3d/` only | image to 3D (hyper, proxied, its `base_path` set to `/3d`) |
//!
//! Each app's page uses relative URLs, so it works under its prefix (`/pdf/api/books/upload/`);
//! the field reports' absolute API paths are routed to their app as well, so the reports'
//! frontends and curl commands work unchanged on the demo port. The proxied apps listen on
//! loopback ports of their own; [`proxy::Upstream`] forwards each response body frame by frame,
//! so event streams pass through unbuffered.
//!
//! `BACKPLANE=redis://HOST:PORT` in the environment reaches every app: each connects to that
//! Redis at startup (see [`sse_redis::hub_builder_from_env`]), so several demos on one Redis
//! share their event streams.
//!
//! Two absolute paths are claimed by two apps; the demo gives each to one of them:
//!
//! * `/api/v1/sse/connections/status` is the characters app's (as is all of `/api/v1/sse/…`
//!   except `/api/v1/sse/progress/…`, the resume screener's). The resume page asks for its
//!   connection counts relatively, at `/resumes/api/v1/sse/connections/status`.
//! * `/api/v1/status/tasks/{id}/stream` is the PDF app's (seed 004's book stream). The
//!   image-to-3d app answers only under `/3d/`: its `base_path` is `/3d`, so every URL it hands
//!   out (`stream_url`, `download_url`) already carries the prefix.

pub mod proxy;

use std::future::Future;

use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, Redirect};
use axum::routing::{any, get};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::characters;
use crate::pdf_ocr::{self, PdfOcr};
use crate::video;
use proxy::Upstream;
use sse_example_image_to_3d as image_to_3d;
use sse_example_resume_screener::{self as resume_screener, ResumeScreener};

/// The index page.
const INDEX: &str = include_str!("../../static/index.html");

/// The settings of the apps the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The PDF OCR app.
    pub pdf: pdf_ocr::Config,
    /// The characters app (its `base_path` is set to `/characters`).
    pub characters: characters::Config,
    /// The video app (its `base_path` is set to `/video`).
    pub video: video::Config,
    /// The resume screener (demo tokens `alice-token`, `bob-token`).
    pub resumes: resume_screener::Config,
    /// The image-to-3d app (its `base_path` is set to `/3d`; API key `demo-key`).
    pub image_to_3d: image_to_3d::Config,
}

impl DemoConfig {
    /// Each app's defaults (the PDF app's from its environment variables), with the demo
    /// tokens of the characters app (`alice-token`, `bob-token`).
    pub fn from_env() -> Self {
        DemoConfig {
            pdf: pdf_ocr::Config::from_env(),
            characters: characters::Config {
                tokens: vec![
                    ("alice-token".into(), "alice".into()),
                    ("bob-token".into(), "bob".into()),
                ],
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
    /// The characters app's server.
    pub characters: Upstream,
    /// The video app's server.
    pub video: Upstream,
    /// The image-to-3d app's server.
    pub image_to_3d: Upstream,
}

/// The demo's router: the index page, the PDF app in-process, the others through their
/// [`Upstream`]s.
pub fn router(apps: &Apps) -> Router {
    let Apps {
        pdf,
        resumes,
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
    let mut router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/pdf", get(|| async { Redirect::temporary("/pdf/") }))
        .nest("/pdf/", pdf.router())
        .merge(pdf.api_router());

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

    // Image to 3D: only under `/3d/` (the PDF app keeps `/api/v1/status/tasks/…`).
    router = router
        .route("/3d", get(|| async { Redirect::temporary("/3d/") }))
        .route("/3d/", stripped(image_to_3d))
        .route("/3d/{*rest}", stripped(image_to_3d));
    router.fallback(not_found)
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
    let resumes_task = tokio::spawn(resume_screener::serve_with_shutdown(
        resumes_listener,
        ResumeScreener::from_env(config.resumes).await?,
        stopped(stop_rx.clone()),
    ));

    let apps = Apps {
        pdf: PdfOcr::from_env(config.pdf).await?,
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
