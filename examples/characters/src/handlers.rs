//! HTTP handlers of the characters app.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Responder, ResponseError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use sse_actix::{LastEventId, SubscribeRejection};
use sse_core::hub::{SubscribeError, SubscribeOptions};
use sse_core::{Event, Frame};
use sse_examples_support::stream_auth::is_stream_token;
use sse_examples_support::{is_hex_id, ApiError};

use crate::auth::{valid_user, AuthError, Tokens, COOKIE};
use crate::jobs::{
    ensure_user_topic, message, submit, user_topic, JobInput, JobKind, MediaRequest, SubmitError,
};
use crate::sheet::CharacterRequest;
use crate::Shared;

type State = web::Data<Shared>;
type Reply = Result<HttpResponse, actix_web::Error>;

const PAGE: &str = include_str!("../static/index.html");

/// Registers every route.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/", "/index.html"]).route(web::get().to(index)))
        .service(web::resource("/api/v1/auth/token").route(web::post().to(issue_token)))
        .service(web::resource("/api/v1/characters/jobs").route(web::post().to(create_character)))
        .service(
            web::resource("/api/v1/characters/jobs/{job_id}").route(web::get().to(poll_character)),
        )
        .service(web::resource("/api/v1/media/jobs").route(web::post().to(create_media)))
        .service(web::resource("/api/v1/media/jobs/{job_id}").route(web::get().to(poll_media)))
        .service(web::resource("/api/v1/media/files/{file}").route(web::get().to(media_file)))
        .service(
            web::resource("/api/v1/sse/jobs/character/{job_id}")
                .route(web::get().to(sse_character)),
        )
        .service(web::resource("/api/v1/sse/jobs/media/{job_id}").route(web::get().to(sse_media)))
        .service(web::resource("/api/v1/sse/jobs/my").route(web::get().to(sse_my)))
        .service(
            web::resource("/api/v1/sse/connections/status").route(web::get().to(connection_status)),
        )
        .default_service(web::to(not_found));
}

/// An error answered as `{"success": false, "error": message}`: the shared [`ApiError`] with
/// the field this app's clients read.
fn fail(status: StatusCode, message: impl Into<String>) -> ApiError {
    let status = sse_examples_support::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(sse_examples_support::http::StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, message).with("success", false)
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        fail(StatusCode::UNAUTHORIZED, e.message())
    }
}

fn auth(state: &Shared, req: &HttpRequest) -> Result<String, ApiError> {
    Ok(state.tokens.authenticate(req)?)
}

/// The user of a stream request, whose topic is `topic_of(user)`: a signed stream token
/// (`support::stream_auth`, checked for that topic: 403 for another stream's), or an API token.
fn stream_user(
    state: &Shared,
    req: &HttpRequest,
    topic_of: impl FnOnce(&str) -> String,
) -> Result<String, ApiError> {
    let token = Tokens::token(req)?;
    if !is_stream_token(&token) {
        return Ok(state.tokens.user(&token).ok_or(AuthError::Invalid)?);
    }
    let grant = state
        .stream_auth
        .verify(&token)
        .map_err(|e| e.with("success", false))?;
    let user = grant.user.clone().unwrap_or_default();
    if user.is_empty() || !grant.allows(&topic_of(&user)) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "this stream token is for another stream",
        ));
    }
    Ok(user)
}

/// Parses a JSON body, with a message that says what is wrong.
fn parse_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(fail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("expected `Content-Type: application/json`, got {ct:?}"),
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn frame(event: &Event<'_>) -> Option<Frame> {
    event.encode().ok()
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    fail(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
}

/// `POST /api/v1/auth/token {"user": "alice"}`: a demo login that issues a token for any valid
/// user name, in the JSON answer and as the `sse_token` cookie. Off (403) unless
/// [`crate::Config::insecure_demo_login`]; tokens expire after
/// [`crate::Config::login_token_ttl`].
async fn issue_token(req: HttpRequest, state: State, body: web::Bytes) -> Reply {
    if !state.config.insecure_demo_login {
        return Err(fail(
            StatusCode::FORBIDDEN,
            format!(
                "the demo login is off: it gives anyone any user's identity. Use a preset token, \
                 or start the server with {}=1 for a demo",
                crate::INSECURE_DEMO_LOGIN_ENV
            ),
        )
        .into());
    }
    let t: TokenRequest = parse_json(&req, &body)?;
    let user = t.user.trim();
    if !valid_user(user) {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "`user` must be 1 to 32 characters: letters, digits, `_`, `-` or `.`",
        )
        .into());
    }
    let token = state
        .tokens
        .issue(user)
        .map_err(|e| fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let ttl = state.config.login_token_ttl;
    // Whole seconds, rounded up: a cookie with `Max-Age=0` would be deleted at once.
    let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let cookie = Cookie::build(COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        ))
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(json!({
        "success": true,
        "data": { "token": token, "user": user, "expiresIn": ttl_secs }
    })))
}

