//! The checks every minimal example (`examples/{axum,actix,hyper}-minimal`) shares: each serves
//! `POST /jobs` (202, `{"id": …}`), `GET /jobs/{id}/events` and a page at `/`, and differs only
//! in its framework. An example's test file starts its server and calls
//! [`minimal_example_tests!`](crate::minimal_example_tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sse_core::DecodedEvent;

use crate::browser;
use crate::sse::{get, SseClient};

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

/// A job's stream: rising progress up to 100, then `completed`, then the end of the body.
pub async fn a_job_streams_rising_progress_up_to_100_then_completed_and_the_stream_ends(
    base: &str,
) {
    let id = start_job(base).await;
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

/// A reconnect with `Last-Event-ID` gets only what followed; after the end, 204.
pub async fn a_reconnect_with_last_event_id_gets_only_the_events_after_it(base: &str) {
    let id = start_job(base).await;
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

/// An unknown job's stream is 404.
pub async fn an_unknown_job_is_404(base: &str) {
    assert_eq!(
        get(&format!("{base}/jobs/job-0/events"), &[])
            .await
            .status(),
        404
    );
}

/// The page, in headless Chromium, shows the job reach 100 and complete (`name`: the example,
/// for the screenshot).
pub async fn the_page_shows_the_job_reach_100_and_complete_in_chromium(base: &str, name: &str) {
    let Some(browser) = browser::prepare(&format!("{name} page")).await else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/browser/minimal_page.mjs");
    let shot = name.replace('-', "_");
    let mut cmd = browser.node(script);
    cmd.arg(base).arg(&browser.screenshots).arg(&shot);
    let (ok, out) = browser::run(&mut cmd, Duration::from_secs(60)).await;
    browser.assert_passed(ok, &out, &[&format!("{shot}.png")]);
}

/// One `#[tokio::test]` per check, against the server that `$serve` (an `async fn() -> String`
/// returning `http://ADDR`) starts; `$name` names the example (for example `"axum-minimal"`).
#[macro_export]
macro_rules! minimal_example_tests {
    ($serve:path, $name:literal) => {
        #[tokio::test]
        async fn a_job_streams_rising_progress_up_to_100_then_completed_and_the_stream_ends() {
            $crate::minimal::a_job_streams_rising_progress_up_to_100_then_completed_and_the_stream_ends(
                &$serve().await,
            )
            .await;
        }

        #[tokio::test]
        async fn a_reconnect_with_last_event_id_gets_only_the_events_after_it() {
            $crate::minimal::a_reconnect_with_last_event_id_gets_only_the_events_after_it(
                &$serve().await,
            )
            .await;
        }

        #[tokio::test]
        async fn an_unknown_job_is_404() {
            $crate::minimal::an_unknown_job_is_404(&$serve().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_page_shows_the_job_reach_100_and_complete_in_chromium() {
            $crate::minimal::the_page_shows_the_job_reach_100_and_complete_in_chromium(
                &$serve().await,
                $name,
            )
            .await;
        }
    };
}
