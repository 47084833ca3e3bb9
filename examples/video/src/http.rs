//! The video app's routes, over hyper.

use std::convert::Infallible;
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full, StreamBody};
use hyper::body::{Frame as BodyFrame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use sse_core::http::query_param;
use sse_core::hub::SubscribeOptions;
use sse_core::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ffmpeg::{self, ToolError};
use crate::jobs::{self, GenerateParams, JobView, Source};
use crate::Shared;
use sse_examples_support::{is_hex_id, ApiError};

/// The one response body type of the app.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;
type Res = Response<Body>;

const PAGE: &str = include_str!("../static/index.html");

fn never<T>(e: Infallible) -> T {
    match e {}
}

fn full(status: StatusCode, content_type: &'static str, bytes: impl Into<Bytes>) -> Res {
    let mut res = Response::new(Full::new(bytes.into()).map_err(never).boxed_unsync());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn json(status: StatusCode, value: &Value) -> Res {
    full(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: impl Into<String>) -> Res {
    ApiError::new(status, message).response()
}

/// A refusal: status and message, answered as `{"error": message}`.
type Fail = ApiError;

/// The shared error as this app's response.
trait Respond {
    fn response(self) -> Res;
}

impl Respond for ApiError {
    fn response(self) -> Res {
        self.to_http()
            .map(|b| Full::new(b).map_err(never).boxed_unsync())
    }
}

fn boxed<B>(res: Response<B>) -> Res
where
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    res.map(|b| b.map_err(never).boxed_unsync())
}

/// Routes one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Res {
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
        (&Method::POST, ["jobs"]) => match api_user(&shared, &req) {
            Ok(user) => create(&shared, req, user).await,
            Err(fail) => fail.response(),
        },
        (&Method::GET, ["jobs", id]) => match owned_job(&shared, &req, id) {
            Ok(view) => json(StatusCode::OK, &json!(view)),
            Err(fail) => fail.response(),
        },
        (&Method::GET, ["jobs", id, "stream"]) => stream(&shared, &req, id).await,
        (&Method::GET, ["files", id, name]) => match owned_job(&shared, &req, id) {
            Ok(view) => file(&shared, &view, id, name).await,
            Err(fail) if fail.status() == StatusCode::NOT_FOUND => {
                error(StatusCode::NOT_FOUND, "file not found")
            }
            Err(fail) => fail.response(),
        },
        (_, ["jobs"] | ["jobs", _] | ["jobs", _, "stream"] | ["files", _, _] | [""]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}"),
        ),
    }
}

/// With API tokens on: the user of the request's `Authorization: Bearer` token (401 without a
/// valid one). Off: `None`, everyone is one anonymous client.
fn api_user<B>(shared: &Shared, req: &Request<B>) -> Result<Option<String>, Fail> {
    if shared.config.api_tokens.is_empty() {
        return Ok(None);
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| sse_examples_support::token::bearer(v.as_bytes()))
        .ok_or_else(|| {
            Fail::unauthorized("authentication required: send `Authorization: Bearer <token>`")
        })?
        .map_err(|e| Fail::unauthorized(e.to_string()))?;
    api_token_user(shared, token)
        .map(Some)
        .ok_or_else(|| Fail::unauthorized("invalid token"))
}

fn api_token_user(shared: &Shared, token: &str) -> Option<String> {
    shared
        .config
        .api_tokens
        .iter()
        .find(|(t, _)| t == token)
        .map(|(_, u)| u.clone())
}

/// Job `id` if the request may see it: with API tokens on, only its owner does (another user's
/// job is answered as unknown).
fn owned_job<B>(shared: &Shared, req: &Request<B>, id: &str) -> Result<JobView, Fail> {
    let user = api_user(shared, req)?;
    shared
        .jobs
        .get(id)
        .filter(|v| user.is_none() || v.owner == user)
        .ok_or_else(|| Fail::not_found("job not found"))
}

