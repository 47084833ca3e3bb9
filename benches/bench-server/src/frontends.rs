//! The front ends built on the project's adapters, each written the way its crate docs tell a
//! user to: the stream route calls the adapter's `subscribe` front door, everything else
//! (`/pub`, `/finish`, `/stats`, preflights, errors) goes to the protocol logic in `app`.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;

use super::app::{App, Reply, Request, CORS, PREFLIGHT};

/// A request's parts as the protocol logic reads them.
fn request<'a>(method: &'a str, uri: &'a http::Uri, headers: &http::HeaderMap) -> Request<'a> {
    Request {
        method,
        path: uri.path(),
        query: uri.query(),
        last_event_id: sse_core::http::last_event_id(headers, uri.query()),
    }
}

/// A non-stream reply as an `http` response (streams are served by the adapters).
fn fixed(reply: Reply) -> http::Response<Full<Bytes>> {
    let mut resp = match reply {
        Reply::Preflight => {
            let mut resp = http::Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            for (k, v) in PREFLIGHT {
                resp.headers_mut().insert(k, HeaderValue::from_static(v));
            }
            resp
        }
        Reply::Full {
            status,
            content_type,
            body,
        } => {
            let empty = body.is_empty();
            let mut resp = http::Response::new(Full::new(body));
            *resp.status_mut() = status;
            if !empty {
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            resp
        }
        // Only `/sub` streams, and each front end routes it to its adapter first.
        Reply::Stream(_) => {
            let mut resp = http::Response::new(Full::new(Bytes::from_static(
                b"streams are served on GET /sub/TOPIC\n",
            )));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    };
    resp.headers_mut()
        .insert(CORS.0, HeaderValue::from_static(CORS.1));
    resp
}

/// `FRONTEND=axum`: a `Router` served by `axum::serve`, the stream route calling
/// `sse_axum::subscribe`.
pub(crate) mod axum_front {
    use super::*;
    use axum::extract::{Path, State};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use sse_axum::LastEventId;

    async fn sub(
        State(app): State<Arc<App>>,
        Path(topic): Path<String>,
        LastEventId(last): LastEventId,
    ) -> Response {
        let Some(opts) = app.subscribe_options(&topic, last) else {
            return other_path(&app, "GET", &format!("/sub/{topic}")).await;
        };
        let mut resp = sse_axum::subscribe(app.hub(), opts).await.into_response();
        resp.headers_mut()
            .insert(CORS.0, HeaderValue::from_static(CORS.1));
        resp
    }

    async fn other_path(app: &App, method: &str, path: &str) -> Response {
        let uri: http::Uri = path.parse().unwrap_or_default();
        let reply = app
            .handle(request(method, &uri, &http::HeaderMap::new()))
            .await;
        fixed(reply).into_response()
    }

    async fn other(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
        let reply = app
            .handle(request(req.method().as_str(), req.uri(), req.headers()))
            .await;
        fixed(reply).into_response()
    }

    pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
        let router = Router::new()
            .route("/sub/{topic}", axum::routing::get(sub).fallback(other))
            .fallback(other)
            .with_state(app);
        axum::serve(listener, router).await
    }
}

/// `FRONTEND=hyper`: a `service_fn` served by `sse_hyper::serve`, the stream route calling
/// `sse_hyper::subscribe`.
pub(crate) mod hyper_front {
    use super::*;
    use hyper::body::Incoming;

    type Body = UnsyncBoxBody<Bytes, Infallible>;

    async fn handle(app: Arc<App>, req: hyper::Request<Incoming>) -> http::Response<Body> {
        let path = req.uri().path();
        if req.method() == http::Method::GET {
            if let Some(topic) = path.strip_prefix("/sub/") {
                let last = sse_hyper::last_event_id(&req);
                if let Some(opts) = app.subscribe_options(topic, last) {
                    let mut resp = sse_hyper::subscribe(app.hub(), opts)
                        .await
                        .map(BodyExt::boxed_unsync);
                    resp.headers_mut()
                        .insert(CORS.0, HeaderValue::from_static(CORS.1));
                    return resp;
                }
            }
        }
        let reply = app
            .handle(request(req.method().as_str(), req.uri(), req.headers()))
            .await;
        fixed(reply).map(BodyExt::boxed_unsync)
    }

    pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
        let hub = app.hub().clone();
        let service = hyper::service::service_fn(move |req| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(handle(app, req).await) }
        });
        // The defaults, but for the connection cap: the bench opens 10,000 idle streams and
        // more, as a server sized for them would allow.
        let options = sse_hyper::ServeOptions::default().max_connections(Some(200_000));
        sse_hyper::serve_with(listener, service, hub, std::future::pending(), options).await;
        Ok(())
    }
}

