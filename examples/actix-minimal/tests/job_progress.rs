#![allow(clippy::unwrap_used)]
//! The example over a real socket on 127.0.0.1: a job's stream to its end, a resume with
//! `Last-Event-ID`, the refusals, and the page in headless Chromium.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sse_core::{DecodedEvent, Hub};
use sse_testkit::browser;
use sse_testkit::sse::{get, SseClient};

async fn serve() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = sse_example_actix_minimal::serve(listener, Hub::new()).unwrap();
    tokio::spawn(server);
    base
}

async fn start_job(base: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn progress(evs: &[DecodedEvent]) -> Vec<u64> {
    evs.iter()
        .filter(|e| e.event == "progress")
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["progress"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_job_streams_rising_progress_up_to_100_then_completed_and_the_stream_ends() {
    let base = serve().await;
    let id = start_job(&base).await;
    let evs = SseClient::new(get(&format!("{base}/jobs/{id}/events"), &[]).await)
        .rest()
        .await;
    assert_eq!(
        evs.last().map(|e| e.event.as_str()),
        Some("completed"),
        "{evs:?}"
    );
    let p = progress(&evs);
    assert_eq!(p.last(), Some(&100), "{p:?}");
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_only_the_events_after_it() {
    let base = serve().await;
    let id = start_job(&base).await;
    let url = format!("{base}/jobs/{id}/events");
    let mut first = SseClient::new(get(&url, &[]).await);
    let seen = first.event().await.unwrap();
    drop(first);
    let last_id = seen.last_event_id.clone();
    let rest = SseClient::new(get(&url, &[("Last-Event-ID", &last_id)]).await)
        .rest()
        .await;
    let before = progress(std::slice::from_ref(&seen))[0];
    let after = progress(&rest);
    assert!(after.iter().all(|p| *p > before), "{before} then {after:?}");
    assert_eq!(rest.last().map(|e| e.event.as_str()), Some("completed"));
    // After the terminal event there is nothing left: 204, and EventSource stops.
    let end = rest.last().unwrap().last_event_id.clone();
    assert_eq!(get(&url, &[("Last-Event-ID", &end)]).await.status(), 204);
}

#[tokio::test]
async fn an_unknown_job_is_404() {
    let base = serve().await;
    assert_eq!(
        get(&format!("{base}/jobs/job-0/events"), &[])
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_job_reach_100_and_complete_in_chromium() {
    let Some(browser) = browser::prepare("actix-minimal page").await else {
        return;
    };
    let base = serve().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../browser/minimal_page.mjs");
    let mut cmd = browser.node(script);
    cmd.arg(&base)
        .arg(&browser.screenshots)
        .arg("actix_minimal");
    let (ok, out) = browser::run(&mut cmd, Duration::from_secs(60)).await;
    browser.assert_passed(ok, &out, &["actix_minimal.png"]);
}