/// `GET /jobs/{id}/stream`: `status` (new connections), then `progress` events, then
/// `complete` or `error`, after which the stream ends.
///
/// A new connection starts from now (the job's state is its `status`); a reconnect resumes
/// after its `Last-Event-ID`. A finished job that the hub has evicted still answers (the hub
/// keeps its final state): a new client gets it and the stream ends, a reconnect after the
/// terminal event gets 204.
async fn stream(shared: &Shared, req: &Request<Incoming>, id: &str) -> Res {
    if !is_hex_id(id, 8) {
        return error(StatusCode::NOT_FOUND, "job not found");
    }
    if !shared.config.api_tokens.is_empty() {
        // A stream token for this job (what an `EventSource` carries), or the API token.
        let who = shared.stream_auth.authenticate(
            req.headers(),
            req.uri().query(),
            &jobs::topic(id),
            |t| api_token_user(shared, t),
        );
        match who {
            Ok(who) if who.stream_token => {}
            Ok(who) => {
                let mine = shared
                    .jobs
                    .get(id)
                    .is_some_and(|v| v.owner.as_deref() == Some(who.user.as_str()));
                if !mine {
                    return error(StatusCode::NOT_FOUND, "job not found");
                }
            }
            Err(fail) => return fail.response(),
        }
    }
    let last = sse_hyper::last_event_id(req);
    let fresh = last.is_none();
    let options = SubscribeOptions::topic(jobs::topic(id))
        .last_event_id(last)
        .from_now();
    let res = sse_hyper::subscribe(&shared.hub, options).await;
    if res.status() == StatusCode::NOT_FOUND {
        // The app's JSON answer, as for every other unknown job.
        return error(StatusCode::NOT_FOUND, "job not found");
    }
    let mut prefix = Vec::new();
    if fresh {
        // Read after subscribing: nothing published since can be missing from it.
        if let Some(view) = shared.jobs.get(id) {
            prefix.extend(status_event(&view).encode().ok());
        }
    }
    boxed(res.map(|body| body.prefix(prefix)))
}

fn status_event(view: &JobView) -> Event<'static> {
    Event::new()
        .event("status")
        .json_owned(view.status_payload())
}

/// `GET /files/{id}/{name}`: a job's output (or its generated source), streamed from disk.
async fn file(shared: &Shared, view: &JobView, id: &str, name: &str) -> Res {
    let missing = || error(StatusCode::NOT_FOUND, "file not found");
    let known = view.outputs.iter().any(|o| o.file == name) || name == "source.mp4";
    if !known || !is_hex_id(id, 8) {
        return missing();
    }
    let path = jobs::job_dir(shared, id).join(name);
    let Ok(f) = tokio::fs::File::open(&path).await else {
        return missing();
    };
    let len = f.metadata().await.map(|m| m.len()).ok();
    let chunks = futures_util::stream::unfold(Some(f), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(BodyFrame::data(Bytes::from(buf))), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut res = Response::new(StreamBody::new(chunks).boxed_unsync());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{id}-{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.trim().split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

/// Generation parameters from the query (`?generate=1&duration=3&size=640x360&rate=25`).
fn generate_from_query(query: &str) -> Result<GenerateParams, String> {
    let mut p = GenerateParams::default();
    if let Some(d) = query_param(query, "duration") {
        p.duration = d
            .parse()
            .map_err(|_| format!("`duration` must be a whole number of seconds, got {d:?}"))?;
    }
    if let Some(s) = query_param(query, "size") {
        (p.width, p.height) =
            parse_size(&s).ok_or_else(|| format!("`size` must look like 640x360, got {s:?}"))?;
    }
    if let Some(r) = query_param(query, "rate") {
        p.rate = r
            .parse()
            .map_err(|_| format!("`rate` must be a whole number of fps, got {r:?}"))?;
    }
    p.validate()?;
    Ok(p)
}

/// Generation parameters from a JSON body: `{"generate": true}` or
/// `{"generate": {"duration": 3, "size": "640x360", "rate": 25}}`.
fn generate_from_json(body: &[u8]) -> Result<GenerateParams, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the JSON body must be an object like {\"generate\": true}")?;
    if let Some(k) = obj.keys().find(|k| *k != "generate") {
        return Err(format!("unknown field `{k}`: expected only `generate`"));
    }
    let mut p = GenerateParams::default();
    match obj.get("generate") {
        Some(Value::Bool(true)) => {}
        Some(Value::Object(g)) => {
            for (k, val) in g {
                let num = || {
                    val.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or(format!("`generate.{k}` must be a positive whole number"))
                };
                match k.as_str() {
                    "duration" => p.duration = num()?,
                    "rate" => p.rate = num()?,
                    "size" => {
                        (p.width, p.height) = val
                            .as_str()
                            .and_then(parse_size)
                            .ok_or("`generate.size` must be a string like \"640x360\"")?;
                    }
                    other => {
                        return Err(format!(
                            "unknown field `generate.{other}`: expected duration, size or rate"
                        ))
                    }
                }
            }
        }
        _ => {
            return Err(
                "a JSON body must ask for a generated clip: {\"generate\": true} or {\"generate\": {\"duration\": 3, \"size\": \"640x360\", \"rate\": 25}}; upload a video as the raw body or as multipart/form-data instead".into(),
            )
        }
    }
    p.validate()?;
    Ok(p)
}

/// Reads a small body (JSON), at most `limit` bytes.
async fn read_small(body: Incoming, limit: usize) -> Result<Bytes, Fail> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Fail::new(StatusCode::PAYLOAD_TOO_LARGE, "the JSON body is too large")
            } else {
                Fail::new(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the body: {e}"),
                )
            }
        })?;
    Ok(collected.to_bytes())
}

