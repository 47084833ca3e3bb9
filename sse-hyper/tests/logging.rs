//! Log lines of the hyper adapter and of a graceful shutdown, captured by a real `tracing`
//! subscriber while `sse_hyper::serve_with` answers a real client on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use sse_testkit::logs as log_capture;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use sse_core::hub::SubscribeOptions;
use sse_core::Hub;
use sse_hyper::{ServeOptions, SseResponseBody};
use sse_testkit::sse::{get, SseClient};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

async fn handle(hub: Hub, req: Request<Incoming>) -> Result<Response<SseResponseBody>, Infallible> {
    let topic = req.uri().path().trim_start_matches("/events/").to_owned();
    let opts = SubscribeOptions::topic(topic).last_event_id(sse_hyper::last_event_id(&req));
    Ok(sse_hyper::subscribe(&hub, opts).await)
}

async fn serve(hub: &Hub) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = hyper::service::service_fn({
        let hub = hub.clone();
        move |req| handle(hub.clone(), req)
    });
    let (stop, rx) = oneshot::channel::<()>();
    let options = ServeOptions::default().shutdown_deadline(Duration::from_secs(2));
    let task = tokio::spawn(sse_hyper::serve_with(
        listener,
        service,
        hub.clone(),
        async {
            let _ = rx.await;
        },
        options,
    ));
    (addr, stop, task)
}

#[tokio::test]
async fn a_refused_subscribe_logs_one_line_with_its_status_and_reason() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    let (addr, stop, task) = serve(&hub).await;

    let res = get(
        &format!("http://{addr}/events/nowhere"),
        &[("last-event-id", "LEID-9z9z")],
    )
    .await;
    assert_eq!(res.status(), 404);
    let refused = logs.with_message("subscribe refused");
    assert_eq!(refused.len(), 1, "{}", logs.raw());
    assert_eq!(refused[0]["level"], "DEBUG");
    assert_eq!(refused[0]["fields"]["status"], 404);
    assert_eq!(refused[0]["fields"]["reason"], "topic not found");
    assert!(!logs.raw().contains("LEID-9z9z"), "{}", logs.raw());

    stop.send(()).unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap());
}

#[tokio::test]
async fn a_graceful_shutdown_logs_when_it_begins_and_when_it_is_done() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    hub.topic("news").unwrap();
    let (addr, stop, task) = serve(&hub).await;
    let mut client = SseClient::new(get(&format!("http://{addr}/events/news"), &[]).await);
    assert!(client.chunk().await.is_some());

    stop.send(()).unwrap();
    assert!(client.rest().await.is_empty());
    assert!(
        client.raw().contains(": server shutting down\n"),
        "{}",
        client.raw()
    );
    drop(client);
    let clean = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(clean);

    let server_begun = logs.with_message("server shutdown begun");
    assert_eq!(server_begun.len(), 1, "{}", logs.raw());
    assert_eq!(server_begun[0]["level"], "INFO");
    assert_eq!(server_begun[0]["fields"]["connections"], 1);
    assert_eq!(server_begun[0]["fields"]["deadline_ms"], 2000);
    let hub_begun = logs.with_message("hub shutdown begun");
    assert_eq!(hub_begun.len(), 1, "{}", logs.raw());
    assert_eq!(hub_begun[0]["level"], "INFO");
    assert_eq!(hub_begun[0]["fields"]["subscribers"], 1);
    assert_eq!(hub_begun[0]["fields"]["topics"], 1);
    let done = logs.with_message("server shutdown done");
    assert_eq!(done.len(), 1, "{}", logs.raw());
    assert_eq!(done[0]["level"], "INFO");
    assert_eq!(done[0]["fields"]["clean"], true);
    assert_eq!(done[0]["fields"]["closed_at_deadline"], 0);
}
