//! The page, the sample PDF, the re-attach streams and the book endpoint.

use std::sync::PoisonError;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use sse_axum::{LastEventId, SubscribeRejection};
use sse_core::hub::SubscribeOptions;

use crate::error::JobError;
use crate::job::task_topic;
use crate::PdfOcr;

/// The upload page.
const PAGE: &str = include_str!("../static/index.html");

pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /sample.pdf?pages=N`: a generated PDF with a few lines of text on each of its N pages
/// (1 to 50, default 3).
pub(crate) async fn sample(RawQuery(query): RawQuery) -> Response {
    let pages = query
        .as_deref()
        .and_then(|q| sse_core::http::query_param(q, "pages"))
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(3)
        .clamp(1, 50);
    let texts: Vec<String> = (1..=pages).map(crate::sample::sample_page_text).collect();
    match sse_examples_support::pdf::SamplePdf::new().build(&texts) {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/pdf"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("inline; filename=\"sample.pdf\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Subscribes `user` to `topic`; without a `Last-Event-ID` the whole job is replayed (from
/// id 0), so a page that lost its upload stream before the first event still sees everything.
async fn stream(app: &PdfOcr, topic: String, user: String, last: Option<String>) -> Response {
    let last = last.unwrap_or_else(|| "0".to_owned());
    let options = SubscribeOptions::topic(topic)
        .user(user)
        .last_event_id(Some(last));
    sse_axum::subscribe(app.hub(), options)
        .await
        .into_response()
}

/// `GET /api/books/jobs/{job_id}/events`: the job's events after `Last-Event-ID`.
pub(crate) async fn job_events(
    State(app): State<PdfOcr>,
    Path(job_id): Path<String>,
    LastEventId(last): LastEventId,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let user = match app.authenticate(&headers, query.as_deref()) {
        Ok(u) => u,
        Err(e) => return e.respond(false),
    };
    if !job_id.starts_with("job-") {
        return SubscribeRejection(sse_core::hub::SubscribeError::NotFound).into_response();
    }
    stream(&app, job_id, user, last).await
}

/// `GET /api/v1/status/tasks/{task_id}/stream`: the image-to-3D report's view of the same job.
pub(crate) async fn task_stream(
    State(app): State<PdfOcr>,
    Path(task_id): Path<String>,
    LastEventId(last): LastEventId,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let user = match app.authenticate(&headers, query.as_deref()) {
        Ok(u) => u,
        Err(e) => return e.respond(false),
    };
    stream(&app, task_topic(&task_id), user, last).await
}

/// `GET /api/books/{book_id}/`: the book with each page's text.
pub(crate) async fn book(
    State(app): State<PdfOcr>,
    Path(book_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match app.authenticate(&headers, None) {
        Ok(u) => u,
        Err(e) => return e.respond(false),
    };
    let not_found = || {
        JobError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("no book {book_id}"),
        )
        .respond(false)
    };
    let Ok(id) = book_id.parse::<u64>() else {
        return not_found();
    };
    let book = app
        .inner
        .books
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .filter(|b| b.owner == user)
        .cloned();
    match book {
        Some(b) => axum::Json(json!({
            "data": b.to_json(true),
            "status": "PASS",
            "message": "Book found",
        }))
        .into_response(),
        None => not_found(),
    }
}