fn too_large(limit: u64) -> Fail {
    Fail::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than the limit of {limit} bytes"),
    )
}

fn store_error(e: &io::Error) -> Fail {
    // The kind only: an io::Error from the file system may carry a path.
    Fail::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("cannot store the upload: {}", e.kind()),
    )
}

async fn create_file(path: &Path) -> Result<tokio::fs::File, Fail> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| store_error(&e))?;
    }
    tokio::fs::File::create(path)
        .await
        .map_err(|e| store_error(&e))
}

async fn write(file: &mut tokio::fs::File, data: &[u8]) -> Result<(), Fail> {
    file.write_all(data).await.map_err(|e| store_error(&e))
}

/// Streams a raw body to `path`, at most `limit` bytes.
async fn save_raw(mut body: Incoming, path: &Path, limit: u64) -> Result<u64, Fail> {
    let mut file = create_file(path).await?;
    let mut n: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Fail::new(
                StatusCode::BAD_REQUEST,
                format!("the upload was interrupted: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
            if n > limit {
                return Err(too_large(limit));
            }
            write(&mut file, &data).await?;
        }
    }
    file.flush().await.map_err(|e| store_error(&e))?;
    Ok(n)
}

/// Streams the `file` field (or the first field with a file name) of a multipart body to
/// `path`, at most `limit` bytes.
async fn save_multipart(
    body: Incoming,
    content_type: &str,
    path: &Path,
    limit: u64,
) -> Result<u64, Fail> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        Fail::new(
            StatusCode::BAD_REQUEST,
            format!("bad multipart Content-Type: {e}"),
        )
    })?;
    let mut mp = multer::Multipart::new(BodyDataStream::new(body), boundary);
    let malformed = |e: multer::Error| {
        Fail::new(
            StatusCode::BAD_REQUEST,
            format!("malformed multipart body: {e}"),
        )
    };
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") && field.file_name().is_none() {
            continue;
        }
        let mut file = create_file(path).await?;
        let mut n: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            n += chunk.len() as u64;
            if n > limit {
                return Err(too_large(limit));
            }
            write(&mut file, &chunk).await?;
        }
        file.flush().await.map_err(|e| store_error(&e))?;
        return Ok(n);
    }
    Err(Fail::new(
        StatusCode::BAD_REQUEST,
        "the multipart body has no `file` field",
    ))
}

