//! The HTTP handlers.

use std::time::Duration;

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;
use sse_axum::LastEventId;
use sse_core::hub::SubscribeOptions;

use crate::auth::{self, ApiError};
use crate::batch::Upload;
use crate::extract::sniff;
use crate::rank::query_terms;
use crate::{samples, topic_name, Config, ResumeScreener};

/// The page.
const PAGE: &str = include_str!("../static/index.html");

/// Room for the multipart framing around the files.
const FORM_OVERHEAD: usize = 64 * 1024;

/// The reconnection delay suggested to `EventSource` clients.
const RETRY: Duration = Duration::from_secs(2);

pub(crate) fn router(app: ResumeScreener) -> Router {
    let limit = app.config().max_request_bytes.saturating_add(FORM_OVERHEAD);
    Router::new()
        .route("/", get(page))
        .route("/samples", get(sample_list))
        .route("/samples/{name}", get(sample))
        .route("/api/v1/resumes/me", get(me))
        .route(
            "/api/v1/resumes/screen",
            post(screen).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/api/v1/sse/progress/stream/{user_id}", get(stream))
        .route("/api/v1/sse/progress/status/{user_id}", get(status))
        .route("/api/v1/sse/progress/{user_id}", delete(clear))
        .route("/api/v1/sse/connections/status", get(connections))
        .with_state(app)
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn sample_list() -> Json<serde_json::Value> {
    let files: Vec<&str> = samples::SAMPLES.iter().map(|s| s.name).collect();
    Json(json!({ "description": samples::SAMPLE_DESCRIPTION, "files": files }))
}

async fn sample(Path(name): Path<String>) -> Response {
    match samples::sample_file(&name) {
        Some(bytes) => {
            let ty = if name.ends_with(".pdf") {
                "application/pdf"
            } else {
                "text/plain; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, ty)], bytes).into_response()
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "no such sample").into_response(),
    }
}

/// `GET /api/v1/resumes/me`: the token's user.
async fn me(
    State(app): State<ResumeScreener>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = auth::user(&app, &headers, uri.query())?;
    Ok(no_store(Json(json!({ "user_id": user })).into_response()))
}

/// `GET /api/v1/sse/progress/stream/{user_id}`: the user's progress stream.
async fn stream(
    State(app): State<ResumeScreener>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    LastEventId(last): LastEventId,
) -> Response {
    let user = match auth::owner(&app, &headers, uri.query(), &user_id) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let options = {
        let mut users = app.inner.users.lock();
        let slot = users.entry(user.clone()).or_insert_with(|| app.new_slot());
        let generation = slot.generation;
        if let Err(e) = app.topic_of(&user, generation) {
            return ApiError::new(
                sse_core::http::publish_status(&e),
                format!("cannot open the stream: {e}"),
            )
            .into_response();
        }
        // Resume only within the same generation: ids of a cleared stream mean nothing here.
        let resume = last
            .as_deref()
            .and_then(|id| id.split_once('-'))
            .filter(|(g, _)| g.parse::<u64>().ok() == Some(generation))
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .map(|seq| seq.to_string());
        SubscribeOptions::topic(topic_name(&user, generation))
            .user(user)
            .last_event_id(resume)
    };
    // Outside the users lock: with a backplane, this first brings the topic up to date.
    match sse_axum::subscribe(app.hub(), options).await {
        Ok(res) => res.retry(RETRY).into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// `GET /api/v1/sse/progress/status/{user_id}`: the current progress, or `null`.
async fn status(
    State(app): State<ResumeScreener>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = auth::owner(&app, &headers, uri.query(), &user_id)?;
    Ok(no_store(Json(app.progress_of(&user)).into_response()))
}

/// `DELETE /api/v1/sse/progress/{user_id}`: clears the progress and ends the streams.
async fn clear(
    State(app): State<ResumeScreener>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = auth::owner(&app, &headers, uri.query(), &user_id)?;
    let (had_progress, streams) = app.clear(&user);
    Ok(no_store(
        Json(json!({
            "message": format!("Progress data cleared for user {user}"),
            "user_id": user,
            "cleared": had_progress,
            "streams_closed": streams,
        }))
        .into_response(),
    ))
}

/// `GET /api/v1/sse/connections/status`: connection counts; with a token, the caller's own.
async fn connections(State(app): State<ResumeScreener>, headers: HeaderMap, uri: Uri) -> Response {
    let caller = auth::user(&app, &headers, uri.query()).ok();
    let metrics = app.hub().metrics();
    let mut active_users = 0usize;
    let mut mine = 0usize;
    {
        let users = app.inner.users.lock();
        for (user, slot) in users.iter() {
            let n = app
                .hub()
                .get_topic(&topic_name(user, slot.generation))
                .map_or(0, |t| t.subscriber_count());
            if n > 0 {
                active_users += 1;
            }
            if caller.as_deref() == Some(user.as_str()) {
                mine = n;
            }
        }
    }
    let config = app.config();
    no_store(
        Json(json!({
            "active_connections": metrics.subscribers,
            "total_connections": metrics.subscribers,
            "active_users": active_users,
            "topics": metrics.topics,
            "events_published": metrics.published,
            "events_delivered": metrics.delivered,
            "heartbeat_seconds": config.heartbeat.as_secs_f64(),
            "max_streams_per_user": config.max_streams_per_user,
            "user": caller.map(|u| json!({ "user_id": u, "connections": mine })),
        }))
        .into_response(),
    )
}

/// The fields of an upload.
#[derive(Default)]
struct Form {
    description: Option<String>,
    files: Vec<(String, Option<String>, Vec<u8>)>,
}

/// `POST /api/v1/resumes/screen`: validates the upload and starts the batch.
async fn screen(
    State(app): State<ResumeScreener>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let user = auth::user(&app, &headers, uri.query())?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data upload with `job_description` and files: {}",
            e.body_text()
        ))
    })?;
    let form = match read_form(app.config(), &mut multipart).await {
        Ok(f) => f,
        Err(e) => {
            // Read (and drop) the rest, bounded by the body limit, so that the client gets the
            // answer instead of a reset connection.
            drain(&mut multipart).await;
            return Err(e);
        }
    };
    let Some(description) = form.description else {
        return Err(ApiError::bad_request(
            "missing field `job_description` (the job description)",
        ));
    };
    if description.trim().is_empty() {
        return Err(ApiError::bad_request("the job description is empty"));
    }
    let terms = query_terms(&description);
    if terms.is_empty() {
        return Err(ApiError::bad_request(
            "the job description has no searchable words",
        ));
    }
    if form.files.is_empty() {
        return Err(ApiError::bad_request(
            "no resumes: attach at least one PDF or plain-text file",
        ));
    }
    let mut uploads = Vec::with_capacity(form.files.len());
    for (filename, content_type, bytes) in form.files {
        if bytes.is_empty() {
            return Err(ApiError::bad_request(format!("{filename:?} is empty")));
        }
        let kind = sniff(&filename, content_type.as_deref(), &bytes)
            .map_err(|e| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e))?;
        uploads.push(Upload {
            filename,
            kind,
            bytes,
        });
    }
    let total = uploads.len();
    let names: Vec<String> = uploads.iter().map(|u| u.filename.clone()).collect();
    let batch_id = app.start_batch(&user, terms, uploads)?;
    Ok(no_store(
        (
            StatusCode::ACCEPTED,
            Json(json!({
                "batch_id": batch_id,
                "user_id": user,
                "total": total,
                "files": names,
                "status": "processing",
                "stream_url": format!("/api/v1/sse/progress/stream/{user}"),
                "status_url": format!("/api/v1/sse/progress/status/{user}"),
            })),
        )
            .into_response(),
    ))
}

