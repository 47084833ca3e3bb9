//! Job progress over SSE in a hyper server: copy [`handle`] (or its three routes) into yours.
//!
//! - `POST /jobs` starts a job in a spawned task and answers `{"id": "job-N"}` at once.
//! - `GET /jobs/{id}/events` streams it: `progress` events (`{"progress": 0..=100}`, ending at
//!   100), then one terminal `completed` event, after which the stream ends. A reconnect with
//!   `Last-Event-ID` resumes after that event (the adapter's `subscribe` front door does it).
//! - `GET /` is a small page with an `EventSource` and a progress bar.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub};
use sse_hyper::SseResponseBody;

/// The page: a button, a progress bar and an `EventSource`.
const PAGE: &str = include_str!("../static/index.html");

/// The job's steps, and the time each takes.
const STEPS: u32 = 5;
const STEP: Duration = Duration::from_millis(100);

/// Answers one request (pass it to `hyper::service::service_fn` with a clone of the hub).
pub async fn handle(
    hub: Hub,
    req: Request<Incoming>,
) -> Result<Response<SseResponseBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let events_of = path
        .strip_prefix("/jobs/")
        .and_then(|p| p.strip_suffix("/events"));
    Ok(match (req.method(), path.as_str(), events_of) {
        (&Method::GET, "/", _) => full(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        (&Method::POST, "/jobs", _) => start_job(&hub),
        // The job's stream, resuming after `Last-Event-ID`; 404 for an unknown job, 204 for a
        // reconnect after the terminal event.
        (&Method::GET, _, Some(id)) => {
            let last = sse_hyper::last_event_id(&req);
            sse_hyper::subscribe(&hub, SubscribeOptions::topic(id).last_event_id(last)).await
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", "not found"),
    })
}

/// Serves [`handle`] on `listener` until `signal` resolves; then open streams get a final
/// frame and end, and the server stops (waiting at most 5 s for connections).
pub async fn serve(listener: tokio::net::TcpListener, hub: Hub, signal: impl Future<Output = ()>) {
    let service = {
        let hub = hub.clone();
        hyper::service::service_fn(move |req| handle(hub.clone(), req))
    };
    sse_hyper::serve(listener, service, hub, signal, Duration::from_secs(5)).await;
}

/// `POST /jobs`: creates the job's topic, then works in a spawned task.
fn start_job(hub: &Hub) -> Response<SseResponseBody> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("job-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let job = match hub.job(&id) {
        Ok(job) => job,
        Err(e) => {
            return full(
                sse_core::http::publish_status(&e),
                "text/plain",
                e.to_string(),
            )
        }
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
    full(
        StatusCode::ACCEPTED,
        "application/json",
        json!({ "id": id }).to_string(),
    )
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<bytes::Bytes>,
) -> Response<SseResponseBody> {
    let mut res = Response::new(SseResponseBody::full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
