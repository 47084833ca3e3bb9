//! A stream route guarded by stream tokens, over a real socket: an axum server on 127.0.0.1 and
//! a real HTTP client.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::routing::get;
use axum::Router;
use sse_axum::{LastEventId, SseResponse, SubscribeRejection};
use sse_core::hub::SubscribeOptions;
use sse_core::{Event, Hub};
use sse_token::{Grant, TokenKey};

#[derive(Clone)]
struct AppState {
    hub: Hub,
    key: TokenKey,
}

async fn stream(
    State(app): State<AppState>,
    Path(topic): Path<String>,
    LastEventId(last): LastEventId,
    headers: HeaderMap,
    uri: Uri,
) -> Result<SseResponse, SubscribeRejection> {
    let grant = app
        .key
        .authorize(&headers, uri.query(), &topic)
        .map_err(|e| SubscribeRejection(e.subscribe_error()))?;
    let mut opts = SubscribeOptions::topic(topic).last_event_id(last);
    if let Some(user) = grant.user {
        opts = opts.user(user);
    }
    sse_axum::subscribe(&app.hub, opts).await
}

async fn start(hub: Hub, key: TokenKey) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/jobs/{topic}/events", get(stream))
        .with_state(AppState { hub, key });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn status(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    tokio::time::timeout(Duration::from_secs(5), req.send())
        .await
        .unwrap()
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opens_only_with_a_valid_token_for_its_topic() {
    let hub = Hub::new();
    let job = hub.topic("job-1").unwrap();
    hub.topic("job-2").unwrap();
    let key = TokenKey::generate().unwrap();
    let addr = start(hub.clone(), key.clone()).await;
    let base = format!("http://{addr}/jobs");
    let token = key.mint(&Grant::new(["job-1"], Duration::from_secs(60)).user("alice"));

    // No token, a forged one, one from another key: 401.
    assert_eq!(status(&format!("{base}/job-1/events"), &[]).await, 401);
    assert_eq!(
        status(&format!("{base}/job-1/events?token=v1.e30.AAAA"), &[]).await,
        401
    );
    let other = TokenKey::generate()
        .unwrap()
        .mint(&Grant::new(["job-1"], Duration::from_secs(60)));
    assert_eq!(
        status(&format!("{base}/job-1/events?token={other}"), &[]).await,
        401
    );
    // A valid token for another topic: 403.
    assert_eq!(
        status(&format!("{base}/job-2/events?token={token}"), &[]).await,
        403
    );
    // An expired token: 401 (the page fetches a new one).
    let mut expired = Grant::new(["job-1"], Duration::from_secs(60));
    expired.expires_at = SystemTime::now() - Duration::from_secs(1);
    let expired = key.mint(&expired);
    assert_eq!(
        status(&format!("{base}/job-1/events?token={expired}"), &[]).await,
        401
    );

    // In the query string (EventSource), as a cookie, or as a bearer header: the stream opens.
    let cookie = format!("sse_token={token}");
    let bearer = format!("Bearer {token}");
    for (url, headers) in [
        (format!("{base}/job-1/events?token={token}"), vec![]),
        (
            format!("{base}/job-1/events"),
            vec![("cookie", cookie.as_str())],
        ),
        (
            format!("{base}/job-1/events"),
            vec![("authorization", bearer.as_str())],
        ),
    ] {
        let mut req = reqwest::Client::new().get(&url);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url} {headers:?}");
        let first = resp.chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b": ok\n\n");
        assert_eq!(hub.get_topic("job-1").unwrap().subscriber_count(), 1);
        drop(resp);
        for _ in 0..200 {
            if job.subscriber_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    job.finish(Event::new().event("completed")).await.unwrap();
}
