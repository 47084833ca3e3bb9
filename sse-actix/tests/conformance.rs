//! The shared conformance suite (`sse_testkit::conformance`) against a real actix-web server
//! built as the crate docs show, on its own actix system thread.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::{web, App, Either, HttpRequest, HttpResponse, HttpServer, Responder};
use futures_util::StreamExt;
use sse_actix::{LastEventId, Negotiate, SseResponse, SubscribeRejection};
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub};
use sse_testkit::conformance::{Adapter, Running};

async fn events(
    req: HttpRequest,
    hub: web::Data<Hub>,
    topic: web::Path<String>,
    last: LastEventId,
) -> Result<SseResponse, SubscribeRejection> {
    let mut opts = SubscribeOptions::topic(topic.into_inner()).last_event_id(last.0);
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        opts = opts.user(user);
    }
    sse_actix::subscribe(&hub, opts).await
}

async fn prefixed(
    hub: web::Data<Hub>,
    topic: web::Path<String>,
    last: LastEventId,
) -> Result<SseResponse, SubscribeRejection> {
    let topic = topic.into_inner();
    let hello = Event::new()
        .event("initial_status")
        .data(format!("hello {topic}"))
        .encode()
        .unwrap();
    let opts = SubscribeOptions::topic(topic).last_event_id(last.0);
    Ok(sse_actix::subscribe(&hub, opts).await?.prefix([hello]))
}

/// Content negotiation: the state as JSON, or a stream of it.
async fn status(
    hub: web::Data<Hub>,
    topic: web::Path<String>,
    negotiate: Negotiate,
) -> Either<Result<SseResponse, SubscribeRejection>, HttpResponse> {
    let topic = topic.into_inner();
    if negotiate.is_event_stream() {
        return Either::Left(sse_actix::subscribe(&hub, topic).await);
    }
    Either::Right(match hub.get_topic(&topic) {
        Some(t) => HttpResponse::Ok().json(serde_json::json!({ "last_seq": t.last_seq() })),
        None => HttpResponse::NotFound().finish(),
    })
}

async fn custom() -> impl Responder {
    SseResponse::from_stream(futures_util::stream::pending::<Event<'static>>())
        .retry(Duration::from_millis(1500))
        .cache_control(HeaderValue::from_static("no-store"))
        .heartbeat(Some(Duration::from_millis(50)))
}

async fn results() -> impl Responder {
    let items: Vec<Result<Event<'static>, &'static str>> = vec![
        Ok(Event::new().data("a")),
        Err("boom"),
        Ok(Event::new().data("b")),
    ];
    SseResponse::from_stream(futures_util::stream::iter(items))
}

async fn upload(body: String) -> impl Responder {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event<'static>>(8);
    actix_web::rt::spawn(async move {
        for page in 1..=3 {
            let ev = Event::new()
                .event("progress")
                .id(page.to_string())
                .data(format!("{page}/3 of {} bytes", body.len()));
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
    SseResponse::from_stream(Box::pin(stream.fuse()))
}

struct Actix;

impl Adapter for Actix {
    async fn start(hub: Hub) -> Running {
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(hub.clone());
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/events/{topic}", web::get().to(events))
                        .route("/prefixed/{topic}", web::get().to(prefixed))
                        .route("/status/{topic}", web::get().to(status))
                        .route("/custom", web::get().to(custom))
                        .route("/results", web::get().to(results))
                        .route("/upload", web::post().to(upload))
                })
                .workers(1)
                .h1_allow_half_closed(false)
                .shutdown_signal(sse_actix::shutdown_signal(hub, async move {
                    let _ = stop_rx.await;
                }))
                .bind(("127.0.0.1", 0))
                .unwrap();
                let _ = addr_tx.send(server.addrs()[0]);
                let _ = server.run().await;
                let _ = exit_tx.send(());
            });
        });
        let addr = addr_rx.await.unwrap();
        Running {
            addr,
            stop: Box::new(move || {
                let _ = stop_tx.send(());
            }),
            exited: Box::pin(async move {
                let _ = exit_rx.await;
            }),
        }
    }
}

sse_testkit::conformance_tests!(Actix);
