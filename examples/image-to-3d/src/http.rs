//! The routes, over hyper.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use sse_core::http::query_param;
use sse_core::hub::{SubscribeOptions, TopicConfig, TopicOptions};
use sse_hyper::SseResponseBody;

use crate::auth::TokenError;
use crate::tasks::{self, FileView, Publisher, Task, Upload};
use crate::App;
use sse_examples_support::token::bearer as bearer_token;
use sse_examples_support::{random_hex, ApiError};

type Res = Response<SseResponseBody>;
/// A refusal, boxed so that `Result`s carrying one stay small.
type Refused = Box<Res>;

const PAGE: &str = include_str!("../static/index.html");

/// Bytes of an over-limit upload read and discarded before answering 413, so that the client,
/// still sending, reliably reads the answer instead of a connection reset.
const DRAIN_LIMIT: usize = 16 << 20;

/// Query parameters that would put an API key in a URL.
const KEY_PARAMS: [&str; 4] = ["api_key", "apiKey", "key", "access_token"];

fn full(status: StatusCode, content_type: &'static str, bytes: impl Into<Bytes>) -> Res {
    let mut res = Response::new(SseResponseBody::full(bytes));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn json_res(status: StatusCode, value: &Value) -> Res {
    full(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: impl Into<String>) -> Res {
    ApiError::new(status, message)
        .to_http()
        .map(SseResponseBody::full)
}

fn not_found_task() -> Res {
    error(StatusCode::NOT_FOUND, "task not found")
}

/// Routes one request.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>) -> Res {
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segs.as_slice()) {
        (&Method::GET, [""] | ["index.html"]) => {
            let mut res = full(StatusCode::OK, "text/html; charset=utf-8", PAGE);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        (&Method::GET, ["favicon.ico"]) => full(StatusCode::NO_CONTENT, "image/x-icon", ""),
        (&Method::POST, ["api", "v1", "upload", "batch"]) => upload(&app, req).await,
        (&Method::POST, ["api", "v1", "stream-tokens"]) => stream_token(&app, req).await,
        (&Method::GET, ["api", "v1", "status", "tasks", id]) => status(&app, &req, id),
        (&Method::GET, ["api", "v1", "status", "tasks", id, "stream"]) => {
            stream(&app, &req, id).await
        }
        (&Method::GET, ["api", "v1", "download", id, file]) => download(&app, &req, id, file),
        (
            _,
            [""]
            | ["api", "v1", "upload", "batch"]
            | ["api", "v1", "stream-tokens"]
            | ["api", "v1", "status", "tasks", _]
            | ["api", "v1", "status", "tasks", _, "stream"]
            | ["api", "v1", "download", _, _],
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}"),
        ),
    }
}

/// Refuses API keys in the query string: URLs end up in logs, history and `Referer` headers.
fn key_in_url<B>(req: &Request<B>) -> Option<Res> {
    let query = req.uri().query()?;
    KEY_PARAMS
        .iter()
        .any(|p| query_param(query, p).is_some())
        .then(|| {
            error(
                StatusCode::BAD_REQUEST,
                "API keys are not accepted in URLs: send 'Authorization: Bearer <key>', or for an \
                 EventSource exchange the key for a stream token with POST /api/v1/stream-tokens \
                 and use ?token=",
            )
        })
}

fn bearer<B>(req: &Request<B>) -> Option<Result<&str, Res>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    Some(bearer_token(value.as_bytes()).map_err(|_| {
        error(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be 'Bearer <api key>'",
        )
    }))
}

/// The user behind the request's API key.
fn user<B>(app: &App, req: &Request<B>) -> Result<String, Refused> {
    if let Some(res) = key_in_url(req) {
        return Err(Box::new(res));
    }
    match bearer(req) {
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
        ))),
        Some(Err(res)) => Err(Box::new(res)),
        Some(Ok(key)) => app
            .keys
            .user(key)
            .map(str::to_owned)
            .ok_or_else(|| Box::new(error(StatusCode::UNAUTHORIZED, "unknown API key"))),
    }
}

/// The task `id`, if `user` owns it.
fn owned_task(app: &App, id: &str, user: &str) -> Option<Arc<Task>> {
    app.tasks.get(id).filter(|t| t.owner == user)
}