/// `POST /jobs`: `?generate=1` (or a JSON body `{"generate": …}`) synthesizes a test clip; a
/// raw body (`video/*`, `application/octet-stream`) or a multipart `file` field is an upload.
/// Answers 202 with the job id, or a 4xx that says what is wrong.
async fn create(shared: &Arc<Shared>, req: Request<Incoming>, user: Option<String>) -> Res {
    // Bounds first, before reading a byte of the body: jobs in flight for this client and in
    // all, and the bytes on disk.
    let ticket = match shared
        .admission
        .admit(user.as_deref().unwrap_or("anonymous"))
    {
        Ok(t) => t,
        Err(fail) => return fail.response(),
    };
    let query = req.uri().query().unwrap_or("").to_owned();
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
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = shared.config.max_upload_bytes;
    let id = match jobs::new_id() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let generate = query_param(&query, "generate")
        .is_some_and(|g| matches!(g.as_str(), "1" | "true" | "yes" | ""));
    let source = if generate {
        if let Err(fail) = disk_room(shared, 0).await {
            return fail.response();
        }
        match generate_from_query(&query) {
            Ok(p) => Source::Generate(p),
            Err(m) => return error(StatusCode::BAD_REQUEST, m),
        }
    } else if essence == "application/json" {
        let body = match read_small(req.into_body(), 64 * 1024).await {
            Ok(b) => b,
            Err(fail) => return fail.response(),
        };
        match generate_from_json(&body) {
            Ok(p) => Source::Generate(p),
            Err(m) => return error(StatusCode::BAD_REQUEST, m),
        }
    } else {
        let multipart = essence == "multipart/form-data";
        if !(multipart || essence.starts_with("video/") || essence == "application/octet-stream") {
            let m = if essence.is_empty() {
                "send a video as the body (Content-Type video/* or application/octet-stream) or as multipart/form-data with a `file` field, or POST /jobs?generate=1 for a test clip".to_owned()
            } else {
                format!("unsupported Content-Type {essence:?}: expected video/*, application/octet-stream, multipart/form-data, or JSON {{\"generate\": true}}")
            };
            let status = if essence.is_empty() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            };
            return error(status, m);
        }
        if declared_len.is_some_and(|n| n > limit) {
            return too_large(limit).response();
        }
        if let Err(fail) = disk_room(shared, declared_len.unwrap_or(limit)).await {
            return fail.response();
        }
        let dir = jobs::job_dir(shared, &id);
        let path = dir.join("upload");
        let saved = if multipart {
            save_multipart(req.into_body(), &content_type, &path, limit).await
        } else {
            save_raw(req.into_body(), &path, limit).await
        };
        match saved {
            Ok(0) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return error(StatusCode::BAD_REQUEST, "the upload is empty");
            }
            Ok(_) => {}
            Err(fail) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return fail.response();
            }
        }
        match probe_upload(shared, &path).await {
            Ok(probe) => Source::Upload(path, probe),
            Err(m) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return error(StatusCode::UNPROCESSABLE_ENTITY, m);
            }
        }
    };
    let stream_token = user
        .as_deref()
        .map(|u| shared.stream_auth.mint(u, [jobs::topic(&id)]));
    match jobs::submit(shared, id, source, user, ticket) {
        Ok(view) => {
            let base = &shared.config.base_path;
            let mut body = json!({
                "jobId": view.job_id,
                "status": view.status,
                "source": view.source,
                "streamUrl": format!("{base}/jobs/{}/stream", view.job_id),
                "statusUrl": format!("{base}/jobs/{}", view.job_id),
            });
            if let Some(t) = stream_token {
                body["streamToken"] = json!(t);
                body["streamUrl"] = json!(format!("{base}/jobs/{}/stream?token={t}", view.job_id));
            }
            let mut res = json(StatusCode::ACCEPTED, &body);
            if let Ok(v) = HeaderValue::from_str(&format!("{base}/jobs/{}", view.job_id)) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot queue the job: {e}"),
        ),
    }
}

/// Probes an upload at once, so that a file that is not a video gets a 422 now rather than a
/// failed job later. Without ffprobe the job is queued anyway, and fails saying ffmpeg is
/// missing.
async fn probe_upload(shared: &Shared, path: &Path) -> Result<Option<ffmpeg::Probe>, String> {
    match ffmpeg::probe(&shared.config.ffprobe, path).await {
        Ok(p) => Ok(Some(p)),
        Err(ToolError::Missing { .. }) => Ok(None),
        Err(e) => {
            // ffprobe names its input: the server's path is nobody else's business.
            let m = e
                .to_string()
                .replace(&*path.to_string_lossy(), "the upload");
            Err(format!(
                "the upload is not a usable video: {}",
                jobs::hide_paths(&m, &shared.config.data_dir)
            ))
        }
    }
}

/// Whether `incoming` more bytes fit in the data directory (503 with `Retry-After` if not).
async fn disk_room(shared: &Shared, incoming: u64) -> Result<(), Fail> {
    let disk = shared.disk.clone();
    tokio::task::spawn_blocking(move || disk.check(incoming))
        .await
        .map_err(|_| Fail::internal("could not check the free space"))?
}