fn multipart_error(e: MultipartError, config: &Config) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            format!(
                "the upload is larger than {} bytes in all",
                config.max_request_bytes
            ),
        )
    } else {
        let text = e.body_text();
        // A line break (CR or LF) inside a quoted file name ends the part's header early, so
        // the part cannot be read at all: say so, rather than leave the client guessing.
        let hint = if text.contains("headers") {
            " (a file name containing a line break, CR or LF, ends a part's header early: rename the file)"
        } else {
            ""
        };
        ApiError::new(status, format!("malformed multipart body: {text}{hint}"))
    }
}

/// The last path component of a client's file name, trimmed and at most 200 characters.
fn clean_filename(raw: &str, n: usize) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw).trim();
    let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.is_empty() {
        format!("file-{n}")
    } else {
        name
    }
}

/// Reads a field of at most `max` bytes; `None` when it is longer.
async fn read_limited(
    field: &mut Field<'_>,
    max: usize,
    config: &Config,
) -> Result<Option<Vec<u8>>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(e, config))?
    {
        if buf.len() + chunk.len() > max {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

async fn read_form(config: &Config, multipart: &mut Multipart) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, config))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(raw_name) = field.file_name().map(str::to_owned) {
            let content_type = field.content_type().map(str::to_owned);
            let filename = clean_filename(&raw_name, form.files.len() + 1);
            let Some(bytes) = read_limited(&mut field, config.max_file_bytes, config).await? else {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{filename:?} is larger than {} bytes (the limit per file)",
                        config.max_file_bytes
                    ),
                ));
            };
            if raw_name.is_empty() && bytes.is_empty() {
                // A file input left empty.
                continue;
            }
            if form.files.len() >= config.max_files {
                return Err(ApiError::bad_request(format!(
                    "too many files: at most {} per batch",
                    config.max_files
                )));
            }
            form.files.push((filename, content_type, bytes));
        } else if name == "files" || name == "file" {
            // A file field whose file name could not be read: refuse it, never drop it.
            return Err(ApiError::bad_request(format!(
                "a `{name}` part has no readable file name (file {}): send each file with a quoted filename without line breaks",
                form.files.len() + 1
            )));
        } else if name == "job_description" || name == "description" {
            let Some(bytes) =
                read_limited(&mut field, config.max_description_bytes, config).await?
            else {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the job description is longer than {} bytes",
                        config.max_description_bytes
                    ),
                ));
            };
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("the job description is not UTF-8 text"))?;
            form.description = Some(text);
        } else {
            // An unknown text field: read and ignore it.
            while field
                .chunk()
                .await
                .map_err(|e| multipart_error(e, config))?
                .is_some()
            {}
        }
    }
    Ok(form)
}

async fn drain(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}