/// `GET /api/v1/status/tasks/{id}`: the task as JSON.
fn status(app: &App, req: &Request<Incoming>, id: &str) -> Res {
    let user = match user(app, req) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    let Some(task) = owned_task(app, id, &user) else {
        return not_found_task();
    };
    let last = app
        .hub
        .get_topic(&tasks::topic_name(id))
        .map_or(0, |t| t.last_seq());
    json_res(StatusCode::OK, &task.status_json(last))
}

/// `GET /api/v1/status/tasks/{id}/stream?token=…`: the task's event stream.
async fn stream(app: &App, req: &Request<Incoming>, id: &str) -> Res {
    if let Some(res) = key_in_url(req) {
        return res;
    }
    let token = req.uri().query().and_then(|q| query_param(q, "token"));
    let user = match token {
        Some(token) => match app.tokens.check(&token, id) {
            Ok(user) => user,
            Err(TokenError::Invalid) => return error(
                StatusCode::UNAUTHORIZED,
                "invalid or expired stream token: get a new one with POST /api/v1/stream-tokens",
            ),
            Err(TokenError::OtherTask) => return not_found_task(),
        },
        // Clients that can send headers may use the API key directly.
        None if req.headers().contains_key(header::AUTHORIZATION) => match user(app, req) {
            Ok(u) => u,
            Err(res) => return *res,
        },
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing stream token: get one with POST /api/v1/stream-tokens and add ?token=",
            )
        }
    };
    if owned_task(app, id, &user).is_none() {
        return not_found_task();
    }
    let options = SubscribeOptions::topic(tasks::topic_name(id))
        .last_event_id(sse_hyper::last_event_id(req))
        .user(user);
    // With a backplane, brings this node's copy of the topic up to date first.
    sse_hyper::subscribe(&app.hub, options).await
}

/// `POST /api/v1/stream-tokens` with `{"task_id": "…"}`: a short-lived token for one task's
/// stream.
async fn stream_token(app: &App, req: Request<Incoming>) -> Res {
    let user = match user(app, &req) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    let body = match http_body_util::Limited::new(req.into_body(), 4096)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a small JSON object",
            )
        }
    };
    let task_id = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v.get("task_id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected a JSON body like {\"task_id\": \"…\"}",
                )
            }
        },
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    if owned_task(app, &task_id, &user).is_none() {
        return not_found_task();
    }
    let ttl = app.config.stream_token_ttl;
    let token = match app.tokens.issue(&task_id, &user, ttl) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    json_res(
        StatusCode::CREATED,
        &json!({
            "token": token,
            "task_id": task_id,
            "expires_in": ttl.as_secs_f64(),
            "stream_url": format!(
                "{}/api/v1/status/tasks/{task_id}/stream?token={token}",
                app.config.base_path
            ),
        }),
    )
}

/// `GET /api/v1/download/{id}/{file_id}.glb`: a model.
fn download(app: &App, req: &Request<Incoming>, id: &str, file: &str) -> Res {
    let user = match user(app, req) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    let Some(task) = owned_task(app, id, &user) else {
        return not_found_task();
    };
    let model = file.strip_suffix(".glb").and_then(|f| task.model(f));
    let Some((filename, bytes)) = model else {
        return error(StatusCode::NOT_FOUND, "model not found");
    };
    let stem = filename
        .rsplit_once('.')
        .map_or(filename.as_str(), |(s, _)| s);
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let mut res = full(StatusCode::OK, "model/gltf-binary", bytes);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}.glb\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

fn too_large(what: &str, limit: usize) -> Res {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} is larger than the limit of {limit} bytes"),
    )
}

