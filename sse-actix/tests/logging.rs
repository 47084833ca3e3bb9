//! The refusal log line and the user-stream warning under actix-web, captured by a real
//! `tracing` subscriber while a real actix server answers a real client on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;
use sse_testkit::logs as log_capture;

use common::{get, start, Reader};
use sse_core::Hub;

#[actix_web::test]
async fn a_refused_subscribe_logs_one_line_with_its_status_and_reason() {
    let logs = log_capture::start().await;
    let hub = Hub::builder().max_subscriptions_per_user(1).build();
    hub.topic("open").unwrap();
    let server = start(&hub, false);

    let res = get(&server.url("/events/missing"), &[]).await;
    assert_eq!(res.status(), 404);
    let refused = logs.with_message("subscribe refused");
    assert_eq!(refused.len(), 1, "{}", logs.raw());
    assert_eq!(refused[0]["level"], "DEBUG");
    assert_eq!(refused[0]["fields"]["status"], 404);
    assert_eq!(refused[0]["fields"]["reason"], "topic not found");

    let user = [("x-user", "USER-k3y-91")];
    let first = Reader::open(&server.url("/events/open"), &user).await;
    let res = get(&server.url("/events/open"), &user).await;
    assert_eq!(res.status(), 429);
    let refused = logs.with_message("subscribe refused");
    assert_eq!(refused.len(), 2, "{}", logs.raw());
    assert_eq!(refused[1]["level"], "INFO");
    assert_eq!(refused[1]["fields"]["status"], 429);
    assert_eq!(
        refused[1]["fields"]["reason"],
        "too many subscriptions for this user (limit 1)"
    );
    assert!(!logs.raw().contains("USER-k3y-91"), "{}", logs.raw());
    drop(first);
    server.stop().await;
}

#[actix_web::test]
async fn a_user_streams_error_is_logged_once_as_a_warning() {
    let logs = log_capture::start().await;
    let hub = Hub::new();
    let server = start(&hub, false);

    let mut reader = Reader::open(&server.url("/stream"), &[]).await;
    let mut body = Vec::new();
    for _ in 0..100 {
        match reader.chunk(common::PROMPT).await {
            Some(c) => body.extend_from_slice(&c),
            None => break,
        }
    }
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains(": event dropped: boom\n\n"), "{body}");

    let warned = logs.with_message("user stream yielded an error: sent as a comment");
    assert_eq!(warned.len(), 1, "{}", logs.raw());
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["fields"]["error"], "boom");
    // The stream's events (`data: hello`, `data: world`) are not logged.
    assert!(!logs.raw().contains("hello"), "{}", logs.raw());
    server.stop().await;
}
