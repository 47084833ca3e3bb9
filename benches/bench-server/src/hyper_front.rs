//! The hyper front end: hyper 1's HTTP/1.1 server connection with `SseBody` as the body.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::app::{App, Body as StreamBody, Reply, Request, CORS, PREFLIGHT};

type Body = Either<StreamBody, Full<Bytes>>;

pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                super::raw::accept_error(e).await?;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(handle(&app, req).await) }
            }),
        );
        tokio::spawn(async move {
            // A client that goes away mid-stream is an error for hyper, and normal here.
            let _ = conn.await;
        });
    }
}

async fn handle(app: &App, req: hyper::Request<Incoming>) -> Response<Body> {
    let query = req.uri().query();
    let last_event_id = sse_core::http::last_event_id(req.headers(), query);
    let reply = app
        .handle(Request {
            method: req.method().as_str(),
            path: req.uri().path(),
            query,
            last_event_id,
        })
        .await;
    let mut resp = match reply {
        Reply::Stream(body) => {
            let mut resp = Response::new(Either::Left(body));
            for (k, v) in sse_core::http::stream_headers() {
                resp.headers_mut().insert(k, v);
            }
            resp
        }
        Reply::Preflight => {
            let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
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
            let mut resp = Response::new(Either::Right(Full::new(body)));
            *resp.status_mut() = status;
            if !empty {
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            resp
        }
    };
    resp.headers_mut()
        .insert(CORS.0, HeaderValue::from_static(CORS.1));
    resp
}