/// Reads the whole body, at most `limit` bytes. Over the limit, reads on (discarding) up to
/// [`DRAIN_LIMIT`] more before answering 413, so that the client gets the answer.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, Refused> {
    let refuse = || too_large("the upload", limit);
    if declared.is_some_and(|n| n > (limit + DRAIN_LIMIT) as u64) {
        let mut res = refuse();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Err(Box::new(res));
    }
    let mut buf = BytesMut::new();
    let mut over = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("the upload was interrupted: {e}"),
            ))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if over > 0 || buf.len() + data.len() > limit {
            over += data.len();
            if over > DRAIN_LIMIT {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if over > 0 {
        return Err(Box::new(refuse()));
    }
    Ok(buf.freeze())
}

/// The image files of a multipart body: every field with a file name, in order.
async fn parse_files(body: Bytes, boundary: String, app: &App) -> Result<Vec<Upload>, Refused> {
    let max_files = app.config.max_files;
    let max_file = app.config.max_file_bytes;
    let stream = futures_util::stream::iter([Ok::<Bytes, Infallible>(body)]);
    let mut mp = multer::Multipart::new(stream, boundary);
    let malformed = |e: multer::Error| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("malformed multipart body: {e}"),
        ))
    };
    let mut files = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        let Some(filename) = field.file_name().map(str::to_owned) else {
            continue; // a plain form field
        };
        if files.len() == max_files {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("too many files: at most {max_files} per upload"),
            )));
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if data.len() + chunk.len() > max_file {
                return Err(Box::new(too_large(
                    &format!("the file {filename:?}"),
                    max_file,
                )));
            }
            data.extend_from_slice(&chunk);
        }
        let filename = if filename.trim().is_empty() {
            format!("file-{}", files.len() + 1)
        } else {
            filename
        };
        files.push(Upload {
            filename,
            bytes: data.freeze(),
        });
    }
    Ok(files)
}

/// `POST /api/v1/upload/batch`: multipart images → a task (202), or a 4xx that says what is
/// wrong. Files that are not images are accepted here and fail alone in the task.
async fn upload(app: &Arc<App>, req: Request<Incoming>) -> Res {
    let user = match user(app, &req) {
        Ok(u) => u,
        Err(res) => return *res,
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "multipart/form-data" {
        let message = if essence.is_empty() {
            "send the images as multipart/form-data, one file field per image".to_owned()
        } else {
            format!("unsupported Content-Type {essence:?}: send the images as multipart/form-data")
        };
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
    }
    let boundary = match multer::parse_boundary(&content_type) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("bad multipart Content-Type: {e}"),
            )
        }
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match read_body(req.into_body(), app.config.max_upload_bytes, declared).await {
        Ok(b) => b,
        Err(res) => return *res,
    };
    if body.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the upload is empty");
    }
    let uploads = match parse_files(body, boundary, app).await {
        Ok(f) => f,
        Err(res) => return *res,
    };
    if uploads.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "no files in the upload: send one or more images as multipart/form-data file fields",
        );
    }
    start_task(app, user, uploads)
}

/// Registers the task, publishes its first events (every file `queued`, progress 0) and starts
/// its worker.
fn start_task(app: &Arc<App>, user: String, uploads: Vec<Upload>) -> Res {
    let id = match random_hex(16) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let files: Vec<FileView> = uploads
        .iter()
        .enumerate()
        .map(|(i, u)| FileView {
            file_id: format!("f{}", i + 1),
            filename: u.filename.clone(),
            size: u.bytes.len(),
            status: "queued",
            progress: 0,
            message: "queued".into(),
            error: None,
            image_size: None,
            grid: None,
            vertices: None,
            triangles: None,
            download_url: None,
            model_bytes: None,
        })
        .collect();
    let task = Arc::new(Task::new(id.clone(), user.clone(), files.clone()));
    let cfg = &app.config;
    if app
        .tasks
        .insert(Arc::clone(&task), cfg.max_tasks, cfg.finished_ttl)
        .is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many tasks (limit {}): try again later", cfg.max_tasks),
        );
    }
    // Room in the snapshot for every file's latest state and the progress.
    let mut topic_config = TopicConfig::default();
    topic_config.max_snapshot_keys = topic_config.max_snapshot_keys.max(cfg.max_files + 1);
    let job = match app.hub.job_with(
        &tasks::topic_name(&id),
        TopicOptions::new().owner(user).config(topic_config),
    ) {
        Ok(job) => job,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot start the task: {e}"),
            )
        }
    };
    let publisher = Publisher::new(job, task);
    for idx in 0..files.len() {
        publisher.file(idx);
    }
    publisher.progress(&format!(
        "{} file{} queued",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    ));
    tokio::spawn(tasks::run(Arc::clone(app), publisher, uploads));
    let base = &cfg.base_path;
    let mut res = json_res(
        StatusCode::ACCEPTED,
        &json!({
            "task_id": id,
            "job_id": id,
            "status": "processing",
            "total_files": files.len(),
            "files": files,
            "status_url": format!("{base}/api/v1/status/tasks/{id}"),
            "stream_token_url": format!("{base}/api/v1/stream-tokens"),
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/api/v1/status/tasks/{id}")) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}
