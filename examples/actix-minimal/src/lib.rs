//! Job progress over SSE in an actix-web server: copy [`configure`] (or its three routes) into
//! yours.
//!
//! - `POST /jobs` starts a job in a spawned task and answers `{"id": "job-N"}` at once.
//! - `GET /jobs/{id}/events` streams it: `progress` events (`{"progress": 0..=100}`, ending at
//!   100), then one terminal `completed` event, after which the stream ends. A reconnect with
//!   `Last-Event-ID` resumes after that event (the adapter's `subscribe` front door does it).
//! - `GET /` is a small page with an `EventSource` and a progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{dev::Server, web, App, HttpResponse, HttpServer, Responder};
use serde_json::json;
use sse_actix::LastEventId;
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub};

/// The page: a button, a progress bar and an `EventSource`.
const PAGE: &str = include_str!("../static/index.html");

/// The job's steps, and the time each takes.
const STEPS: u32 = 5;
const STEP: Duration = Duration::from_millis(100);

/// The routes, sharing one [`Hub`]: `App::new().configure(configure(hub.clone()))`.
pub fn configure(hub: Hub) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(web::Data::new(hub.clone()))
            .route(
                "/",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(PAGE)
                }),
            )
            .route("/jobs", web::post().to(start_job))
            .route("/jobs/{id}/events", web::get().to(events));
    }
}

/// The server on `listener` (run it with `.await`); on Ctrl-C or a stop, open streams get a
/// final frame and end first.
pub fn serve(listener: std::net::TcpListener, hub: Hub) -> std::io::Result<Server> {
    let routes = configure(hub.clone());
    let stop = sse_actix::shutdown_signal(hub, async {
        let _ = tokio::signal::ctrl_c().await;
    });
    Ok(
        HttpServer::new(move || App::new().configure(routes.clone()))
            .shutdown_signal(stop)
            .listen(listener)?
            .run(),
    )
}

/// `POST /jobs`: creates the job's topic, then works in a spawned task.
async fn start_job(hub: web::Data<Hub>) -> HttpResponse {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("job-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let job = match hub.job(&id) {
        Ok(job) => job,
        Err(e) => return HttpResponse::ServiceUnavailable().body(e.to_string()),
    };
    tokio::spawn(async move {
        for step in 1..=STEPS {
            tokio::time::sleep(STEP).await;
            // The last step publishes 100 before the terminal event.
            let _ = job
                .progress(&json!({ "progress": step * 100 / STEPS }))
                .await;
        }
        let done = Event::new()
            .event("completed")
            .json_owned(json!({ "result": "done" }));
        let _ = job.complete(done).await;
    });
    HttpResponse::Accepted().json(json!({ "id": id }))
}

/// `GET /jobs/{id}/events`: the job's stream, resuming after `Last-Event-ID`; 404 for an
/// unknown job, 204 for a reconnect after the terminal event.
async fn events(hub: web::Data<Hub>, id: web::Path<String>, last: LastEventId) -> impl Responder {
    let options = SubscribeOptions::topic(id.into_inner()).last_event_id(last.into_inner());
    sse_actix::subscribe(&hub, options).await
}
