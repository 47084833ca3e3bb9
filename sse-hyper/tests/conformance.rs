//! The shared conformance suite (`sse_testkit::conformance`) against `sse_hyper::serve`, with
//! a service written as the crate docs show (one boxed body type for streams and fixed bodies).
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use sse_core::http::Negotiated;
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub, StreamResponse};
use sse_testkit::conformance::{Adapter, Running};

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn fixed(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()).boxed_unsync());
    *res.status_mut() = status;
    res
}

async fn handle(hub: Hub, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET {
        if let Some(topic) = path.strip_prefix("/events/") {
            let mut opts =
                SubscribeOptions::topic(topic).last_event_id(sse_hyper::last_event_id(&req));
            if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
                opts = opts.user(user);
            }
            return Ok(sse_hyper::subscribe(&hub, opts)
                .await
                .map(BodyExt::boxed_unsync));
        }
        if let Some(topic) = path.strip_prefix("/prefixed/") {
            let hello = Event::new()
                .event("initial_status")
                .data(format!("hello {topic}"))
                .encode()
                .unwrap();
            let opts = SubscribeOptions::topic(topic).last_event_id(sse_hyper::last_event_id(&req));
            return Ok(sse_hyper::subscribe(&hub, opts)
                .await
                .map(|b| b.prefix([hello]).boxed_unsync()));
        }
        if let Some(topic) = path.strip_prefix("/status/") {
            if sse_hyper::negotiate(&req) == Negotiated::EventStream {
                return Ok(sse_hyper::subscribe(&hub, topic)
                    .await
                    .map(BodyExt::boxed_unsync));
            }
            let Some(t) = hub.get_topic(topic) else {
                return Ok(fixed(StatusCode::NOT_FOUND, ""));
            };
            let json = serde_json::json!({ "last_seq": t.last_seq() }).to_string();
            let mut res = fixed(StatusCode::OK, json);
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return Ok(res);
        }
        if path == "/custom" {
            let res =
                StreamResponse::from_stream(futures_util::stream::pending::<Event<'static>>())
                    .retry(Duration::from_millis(1500))
                    .cache_control(http::HeaderValue::from_static("no-store"))
                    .heartbeat(Some(Duration::from_millis(50)))
                    .into_http();
            return Ok(res.map(BodyExt::boxed_unsync));
        }
        if path == "/results" {
            let items: Vec<Result<Event<'static>, &'static str>> = vec![
                Ok(Event::new().data("a")),
                Err("boom"),
                Ok(Event::new().data("b")),
            ];
            let res = sse_hyper::stream_response(futures_util::stream::iter(items));
            return Ok(res.map(BodyExt::boxed_unsync));
        }
    }
    if req.method() == Method::POST && path == "/upload" {
        let size = req.into_body().collect().await.unwrap().to_bytes().len();
        let (tx, rx) = tokio::sync::mpsc::channel::<Event<'static>>(8);
        tokio::spawn(async move {
            for page in 1..=3 {
                let ev = Event::new()
                    .event("progress")
                    .id(page.to_string())
                    .data(format!("{page}/3 of {size} bytes"));
                if tx.send(ev).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = tx.send(Event::new().event("completed").data("done")).await;
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let ev = rx.recv().await?;
            Some((ev, rx))
        });
        let res = sse_hyper::stream_response(Box::pin(stream.fuse()));
        return Ok(res.map(BodyExt::boxed_unsync));
    }
    Ok(fixed(StatusCode::NOT_FOUND, ""))
}

struct Hyper;

impl Adapter for Hyper {
    async fn start(hub: Hub) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let service = service_fn({
            let hub = hub.clone();
            move |req| handle(hub.clone(), req)
        });
        let signal = async {
            let _ = rx.await;
        };
        let task = tokio::spawn(sse_hyper::serve(
            listener,
            service,
            hub,
            signal,
            Duration::from_secs(2),
        ));
        Running {
            addr,
            stop: Box::new(move || {
                let _ = stop.send(());
            }),
            exited: Box::pin(async move {
                let _ = task.await;
            }),
        }
    }
}

sse_testkit::conformance_tests!(Hyper);
