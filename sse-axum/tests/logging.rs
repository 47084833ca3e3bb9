//! The library's `tracing` events, captured by a real subscriber while a real axum server
//! answers a real client on 127.0.0.1: each logged once, with its fields, and never a payload,
//! a token or a client's raw `Last-Event-ID`.
#![allow(clippy::unwrap_used)]

use sse_testkit::logs as log_capture;

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use sse_axum::{LastEventId, SseResponse, SubscribeRejection};
use sse_core::hub::{Access, SubscribeOptions, TopicConfig, TopicOptions};
use sse_core::{Event, Hub};
use sse_testkit::sse::{get as http_get, SseClient};

const TOKEN: &str = "TOKEN-s3cr3t-4f9a";
const CLIENT_ID: &str = "LEID-c0ntr0l-77";
const PAYLOAD: &str = "PAYLOAD-pr1vate-data";

/// `GET /events/{topic}`: the bearer token is the user key (as an app that checks it in the
/// access hook would pass it).
async fn events(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
    LastEventId(last): LastEventId,
    headers: HeaderMap,
) -> Result<SseResponse, SubscribeRejection> {
    let mut opts = SubscribeOptions::topic(topic).last_event_id(last);
    if let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        opts = opts.user(token);
    }
    sse_axum::subscribe(&hub, opts).await
}

/// `GET /stream`: a user stream whose middle item is an error.
async fn user_stream() -> impl IntoResponse {
    let items: Vec<Result<Event<'static>, String>> = vec![
        Ok(Event::new().event("row").data(format!("{PAYLOAD}-1"))),
        Err("backend timed out after 3 retries".to_owned()),
        Ok(Event::new().event("row").data(format!("{PAYLOAD}-2"))),
    ];
    SseResponse::from_stream(futures_util::stream::iter(items)).heartbeat(None)
}

async fn serve(hub: &Hub) -> SocketAddr {
    let app = Router::new()
        .route("/events/{topic}", get(events))
        .route("/stream", get(user_stream))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn hub() -> Hub {
    Hub::builder()
        .authorize(|req| {
            if req.topic == "secret" {
                Access::Hidden
            } else {
                Access::Allow
            }
        })
        .build()
}

#[tokio::test]
async fn a_refused_subscribe_logs_one_line_with_its_status_and_reason_and_no_credentials() {
    let logs = log_capture::start().await;
    let hub = hub();
    hub.create_topic(
        "full",
        TopicOptions::new().config(TopicConfig::default().max_subscribers(1)),
    )
    .unwrap();
    let addr = serve(&hub).await;
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("last-event-id", CLIENT_ID),
    ];

    let res = http_get(&format!("http://{addr}/events/secret"), &headers).await;
    assert_eq!(res.status(), 404);
    let refused = logs.with_message("subscribe refused");
    assert_eq!(refused.len(), 1, "{}", logs.raw());
    assert_eq!(refused[0]["level"], "DEBUG");
    assert_eq!(refused[0]["fields"]["status"], 404);
    assert_eq!(refused[0]["fields"]["reason"], "topic not found");

    // A limit reached is an operator's business: `info`.
    let first = http_get(&format!("http://{addr}/events/full"), &headers).await;
    assert_eq!(first.status(), 200);
    let second = http_get(&format!("http://{addr}/events/full"), &headers).await;
    assert_eq!(second.status(), 429);
    let refused = logs.with_message("subscribe refused");
    assert_eq!(refused.len(), 2, "{}", logs.raw());
    assert_eq!(refused[1]["level"], "INFO");
    assert_eq!(refused[1]["fields"]["status"], 429);
    assert_eq!(
        refused[1]["fields"]["reason"],
        "too many subscribers on this topic (limit 1)"
    );

    // The accepted one: the parsed position (the client's id is not one this topic issued),
    // its length, never its text.
    let subscribed = logs.with_message("subscribed");
    assert_eq!(subscribed.len(), 1, "{}", logs.raw());
    let f = &subscribed[0]["fields"];
    assert_eq!(subscribed[0]["level"], "DEBUG");
    assert_eq!(f["topic"], "full");
    assert_eq!(f["resume"], "foreign");
    assert_eq!(f["last_event_id_len"], CLIENT_ID.len());
    assert_eq!(f["gap"], true);
    assert_eq!(f["subscribers"], 1);

    let raw = logs.raw();
    assert!(!raw.contains(TOKEN), "a token reached the log: {raw}");
    assert!(
        !raw.contains(CLIENT_ID),
        "a raw Last-Event-ID reached the log: {raw}"
    );
    drop(first);
}

#[tokio::test]
async fn a_user_streams_error_is_logged_once_as_a_warning_without_the_events_data() {
    let logs = log_capture::start().await;
    let hub = hub();
    let addr = serve(&hub).await;

    let mut client = SseClient::new(http_get(&format!("http://{addr}/stream"), &[]).await);
    let events = client.rest().await;
    assert_eq!(events.len(), 2);
    assert!(
        client
            .raw()
            .contains(": event dropped: backend timed out after 3 retries\n\n"),
        "{}",
        client.raw()
    );

    let warned = logs.with_message("user stream yielded an error: sent as a comment");
    assert_eq!(warned.len(), 1, "{}", logs.raw());
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(
        warned[0]["fields"]["error"],
        "backend timed out after 3 retries"
    );
    let raw = logs.raw();
    assert!(
        !raw.contains(PAYLOAD),
        "an event's data reached the log: {raw}"
    );
}

#[tokio::test]
async fn dropped_job_publishers_log_one_warning_each_naming_the_job_and_whether_it_panicked() {
    let logs = log_capture::start().await;
    let hub = hub();
    let addr = serve(&hub).await;

    for (id, panics) in [("job-crashed", true), ("job-returned", false)] {
        let job = hub.job(id).unwrap();
        job.progress(&serde_json::json!({ "secret": PAYLOAD }))
            .await
            .unwrap();
        let mut client = SseClient::new(http_get(&format!("http://{addr}/events/{id}"), &[]).await);
        assert_eq!(client.event().await.unwrap().event, "progress");
        // The worker thread ends without finishing its job: by a panic, or by returning early.
        let worker = std::thread::spawn(move || {
            let _job = job;
            if panics {
                panic!("worker crashed (expected by this test)");
            }
        });
        assert_eq!(worker.join().is_err(), panics);
        let end = client.rest().await;
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].event, "failed");
    }

    let warned = logs.with_message("job failed: its publisher was dropped without finishing it");
    assert_eq!(warned.len(), 2, "{}", logs.raw());
    for (line, (id, panicked)) in warned
        .iter()
        .zip([("job-crashed", true), ("job-returned", false)])
    {
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["job"], id);
        assert_eq!(line["fields"]["panicked"], panicked);
    }
    let raw = logs.raw();
    assert!(
        !raw.contains(PAYLOAD),
        "an event's data reached the log: {raw}"
    );
}