/// `FRONTEND=actix`: an `HttpServer` with one worker on its own actix system thread (as
/// `#[actix_web::main]` would run it), the stream route calling `sse_actix::subscribe`.
pub(crate) mod actix_front {
    use super::*;
    use actix_web::middleware::DefaultHeaders;
    use actix_web::{web, Either, HttpRequest, HttpResponse};
    use sse_actix::{LastEventId, SseResponse, SubscribeRejection};

    type Stream = Either<Result<SseResponse, SubscribeRejection>, HttpResponse>;

    async fn sub(app: web::Data<Arc<App>>, topic: web::Path<String>, last: LastEventId) -> Stream {
        let topic = topic.into_inner();
        match app.subscribe_options(&topic, last.0) {
            Some(opts) => Either::Left(sse_actix::subscribe(app.hub(), opts).await),
            None => {
                let uri: http::Uri = format!("/sub/{topic}").parse().unwrap_or_default();
                let reply = app
                    .handle(request("GET", &uri, &http::HeaderMap::new()))
                    .await;
                Either::Right(respond(reply))
            }
        }
    }

    /// A non-stream reply as an actix response (CORS comes from the `DefaultHeaders` layer).
    fn respond(reply: Reply) -> HttpResponse {
        let status = |s: StatusCode| {
            actix_web::http::StatusCode::from_u16(s.as_u16())
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
        };
        match reply {
            Reply::Preflight => {
                let mut out = HttpResponse::NoContent();
                for (k, v) in PREFLIGHT {
                    out.insert_header((k, v));
                }
                out.finish()
            }
            Reply::Full {
                status: s,
                content_type,
                body,
            } => {
                let mut out = HttpResponse::build(status(s));
                if body.is_empty() {
                    out.finish()
                } else {
                    out.content_type(content_type).body(body)
                }
            }
            Reply::Stream(_) => {
                HttpResponse::NotFound().body("streams are served on GET /sub/TOPIC\n")
            }
        }
    }

    async fn other(app: web::Data<Arc<App>>, req: HttpRequest) -> HttpResponse {
        let mut headers = http::HeaderMap::new();
        if let Some(v) = req
            .headers()
            .get("last-event-id")
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            headers.insert("last-event-id", v);
        }
        let uri: http::Uri = req.uri().to_string().parse().unwrap_or_default();
        let reply = app
            .handle(request(req.method().as_str(), &uri, &headers))
            .await;
        respond(reply)
    }

    pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
        let listener = listener.into_std()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<io::Result<()>>();
        std::thread::Builder::new()
            .name("bench-server-actix".into())
            .spawn(move || {
                let res = actix_web::rt::System::new().block_on(async move {
                    let data = web::Data::new(app);
                    actix_web::HttpServer::new(move || {
                        actix_web::App::new()
                            .wrap(DefaultHeaders::new().add(CORS))
                            .app_data(data.clone())
                            .route("/sub/{topic}", web::get().to(sub))
                            .default_service(web::to(other))
                    })
                    .workers(1)
                    // Notice a client that went away at once (see sse-actix's docs).
                    .h1_allow_half_closed(false)
                    .disable_signals()
                    .listen(listener)?
                    .run()
                    .await
                });
                let _ = done_tx.send(res);
            })?;
        done_rx
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the actix server thread died")))
    }
}