fn accepted(state: &Shared, user: &str, view: &crate::jobs::JobView) -> HttpResponse {
    let base = &state.config.base_path;
    let kind = view.job_type.name();
    let poll = match view.job_type {
        JobKind::Character => format!("{base}/api/v1/characters/jobs/{}", view.job_id),
        JobKind::Media => format!("{base}/api/v1/media/jobs/{}", view.job_id),
    };
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, poll.clone()))
        .json(json!({
            "success": true,
            "data": {
                "jobId": view.job_id,
                "jobType": kind,
                "status": view.status,
                "createdAt": view.created_at,
                "streamUrl": format!("{base}/api/v1/sse/jobs/{kind}/{}", view.job_id),
                "pollUrl": poll,
                "streamToken": state
                    .stream_auth
                    .mint(user, [view.job_type.topic(user, &view.job_id)]),
            }
        }))
}

fn submit_job(state: &State, user: &str, input: JobInput) -> Reply {
    let shared: Arc<Shared> = state.clone().into_inner();
    match submit(&shared, user, input) {
        Ok(view) => Ok(accepted(state, user, &view)),
        Err(SubmitError::Refused(e)) => Err(e.with("success", false).into()),
        Err(SubmitError::Hub(e)) => Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot queue the job: {e}"),
        )
        .into()),
    }
}

/// `POST /api/v1/characters/jobs {"name", "class"?, "race"?, "seed"?}` → 202 with the job id.
async fn create_character(req: HttpRequest, state: State, body: web::Bytes) -> Reply {
    let user = auth(&state, &req)?;
    let r: CharacterRequest = parse_json(&req, &body)?;
    r.validate().map_err(|m| fail(StatusCode::BAD_REQUEST, m))?;
    submit_job(&state, &user, JobInput::Character(r))
}

/// `POST /api/v1/media/jobs {"prompt", "width"?, "height"?, "style"?}` → 202 with the job id.
async fn create_media(req: HttpRequest, state: State, body: web::Bytes) -> Reply {
    let user = auth(&state, &req)?;
    let r: MediaRequest = parse_json(&req, &body)?;
    r.validate().map_err(|m| fail(StatusCode::BAD_REQUEST, m))?;
    submit_job(&state, &user, JobInput::Media(r))
}

fn poll(state: &Shared, req: &HttpRequest, kind: JobKind, id: &str) -> Reply {
    let user = auth(state, req)?;
    let view = state
        .jobs
        .get(id, Some(kind), &user)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "job not found"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "success": true, "data": view })))
}

/// `GET /api/v1/characters/jobs/{jobId}`: the polling endpoint that SSE replaces, kept for old
/// clients.
async fn poll_character(req: HttpRequest, state: State, id: web::Path<String>) -> Reply {
    poll(&state, &req, JobKind::Character, &id)
}

/// `GET /api/v1/media/jobs/{jobId}`.
async fn poll_media(req: HttpRequest, state: State, id: web::Path<String>) -> Reply {
    poll(&state, &req, JobKind::Media, &id)
}

/// `GET /api/v1/media/files/{jobId}.png`: a completed job's image, for its owner only.
async fn media_file(req: HttpRequest, state: State, file: web::Path<String>) -> Reply {
    let user = auth(&state, &req)?;
    let missing = || fail(StatusCode::NOT_FOUND, "file not found");
    let id = file.strip_suffix(".png").ok_or_else(missing)?;
    let path = state.jobs.file(id, &user).ok_or_else(missing)?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| missing())?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(bytes))
}

async fn sse_character(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    last: LastEventId,
) -> Reply {
    sse_job(&req, &state, JobKind::Character, &id, last.0).await
}

async fn sse_media(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    last: LastEventId,
) -> Reply {
    sse_job(&req, &state, JobKind::Media, &id, last.0).await
}

