//! Job progress over SSE in an axum server: copy [`router`] (or its three routes) into yours.
//!
//! - `POST /jobs` starts a job in a spawned task and answers `{"id": "job-N"}` at once.
//! - `GET /jobs/{id}/events` streams it: `progress` events (`{"progress": 0..=100}`, ending at
//!   100), then one terminal `completed` event, after which the stream ends. A reconnect with
//!   `Last-Event-ID` resumes after that event (the adapter's `subscribe` front door does it).
//! - `GET /` is a small page with an `EventSource` and a progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sse_axum::LastEventId;
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub};

/// The page: a button, a progress bar and an `EventSource`.
const PAGE: &str = include_str!("../static/index.html");

/// The job's steps, and the time each takes.
const STEPS: u32 = 5;
const STEP: Duration = Duration::from_millis(100);

/// The routes, sharing one [`Hub`] (keep it in your own state if you have one).
pub fn router(hub: Hub) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/jobs", post(start_job))
        .route("/jobs/{id}/events", get(events))
        .with_state(hub)
}

/// `POST /jobs`: creates the job's topic, then works in a spawned task.
async fn start_job(State(hub): State<Hub>) -> Response {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("job-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let job = match hub.job(&id) {
        Ok(job) => job,
        Err(e) => return (sse_core::http::publish_status(&e), e.to_string()).into_response(),
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
    (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response()
}

/// `GET /jobs/{id}/events`: the job's stream, resuming after `Last-Event-ID`; 404 for an
/// unknown job, 204 for a reconnect after the terminal event.
async fn events(
    State(hub): State<Hub>,
    Path(id): Path<String>,
    LastEventId(last): LastEventId,
) -> impl IntoResponse {
    sse_axum::subscribe(&hub, SubscribeOptions::topic(id).last_event_id(last)).await
}