/// `GET /api/v1/sse/jobs/{character|media}/{jobId}`: `connected`, `initial_status` (new
/// connections), then every `job_update` until the job ends. Unknown job or another user's: 404.
///
/// A new connection starts from now (the job's state is its `initial_status`); a reconnect
/// resumes after its `Last-Event-ID`. A finished job that the hub has evicted still answers
/// (the hub keeps its final state): a new client gets it and the stream ends, a reconnect after
/// the final update gets 204.
async fn sse_job(
    req: &HttpRequest,
    state: &Shared,
    kind: JobKind,
    id: &str,
    last: Option<String>,
) -> Reply {
    let user = stream_user(state, req, |u| kind.topic(u, id))?;
    if !is_hex_id(id, 8) {
        return Err(fail(StatusCode::NOT_FOUND, "job not found").into());
    }
    let topic = kind.topic(&user, id);
    let fresh = last.is_none();
    let options = SubscribeOptions::topic(&topic)
        .user(&user)
        .last_event_id(last)
        .from_now();
    let stream = match sse_actix::subscribe(&state.hub, options).await {
        Ok(stream) => stream,
        // The API's JSON answer, for clients that are not an `EventSource`.
        Err(SubscribeRejection(SubscribeError::NotFound)) => {
            return Err(fail(StatusCode::NOT_FOUND, "job not found").into())
        }
        Err(e) => return Err(e.into()),
    };
    let mut prefix: Vec<Frame> = frame(&Event::new().json_owned(json!({
        "type": "connected",
        "jobId": id,
        "message": "Connected to job status stream",
    })))
    .into_iter()
    .collect();
    if fresh {
        // Read after subscribing: nothing published since can be missing from it.
        if let Some(view) = state.jobs.get(id, Some(kind), &user) {
            prefix.extend(frame(&message("initial_status", &view)));
        }
    }
    Ok(stream.prefix(prefix).respond_to(req).map_into_boxed_body())
}

/// `GET /api/v1/sse/jobs/my`: every job of the user on one connection.
///
/// One per-user topic (`user:{name}`) carries a copy of every `job_update` of the user's jobs,
/// so jobs created after the connection opened appear on it too (a multi-topic subscription
/// would be fixed to the jobs that existed when it started, and would end once they all had).
/// `Last-Event-ID` resumes it exactly.
async fn sse_my(req: HttpRequest, state: State, last: LastEventId) -> Reply {
    let user = stream_user(&state, &req, user_topic)?;
    let topic =
        ensure_user_topic(&state, &user).map_err(|e| fail(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let fresh = last.0.is_none();
    let options = SubscribeOptions::topic(topic.name())
        .user(&user)
        .last_event_id(last.0)
        .from_now();
    let stream = sse_actix::subscribe(&state.hub, options).await?;
    let jobs = state.jobs.of_user(&user);
    let mut prefix: Vec<Frame> = frame(&Event::new().json_owned(json!({
        "type": "connected",
        "userId": user,
        "jobCount": jobs.len(),
        "message": "Connected to your job stream",
    })))
    .into_iter()
    .collect();
    if fresh {
        prefix.extend(
            jobs.iter()
                .filter_map(|j| frame(&message("initial_status", j))),
        );
    }
    Ok(stream.prefix(prefix).respond_to(&req).map_into_boxed_body())
}

/// `GET /api/v1/sse/connections/status`: connection and job counts; with a token, also the
/// caller's own connections against the per-user limit.
async fn connection_status(req: HttpRequest, state: State) -> HttpResponse {
    let hub = &state.hub;
    let [waiting, active, completed, failed] = state.jobs.counts();
    let user = state.tokens.authenticate(&req).ok().map(|u| {
        let mut topics = vec![user_topic(&u)];
        topics.extend(
            state
                .jobs
                .ids_of_user(&u)
                .into_iter()
                .map(|(id, kind)| kind.topic(&u, &id)),
        );
        let connections: usize = topics
            .iter()
            .filter_map(|t| hub.get_topic(t))
            .map(|t| t.subscriber_count())
            .sum();
        json!({ "userId": u, "connections": connections })
    });
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "success": true,
            "data": {
                "activeConnections": hub.subscriber_count(),
                "activeTopics": hub.topic_count(),
                "maxConnectionsPerUser": state.config.max_connections_per_user,
                "heartbeatSeconds": state.config.heartbeat.as_secs_f64(),
                "jobs": {
                    "waiting": waiting,
                    "active": active,
                    "completed": completed,
                    "failed": failed,
                },
                "workers": state.config.workers,
                "loginTokens": state.tokens.issued_len(),
                "user": user,
            }
        }))
}
